"""Tasks used only by the job tests, registered on the application's job app under `test:`."""

from __future__ import annotations

import asyncio

import procrastinate
from sqlalchemy import text

from namma.jobs import job_app, job_database
from namma.kit.db import transaction
from namma.kit.jobs import job_task

blueprint = procrastinate.Blueprint()

PROBE_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS job_probe ("
    " id bigserial PRIMARY KEY, key text NOT NULL, request_id text,"
    " ran_at timestamptz NOT NULL DEFAULT clock_timestamp())"
)


async def _record(key: str) -> int:
    """Record one run of the job under ``key``; returns how many runs there have been."""
    import structlog

    request_id = structlog.contextvars.get_contextvars().get("request_id")
    async with transaction(job_database()) as session:
        await session.execute(
            text("INSERT INTO job_probe (key, request_id) VALUES (:key, :rid)"),
            {"key": key, "rid": request_id},
        )
        runs = await session.scalar(
            text("SELECT count(*) FROM job_probe WHERE key = :key"), {"key": key}
        )
    return int(runs or 0)


@job_task(blueprint, name="record")
async def record(key: str) -> None:
    await _record(key)


@job_task(blueprint, name="always_fails")
async def always_fails(key: str) -> None:
    await _record(key)
    raise RuntimeError(f"failing on purpose ({key})")


@job_task(blueprint, name="slow_once")
async def slow_once(key: str) -> None:
    """The first run hangs (to be killed); any later run finishes at once."""
    if await _record(key) == 1:
        await asyncio.sleep(300)


if "test:record" not in job_app.tasks:
    job_app.add_tasks_from(blueprint, namespace="test")
