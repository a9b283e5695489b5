"""Housekeeping tasks of the platform itself."""

from __future__ import annotations

import datetime as dt

import procrastinate
import structlog
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from namma.config import get_settings
from namma.kit.db import transaction
from namma.kit.jobs import job_task, jobs_recover_stalled

blueprint = procrastinate.Blueprint()
log = structlog.get_logger(__name__)


@blueprint.periodic(cron="* * * * *", periodic_id="recover-stalled")
@job_task(blueprint, name="recover_stalled", retry=False, pass_context=True)
async def recover_stalled(context: procrastinate.JobContext, timestamp: int) -> int:
    """Every minute: requeue jobs whose worker died mid-run (no heartbeat for a while)."""
    assert context.app is not None
    return await jobs_recover_stalled(
        context.app, seconds_since_heartbeat=get_settings().stalled_worker_seconds
    )


async def idempotency_keys_purge(
    session: AsyncSession, *, retention_days: int, now: dt.datetime | None = None
) -> int:
    """Delete the stored answers of idempotent requests (`idempotency_keys`) made more than
    ``retention_days`` days before ``now`` (default: the current time); returns how many.

    A retry older than that runs as a new request: collections are still protected by their
    client id (unique per collector: 409 naming the receipt), hand-overs by the one standing
    hand-over per agent and date (409). A key still in use (its request not yet committed) is
    days younger than any retention, so it is never touched. Does not commit.
    """
    if retention_days < 1:
        raise ValueError("retention_days must be at least 1")
    from namma.models import IdempotencyKey

    cutoff = (now or dt.datetime.now(dt.UTC)) - dt.timedelta(days=retention_days)
    expired = delete(IdempotencyKey).where(IdempotencyKey.created_at < cutoff)
    result = await session.execute(expired)
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


# 21:45 on the worker's clock: 03:15 in India when servers keep UTC, a quiet hour.
@blueprint.periodic(cron="45 21 * * *", periodic_id="purge-idempotency-keys")
@job_task(blueprint, name="purge_idempotency_keys")
async def purge_idempotency_keys(timestamp: int) -> int:
    """Daily: delete idempotency keys older than ``NAMMA_IDEMPOTENCY_RETENTION_DAYS``."""
    from namma.jobs import job_database

    days = get_settings().idempotency_retention_days
    async with transaction(job_database()) as session:
        purged = await idempotency_keys_purge(session, retention_days=days)
    log.info("idempotency_keys.purged", count=purged, retention_days=days)
    return purged
