"""Documents: a receipt is rendered on its first download and kept (``receipt_ready``); a
statement is asked for (a ``pending`` row and its job, in the caller's transaction) and made by
its job. Nothing here commits.

A receipt's row is written by the request that first asks for its PDF, rendered there and
stored; later downloads are served from the row. A reversal marks the receipts it changed as
``pending`` again (their bytes dropped), and the next download renders them anew. Asking again
for a statement sets it ``pending`` and enqueues its job again; making it replaces the content
of the same row. So every job is idempotent: run twice, it leaves one document with the same
figures.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Sequence
from typing import Any

import anyio.to_thread
import structlog
from sqlalchemy import Date, func, literal, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import audit_record
from namma.auth.deps import Principal
from namma.config import Settings
from namma.documents import queries, render
from namma.kit.clock import today_india
from namma.kit.db import raw_connection
from namma.kit.errors import InvalidInputError, NotFoundError
from namma.kit.jobs import REQUEST_ID_KWARG
from namma.models import (
    Collection,
    CollectionStatus,
    Document,
    DocumentKind,
    DocumentStatus,
    Loan,
)

log = structlog.get_logger(__name__)

STATEMENT_GENERATE = "documents:statement_generate"
DEFER_BATCH = 1000
ERROR_MAX = 2000


async def _defer(session: AsyncSession, task_name: str, jobs: Sequence[dict[str, Any]]) -> None:
    """Enqueue ``task_name`` once per kwargs in the session's transaction (in batches)."""
    if not jobs:
        return
    from namma.jobs import job_app

    request_id = structlog.contextvars.get_contextvars().get("request_id")
    connection = await raw_connection(session)
    deferrer = job_app.configure_task(name=task_name, connection=connection)
    for start in range(0, len(jobs), DEFER_BATCH):
        batch = jobs[start : start + DEFER_BATCH]
        await deferrer.batch_defer_async(*({**kw, REQUEST_ID_KWARG: request_id} for kw in batch))


# --- asking --------------------------------------------------------------------------------


async def receipts_after_reversal(session: AsyncSession, *, collection_id: uuid.UUID) -> None:
    """The reversed collection's receipt (to show REVERSED) and those of the loan's later
    collections (the reversal re-allocated them: their split and the principal outstanding
    after them changed) are dropped back to ``pending``: the next download renders them as the
    rows are then. One UPDATE; receipts never downloaded have no row and need nothing."""
    collection = await session.get(Collection, collection_id)
    if collection is None:
        return
    later = (
        select(Collection.id)
        .where(Collection.loan_id == collection.loan_id)
        .where(Collection.seq > collection.seq)
        .where(Collection.status == CollectionStatus.POSTED)
    )
    await session.execute(
        update(Document)
        .where(Document.kind == DocumentKind.RECEIPT)
        .where((Document.collection_id == collection_id) | Document.collection_id.in_(later))
        .values(
            status=DocumentStatus.PENDING,
            content=None,
            sha256=None,
            size=None,
            error=None,
            generated_at=None,
        )
        .execution_options(synchronize_session=False)
    )


