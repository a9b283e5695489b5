"""Loan jobs: schedule generation ("EMI Gen"), enqueued with the disbursement."""

from __future__ import annotations

import uuid

import procrastinate
import structlog

from namma.kit.db import transaction
from namma.kit.jobs import job_task

blueprint = procrastinate.Blueprint()
log = structlog.get_logger(__name__)

SCHEDULE_GENERATE = "loans:schedule_generate"


@job_task(blueprint, name="schedule_generate")
async def schedule_generate(loan_id: str) -> None:
    """Write a disbursed loan's installments. Idempotent: a second run finds them written."""
    from namma.jobs import job_cache, job_database
    from namma.loans.cache import loan_changed
    from namma.loans.service import loan_schedule_ensure
    from namma.models import Loan

    async with transaction(job_database()) as session:
        wrote = await loan_schedule_ensure(session, loan_id=uuid.UUID(loan_id))
        loan = await session.get(Loan, uuid.UUID(loan_id))
        if wrote and loan is not None:
            loan_changed(session, job_cache(), loan_id=loan.id, customer_id=loan.customer_id)
    log.info("loan.schedule_generated" if wrote else "loan.schedule_already_there", loan_id=loan_id)
