"""Languages of the pages: English and Kannada. Translations, and the formats of money and dates.

- Catalogues: ``locale/<lang>/LC_MESSAGES/messages.po`` in this package, the only copy (no
  ``.mo`` files): read and compiled in memory by Babel the first time a language is used.
  English is the source language (msgids are English), so it needs no catalogue.
- ``_`` / ``gettext`` / ``ngettext`` translate into the language of the current request (a
  context variable set by the page dependency, ``language_use``); ``N_`` only marks a string for
  extraction (module-level labels), translated where it is shown.
- Money: ``₹1,23,456.00`` in both languages. Babel's ``kn_IN`` pattern groups by thousands,
  so the Indian pattern is passed explicitly. Dates: ``25-Nov-2026`` (Kannada month names in
  Kannada).
"""

from __future__ import annotations

import contextvars
import datetime as dt
import functools
import gettext as gettext_module
import io
from collections.abc import Iterable
from decimal import Decimal
from pathlib import Path

from babel import Locale
from babel.core import negotiate_locale
from babel.dates import format_date, format_time
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_currency, format_decimal
from babel.support import Translations

from namma.kit.clock import INDIA

LOCALE_DIR = Path(__file__).resolve().parent / "locale"
DOMAIN = "messages"
DEFAULT_LANGUAGE = "en"
# The languages a person can choose, in their own script (shown as such in the switch).
LANGUAGES: dict[str, str] = {"en": "English", "kn": "ಕನ್ನಡ"}
_LOCALES = {"en": "en_IN", "kn": "kn_IN"}
# Dates name the month in three letters (25-Nov-2026); en_IN's abbreviation of September is
# "Sept", so English dates take the months of plain English (the same names otherwise).
_DATE_LOCALES = {"en": "en", "kn": "kn_IN"}
INDIAN_CURRENCY_PATTERN = "¤#,##,##0.00"
DATE_PATTERN = "dd-MMM-yyyy"

_language: contextvars.ContextVar[str] = contextvars.ContextVar(
    "namma_page_language", default=DEFAULT_LANGUAGE
)


def language_known(value: str | None) -> str | None:
    """``value`` if it is a language we speak, else None."""
    return value if value in LANGUAGES else None


def language_negotiate(accept_language: str | None) -> str:
    """The best of our languages for an ``Accept-Language`` header (English if none fits)."""
    if not accept_language:
        return DEFAULT_LANGUAGE
    preferred: list[tuple[float, str]] = []
    for position, part in enumerate(accept_language.split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        if tag and quality > 0:
            # Stable: equal qualities keep the header's order.
            preferred.append((-quality + position * 1e-6, tag.replace("-", "_")))
    wanted = [tag for _, tag in sorted(preferred)]
    found = negotiate_locale(wanted, list(_LOCALES.values()) + list(LANGUAGES), sep="_")
    if found is None:
        return DEFAULT_LANGUAGE
    return found.split("_")[0] if found.split("_")[0] in LANGUAGES else DEFAULT_LANGUAGE


def language_use(lang: str) -> None:
    """Translate into ``lang`` for the rest of this request (its task's context)."""
    _language.set(language_known(lang) or DEFAULT_LANGUAGE)


def language_current() -> str:
    return _language.get()


def locale_of(lang: str | None = None) -> Locale:
    return _locale(lang or language_current())


@functools.cache
def _date_locale(lang: str) -> Locale:
    return Locale.parse(_DATE_LOCALES.get(lang, _DATE_LOCALES[DEFAULT_LANGUAGE]))


@functools.cache
def _locale(lang: str) -> Locale:
    return Locale.parse(_LOCALES.get(lang, _LOCALES[DEFAULT_LANGUAGE]))


def catalogue_path(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / f"{DOMAIN}.po"


@functools.cache
def translations(lang: str) -> gettext_module.NullTranslations:
    """The compiled catalogue of ``lang`` (fuzzy entries left out; English: none needed)."""
    path = catalogue_path(lang)
    if lang == DEFAULT_LANGUAGE or not path.exists():
        return gettext_module.NullTranslations()
    with path.open("rb") as po:
        catalog = read_po(po, locale=_LOCALES[lang], domain=DOMAIN)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain=DOMAIN)


def gettext(message: str) -> str:
    return translations(language_current()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    return translations(language_current()).ngettext(singular, plural, n)


_ = gettext


def N_(message: str) -> str:
    """Mark ``message`` for the catalogue without translating it now."""
    return message


# --- formats -------------------------------------------------------------------------------------


def money(value: Decimal | str | None, lang: str | None = None) -> str:
    """``₹1,23,456.00`` (lakh and crore grouping in both languages); "—" for nothing."""
    if value is None or value == "":
        return "—"
    amount = value if isinstance(value, Decimal) else Decimal(value)
    return format_currency(
        amount,
        "INR",
        format=INDIAN_CURRENCY_PATTERN,
        locale=locale_of(lang),
        currency_digits=False,
    )


def number(value: int | Decimal | str | None, lang: str | None = None) -> str:
    if value is None or value == "":
        return "—"
    return format_decimal(
        value if isinstance(value, int | Decimal) else Decimal(value), locale=locale_of(lang)
    )


def percent(value: Decimal | str | None, lang: str | None = None) -> str:
    """A percentage given as a number of percent (``"12.50"`` → ``12.5 %``)."""
    if value is None or value == "":
        return "—"
    return f"{number(value, lang)} %"


def _as_date(value: dt.date | str) -> dt.date:
    """The Indian day of ``value``: a moment (a datetime, or an ISO text with a time, as the
    API writes timestamps) is a day in India, not in UTC — 20:00 UTC is already the next
    morning there. A naive moment is taken as UTC (the database's timestamps are)."""
    if isinstance(value, str):
        if len(value) <= 10:
            return dt.date.fromisoformat(value)
        value = dt.datetime.fromisoformat(value)
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(INDIA).date()
    return value


def date(value: dt.date | str | None, lang: str | None = None) -> str:
    """``25-Nov-2026`` (``25-ನವೆಂ-2026`` in Kannada)."""
    if value is None or value == "":
        return "—"
    return format_date(
        _as_date(value), DATE_PATTERN, locale=_date_locale(lang or language_current())
    )


def time_of_day(value: dt.datetime | str | None, lang: str | None = None) -> str:
    """A moment's hour and minute in India (``14:05``): when a dashboard's figures were read."""
    if value is None or value == "":
        return "—"
    moment = dt.datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return format_time(moment.astimezone(INDIA), "HH:mm", locale=locale_of(lang))


def month(value: dt.date | str | None, lang: str | None = None) -> str:
    """``November 2026`` (the month's full name in the language)."""
    if value is None or value == "":
        return "—"
    if isinstance(value, str) and len(value) == 7:
        value = f"{value}-01"
    return format_date(_as_date(value), "LLLL yyyy", locale=locale_of(lang))


def catalogue_messages(lang: str) -> Iterable[tuple[str, str, bool]]:
    """(msgid, translation, fuzzy) of every entry of ``lang``'s catalogue (for the tests)."""
    with catalogue_path(lang).open("rb") as po:
        catalog = read_po(po, locale=_LOCALES[lang], domain=DOMAIN)
    for message in catalog:
        if not message.id:
            continue
        msgid = message.id if isinstance(message.id, str) else message.id[0]
        text = message.string if isinstance(message.string, str) else " ".join(message.string or ())
        yield msgid, text, message.fuzzy
