"""The standard password hashing parameters, which the rest of the suite replaces by cheap ones
(``insecure_fast_password_hashing`` in the test settings)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from asgi_lifespan import LifespanManager

from namma.config import Settings, SettingsError
from namma.kit import passwords
from namma.kit.db import transaction
from namma.models import User
from tests.integration.conftest import PASSWORD


def _parameters(hashed: str) -> str:
    """``$argon2id$v=19$m=…,t=…,p=…``: the hash without its salt and digest."""
    return hashed.rsplit("$", 2)[0]


@pytest.fixture
def standard_hashing() -> Iterator[None]:
    yield
    passwords.password_hashing_configure(fast=True)  # as the test settings have it


async def test_login_under_the_standard_parameters_rehashes_a_cheap_hash(
    settings, world, standard_hashing
) -> None:  # type: ignore[no-untyped-def]
    from namma.app import create_app

    cheap = _parameters(world.agent_a.password_hash)
    standard = create_app(settings.model_copy(update={"insecure_fast_password_hashing": False}))
    expected = _parameters(passwords.password_hash_sync("any password at all"))
    assert expected.startswith("$argon2id$") and expected != cheap
    async with LifespanManager(standard):
        transport = httpx.ASGITransport(app=standard, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            body = {"login": "agent.a@example.com", "token_delivery": "body"}
            wrong = await client.post("/api/auth/login", json={**body, "password": "not it at all"})
            assert wrong.status_code == 401
            right = await client.post("/api/auth/login", json={**body, "password": PASSWORD})
            assert right.status_code == 200, right.text
        async with transaction(standard.state.db) as session:
            user = await session.get(User, world.agent_a.id)
            assert user is not None
            # Upgraded on login to the standard parameters, and the new hash verifies.
            assert _parameters(user.password_hash) == expected
            assert (await passwords.password_verify(PASSWORD, user.password_hash))[0]


def test_fast_hashing_is_refused_outside_tests() -> None:
    with pytest.raises(SettingsError, match="test suite only"):
        Settings(_env_file=None, insecure_fast_password_hashing=True)  # type: ignore[call-arg]
    assert Settings(_env_file=None, env="test", insecure_fast_password_hashing=True)  # type: ignore[call-arg]


async def test_standard_parameters_are_owasp_and_older_argon2_hashes_are_upgraded(
    standard_hashing,
) -> None:  # type: ignore[no-untyped-def]
    from argon2 import PasswordHasher

    passwords.password_hashing_configure(fast=False)
    fresh = passwords.password_hash_sync("a phrase of unrelated words")
    # OWASP's argon2id recommendation: 19 MiB, 2 passes, 1 lane.
    assert _parameters(fresh) == "$argon2id$v=19$m=19456,t=2,p=1"
    # A hash at argon2-cffi's defaults (what earlier versions stored) verifies, with a new one.
    older = PasswordHasher(time_cost=3, memory_cost=65536, parallelism=4).hash("old phrase here")
    valid, upgraded = await passwords.password_verify("old phrase here", older)
    assert valid and upgraded is not None
    assert _parameters(upgraded) == "$argon2id$v=19$m=19456,t=2,p=1"
    assert (await passwords.password_verify("old phrase here", upgraded)) == (True, None)
    assert (await passwords.password_verify("not the phrase", older)) == (False, None)
