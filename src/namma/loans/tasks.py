"""Loan jobs: regenerating schedules in bulk ("EMI Gen").

A disbursement writes its own schedule in its transaction; this job rewrites the schedules of
many loans when their terms change (a rescheduling, a holiday added to the calendar), with the
platform's retries. It is idempotent: a loan whose installments already are its schedule is
left alone, so a retry or a second run changes nothing.
"""

from __future__ import annotations

import uuid

import procrastinate
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import AuditActor
from namma.kit.jobs import job_defer, job_task

blueprint = procrastinate.Blueprint()
log = structlog.get_logger(__name__)

SCHEDULES_REGENERATE = "loans:schedules_regenerate"


async def schedules_regenerate_defer(session: AsyncSession, loan_ids: list[uuid.UUID]) -> int:
    """Enqueue a regeneration of these loans' schedules in the session's transaction."""
    from namma.jobs import job_app

    return await job_defer(
        session, job_app, SCHEDULES_REGENERATE, loan_ids=[str(i) for i in loan_ids]
    )


@job_task(blueprint, name="schedules_regenerate")
async def schedules_regenerate(loan_ids: list[str], session: AsyncSession) -> dict[str, object]:
    """Rewrite the schedules of ``loan_ids`` from their current terms (one transaction)."""
    # The service sends notices, which enqueue jobs of this application: imported when run.
    from namma.loans.service import loan_schedules_regenerate

    request_id = structlog.contextvars.get_contextvars().get("request_id")
    result = await loan_schedules_regenerate(
        session,
        loan_ids=[uuid.UUID(i) for i in loan_ids],
        actor=AuditActor.system(request_id=request_id),
    )
    outcome = {
        "regenerated": len(result.regenerated),
        "unchanged": len(result.unchanged),
        "skipped": {str(k): v for k, v in result.skipped.items()},
    }
    log.info("loans.schedules_regenerated", **outcome)
    return outcome
