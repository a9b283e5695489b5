"""Browser security headers, caching, /metrics, the offline API reference, the plain-HTTP
sign-in condition and password strength through the API."""

from __future__ import annotations

import re

import httpx
import pytest
from asgi_lifespan import LifespanManager
from starlette.requests import Request

from namma.cli import plain_http_warning
from namma.demo import DEMO_PASSWORD
from namma.kit.security_headers import CONTENT_SECURITY_POLICY, cookies_will_be_refused

EXPECTED_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "font-src 'self'; connect-src 'self'; manifest-src 'self'; worker-src 'self'; "
    "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)


def _assert_browser_headers(response: httpx.Response) -> None:
    assert response.headers["content-security-policy"] == EXPECTED_CSP
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "same-origin"


async def test_every_response_carries_the_browser_security_headers(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    assert CONTENT_SECURITY_POLICY == EXPECTED_CSP
    headers = await bearer(world.manager_a)
    responses = {
        "page": await client.get("/login"),
        "redirect": await client.get("/"),
        "json": await client.get("/api/auth/me", headers=headers),
        "401": await client.get("/api/auth/me"),
        "404": await client.get("/api/no-such-route"),
        "422": await client.post("/api/auth/login", json={}),
        "static": await client.get("/static/app.css"),
        "health": await client.get("/health"),
    }
    for name, response in responses.items():
        _assert_browser_headers(response)
        # Plain HTTP: no HSTS (it would be ignored, and must not stick to a dev host).
        assert "strict-transport-security" not in response.headers, name
    assert responses["json"].status_code == 200


async def test_dynamic_responses_are_never_stored_static_files_are(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    headers = await bearer(world.manager_a)
    for path in ("/api/auth/me", "/api/customers", "/account", "/login"):
        response = await client.get(path, headers=headers)
        assert response.headers["cache-control"] == "no-store", path
    # A cookie session too, and a login's answer that carries tokens to a caller who had none.
    login = await client.post(
        "/api/auth/login",
        json={"login": "agent.a@example.com", "password": "correct horse battery staple"},
    )
    assert login.status_code == 200 and login.headers["cache-control"] == "no-store"
    assert (await client.get("/api/auth/me")).headers["cache-control"] == "no-store"
    # Static files stay cacheable (with their validators), cookies or not.
    css = await client.get("/static/app.css")
    assert css.status_code == 200
    assert "no-store" not in css.headers.get("cache-control", "")
    assert css.headers.get("etag") or css.headers.get("last-modified")


async def test_documents_are_never_stored(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    # A report download (CSV) for an authenticated Admin.
    response = await client.get(
        "/api/reports/collections?format=csv", headers=await bearer(world.admin)
    )
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"


@pytest.fixture
async def proxied_app(settings):  # type: ignore[no-untyped-def]
    from namma.app import create_app

    application = create_app(settings.model_copy(update={"trusted_proxies": ["127.0.0.1"]}))
    async with LifespanManager(application):
        yield application


async def test_hsts_only_over_tls_or_from_a_trusted_proxy_that_says_so(app, proxied_app) -> None:  # type: ignore[no-untyped-def]
    async def get(application, base: str, peer: str, **headers: str) -> httpx.Response:  # type: ignore[no-untyped-def]
        transport = httpx.ASGITransport(app=application, client=(peer, 4000))
        async with httpx.AsyncClient(transport=transport, base_url=base) as c:
            return await c.get("/health", headers=headers)

    direct_tls = await get(app, "https://finance.example", "203.0.113.5")
    assert direct_tls.headers["strict-transport-security"] == "max-age=31536000"
    forged = await get(
        app, "http://finance.example", "203.0.113.5", **{"X-Forwarded-Proto": "https"}
    )
    assert "strict-transport-security" not in forged.headers
    behind_proxy = await get(
        proxied_app, "http://finance.example", "127.0.0.1", **{"X-Forwarded-Proto": "https"}
    )
    assert behind_proxy.headers["strict-transport-security"] == "max-age=31536000"


def _request(app, url: str, peer: str = "192.168.1.9", **headers: str) -> Request:  # type: ignore[no-untyped-def]
    parsed = httpx.URL(url)
    return Request(
        {
            "type": "http",
            "app": app,
            "method": "GET",
            "scheme": parsed.scheme,
            "server": (parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)),
            "path": parsed.path,
            "query_string": b"",
            "headers": [(b"host", parsed.netloc)]
            + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
            "client": (peer, 5000),
        }
    )


def test_the_login_page_can_tell_when_cookies_will_be_refused(settings) -> None:  # type: ignore[no-untyped-def]
    from namma.app import create_app

    app = create_app(settings.model_copy(update={"trusted_proxies": ["10.0.0.5"]}))
    assert cookies_will_be_refused(_request(app, "http://192.168.1.5:8000/login"))
    assert cookies_will_be_refused(_request(app, "http://finance.example/login"))
    assert not cookies_will_be_refused(_request(app, "http://localhost:8000/login"))
    assert not cookies_will_be_refused(_request(app, "http://127.0.0.1:8000/login"))
    assert not cookies_will_be_refused(_request(app, "https://finance.example/login"))
    behind_proxy = _request(
        app, "http://finance.example/login", peer="10.0.0.5", **{"X-Forwarded-Proto": "https"}
    )
    assert not cookies_will_be_refused(behind_proxy)
    forged = _request(app, "http://finance.example/login", **{"X-Forwarded-Proto": "https"})
    assert cookies_will_be_refused(forged)


def test_serve_warns_about_plain_http_away_from_loopback(settings) -> None:  # type: ignore[no-untyped-def]
    warning = plain_http_warning("0.0.0.0", settings)
    assert warning is not None and "plain HTTP" in warning and "0.0.0.0" in warning
    assert plain_http_warning("192.168.1.5", settings) is not None
    for host in ("127.0.0.1", "localhost", "::1", "127.0.1.1"):
        assert plain_http_warning(host, settings) is None
    production = settings.model_copy(update={"env": "production"})
    assert plain_http_warning("0.0.0.0", production) is None
    tls = settings.model_copy(update={"tls_certfile": "/x/cert.pem", "tls_keyfile": "/x/key.pem"})
    assert plain_http_warning("0.0.0.0", tls) is None


async def _metrics(settings, **update):  # type: ignore[no-untyped-def]
    from namma.app import create_app

    application = create_app(settings.model_copy(update=update))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            return (
                await c.get("/metrics"),
                await c.get("/metrics", headers={"Authorization": "Bearer wrong"}),
                await c.get("/metrics", headers={"Authorization": "Bearer metrics-secret-1"}),
            )


async def test_metrics_are_behind_a_token_and_off_in_production_without_one(settings) -> None:  # type: ignore[no-untyped-def]
    from pydantic import SecretStr

    open_dev, _, _ = await _metrics(settings)
    assert open_dev.status_code == 200 and "namma_http_requests" in open_dev.text

    token = SecretStr("metrics-secret-1")
    none, wrong, right = await _metrics(settings, metrics_token=token)
    assert none.status_code == wrong.status_code == 401
    assert right.status_code == 200 and "namma_http_requests" in right.text

    production = {"env": "production", "secret_key": SecretStr("p" * 40)}
    off, _, _ = await _metrics(settings, **production)
    assert off.status_code == 404
    _, _, with_token = await _metrics(settings, **production, metrics_token=token)
    assert with_token.status_code == 200


async def test_the_api_reference_works_offline_with_no_inline_script(client) -> None:  # type: ignore[no-untyped-def]
    page = await client.get("/api/docs")
    assert page.status_code == 200
    _assert_browser_headers(page)
    html = page.text
    # Nothing from elsewhere, and every script a file of ours.
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    assert not re.search(r"<script[^>]*>\s*[^<\s]", html), "inline script"
    assert "style=" not in html and "<style" not in html
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert len(assets) >= 3
    for asset in assets:
        response = await client.get(asset)
        assert response.status_code == 200, asset
        assert len(response.content) > 100, asset
    bundle = await client.get(next(a for a in assets if a.endswith("swagger-ui-bundle.js")))
    assert "SwaggerUIBundle" in bundle.text[:2000]


async def test_the_api_reference_offers_the_security_schemes(client) -> None:  # type: ignore[no-untyped-def]
    spec = (await client.get("/api/openapi.json")).json()
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": schemes["bearer"]["description"],
    }
    assert schemes["session_cookie"]["in"] == "cookie"
    assert schemes["session_cookie"]["name"] == "access_token"
    me = spec["paths"]["/api/auth/me"]["get"]
    assert {"bearer": []} in me["security"] and {"session_cookie": []} in me["security"]
    assert "security" not in spec["paths"]["/api/auth/login"]["post"]


async def test_new_passwords_are_refused_by_strength_with_the_persons_details(
    client, world, bearer
) -> None:  # type: ignore[no-untyped-def]
    headers = await bearer(world.agent_a)
    for weak in ("aaaaaaaaaaaa", DEMO_PASSWORD, "Arun Agent 9000000004"):
        refused = await client.post(
            "/api/auth/password",
            headers=headers,
            json={"current_password": "correct horse battery staple", "new_password": weak},
        )
        assert refused.status_code == 422, weak
        assert refused.json()["error"]["details"][0]["field"] == "new_password"
    # A new colleague whose password is their own name and phone.
    created = await client.post(
        "/api/staff",
        headers=await bearer(world.admin),
        json={
            "name": "Bhavana Rao",
            "role": "agent",
            "branch_id": str(world.branch_a.id),
            "phone": "9845033333",
            "password": "bhavana rao 9845033333",
        },
    )
    assert created.status_code == 422
    assert created.json()["error"]["details"][0]["field"] == "password"
