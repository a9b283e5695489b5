"""The one Jinja2 environment of the pages and ``render``, the one way a page answers.

``render(request, "customer/loan.html", context, block="tab")`` renders the whole page, or only
the named block (jinja2-fragments) when the request is an htmx request for a part of the page
(``HX-Request`` without ``HX-Boosted``): one template serves the page and its partials.

Filters (``{{ x | money }}`` …) format in the request's language; ``_()`` and
``{% trans %}`` translate (``namma.web.i18n``).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jinja2
from fastapi import Request
from fastapi.responses import Response
from jinja2_fragments.fastapi import Jinja2Blocks

from namma.kit.clock import INDIA
from namma.web import i18n, labels

WEB_DIR = Path(__file__).resolve().parent
TEMPLATES_DIR = WEB_DIR / "templates"
STATIC_DIR = WEB_DIR / "static"

environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)
environment.install_gettext_callables(  # type: ignore[attr-defined]
    i18n.gettext, i18n.ngettext, newstyle=True
)
environment.filters.update(
    money=i18n.money,
    number=i18n.number,
    percent=i18n.percent,
    date=i18n.date,
    time_of_day=i18n.time_of_day,
    month=i18n.month,
)


@functools.cache
def _static_version(name: str) -> str:
    return hashlib.sha256((STATIC_DIR / name).read_bytes()).hexdigest()[:12]


def static(name: str) -> str:
    """The URL of a static file, with its content's hash (browsers may cache it for long)."""
    return f"/static/{name}?v={_static_version(name)}"


environment.globals.update(static=static, LANGUAGES=i18n.LANGUAGES, labels=labels, india=INDIA)

templates = Jinja2Blocks(env=environment)


def is_partial(request: Request) -> bool:
    """An htmx request for a part of the page (a boosted link or form wants the whole page)."""
    return request.headers.get("hx-request") == "true" and request.headers.get("hx-boosted") is None


def page_path(request: Request) -> str:
    """The address of the page shown, for the language switch to come back to: the request's
    path, or for a form's answer (a POST that shows the form again with its errors) the page
    the form was on, from the Referer on this site — the form's own address may answer only
    POST. Without a Referer: home."""
    if request.method in ("GET", "HEAD"):
        return request.url.path
    referer = urlsplit(request.headers.get("referer", ""))
    if referer.netloc == request.url.netloc and referer.path.startswith("/"):
        return referer.path
    return "/"


def render_text(name: str, context: Mapping[str, Any]) -> str:
    """The template ``name`` as text in the current language, for a part of a page kept between
    requests: it gets no request, viewer or CSRF token, so what it shows cannot depend on them."""
    return environment.get_template(name).render({**context, "lang": i18n.language_current()})


def render(
    request: Request,
    name: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    block: str | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """The page ``name`` (or only its ``block`` for an htmx partial request), in the request's
    language. ``context`` gets ``request``, ``lang`` and the page's ``viewer`` (if signed in)."""
    values = dict(context or {})
    values.setdefault("viewer", getattr(request.state, "viewer", None))
    values.setdefault("csrf_token", getattr(request.state, "csrf_token", ""))
    values["lang"] = i18n.language_current()
    values["path"] = page_path(request)
    kwargs: dict[str, Any] = {}
    if block is not None and is_partial(request):
        kwargs["block_name"] = block
    response = templates.TemplateResponse(
        request, name, values, status_code=status_code, headers=dict(headers or {}), **kwargs
    )
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("Vary", "HX-Request")
    return response
