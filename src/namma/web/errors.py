"""Errors on pages answer pages: 403, 404, 409, 422, 429 and 500 as HTML in the person's language
(never a JSON body or a traceback in a browser); JSON routes keep the JSON error body.

Which errors are pages: those of the page routes (``web/pages/``), and an unknown address
asked for by a browser (``Accept: text/html``) outside ``/api/``.

A page whose session has lapsed is not an error to show:
- a full-page GET with the session's CSRF cookie still there answers a small page whose script
  renews the session (``POST /api/auth/refresh``: the refresh cookie is sent only there) and
  loads the page again — or goes to the sign-in page if the session has ended;
- without that cookie (never signed in, signed out) it goes straight to ``/login?next=…``;
- an htmx request answers a bare 401: ``app.js`` renews the session and sends the same request
  again, so a half-filled form is not lost;
- a person who must change their password is sent to ``/password``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from namma.auth.deps import CSRF_COOKIE, PasswordChangeRequiredError
from namma.kit.errors import AppError, AuthenticationError
from namma.web import i18n
from namma.web.forms import message_translate
from namma.web.i18n import N_, gettext
from namma.web.templating import is_partial, render
from namma.web.viewer import language_of_request, login_url

log = structlog.get_logger(__name__)

Handler = Callable[[Request, Exception], Awaitable[Response]]

# Paths that are not pages: their errors stay JSON.
NOT_PAGES = ("/api/", "/health", "/ready", "/metrics", "/static/")

_TITLES: dict[int, str] = {
    400: N_("This request could not be understood"),
    401: N_("Please sign in"),
    403: N_("You cannot open this page"),
    404: N_("Page not found"),
    405: N_("This request could not be understood"),
    409: N_("This cannot be done now"),
    422: N_("Some details are not valid"),
    429: N_("Too many requests"),
    500: N_("Something went wrong"),
}
_EXPLANATIONS: dict[int, str] = {
    403: N_("This page is not part of what your account can see."),
    404: N_("There is nothing at this address, or it is not yours to see."),
    409: N_("The record has changed, or is not in a state that allows this."),
    422: N_("The address or the form has something we cannot use."),
    429: N_("Wait a moment before trying again."),
    500: N_("It is our fault, not yours. Nothing was saved; please try again."),
}


PAGES_PACKAGE = "namma.web.pages"


def is_page(request: Request) -> bool:
    """A page route's error is a page; so is an unknown address a browser asked for (it
    accepts HTML) outside the API. Everything else keeps the JSON error body."""
    endpoint = request.scope.get("endpoint")
    if endpoint is not None:
        return str(getattr(endpoint, "__module__", "")).startswith(PAGES_PACKAGE)
    path = request.url.path
    if any(path == p.rstrip("/") or path.startswith(p) for p in NOT_PAGES):
        return False
    return "text/html" in request.headers.get("accept", "")


def _language(request: Request) -> None:
    i18n.language_use(getattr(request.state, "lang", None) or language_of_request(request))


def error_page(
    request: Request,
    status: int,
    message: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    _language(request)
    title = gettext(_TITLES.get(status, _TITLES[500]))
    explanation = gettext(_EXPLANATIONS[status]) if status in _EXPLANATIONS else None
    return render(
        request,
        "errors/error.html",
        {
            "status": status,
            "title": title,
            "message": message_translate(message) if message else None,
            "explanation": explanation,
        },
        status_code=status,
        block="content",
        headers=headers,
    )


def session_lapsed(request: Request) -> Response:
    """What a page answers when its access token is missing or expired."""
    _language(request)
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    if is_partial(request) or request.headers.get("hx-request") == "true":
        return Response(status_code=401, headers={"Cache-Control": "no-store"})
    if request.method == "GET" and request.cookies.get(CSRF_COOKIE):
        return render(
            request,
            "auth/session.html",
            {"login_url": login_url(target)},
            status_code=401,
        )
    if request.method == "GET":
        return RedirectResponse(login_url(target), status_code=303)
    return error_page(request, 401, gettext(N_("Your session has ended; please sign in again.")))


def page_errors_install(app: FastAPI) -> None:
    """Wrap the JSON error handlers (``namma.kit.errors``): page paths get pages."""
    json_handlers: dict[Any, Handler] = dict(app.exception_handlers)

    def pick(kind: type[Exception]) -> Handler:
        fallback = json_handlers[kind]

        async def handler(request: Request, exc: Exception) -> Response:
            if not is_page(request):
                return await fallback(request, exc)
            return _page_error(request, exc)

        return handler

    for kind in (AppError, RequestValidationError, StarletteHTTPException, Exception):
        app.add_exception_handler(kind, pick(kind))


def _page_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, AuthenticationError):
        return session_lapsed(request)
    if isinstance(exc, PasswordChangeRequiredError):
        if request.headers.get("hx-request") == "true":
            return Response(status_code=204, headers={"HX-Redirect": "/password"})
        return RedirectResponse("/password", status_code=303)
    if isinstance(exc, AppError):
        return error_page(request, exc.status_code, exc.message, exc.headers)
    if isinstance(exc, RequestValidationError):
        return error_page(request, 422)
    if isinstance(exc, StarletteHTTPException):
        status = exc.status_code if exc.status_code in _TITLES else 500
        return error_page(request, status, headers=getattr(exc, "headers", None))
    log.exception("page.unhandled_error", path=request.url.path, exc_info=exc)
    return error_page(request, 500)
