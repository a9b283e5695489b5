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
from namma.demo import DEMO_PASSWORD
from namma.kit.db import transaction
from namma.kit.passwords import PRODUCT_WORDS, password_problem
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
    assert r2 != r1
    again = await client.post("/api/auth/refresh", json={"refresh_token": r2})
    assert again.status_code == 200
    r3, a3 = again.json()["refresh_token"], again.json()["access_token"]
    assert (
        await client.get("/api/auth/me", headers={"Authorization": f"Bearer {a3}"})
    ).status_code == 200

    # The first token again, though its successor was used: someone kept a copy (no grace for
    # that, however soon). The whole session ends ...
    reused = await client.post("/api/auth/refresh", json={"refresh_token": r1})
    assert reused.status_code == 401
    # ... so even the newest refresh token and the newest access token stop working.
    assert (await client.post("/api/auth/refresh", json={"refresh_token": r3})).status_code == 401
    assert (
        await client.get("/api/auth/me", headers={"Authorization": f"Bearer {a3}"})
    ).status_code == 401
    assert "auth.refresh_reused" in await _audit_actions(app)


async def test_a_refresh_retried_within_the_grace_window_answers_the_same_pair(
    app, client, world
) -> None:  # type: ignore[no-untyped-def]
    # The field app's first refresh reply was lost: it sends the same token again.
    r1 = (await _login(client, "agent.a@example.com")).json()["refresh_token"]
    first = await client.post("/api/auth/refresh", json={"refresh_token": r1})
    retried = await client.post("/api/auth/refresh", json={"refresh_token": r1})
    assert first.status_code == retried.status_code == 200
    assert retried.json()["refresh_token"] == first.json()["refresh_token"]
    assert retried.json()["access_token"] == first.json()["access_token"]
    assert retried.json()["csrf_token"] == first.json()["csrf_token"]
    # The session goes on: the pair works, and the next refresh rotates as usual.
    headers = {"Authorization": f"Bearer {retried.json()['access_token']}"}
    assert (await client.get("/api/auth/me", headers=headers)).status_code == 200
    onward = await client.post(
        "/api/auth/refresh", json={"refresh_token": retried.json()["refresh_token"]}
    )
    assert onward.status_code == 200
    assert "auth.refresh_reused" not in await _audit_actions(app)
    # Nothing but hashes is stored: the new token is in no column in clear.
    async with transaction(app.state.db) as session:
        from namma.auth.tokens import token_hash
        from namma.models import RefreshToken

        hashes = set((await session.scalars(select(RefreshToken.token_hash))).all())
    assert first.json()["refresh_token"] not in hashes
    assert token_hash(first.json()["refresh_token"]) in hashes


async def test_a_browser_refresh_retried_within_the_grace_window_gets_the_same_cookies(
    client, world
) -> None:  # type: ignore[no-untyped-def]
    login = await client.post(
        "/api/auth/login", json={"login": "agent.a@example.com", "password": PASSWORD}
    )
    old = login.cookies["refresh_token"]
    cookie = {"Cookie": f"refresh_token={old}"}
    first = await client.post("/api/auth/refresh", headers=cookie)
    retried = await client.post("/api/auth/refresh", headers=cookie)
    assert first.status_code == retried.status_code == 200
    for name in ("access_token", "refresh_token", "csrf_token"):
        assert retried.cookies[name] == first.cookies[name]


@pytest.fixture
async def short_grace_app(settings):  # type: ignore[no-untyped-def]
    from namma.app import create_app

    application = create_app(settings.model_copy(update={"refresh_grace_seconds": 1}))
    async with LifespanManager(application):
        yield application


async def test_a_refresh_token_reused_after_the_grace_window_ends_the_session(
    short_grace_app, world
) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    transport = httpx.ASGITransport(app=short_grace_app)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        r1 = (await _login(client, "agent.a@example.com")).json()["refresh_token"]
        rotated = await client.post("/api/auth/refresh", json={"refresh_token": r1})
        assert rotated.status_code == 200
        await asyncio.sleep(1.3)
        late = await client.post("/api/auth/refresh", json={"refresh_token": r1})
        assert late.status_code == 401
        r2 = rotated.json()["refresh_token"]
        assert (
            await client.post("/api/auth/refresh", json={"refresh_token": r2})
        ).status_code == 401
    assert "auth.refresh_reused" in await _audit_actions(short_grace_app)


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
    assert password_problem("short") == "Password must be at least 12 characters"
    assert password_problem("x" * 129) == "Password must be at most 128 characters"
    assert password_problem("tiger lily under the bridge") is None  # no composition rules
    assert password_problem(PASSWORD) is None
    # Refused by strength, not by a list: repeats, keyboard walks, the demo's published
    # password, and the person's own details.
    for weak in ("aaaaaaaaaaaa", "a" * 64, "1qaz2wsx3edc", "abcdefghijklmnop", DEMO_PASSWORD):
        problem = password_problem(weak)
        assert problem is not None and problem.startswith("This password is too easy to guess"), (
            weak
        )
    assert DEMO_PASSWORD in PRODUCT_WORDS
    person = ("Kamala Devi", "kamala.devi@example.com", "9845012345")
    for own in ("Kamala Devi 1985", "kamala.devi@example.com", "9845012345kamala"):
        # Strong enough for a stranger, weak for this person.
        assert password_problem(own) is None, own
        assert password_problem(own, context=person) is not None, own


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