async def statement_request(
    session: AsyncSession, *, principal: Principal, customer_id: uuid.UUID, month: dt.date
) -> Document:
    """The customer's statement for the month, made (again) by a job: 404 out of scope, 422 for
    a month not begun. A statement already waiting for its job is returned as it is."""
    customer = await queries.customer_in_scope(session, principal, customer_id)
    start, end = queries.month_bounds(month)
    if start > today_india():
        raise InvalidInputError("month", f"{start:%Y-%m} has not begun")
    existing = await session.scalar(
        select(Document)
        .where(Document.kind == DocumentKind.STATEMENT)
        .where(Document.customer_id == customer.id)
        .where(Document.period_start == start)
        .with_for_update()
    )
    if existing is not None and existing.status is DocumentStatus.PENDING:
        return existing
    document_id = await session.scalar(
        pg_insert(Document)
        .values(
            id=uuid.uuid4(),
            kind=DocumentKind.STATEMENT,
            customer_id=customer.id,
            period_start=start,
            period_end=end,
            status=DocumentStatus.PENDING,
            requested_by_id=principal.user_id,
        )
        .on_conflict_do_update(
            constraint="uq_documents_kind_customer_id_period_start",
            set_={
                "status": DocumentStatus.PENDING,
                "error": None,
                "requested_by_id": principal.user_id,
            },
        )
        .returning(Document.id)
    )
    assert document_id is not None
    await _defer(session, STATEMENT_GENERATE, [{"document_id": str(document_id)}])
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="document.statement_requested",
        entity_type="document",
        entity_id=str(document_id),
        after={"customer_id": str(customer.id), "month": f"{start:%Y-%m}"},
    )
    document = await session.get(Document, document_id, populate_existing=True)
    assert document is not None
    return document


async def statements_monthly(session: AsyncSession, *, period_start: dt.date) -> int:
    """Statements for the month of ``period_start`` for every customer with a loan active in
    it: one INSERT … SELECT of the pending rows (a statement already made is made again, one
    already waiting is left alone), then their jobs. Returns how many were enqueued."""
    start, end = queries.month_bounds(period_start)
    selection = (
        select(
            func.gen_random_uuid(),  # not the model's uuid4 default: called once per statement
            Loan.customer_id,
            literal(DocumentKind.STATEMENT, Document.kind.type),
            literal(start, Date()),
            literal(end, Date()),
            literal(DocumentStatus.PENDING, Document.status.type),
        )
        .where(queries.loan_active_during(start, end))
        .group_by(Loan.customer_id)
    )
    statement = pg_insert(Document).from_select(
        ["id", "customer_id", "kind", "period_start", "period_end", "status"], selection
    )
    ids = (
        await session.scalars(
            statement.on_conflict_do_update(
                constraint="uq_documents_kind_customer_id_period_start",
                set_={"status": DocumentStatus.PENDING, "error": None},
                where=Document.status != DocumentStatus.PENDING,
            ).returning(Document.id)
        )
    ).all()
    await _defer(session, STATEMENT_GENERATE, [{"document_id": str(i)} for i in sorted(ids)])
    log.info("documents.statements_enqueued", month=f"{start:%Y-%m}", count=len(ids))
    return len(ids)


# --- making --------------------------------------------------------------------------------


def _store(document: Document, content: bytes, *, now: dt.datetime) -> None:
    document.content = content
    document.sha256 = hashlib.sha256(content).hexdigest()
    document.size = len(content)
    document.status = DocumentStatus.READY
    document.error = None
    document.generated_at = now


