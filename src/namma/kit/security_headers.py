"""Browser security headers on every response, and whether the connection is TLS.

The Content-Security-Policy below is the contract every page is built to: scripts and styles
come from files served by us (``/static/…``), never inline — no ``<script>`` bodies, no
``onclick=`` attributes, no ``<style>`` blocks or ``style=`` attributes; images may also be
``data:`` URLs (QR codes, icons); nothing may frame our pages. A page that needs something else
changes this constant, with a note in docs/decisions.md, rather than weakening it per page.

Caching: every response is ``Cache-Control: no-store`` (JSON, pages, PDFs, CSV…) except static
assets under ``CACHEABLE_PATH_PREFIXES``, which keep the validators (ETag, Last-Modified) the
static file server gives them. Deciding by "is this request authenticated" would miss the answers
that carry tokens to a request that had none (login, refresh) and pages that read the session
only in the browser, so the rule is "dynamic means private". A route may still choose its own
Cache-Control for a request without credentials (no cookie session, no Authorization header).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; manifest-src 'self'; worker-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
# One year; not includeSubDomains: other hosts of the institution's domain are not ours to bind.
STRICT_TRANSPORT_SECURITY = "max-age=31536000"
CACHEABLE_PATH_PREFIXES: tuple[str, ...] = ("/static/", "/api/docs/assets/")
# Cookies a browser session carries (namma.auth.deps): their presence makes a request credentialed.
SESSION_COOKIES = ("access_token=", "refresh_token=")
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})

_ALWAYS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
)


def connection_is_tls(
    *, scheme: str, peer: str | None, headers: Mapping[str, str], trusted_proxies: Iterable[str]
) -> bool:
    """True when the client reached us over TLS: directly (``https``), or through a trusted
    proxy that says so in ``X-Forwarded-Proto`` (the header is ignored from anyone else)."""
    if scheme in ("https", "wss"):
        return True
    if peer is None or peer not in set(trusted_proxies):
        return False
    forwarded = headers.get("x-forwarded-proto", "")
    # A chain of proxies appends; the client's hop is the first.
    return forwarded.split(",")[0].strip().lower() == "https"


def request_is_tls(request: Request) -> bool:
    settings = request.app.state.settings
    return connection_is_tls(
        scheme=request.url.scheme,
        peer=request.client.host if request.client else None,
        headers=request.headers,
        trusted_proxies=settings.trusted_proxies,
    )


def cookies_secure(request: Request) -> bool:
    """Session cookies are ``Secure`` everywhere but on a loopback host name."""
    return request.url.hostname not in LOOPBACK_HOSTS


def cookies_will_be_refused(request: Request) -> bool:
    """The browser will drop our ``Secure`` session cookies: the page was reached over plain
    HTTP under a name that is not loopback (``http://192.168.1.5:8000``), so signing in cannot
    work here. The login page says so; `namma serve` warns at start (namma.cli)."""
    return cookies_secure(request) and not request_is_tls(request)


def _credentialed(headers: Mapping[str, str]) -> bool:
    if headers.get("authorization"):
        return True
    cookie = headers.get("cookie", "")
    return any(name in cookie for name in SESSION_COOKIES)


class SecurityHeadersMiddleware:
    """Pure ASGI: adds the headers to every HTTP response (errors and redirects included)."""

    def __init__(self, app: ASGIApp, *, trusted_proxies: Iterable[str] = ()) -> None:
        self.app = app
        self.trusted_proxies = frozenset(trusted_proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {
            k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []
        }
        client = scope.get("client")
        tls = connection_is_tls(
            scheme=scope.get("scheme", "http"),
            peer=client[0] if client else None,
            headers=headers,
            trusted_proxies=self.trusted_proxies,
        )
        path: str = scope.get("path", "")
        cacheable = path.startswith(CACHEABLE_PATH_PREFIXES)
        credentialed = _credentialed(headers)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                out = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _NAMES]
                out.extend(_ALWAYS)
                if tls:
                    out.append((b"strict-transport-security", STRICT_TRANSPORT_SECURITY.encode()))
                if not cacheable:
                    own = [v for k, v in out if k.lower() == b"cache-control"]
                    if credentialed or not own:
                        out = [(k, v) for k, v in out if k.lower() != b"cache-control"]
                        out.append((b"cache-control", b"no-store"))
                message["headers"] = out
            await send(message)

        await self.app(scope, receive, send_with_headers)


_NAMES = frozenset(name for name, _ in _ALWAYS) | {b"strict-transport-security"}
