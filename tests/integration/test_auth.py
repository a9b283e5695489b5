"""Login, tokens, refresh rotation and reuse, CSRF, abuse limits, TOTP, password policy."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

import httpx
import jwt
import pyotp
import pytest
from asgi_lifespan import LifespanManager
from fastapi import Depends
from pwdlib.hashers.bcrypt import BcryptHasher
from sqlalchemy import select

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.auth.tokens import (
    ALGORITHM,
    AUDIENCE,
    ISSUER,
    AccessClaims,
    _signing_key,
    access_token_issue,
)
from namma.kit.db import transaction
from namma.kit.passwords import common_password_count, password_problem
from namma.models import AuditEntry, User
from tests.integration.conftest import PASSWORD


async def _login(client: httpx.AsyncClient, login: str, password: str = PASSWORD, **extra):  # type: ignore[no-untyped-def]
    return await client.post(
        "/api/auth/login",
        json={"login": login, "password": password, "token_delivery": "body", **extra},
    )


async def _audit_actions(app) -> list[str]:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        return list(
            (await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all()
        )


def _secret(app) -> str:  # type: ignore[no-untyped-def]
    return app.state.settings.secret_key.get_secret_value()


async def test_login_by_email_or_phone_then_me(client, world) -> None:  # type: ignore[no-untyped-def]
    by_email = await _login(client, "Manager.A@example.com")
    assert by_email.status_code == 200, by_email.text
    body = by_email.json()
    assert body["status"] == "ok" and body["user"]["role"] == "manager"
    me = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"}
    )
    assert me.status_code == 200
    assert me.json()["user"]["email"] == "manager.a@example.com"
    assert "customer:assign" in me.json()["permissions"]

    by_phone = await _login(client, "+91 90000 00002")
    assert by_phone.status_code == 200
    assert by_phone.json()["user"]["id"] == body["user"]["id"]


async def test_wrong_password_and_unknown_user_look_the_same_and_are_audited(
    app, client, world
) -> None:  # type: ignore[no-untyped-def]
    wrong = await _login(client, "agent.a@example.com", "not the password at all")
    unknown = await _login(client, "nobody@example.com", "not the password at all")
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    async with transaction(app.state.db) as session:
        agent = await session.get(User, world.agent_a.id)
        assert agent is not None and agent.failed_logins == 1
    assert (await _audit_actions(app)).count("auth.login_failed") == 2


def _forge(payload: dict, *, key: bytes, algorithm: str = ALGORITHM) -> str:  # type: ignore[type-arg]
    return jwt.encode(payload, key, algorithm=algorithm)


async def test_forged_expired_and_misdirected_tokens_are_refused(
    app, client, world, bearer
) -> None:  # type: ignore[no-untyped-def]
    good = (await bearer(world.manager_a))["Authorization"].removeprefix("Bearer ")
    claims = jwt.decode(good, options={"verify_signature": False})
    key = _signing_key(_secret(app), "access")

    none_alg = jwt.encode(claims, key=None, algorithm="none")
    other_alg = _forge(claims, key=key, algorithm="HS512")
    header, payload, signature = good.split(".")
    tampered = f"{header}.{payload}.{signature[:-4]}AAAA"
    expired = _forge({**claims, "exp": int(dt.datetime.now(dt.UTC).timestamp()) - 10}, key=key)
    wrong_aud = _forge({**claims, "aud": "someone-else"}, key=key)
    wrong_typ = _forge({**claims, "typ": "refresh"}, key=key)
    other_secret = _forge(claims, key=_signing_key("another-installation-secret", "access"))

    assert (
        await client.get("/api/auth/me", headers={"Authorization": f"Bearer {good}"})
    ).status_code == 200
    for name, token in {
        "alg none": none_alg,
        "HS512": other_alg,
        "tampered": tampered,
        "expired": expired,
        "wrong aud": wrong_aud,
        "not an access token": wrong_typ,
        "other secret": other_secret,
        "garbage": "not.a.jwt",
    }.items():
        response = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 401, name
        assert response.json()["error"]["code"] == "unauthenticated"


async def test_refresh_token_is_not_an_access_token(client, world) -> None:  # type: ignore[no-untyped-def]
    body = (await _login(client, "agent.a@example.com")).json()
    response = await client.get(
        "/api/auth/me", headers={"Authorization": f"Bearer {body['refresh_token']}"}
    )
    assert response.status_code == 401


async def test_access_token_after_logout_or_password_change_is_refused(client, world) -> None:  # type: ignore[no-untyped-def]
    first = (await _login(client, "agent.a@example.com")).json()
    second = (await _login(client, "agent.a@example.com")).json()
    h1 = {"Authorization": f"Bearer {first['access_token']}"}
    h2 = {"Authorization": f"Bearer {second['access_token']}"}

    assert (await client.post("/api/auth/logout", headers=h1)).status_code == 204
    assert (await client.get("/api/auth/me", headers=h1)).status_code == 401
    # Logout ends that session only.
    assert (await client.get("/api/auth/me", headers=h2)).status_code == 200

    changed = await client.post(
        "/api/auth/password",
        headers=h2,
        json={"current_password": PASSWORD, "new_password": "a brand new passphrase"},
    )
    assert changed.status_code == 204
    assert (await client.get("/api/auth/me", headers=h2)).status_code == 401
    assert (await _login(client, "agent.a@example.com")).status_code == 401
    assert (
        await _login(client, "agent.a@example.com", "a brand new passphrase")
    ).status_code == 200


async def test_refresh_rotates_and_reuse_revokes_the_whole_family(app, client, world) -> None:  # type: ignore[no-untyped-def]
    login = (await _login(client, "agent.a@example.com")).json()
    r1 = login["refresh_token"]

    rotated = await client.post("/api/auth/refresh", json={"refresh_token": r1})
    assert rotated.status_code == 200
    r2 = rotated.json()["refresh_token"]
    a2 = rotated.json()["access_token"]
    assert r2 != r1
    assert (
        await client.get("/api/auth/me", headers={"Authorization": f"Bearer {a2}"})
    ).status_code == 200

    # The old token again: someone kept a copy. The whole session ends ...
    reused = await client.post("/api/auth/refresh", json={"refresh_token": r1})
    assert reused.status_code == 401
    # ... so even the newest refresh token and the newest access token stop working.
    assert (await client.post("/api/auth/refresh", json={"refresh_token": r2})).status_code == 401
    assert (
        await client.get("/api/auth/me", headers={"Authorization": f"Bearer {a2}"})
    ).status_code == 401
    assert "auth.refresh_reused" in await _audit_actions(app)


async def test_cookie_session_needs_csrf_for_unsafe_requests(client, world) -> None:  # type: ignore[no-untyped-def]
    login = await client.post(
        "/api/auth/login", json={"login": "agent.a@example.com", "password": PASSWORD}
    )
    assert login.status_code == 200
    assert "access_token" not in login.json()  # a browser never sees its tokens
    csrf = login.json()["csrf_token"]
    assert client.cookies.get("csrf_token") == csrf

    # Safe requests need no CSRF token.
    assert (await client.get("/api/auth/me")).status_code == 200
    missing = await client.post("/api/auth/logout")
    assert missing.status_code == 403
    assert "CSRF" in missing.json()["error"]["message"]
    wrong = await client.post("/api/auth/logout", headers={"X-CSRF-Token": "0" * 64})
    assert wrong.status_code == 403
    assert (
        await client.post("/api/auth/logout", headers={"X-CSRF-Token": csrf})
    ).status_code == 204


async def test_cookie_refresh_rotates_cookies_without_exposing_tokens(client, world) -> None:  # type: ignore[no-untyped-def]
    login = await client.post(
        "/api/auth/login", json={"login": "agent.a@example.com", "password": PASSWORD}
    )
    set_cookies = login.headers.get_list("set-cookie")
    refresh_cookie = next(c for c in set_cookies if c.startswith("refresh_token="))
    assert "Path=/api/auth/refresh" in refresh_cookie and "HttpOnly" in refresh_cookie
    assert "SameSite=lax" in refresh_cookie or "samesite=lax" in refresh_cookie.lower()
    # The refresh cookie is only sent to the refresh route; send it there explicitly.
    old = refresh_cookie.split(";")[0].split("=", 1)[1]
    refreshed = await client.post("/api/auth/refresh", headers={"Cookie": f"refresh_token={old}"})
    assert refreshed.status_code == 200
    assert "refresh_token" not in refreshed.json()
    assert any(c.startswith("refresh_token=") for c in refreshed.headers.get_list("set-cookie"))


async def test_bearer_requests_need_no_csrf(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    headers = await bearer(world.agent_a)
    assert (await client.post("/api/auth/logout", headers=headers)).status_code == 204


@pytest.fixture
async def limited_client(settings):  # type: ignore[no-untyped-def]
    """A client of an app with the production login limit (5 attempts per 5 minutes)."""
    from namma.app import create_app
    from namma.config import Settings

    default_limit = Settings.model_fields["login_rate_limit"].default
    application = create_app(settings.model_copy(update={"login_rate_limit": default_limit}))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            yield c


async def test_login_limit_per_client_address(limited_client, world) -> None:  # type: ignore[no-untyped-def]
    client = limited_client
    statuses = [
        (await _login(client, "agent.a@example.com", "wrong password here")).status_code
        for _ in range(6)
    ]
    assert statuses == [401] * 5 + [429]
    refused = await _login(client, "agent.a@example.com")  # even the right password waits
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 300
    assert refused.json()["error"]["code"] == "rate_limited"


@pytest.fixture
async def proxied_app(settings):  # type: ignore[no-untyped-def]
    """The app behind a trusted proxy (the test client's address), so X-Forwarded-For counts."""
    from namma.app import create_app

    application = create_app(settings.model_copy(update={"trusted_proxies": ["127.0.0.1"]}))
    async with LifespanManager(application):
        yield application


async def test_account_delay_grows_but_never_locks_out_for_good(
    proxied_app, world, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=proxied_app, client=("127.0.0.1", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        # Each attempt from a different address: the per-address limit does not apply.
        for i in range(5):
            response = await client.post(
                "/api/auth/login",
                json={"login": "agent.a@example.com", "password": "wrong password here"},
                headers={"X-Forwarded-For": f"203.0.113.{i + 1}"},
            )
            assert response.status_code == 401
        throttled = await client.post(
            "/api/auth/login",
            json={"login": "agent.a@example.com", "password": PASSWORD},
            headers={"X-Forwarded-For": "203.0.113.99"},
        )
        assert throttled.status_code == 429
        assert throttled.headers["Retry-After"] == "1"

        # The delay is bounded (here 1 s after 5 failures): the right password then works.
        import asyncio

        await asyncio.sleep(1.1)
        ok = await client.post(
            "/api/auth/login",
            json={"login": "agent.a@example.com", "password": PASSWORD, "token_delivery": "body"},
            headers={"X-Forwarded-For": "203.0.113.100"},
        )
        assert ok.status_code == 200
    async with transaction(proxied_app.state.db) as session:
        agent = await session.get(User, world.agent_a.id)
        assert agent is not None and agent.failed_logins == 0

    from namma.auth.service import MAX_ACCOUNT_DELAY, account_delay_remaining

    agent.failed_logins = 40
    agent.last_failed_login_at = dt.datetime.now(dt.UTC)
    assert (
        account_delay_remaining(agent, dt.datetime.now(dt.UTC)) <= MAX_ACCOUNT_DELAY.total_seconds()
    )


async def test_forwarded_for_is_ignored_from_untrusted_peers(limited_client, world) -> None:  # type: ignore[no-untyped-def]
    client = limited_client
    # The default settings trust no proxy: a client cannot dodge the limit by inventing addresses.
    statuses = [
        (
            await client.post(
                "/api/auth/login",
                json={"login": "agent.a@example.com", "password": "wrong password here"},
                headers={"X-Forwarded-For": f"198.51.100.{i}"},
            )
        ).status_code
        for i in range(6)
    ]
    assert statuses[-1] == 429


async def test_login_limit_is_shared_by_two_app_processes_through_redis(
    settings, world, redis_url
) -> None:  # type: ignore[no-untyped-def]
    from namma.app import create_app

    # A client address unique to this run keeps runs apart in a shared Redis.
    shared = settings.model_copy(update={"redis_url": redis_url, "login_rate_limit": "3/5minutes"})
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"
    first, second = create_app(shared), create_app(shared)
    async with LifespanManager(first), LifespanManager(second):
        statuses = []
        for application in (first, second, first, second):
            transport = httpx.ASGITransport(app=application, client=(address, 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
                response = await c.post(
                    "/api/auth/login",
                    json={"login": "agent.a@example.com", "password": "wrong password here"},
                )
                statuses.append(response.status_code)
        assert statuses == [401, 401, 401, 429]


async def test_admin_enrols_totp_at_first_login_then_logs_in_with_codes(app, client, world) -> None:  # type: ignore[no-untyped-def]
    first = await _login(client, "admin@example.com")
    assert first.json()["status"] == "totp_enrolment_required"
    assert "access_token" not in first.json()
    challenge = first.json()["challenge"]

    enrol = await client.post("/api/auth/login/totp-enrol", json={"challenge": challenge})
    assert enrol.status_code == 200
    secret = enrol.json()["secret"]
    assert enrol.json()["otpauth_uri"].startswith(
        "otpauth://totp/Namma%20Finance:admin%40example.com"
    )
    assert enrol.json()["qr_svg"].startswith("<svg")

    bad = await client.post(
        "/api/auth/login/totp-enrol/confirm", json={"challenge": challenge, "code": "000000"}
    )
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "code"
    confirmed = await client.post(
        "/api/auth/login/totp-enrol/confirm",
        json={"challenge": challenge, "code": pyotp.TOTP(secret).now(), "token_delivery": "body"},
    )
    assert confirmed.status_code == 200, confirmed.text
    codes = confirmed.json()["recovery_codes"]
    assert len(codes) == 10 and len(set(codes)) == 10
    assert confirmed.json()["user"]["totp_enabled"] is True

    # The code used for enrolment cannot be used again (RFC 6238 §5.2) ...
    step1 = await _login(client, "admin@example.com")
    replay = await client.post(
        "/api/auth/login/totp",
        json={"challenge": step1.json()["challenge"], "code": pyotp.TOTP(secret).now()},
    )
    assert replay.status_code == 401
    # ... the next one can: password, then the code.
    next_code = pyotp.TOTP(secret).at(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))
    step1 = await _login(client, "admin@example.com")
    assert step1.json()["status"] == "totp_required"
    wrong = await client.post(
        "/api/auth/login/totp", json={"challenge": step1.json()["challenge"], "code": "123456"}
    )
    assert wrong.status_code == 401
    step2 = await client.post(
        "/api/auth/login/totp",
        json={"challenge": step1.json()["challenge"], "code": next_code, "token_delivery": "body"},
    )
    assert step2.status_code == 200
    assert step2.json()["user"]["role"] == "admin"

    # A recovery code works once.
    step1 = await _login(client, "admin@example.com")
    used = await client.post(
        "/api/auth/login/totp",
        json={"challenge": step1.json()["challenge"], "recovery_code": codes[0].upper()},
    )
    assert used.status_code == 200
    step1 = await _login(client, "admin@example.com")
    again = await client.post(
        "/api/auth/login/totp",
        json={"challenge": step1.json()["challenge"], "recovery_code": codes[0]},
    )
    assert again.status_code == 401
    assert "auth.totp_enabled" in await _audit_actions(app)


async def test_a_challenge_is_not_an_access_token(client, world) -> None:  # type: ignore[no-untyped-def]
    challenge = (await _login(client, "admin@example.com")).json()["challenge"]
    assert (
        await client.get("/api/auth/me", headers={"Authorization": f"Bearer {challenge}"})
    ).status_code == 401


async def test_staff_may_enrol_totp_optionally(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    headers = await bearer(world.agent_a)
    secret = (await client.post("/api/auth/totp/enrol", headers=headers)).json()["secret"]
    confirmed = await client.post(
        "/api/auth/totp/confirm", headers=headers, json={"code": pyotp.TOTP(secret).now()}
    )
    assert confirmed.status_code == 200 and len(confirmed.json()["recovery_codes"]) == 10
    assert (await _login(client, "agent.a@example.com")).json()["status"] == "totp_required"
    again = await client.post("/api/auth/totp/enrol", headers=headers)
    assert again.status_code == 409


async def test_bcrypt_hashes_from_the_original_app_verify_and_are_upgraded(
    app, client, world
) -> None:  # type: ignore[no-untyped-def]
    legacy = BcryptHasher(rounds=12).hash("legacy password from 2025")
    async with transaction(app.state.db) as session:
        user = await session.get(User, world.agent_b.id)
        assert user is not None
        user.password_hash = legacy
    response = await _login(client, "agent.b@example.com", "legacy password from 2025")
    assert response.status_code == 200
    async with transaction(app.state.db) as session:
        user = await session.get(User, world.agent_b.id)
        assert user is not None and user.password_hash.startswith("$argon2id$")


def test_password_policy() -> None:
    assert common_password_count() >= 10_000
    assert password_problem("short") == "Password must be at least 12 characters"
    assert password_problem("x" * 129) == "Password must be at most 128 characters"
    assert password_problem("1qaz2wsx3edc") == "This password is too common; choose another"
    assert password_problem("a" * 64) is None  # long passphrases are welcome
    assert password_problem("tiger lily under the bridge") is None  # no composition rules


def test_tokens_carry_the_required_claims() -> None:
    token = access_token_issue(
        secret_key="k" * 40,
        claims=AccessClaims(
            user_id=uuid.uuid4(), role="agent", token_version=3, session_id=uuid.uuid4()
        ),
    )
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert header["alg"] == "HS256"
    assert claims["typ"] == "access" and claims["iss"] == ISSUER and claims["aud"] == AUDIENCE
    assert claims["exp"] - claims["iat"] == 15 * 60
    assert {"sub", "role", "iat", "exp", "ver", "sid"} <= set(claims)


async def test_refused_money_requests_are_audited_as_security_events(
    app, client, world, bearer
) -> None:  # type: ignore[no-untyped-def]
    async def reverse_collection(
        principal: Annotated[
            Principal, Depends(require(Permission.COLLECTION_REVERSE, limit="money"))
        ],
    ) -> dict[str, str]:
        return {"ok": "yes"}

    app.add_api_route("/api/_test/money", reverse_collection, methods=["POST"])
    refused = await client.post("/api/_test/money", headers=await bearer(world.agent_a))
    assert refused.status_code == 403
    allowed = await client.post("/api/_test/money", headers=await bearer(world.admin))
    assert allowed.status_code == 200
    actions = await _audit_actions(app)
    assert actions.count("auth.permission_denied") == 1
