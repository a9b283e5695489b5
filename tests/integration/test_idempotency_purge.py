"""The daily purge of old idempotency keys (`namma.system.tasks`), against real PostgreSQL."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from namma.config import Settings
from namma.jobs import job_app
from namma.kit.db import transaction
from namma.models import IdempotencyKey
from namma.system.tasks import idempotency_keys_purge, purge_idempotency_keys
from tests.integration.conftest import World

NOW = dt.datetime(2026, 11, 25, 12, 0, tzinfo=dt.UTC)


async def _keys(app: Any, world: World, ages: dict[str, dt.timedelta]) -> None:
    async with transaction(app.state.db) as session:
        for key, age in ages.items():
            session.add(
                IdempotencyKey(
                    user_id=world.agent_a.id,
                    key=key,
                    fingerprint="0" * 64,
                    response_status=201,
                    response_body="{}",
                    created_at=NOW - age,
                )
            )


async def _left(app: Any) -> set[str]:
    async with transaction(app.state.db) as session:
        return set((await session.scalars(select(IdempotencyKey.key))).all())


async def test_purge_deletes_keys_older_than_the_retention(app: Any, world: World) -> None:
    day = dt.timedelta(days=1)
    await _keys(
        app,
        world,
        {
            "ancient": 400 * day,
            "just-too-old": 30 * day + dt.timedelta(seconds=1),
            "exactly-30-days": 30 * day,
            "yesterday": day,
            "just-now": dt.timedelta(0),
        },
    )
    async with transaction(app.state.db) as session:
        purged = await idempotency_keys_purge(session, retention_days=30, now=NOW)
    assert purged == 2
    assert await _left(app) == {"exactly-30-days", "yesterday", "just-now"}
    # Nothing more to do at the same moment; a shorter retention takes more.
    async with transaction(app.state.db) as session:
        assert await idempotency_keys_purge(session, retention_days=30, now=NOW) == 0
        assert await idempotency_keys_purge(session, retention_days=1, now=NOW) == 1
    assert await _left(app) == {"yesterday", "just-now"}
    with pytest.raises(ValueError):
        async with transaction(app.state.db) as session:
            await idempotency_keys_purge(session, retention_days=0, now=NOW)


async def test_the_daily_job_purges_with_the_configured_retention(app: Any, world: World) -> None:
    real_now = dt.datetime.now(dt.UTC)
    async with transaction(app.state.db) as session:
        for key, age in (("old", dt.timedelta(days=31)), ("new", dt.timedelta(days=29))):
            session.add(
                IdempotencyKey(
                    user_id=world.agent_a.id,
                    key=key,
                    fingerprint="0" * 64,
                    created_at=real_now - age,
                )
            )
    # The task as the worker runs it (the app's start-up gave jobs its database).
    assert await purge_idempotency_keys.func(timestamp=int(real_now.timestamp())) == 1
    assert await _left(app) == {"new"}


def test_purge_is_a_daily_periodic_task_and_the_retention_a_setting() -> None:
    periodic = {p.task.name: p.cron for p in job_app.periodic_registry.periodic_tasks.values()}
    assert periodic.get("system:purge_idempotency_keys") == "45 21 * * *"
    assert Settings(env="test").idempotency_retention_days == 30
    assert Settings(env="test", idempotency_retention_days=7).idempotency_retention_days == 7
    with pytest.raises(ValidationError):
        Settings(env="test", idempotency_retention_days=0)