async def receipt_ready(
    session: AsyncSession,
    *,
    collection_id: uuid.UUID,
    lender_name: str,
    grievance_contact: str,
    now: dt.datetime | None = None,
) -> Document:
    """The collection's receipt, ready: rendered from its rows and stored now unless it already
    is (no scope check: callers check it, see ``receipt_for``).

    Two first downloads at once make one document and render it once: the row is inserted
    ``ON CONFLICT DO NOTHING`` on ``uq_documents_kind_collection_id``, so the second waits for
    the first's transaction, then finds the row ``ready`` under its lock and renders nothing.

    A reversal in flight is waited for, so a receipt never keeps the state before a reversal:
    a new row's foreign keys lock the collection and the loan ``FOR KEY SHARE``, which waits
    for the reversal's ``FOR UPDATE`` on both; an existing row is locked here, and the reversal
    updates it (back to ``pending``) after this transaction or before it is read here."""
    found = (
        await session.execute(
            select(Collection.loan_id, Loan.customer_id)
            .join(Loan, Loan.id == Collection.loan_id)
            .where(Collection.id == collection_id)
        )
    ).one_or_none()
    if found is None:
        raise NotFoundError("Collection not found")
    loan_id, customer_id = found
    await session.execute(
        pg_insert(Document)
        .values(
            id=uuid.uuid4(),
            kind=DocumentKind.RECEIPT,
            customer_id=customer_id,
            loan_id=loan_id,
            collection_id=collection_id,
            status=DocumentStatus.PENDING,
        )
        .on_conflict_do_nothing(constraint="uq_documents_kind_collection_id")
    )
    document = await session.scalar(
        select(Document)
        .where(Document.kind == DocumentKind.RECEIPT)
        .where(Document.collection_id == collection_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert document is not None
    if document.status is DocumentStatus.READY:
        return document
    now = now or dt.datetime.now(dt.UTC)
    data, _, _ = await queries.receipt_data(
        session,
        collection_id=collection_id,
        lender_name=lender_name,
        grievance_contact=grievance_contact,
        generated_at=now,
    )
    content = await anyio.to_thread.run_sync(render.receipt_pdf, data)
    _store(document, content, now=now)
    await session.flush()
    log.info("documents.receipt_rendered", document_id=str(document.id), size=document.size)
    return document


async def receipt_for(
    session: AsyncSession, principal: Principal, collection_id: uuid.UUID, *, settings: Settings
) -> Document:
    """The receipt of a collection in the caller's scope (404 otherwise), rendered now if this
    is its first download (or the first since a reversal changed it)."""
    document = await queries.receipt_document_of(session, principal, collection_id)
    if document is not None and document.status is DocumentStatus.READY:
        return document
    return await receipt_ready(
        session,
        collection_id=collection_id,
        lender_name=settings.lender_name,
        grievance_contact=settings.grievance_contact,
    )


async def document_with_content(
    session: AsyncSession, principal: Principal, document_id: uuid.UUID, *, settings: Settings
) -> tuple[Document, str, str | None]:
    """A document in scope with its bytes, its customer's name and receipt number; a receipt
    not yet rendered (or dropped by a reversal) is rendered now. A statement is as its job
    left it (``pending``, ``ready`` or ``failed``)."""
    document, _, _ = await queries.document_get(session, principal, document_id)
    if document.kind is DocumentKind.RECEIPT and document.status is not DocumentStatus.READY:
        assert document.collection_id is not None
        await receipt_ready(
            session,
            collection_id=document.collection_id,
            lender_name=settings.lender_name,
            grievance_contact=settings.grievance_contact,
        )
    return await queries.document_get(session, principal, document_id, with_content=True)


async def statement_generate(
    session: AsyncSession,
    *,
    document_id: uuid.UUID,
    lender_name: str,
    grievance_contact: str,
    now: dt.datetime | None = None,
) -> Document | None:
    """Render a statement document from the rows of its customer and month (None: no such
    document)."""
    now = now or dt.datetime.now(dt.UTC)
    document = await session.scalar(
        select(Document)
        .where(Document.id == document_id)
        .where(Document.kind == DocumentKind.STATEMENT)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if document is None:
        return None
    assert document.period_start is not None and document.period_end is not None
    data = await queries.statement_data(
        session,
        customer_id=document.customer_id,
        period_start=document.period_start,
        period_end=document.period_end,
        lender_name=lender_name,
        grievance_contact=grievance_contact,
        generated_at=now,
    )
    content = await anyio.to_thread.run_sync(render.statement_pdf, data)
    _store(document, content, now=now)
    await session.flush()
    return document


async def document_failed(
    session: AsyncSession, *, error: str, final: bool, document_id: uuid.UUID
) -> None:
    """Record why making a statement failed; after the last attempt it is ``failed``."""
    document = await session.scalar(
        select(Document).where(Document.id == document_id).with_for_update()
    )
    if document is None or document.status is DocumentStatus.READY:
        return
    document.error = error[:ERROR_MAX]
    if final:
        document.status = DocumentStatus.FAILED
