"""Throttling failed sign-ins without locking people out (namma.auth.throttle), on the
in-process store and through Redis."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator

import httpx
import pyotp
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import select

from namma.auth.throttle import FAILURES_BEFORE_DELAY, FAILURES_BEFORE_GUARD
from namma.config import Settings
from namma.kit.db import transaction
from namma.models import AuditEntry, User
from tests.integration.conftest import PASSWORD

WRONG = "not the password at all"
DEFAULT_ADDRESS_LIMIT = Settings.model_fields["login_rate_limit"].default


def _nobody() -> str:
    """A login nobody has (unique per call: a shared Redis keeps counters for a day)."""
    return f"nobody.{uuid.uuid4().hex[:12]}@example.com"


def _address() -> str:
    # Unique per test, so runs against a shared Redis never meet.
    n = uuid.uuid4().int
    return f"10.{n % 250}.{(n >> 8) % 250}.{(n >> 16) % 250 + 1}"


@pytest.fixture(params=["memory", "redis"])
async def proxied(request: pytest.FixtureRequest, settings):  # type: ignore[no-untyped-def]
    """An app with the production limits, behind a trusted proxy (the test client), so each
    request can come from the address it names in X-Forwarded-For."""
    from namma.app import create_app

    update: dict[str, object] = {
        "login_rate_limit": DEFAULT_ADDRESS_LIMIT,
        "trusted_proxies": ["127.0.0.1"],
    }
    if request.param == "redis":
        update["redis_url"] = request.getfixturevalue("redis_url")
    application = create_app(settings.model_copy(update=update))
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def http(proxied) -> AsyncIterator[httpx.AsyncClient]:  # type: ignore[no-untyped-def]
    transport = httpx.ASGITransport(app=proxied, client=("127.0.0.1", 4000))
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        yield client


async def _login(
    client: httpx.AsyncClient, login: str, password: str, address: str
) -> httpx.Response:
    return await client.post(
        "/api/auth/login",
        json={"login": login, "password": password, "token_delivery": "body"},
        headers={"X-Forwarded-For": address},
    )


def _assert_wait(response: httpx.Response, *, at_most: int) -> int:
    assert response.status_code == 429, response.text
    body = response.json()["error"]
    assert body["code"] == "rate_limited"
    wait = int(response.headers["Retry-After"])
    assert 1 <= wait <= at_most
    assert body["details"]["retry_after_seconds"] == wait
    return wait


async def test_failures_slow_down_that_account_from_that_address_only(http, world) -> None:  # type: ignore[no-untyped-def]
    here, colleague_desk, elsewhere = _address(), _address(), _address()
    for _ in range(FAILURES_BEFORE_DELAY):
        assert (await _login(http, "agent.a@example.com", WRONG, here)).status_code == 401
    # The sixth attempt from here waits, even with the right password ...
    refused = await _login(http, "agent.a@example.com", PASSWORD, here)
    wait = _assert_wait(refused, at_most=1)
    assert "wait 1 second" in refused.json()["error"]["message"].lower()
    # ... while the account's owner elsewhere, and a colleague at this address, go on.
    assert (await _login(http, "agent.a@example.com", PASSWORD, elsewhere)).status_code == 200
    assert (await _login(http, "agent.a2@example.com", PASSWORD, here)).status_code == 200
    assert (await _login(http, "agent.a2@example.com", PASSWORD, colleague_desk)).status_code == 200
    # The delay is a delay: then the right password works from here too, and clears it.
    await asyncio.sleep(wait + 0.1)
    assert (await _login(http, "agent.a@example.com", PASSWORD, here)).status_code == 200
    assert (await _login(http, "agent.a@example.com", WRONG, here)).status_code == 401


async def test_successes_never_count_against_an_office_address(http, world) -> None:  # type: ignore[no-untyped-def]
    office = _address()
    limit = int(DEFAULT_ADDRESS_LIMIT.split("/")[0])
    # Many colleagues behind one address sign in, and sign in again: nobody waits.
    for _ in range(2):
        for login in ("agent.a@example.com", "agent.a2@example.com", "manager.a@example.com"):
            for _ in range(3):
                assert (await _login(http, login, PASSWORD, office)).status_code == 200
    # Failures of any login count: at the limit the address waits, with the time to wait.
    for _ in range(limit):
        response = await _login(http, _nobody(), WRONG, office)
        assert response.status_code == 401
    refused = await _login(http, "agent.a@example.com", PASSWORD, office)
    _assert_wait(refused, at_most=300)
    assert "network" in refused.json()["error"]["message"]
    assert (await _login(http, "agent.a@example.com", PASSWORD, _address())).status_code == 200


async def test_unknown_logins_are_throttled_exactly_like_real_ones(http, world) -> None:  # type: ignore[no-untyped-def]
    here, there = _address(), _address()
    real = [await _login(http, "agent.b@example.com", WRONG, here) for _ in range(6)]
    nobody = _nobody()
    unknown = [await _login(http, nobody, WRONG, there) for _ in range(6)]
    assert [r.status_code for r in real] == [r.status_code for r in unknown] == [401] * 5 + [429]
    assert [r.json() for r in real] == [r.json() for r in unknown]
    assert real[-1].headers["Retry-After"] == unknown[-1].headers["Retry-After"]


def _words(response: httpx.Response) -> str:
    return re.sub(r"wait \d+ \w+", "wait …", response.json()["error"]["message"])


async def _attack_from_many_addresses(http: httpx.AsyncClient, login: str) -> None:
    # One wrong guess from each of many addresses: no address, and no (account, address)
    # pair, reaches its own limit, but the account as a whole does (the guarded guesses at
    # the end count too: the wait doubles to a minute).
    for _ in range(FAILURES_BEFORE_GUARD + 6):
        response = await _login(http, login, WRONG, _address())
        assert response.status_code in (401, 429)


async def test_an_attack_from_many_addresses_cannot_lock_the_owner_out(
    proxied, http, world
) -> None:  # type: ignore[no-untyped-def]
    home = _address()
    # The owner signed in from home before the attack.
    assert (await _login(http, "agent.a@example.com", PASSWORD, home)).status_code == 200
    await _attack_from_many_addresses(http, "agent.a@example.com")
    nobody = _nobody()
    await _attack_from_many_addresses(http, nobody)

    # A stranger's address now waits, right password or not, and an unknown login gets the
    # very same answer (nothing tells whether the login exists).
    stranger = _address()
    guarded = await _login(http, "agent.a@example.com", WRONG, stranger)
    _assert_wait(guarded, at_most=900)
    unknown = await _login(http, nobody, WRONG, _address())
    _assert_wait(unknown, at_most=900)
    # The same words (only the time to wait differs with the attack's length).
    assert _words(guarded) == _words(unknown)
    _assert_wait(await _login(http, "agent.a@example.com", PASSWORD, _address()), at_most=900)

    # From home the owner signs in as usual.
    assert (await _login(http, "agent.a@example.com", PASSWORD, home)).status_code == 200
    async with transaction(proxied.state.db) as session:
        reasons = [
            entry.after["reason"]
            for entry in await session.scalars(
                select(AuditEntry).where(AuditEntry.action == "auth.login_failed")
            )
        ]
    assert "guarded" in reasons


async def test_a_second_factor_gets_the_owner_through_the_guard_from_anywhere(
    proxied, http, world, bearer
) -> None:  # type: ignore[no-untyped-def]
    # The manager has an authenticator app.
    headers = await bearer(world.manager_a)
    secret = (await http.post("/api/auth/totp/enrol", headers=headers)).json()["secret"]
    assert (
        await http.post(
            "/api/auth/totp/confirm", headers=headers, json={"code": pyotp.TOTP(secret).now()}
        )
    ).status_code == 200
    await _attack_from_many_addresses(http, "manager.a@example.com")

    new_place = _address()
    # A wrong password from a new place still waits ...
    _assert_wait(await _login(http, "manager.a@example.com", WRONG, new_place), at_most=900)
    # ... the right one goes on to the second step, which signs the owner in.
    step1 = await _login(http, "manager.a@example.com", PASSWORD, new_place)
    assert step1.status_code == 200 and step1.json()["status"] == "totp_required"
    import datetime as dt

    code = pyotp.TOTP(secret).at(dt.datetime.now(dt.UTC) + dt.timedelta(seconds=30))
    step2 = await http.post(
        "/api/auth/login/totp",
        json={"challenge": step1.json()["challenge"], "code": code, "token_delivery": "body"},
        headers={"X-Forwarded-For": new_place},
    )
    assert step2.status_code == 200, step2.text


async def test_wrong_current_passwords_are_throttled_like_sign_ins(http, world, bearer) -> None:  # type: ignore[no-untyped-def]
    here = _address()
    headers = {**(await bearer(world.agent_a)), "X-Forwarded-For": here}
    body = {"current_password": WRONG, "new_password": "plum orchard behind the mill"}
    for _ in range(FAILURES_BEFORE_DELAY):
        wrong = await http.post("/api/auth/password", headers=headers, json=body)
        assert wrong.status_code == 422
        assert wrong.json()["error"]["details"][0]["field"] == "current_password"
    refused = await http.post(
        "/api/auth/password", headers=headers, json={**body, "current_password": PASSWORD}
    )
    _assert_wait(refused, at_most=1)
    # The same counters as sign-ins: this account's login from here waits too.
    _assert_wait(await _login(http, "agent.a@example.com", PASSWORD, here), at_most=1)


async def test_the_account_counter_for_administrators_still_counts(proxied, http, world) -> None:  # type: ignore[no-untyped-def]
    here = _address()
    for _ in range(3):
        await _login(http, "agent.b@example.com", WRONG, here)
    async with transaction(proxied.state.db) as session:
        user = await session.get(User, world.agent_b.id)
        assert user is not None and user.failed_logins == 3
    assert (await _login(http, "agent.b@example.com", PASSWORD, here)).status_code == 200
    async with transaction(proxied.state.db) as session:
        user = await session.get(User, world.agent_b.id)
        assert user is not None and user.failed_logins == 0


async def test_forwarded_for_is_ignored_from_untrusted_peers(settings, world) -> None:  # type: ignore[no-untyped-def]
    from namma.app import create_app

    # The default settings trust no proxy: a client cannot dodge the limits by inventing
    # addresses.
    application = create_app(settings.model_copy(update={"login_rate_limit": "3/5minutes"}))
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application, client=(_address(), 4000))
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
            statuses = [
                (await _login(c, _nobody(), WRONG, _address())).status_code for _ in range(4)
            ]
    assert statuses == [401, 401, 401, 429]


async def test_limits_are_shared_by_two_app_processes_through_redis(
    settings, world, redis_url
) -> None:  # type: ignore[no-untyped-def]
    from namma.app import create_app

    shared = settings.model_copy(update={"redis_url": redis_url})
    address = _address()
    first, second = create_app(shared), create_app(shared)
    async with LifespanManager(first), LifespanManager(second):
        statuses = []
        for application in (first, second) * 3:
            transport = httpx.ASGITransport(app=application, client=(address, 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as c:
                statuses.append((await _login(c, "agent.a@example.com", WRONG, "-")).status_code)
    # The fifth failure starts the account's back-off from this address, in both processes.
    assert statuses == [401] * FAILURES_BEFORE_DELAY + [429]
