"""Running the close of business for a business date: the transaction boundary of COB.

Unlike a request, COB is several transactions on purpose: each step (namma.cob.service) commits
separately together with the run's progress (``cob_runs.steps_done``), so a run that dies
halfway (the worker or the CLI process killed, the database restarted) leaves every finished
step in place, and the next run for that date resumes at the first unfinished step. Every step
is idempotent, so resuming, or forcing a second run, gives the identical result.

One COB at a time, whatever the date: the runner holds a session-level advisory lock on a
connection of its own for the whole run. A process that dies releases it with its connection.
A second run while one is going either fails at once with ``CobBusyError`` (the CLI, the API)
or waits for it (the job, ``wait_seconds``).

Dates: a date after today (India) is refused. A date earlier than the last completed one is
refused unless forced: the steps set the loans' *current* state (days past due, classes) as of
the date, so an old date would move the portfolio back in time (docs/cob.md).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg
import structlog
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import AuditActor, audit_record
from namma.cob import service
from namma.kit.cache import COPY_PREFIX, Cache
from namma.kit.clock import today_india
from namma.kit.db import Database, after_commit, libpq_url, transaction
from namma.kit.errors import ConflictError, InvalidInputError
from namma.loans.cache import sheets_changed
from namma.models import CobRun, CobRunStatus, Role, User

log = structlog.get_logger(__name__)

# An arbitrary constant ("nammacob"), distinct from the migration and audit-chain locks.
COB_LOCK_KEY = 0x6E616D6D61636F62

StepFn = Callable[[AsyncSession, dt.date, AuditActor], Awaitable[dict[str, Any]]]


def _steps() -> tuple[tuple[str, StepFn], ...]:
    return (
        ("advances", lambda s, d, a: service.cob_advances_apply(s, business_date=d, actor=a)),
        ("installments", lambda s, d, a: service.cob_installments_mark(s, business_date=d)),
        ("penalties", lambda s, d, a: service.cob_penalties_apply(s, business_date=d, actor=a)),
        ("loans", lambda s, d, a: service.cob_loans_refresh(s, business_date=d, actor=a)),
        ("accrual", lambda s, d, a: service.cob_interest_accrue(s, business_date=d, actor=a)),
        ("provisions", lambda s, d, a: service.cob_provisions_post(s, business_date=d, actor=a)),
        ("snapshots", lambda s, d, a: service.cob_snapshots_store(s, business_date=d)),
    )


class CobBusyError(ConflictError):
    """Another close of business is running right now."""

    code = "cob_running"

    def __init__(self, message: str, *, running_date: dt.date | None) -> None:
        super().__init__(
            message, details={"running_date": running_date.isoformat() if running_date else None}
        )
        self.running_date = running_date


class CobOutOfOrderError(ConflictError):
    """The date is earlier than the last completed one (and the run was not forced)."""

    code = "cob_out_of_order"


class CobAlreadyCompletedError(ConflictError):
    code = "cob_completed"


@dataclass(frozen=True)
class CobOutcome:
    business_date: dt.date
    status: CobRunStatus
    steps_done: int
    counts: dict[str, Any]
    # Steps this call ran (empty when the date was already completed and not forced).
    ran: tuple[str, ...] = field(default_factory=tuple)
    resumed_at_step: int = 0  # steps already done when this call started (a resumed run: > 0)
    already_completed: bool = False


def cob_date_check(business_date: dt.date, *, today: dt.date | None = None) -> None:
    today = today or today_india()
    if business_date > today:
        raise InvalidInputError(
            "business_date",
            f"{business_date.isoformat()} has not begun yet (today in India is "
            f"{today.isoformat()}); a business day can be closed from its own evening on",
        )


async def cob_running_date(session: AsyncSession) -> dt.date | bool | None:
    """The date of the COB running now: False when none is running (its lock is free); None
    when one runs but its row is not there yet."""
    held = await session.scalar(
        text(
            "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND classid = CAST(:hi AS oid) AND objid = CAST(:lo AS oid) AND objsubid = 1)"
        ),
        {"hi": COB_LOCK_KEY >> 32, "lo": COB_LOCK_KEY & 0xFFFFFFFF},
    )
    if not held:
        return False
    return await session.scalar(
        select(CobRun.business_date)
        .where(CobRun.status == CobRunStatus.RUNNING)
        .order_by(CobRun.started_at.desc())
        .limit(1)
    )


def busy_message(running: dt.date | None) -> str:
    which = f" for {running.isoformat()}" if running else ""
    return (
        f"A close of business is already running{which}; only one runs at a time. "
        "Wait for it to finish (GET /api/cob/runs shows its progress)."
    )


async def cob_request_check(
    session: AsyncSession, *, business_date: dt.date, force: bool, today: dt.date | None = None
) -> None:
    """Refuse what a run would refuse, before queueing one: a future date, a COB running now,
    a completed date or one earlier than the last completed (unless forced)."""
    cob_date_check(business_date, today=today)
    running = await cob_running_date(session)
    if running is not False:
        raise CobBusyError(
            busy_message(running if isinstance(running, dt.date) else None),
            running_date=running if isinstance(running, dt.date) else None,
        )
    if force:
        return
    run = await session.get(CobRun, business_date)
    if run is not None and run.status is CobRunStatus.COMPLETED:
        raise CobAlreadyCompletedError(
            f"The close of business for {business_date.isoformat()} completed at "
            f"{run.finished_at.isoformat() if run.finished_at else '?'}; "
            'send "force": true to run it again',
            details={"business_date": business_date.isoformat()},
        )
    await _order_check(session, business_date)


async def _order_check(session: AsyncSession, business_date: dt.date) -> None:
    later = await session.scalar(
        select(CobRun.business_date)
        .where(CobRun.status == CobRunStatus.COMPLETED)
        .where(CobRun.business_date > business_date)
        .order_by(CobRun.business_date.desc())
        .limit(1)
    )
    if later is not None:
        raise CobOutOfOrderError(
            f"The close of business already ran for a later date ({later.isoformat()}); "
            f"running {business_date.isoformat()} now would set every loan's days past due and "
            "class as of that earlier date. Force it if you mean it, then run the latest date "
            "again.",
            details={"business_date": business_date.isoformat(), "latest": later.isoformat()},
        )


async def _lock(db: Database, *, wait_seconds: float) -> psycopg.AsyncConnection[Any]:
    conn = await psycopg.AsyncConnection.connect(
        libpq_url(db.url),
        autocommit=True,
        # Named in pg_stat_activity; and if this process's host vanishes (not only the
        # process: its kernel would close the socket), the server notices within about a
        # minute and frees the lock, instead of after the usual two hours of TCP keepalive.
        application_name="namma-cob",
        options="-c tcp_keepalives_idle=30 -c tcp_keepalives_interval=10 -c tcp_keepalives_count=3",
    )
    try:
        deadline = time.monotonic() + wait_seconds
        while True:
            cursor = await conn.execute("SELECT pg_try_advisory_lock(%s)", (COB_LOCK_KEY,))
            row = await cursor.fetchone()
            if row and row[0]:
                return conn
            if time.monotonic() >= deadline:
                break
            await asyncio.sleep(min(2.0, max(0.1, deadline - time.monotonic())))
    except BaseException:
        await conn.close()
        raise
    await conn.close()
    async with db.sessionmaker() as session:
        running = await cob_running_date(session)
    date = running if isinstance(running, dt.date) else None
    raise CobBusyError(busy_message(date), running_date=date)


async def cob_execute(
    db: Database,
    *,
    business_date: dt.date,
    force: bool = False,
    cache: Cache | None = None,
    actor: AuditActor | None = None,
    wait_seconds: float = 0.0,
    today: dt.date | None = None,
    on_step: Callable[[str, dict[str, Any]], None] | None = None,
) -> CobOutcome:
    """Run (or resume) the close of business for ``business_date``; returns what it did.

    Already completed and not ``force``: nothing runs (``already_completed``). ``force`` runs
    every step again (they are idempotent: on unchanged data nothing changes) and allows a date
    earlier than the last completed one. Raises ``CobBusyError`` if another COB holds the lock
    after ``wait_seconds``, ``CobOutOfOrderError``, or ``InvalidInputError`` for a future date.
    A step that raises marks the run ``failed`` (the next run resumes there) and re-raises.
    """
    actor = actor or AuditActor.system()
    cob_date_check(business_date, today=today)
    lock = await _lock(db, wait_seconds=wait_seconds)
    try:
        return await _execute_locked(
            db, business_date=business_date, force=force, cache=cache, actor=actor, on_step=on_step
        )
    finally:
        try:
            await lock.execute("SELECT pg_advisory_unlock(%s)", (COB_LOCK_KEY,))
        finally:
            await lock.close()


async def _execute_locked(
    db: Database,
    *,
    business_date: dt.date,
    force: bool,
    cache: Cache | None,
    actor: AuditActor,
    on_step: Callable[[str, dict[str, Any]], None] | None,
) -> CobOutcome:
    async with transaction(db) as session:
        run = await session.scalar(
            select(CobRun).where(CobRun.business_date == business_date).with_for_update()
        )
        if run is not None and run.status is CobRunStatus.COMPLETED and not force:
            return CobOutcome(
                business_date=business_date,
                status=run.status,
                steps_done=run.steps_done,
                counts=dict(run.counts),
                already_completed=True,
            )
        if not force:
            await _order_check(session, business_date)
        if run is None:
            run = CobRun(
                business_date=business_date,
                status=CobRunStatus.RUNNING,
                steps_done=0,
                counts={},
                attempts=1,
            )
            session.add(run)
        else:
            if run.status is CobRunStatus.COMPLETED:  # forced: every step again
                run.steps_done = 0
                run.counts = {}
                run.started_at = dt.datetime.now(dt.UTC)
            run.status = CobRunStatus.RUNNING
            run.attempts += 1
            run.finished_at = None
            run.error = None
        await session.flush()
        start = run.steps_done
    log.info("cob.started", business_date=business_date.isoformat(), resume_at=start, force=force)

    ran: list[str] = []
    counts: dict[str, Any] = {}
    steps = _steps()
    for number, (name, step) in enumerate(steps[start:], start=start + 1):
        try:
            async with transaction(db) as session:
                # Whole-portfolio aggregates: enough memory to hash them instead of sorting
                # on disk (the server's default work_mem is 4 MB); this transaction only.
                await session.execute(text(service.WORK_MEM_SET))
                result = await step(session, business_date, actor)
                await session.execute(
                    text(
                        "UPDATE cob_runs SET steps_done = :n, "
                        "counts = counts || jsonb_build_object(CAST(:step AS text), "
                        "CAST(:result AS jsonb)) WHERE business_date = :d"
                    ),
                    {"n": number, "step": name, "result": json.dumps(result), "d": business_date},
                )
        except Exception as exc:
            await _mark_failed(db, business_date, f"step {number} ({name}): {exc}")
            log.exception("cob.step_failed", business_date=business_date.isoformat(), step=name)
            raise
        ran.append(name)
        counts[name] = result
        log.info("cob.step_done", business_date=business_date.isoformat(), step=name, **result)
        if on_step is not None:
            on_step(name, result)

    async with transaction(db) as session:
        run = await session.scalar(
            select(CobRun).where(CobRun.business_date == business_date).with_for_update()
        )
        assert run is not None
        run.status = CobRunStatus.COMPLETED
        run.finished_at = dt.datetime.now(dt.UTC)
        run.error = None
        await session.flush()
        await audit_record(
            session,
            actor=actor,
            action="cob.completed",
            entity_type="cob_run",
            entity_id=business_date.isoformat(),
            after={"attempts": run.attempts, "resumed_at_step": start, "counts": run.counts},
        )
        if cache is not None:
            after_commit(session, lambda: _dashboards_invalidate(cache))
            # Days past due, penalties, advances applied: every agent's sheet may have changed.
            agents = await session.scalars(select(User.id).where(User.role == Role.AGENT))
            sheets_changed(session, agents.all(), cache)
        outcome = CobOutcome(
            business_date=business_date,
            status=run.status,
            steps_done=run.steps_done,
            counts=dict(run.counts),
            ran=tuple(ran),
            resumed_at_step=start,
        )
    log.info("cob.completed", business_date=business_date.isoformat(), ran=ran)
    return outcome


async def _dashboards_invalidate(cache: Cache) -> None:
    # Every dashboard figure may have changed (days past due, PAR, snapshots): the kept copies
    # too, which would otherwise be answered while new ones are built (D-221).
    await cache.delete_pattern("dashboard:*")
    await cache.delete_pattern(COPY_PREFIX + "dashboard:*")


async def _mark_failed(db: Database, business_date: dt.date, error: str) -> None:
    try:
        async with transaction(db) as session:
            await session.execute(
                text(
                    "UPDATE cob_runs SET status = 'failed', error = :error WHERE business_date = :d"
                ),
                {"error": error[:2000], "d": business_date},
            )
    except Exception:
        log.exception("cob.mark_failed_failed", business_date=business_date.isoformat())
