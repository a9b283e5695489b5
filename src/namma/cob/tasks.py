"""Close-of-business jobs: the run for a date, and the hourly tick that starts it at the hour.

The job engine reads periodic schedules when the code is imported, so the configurable hour
(``NAMMA_COB_HOUR``, India time) cannot be part of a cron expression. Instead a tick runs every
hour, on the hour in India (``30 * * * *``: the engine's cron is UTC, and India is UTC+5:30),
and acts only from the configured hour to midnight, and only while that day's COB has not
completed: it queues ``cob:run`` for today. A worker that was down at the hour catches up at
the next tick of the same evening.

``cob:run`` jobs carry the job-engine lock ``cob`` (jobs with one lock run one after another,
whichever worker takes them) and the queueing lock ``cob:<date>`` (at most one waiting job per
date). A job killed with its worker is put back in the queue by the stalled-job recovery
(``system:recover_stalled``) and resumes the run at its first unfinished step.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import procrastinate
import structlog
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import AuditActor
from namma.config import get_settings
from namma.kit.cache import Cache
from namma.kit.clock import INDIA
from namma.kit.db import Database, raw_connection
from namma.kit.errors import ConflictError
from namma.kit.jobs import REQUEST_ID_KWARG, job_task
from namma.models import CobRun, CobRunStatus

blueprint = procrastinate.Blueprint()
log = structlog.get_logger(__name__)

COB_RUN = "cob:run"
JOB_LOCK = "cob"
# A queued job waits this long for a COB started elsewhere (the CLI) to finish.
JOB_WAIT_SECONDS = 3600.0


def queueing_lock(business_date: dt.date) -> str:
    return f"cob:{business_date.isoformat()}"


@job_task(blueprint, name="run")
async def run(
    business_date: str, db: Database, cache: Cache | None, force: bool = False
) -> dict[str, Any]:
    """Run or resume the close of business for ``business_date`` (ISO date). Each step commits
    on its own (``db``: the runner opens its transactions)."""
    from namma.cob.runner import CobOutOfOrderError, cob_execute

    day = dt.date.fromisoformat(business_date)
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    try:
        outcome = await cob_execute(
            db,
            business_date=day,
            force=force,
            cache=cache,
            actor=AuditActor.system(request_id=request_id),
            wait_seconds=JOB_WAIT_SECONDS,
        )
    except CobOutOfOrderError as exc:
        # Retrying cannot help: say so in the log and end the job.
        log.warning("cob.refused", business_date=business_date, reason=exc.message)
        return {"status": "refused", "reason": exc.message}
    if outcome.already_completed:
        log.info("cob.already_completed", business_date=business_date)
    return {"status": outcome.status.value, "ran": list(outcome.ran)}


async def cob_job_defer(
    session: AsyncSession, app: procrastinate.App, *, business_date: dt.date, force: bool
) -> int:
    """Queue ``cob:run`` in the session's transaction; 409 if one is already waiting."""
    connection = await raw_connection(session)
    deferrer = app.configure_task(
        name=COB_RUN,
        connection=connection,
        lock=JOB_LOCK,
        queueing_lock=queueing_lock(business_date),
    )
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    try:
        job_id: int = await deferrer.defer_async(
            business_date=business_date.isoformat(), force=force, **{REQUEST_ID_KWARG: request_id}
        )
    except AlreadyEnqueued:
        raise ConflictError(
            f"A close of business for {business_date.isoformat()} is already queued",
            details={"business_date": business_date.isoformat()},
        ) from None
    return job_id


async def cob_tick(app: procrastinate.App, *, at: dt.datetime, db: Database) -> str:
    """What the hourly tick does at ``at``: queue today's COB if its hour has come and it has
    not completed. Returns what it did (for the log and tests)."""

    local = at.astimezone(INDIA)
    hour = get_settings().cob_hour
    if hour < 0:
        return "the scheduled close of business is off (NAMMA_COB_HOUR=-1)"
    if local.hour < hour:
        return f"not yet: the close of business runs at {hour:02d}:00 India time"
    day = local.date()
    async with db.sessionmaker() as session:
        status = await session.scalar(select(CobRun.status).where(CobRun.business_date == day))
    if status is CobRunStatus.COMPLETED:
        return f"{day.isoformat()} already completed"
    try:
        await app.configure_task(
            name=COB_RUN, lock=JOB_LOCK, queueing_lock=queueing_lock(day)
        ).defer_async(business_date=day.isoformat(), force=False)
    except AlreadyEnqueued:
        return f"{day.isoformat()} already queued"
    log.info("cob.scheduled", business_date=day.isoformat())
    return f"queued {day.isoformat()}"


@blueprint.periodic(cron="30 * * * *", periodic_id="cob-hourly")
@job_task(blueprint, name="tick", retry=False, pass_context=True)
async def tick(context: procrastinate.JobContext, timestamp: int, db: Database) -> str:
    """Every hour on the hour (India): start today's COB once its hour has come."""
    assert context.app is not None
    return await cob_tick(context.app, at=dt.datetime.fromtimestamp(timestamp, dt.UTC), db=db)
