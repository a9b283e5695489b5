"""The pages' message catalogue: extract every translatable string of ``namma.web`` (templates
and Python) and merge it into each language's ``.po``.

    python -m namma.web.catalogue          # update locale/*/LC_MESSAGES/messages.po

New strings arrive untranslated (empty ``msgstr``); strings whose English changed arrive
"fuzzy". Translate them in the ``.po`` file; ``tests/unit/test_pages_i18n.py`` fails while any
string is untranslated or fuzzy.
"""

from __future__ import annotations

import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.extract import extract, extract_from_dir
from babel.messages.pofile import read_po, write_po

from namma.web.i18n import DOMAIN, LANGUAGES, catalogue_path

WEB_DIR = Path(__file__).resolve().parent
METHOD_MAP = [
    ("templates/**.html", "jinja2"),
    ("**.py", "python"),
]
OPTIONS = {"templates/**.html": {"extensions": "jinja2.ext.i18n", "newstyle_gettext": "true"}}
KEYWORDS = {"_": None, "gettext": None, "ngettext": (1, 2), "N_": None, "t": None}


# Outside the web package, the modules whose strings are in this catalogue too.
ALSO = (WEB_DIR.parent / "documents" / "render.py",)


def catalogue_extract() -> Catalog:
    catalog = Catalog(domain=DOMAIN, project="Namma Finance", charset="utf-8")
    for path in ALSO:
        with path.open("rb") as source:
            for lineno, message, comments, context in extract(
                "python", source, keywords=KEYWORDS, comment_tags=("Translators:",)
            ):
                catalog.add(
                    message, None, [(path.name, lineno)], auto_comments=comments, context=context
                )
    for filename, lineno, message, comments, context in extract_from_dir(
        WEB_DIR,
        method_map=METHOD_MAP,
        options_map=OPTIONS,
        keywords=KEYWORDS,
        comment_tags=("Translators:",),
        strip_comment_tags=True,
    ):
        catalog.add(message, None, [(filename, lineno)], auto_comments=comments, context=context)
    return catalog


def catalogue_update() -> list[Path]:
    template = catalogue_extract()
    written = []
    for lang in LANGUAGES:
        if lang == "en":
            continue
        path = catalogue_path(lang)
        if path.exists():
            with path.open("rb") as po:
                catalog = read_po(po, locale=lang, domain=DOMAIN)
            template.creation_date = catalog.creation_date  # no churn in the header
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            catalog = Catalog(locale=lang, domain=DOMAIN, project="Namma Finance")
        catalog.update(template, no_fuzzy_matching=False)
        catalog.fuzzy = False
        with path.open("wb") as po:
            write_po(po, catalog, width=100, omit_header=False, ignore_obsolete=True)
        written.append(path)
    return written


if __name__ == "__main__":
    for written_path in catalogue_update():
        print(written_path, file=sys.stderr)
