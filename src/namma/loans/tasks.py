"""Loan jobs: regenerating schedules in bulk ("EMI Gen").

A disbursement writes its own schedule in its transaction; this job rewrites the schedules of
many loans when their terms change (a rescheduling), or — in calendar mode — moves their unpaid
installments' due dates when their branch's calendar changed (a holiday added or removed, the
working weekdays), with the platform's retries. It is idempotent: a loan whose installments
already are its schedule (its calendar's dates) is left alone, so a retry or a second run
changes nothing.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

import procrastinate
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import AuditActor
from namma.kit.jobs import job_defer, job_task

if TYPE_CHECKING:
    from namma.loans.service import DueDatesMoved, ScheduleRegeneration

blueprint = procrastinate.Blueprint()
log = structlog.get_logger(__name__)

SCHEDULES_REGENERATE = "loans:schedules_regenerate"


async def schedules_regenerate_defer(
    session: AsyncSession,
    loan_ids: list[uuid.UUID],
    *,
    calendar: bool = False,
    holiday: str | None = None,
) -> int:
    """Enqueue a regeneration of these loans' schedules in the session's transaction; with
    ``calendar``, only their due dates move to their branch's calendar (``holiday`` names the
    holiday that caused it, for the customers' notice)."""
    from namma.jobs import job_app

    return await job_defer(
        session,
        job_app,
        SCHEDULES_REGENERATE,
        loan_ids=[str(i) for i in loan_ids],
        calendar=calendar,
        holiday=holiday,
    )


@job_task(blueprint, name="schedules_regenerate")
async def schedules_regenerate(
    loan_ids: list[str],
    session: AsyncSession,
    calendar: bool = False,
    holiday: str | None = None,
) -> dict[str, object]:
    """Rewrite the schedules of ``loan_ids`` from their current terms, or (``calendar``) move
    their unpaid due dates to their branch's calendar (one transaction)."""
    # The service sends notices, which enqueue jobs of this application: imported when run.
    from namma.loans.service import loan_due_dates_move, loan_schedules_regenerate

    request_id = structlog.contextvars.get_contextvars().get("request_id")
    actor = AuditActor.system(request_id=request_id)
    ids = [uuid.UUID(i) for i in loan_ids]
    result: DueDatesMoved | ScheduleRegeneration
    if calendar:
        result = await loan_due_dates_move(session, loan_ids=ids, actor=actor, holiday=holiday)
    else:
        result = await loan_schedules_regenerate(session, loan_ids=ids, actor=actor)
    outcome = {
        "regenerated": len(result.regenerated),
        "unchanged": len(result.unchanged),
        "skipped": {str(k): v for k, v in result.skipped.items()},
    }
    log.info("loans.schedules_regenerated", **outcome)
    return outcome
