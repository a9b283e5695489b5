"""Document jobs: a customer's monthly statement, and the monthly run that asks for every
statement. Each is idempotent (it fills the same document row again). Receipts are rendered on
their first download, not by a job (``service.receipt_ready``); ``receipt_generate`` stays only
so that jobs enqueued under that name before the change finish (as no-ops) instead of failing.

On the ``documents`` queue, so rendering can be given workers of its own
(``namma worker --queue documents``); a worker started without ``--queue`` runs them too.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable

import procrastinate
import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from namma.config import get_settings
from namma.kit.clock import INDIA
from namma.kit.db import transaction
from namma.kit.jobs import RETRY_POLICY, job_task
from namma.models import Document

blueprint = procrastinate.Blueprint()
log = structlog.get_logger(__name__)

QUEUE = "documents"


def _last_attempt(context: procrastinate.JobContext) -> bool:
    attempts = context.job.attempts if context.job is not None else 0
    return RETRY_POLICY.max_attempts is None or attempts >= RETRY_POLICY.max_attempts


def previous_month(timestamp: int) -> dt.date:
    """The first day of the month before the (India) date of ``timestamp``."""
    today = dt.datetime.fromtimestamp(timestamp, INDIA).date()
    return (today.replace(day=1) - dt.timedelta(days=1)).replace(day=1)


async def _make_or_record_failure(
    context: procrastinate.JobContext,
    make: Callable[[AsyncSession], Awaitable[Document | None]],
    document_id: uuid.UUID,
) -> Document | None:
    """Run ``make`` in a transaction; if it fails, record the failure on the document in a
    transaction of its own, then re-raise so the job is retried (and finally kept failed)."""
    from namma.documents import service
    from namma.jobs import job_database

    try:
        async with transaction(job_database()) as session:
            return await make(session)
    except Exception as exc:
        async with transaction(job_database()) as session:
            await service.document_failed(
                session,
                error=f"{type(exc).__name__}: {exc}",
                final=_last_attempt(context),
                document_id=document_id,
            )
        raise


@job_task(blueprint, name="receipt_generate", queue=QUEUE)
async def receipt_generate(collection_id: str) -> None:
    """Retired: receipts are rendered on their first download. A job of this name enqueued
    before that change does nothing but say so; its receipt, left ``pending``, is rendered when
    it is first downloaded."""
    log.info("documents.receipt_generate_retired", collection_id=collection_id)


@job_task(blueprint, name="statement_generate", queue=QUEUE, pass_context=True)
async def statement_generate(context: procrastinate.JobContext, document_id: str) -> None:
    """Render a customer's statement for the month its document names."""
    from namma.documents import service

    settings = get_settings()
    ident = uuid.UUID(document_id)
    document = await _make_or_record_failure(
        context,
        lambda session: service.statement_generate(
            session,
            document_id=ident,
            lender_name=settings.lender_name,
            grievance_contact=settings.grievance_contact,
        ),
        ident,
    )
    if document is None:
        log.warning("documents.statement_missing", document_id=document_id)
        return
    log.info("documents.statement_ready", document_id=document_id, size=document.size)


# 01:00 UTC on the 1st = 06:30 in India, after the night's close of business.
@blueprint.periodic(cron="0 1 1 * *", periodic_id="monthly-statements")
@job_task(blueprint, name="statements_monthly", queue=QUEUE)
async def statements_monthly(timestamp: int) -> int:
    """On the 1st: last month's statement for every customer with a loan active in it."""
    from namma.documents import service
    from namma.jobs import job_database

    async with transaction(job_database()) as session:
        return await service.statements_monthly(session, period_start=previous_month(timestamp))
