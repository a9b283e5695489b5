"""Documents: ask for one (a ``pending`` row and its job, in the caller's transaction), and make
one (the job's work: read the rows, render, store). Nothing here commits.

Asking again for a document that exists sets it ``pending`` and enqueues its job again; making
it replaces the content of the same row. So every job is idempotent: run twice, it leaves one
document with the same figures.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Iterable, Sequence
from typing import Any

import anyio.to_thread
import structlog
from sqlalchemy import Date, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import audit_record
from namma.auth.deps import Principal
from namma.documents import queries, render
from namma.kit.clock import today_india
from namma.kit.db import raw_connection
from namma.kit.errors import InvalidInputError
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

RECEIPT_GENERATE = "documents:receipt_generate"
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


async def receipts_request(session: AsyncSession, collection_ids: Iterable[uuid.UUID]) -> None:
    """A receipt for each collection: its row (``pending``) and its job, in this transaction.
    Called after a collection is recorded (single or on a sheet) and after a reversal."""
    ids = sorted(set(collection_ids))
    if not ids:
        return
    rows = (
        await session.execute(
            select(Collection.id, Collection.loan_id, Loan.customer_id)
            .join(Loan, Loan.id == Collection.loan_id)
            .where(Collection.id.in_(ids))
            .order_by(Collection.id)
        )
    ).all()
    if not rows:
        return
    statement = pg_insert(Document).values(
        [
            {
                "id": uuid.uuid4(),
                "kind": DocumentKind.RECEIPT,
                "customer_id": customer_id,
                "loan_id": loan_id,
                "collection_id": collection_id,
                "status": DocumentStatus.PENDING,
            }
            for collection_id, loan_id, customer_id in rows
        ]
    )
    await session.execute(
        statement.on_conflict_do_update(
            constraint="uq_documents_kind_collection_id",
            set_={"status": DocumentStatus.PENDING, "error": None},
        )
    )
    await _defer(
        session,
        RECEIPT_GENERATE,
        [{"collection_id": str(collection_id)} for collection_id, _, _ in rows],
    )


async def receipt_request(session: AsyncSession, *, collection_id: uuid.UUID) -> None:
    await receipts_request(session, [collection_id])


async def receipts_after_reversal(session: AsyncSession, *, collection_id: uuid.UUID) -> None:
    """The reversed collection's receipt (now marked REVERSED), and the receipts already made
    of the loan's later collections: the reversal re-allocated them, so their split and the
    principal outstanding after them changed."""
    collection = await session.get(Collection, collection_id)
    if collection is None:
        return
    later = (
        await session.scalars(
            select(Collection.id)
            .join(
                Document,
                (Document.collection_id == Collection.id) & (Document.kind == DocumentKind.RECEIPT),
            )
            .where(Collection.loan_id == collection.loan_id)
            .where(Collection.seq > collection.seq)
            .where(Collection.status == CollectionStatus.POSTED)
        )
    ).all()
    await receipts_request(session, [collection_id, *later])


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


async def receipt_generate(
    session: AsyncSession,
    *,
    collection_id: uuid.UUID,
    lender_name: str,
    grievance_contact: str,
    now: dt.datetime | None = None,
) -> Document:
    """Render the collection's receipt from its rows into its document (made if missing)."""
    now = now or dt.datetime.now(dt.UTC)
    data, collection, loan = await queries.receipt_data(
        session,
        collection_id=collection_id,
        lender_name=lender_name,
        grievance_contact=grievance_contact,
        generated_at=now,
    )
    await session.execute(
        pg_insert(Document)
        .values(
            id=uuid.uuid4(),
            kind=DocumentKind.RECEIPT,
            customer_id=loan.customer_id,
            loan_id=loan.id,
            collection_id=collection.id,
        )
        .on_conflict_do_nothing(constraint="uq_documents_kind_collection_id")
    )
    document = await session.scalar(
        select(Document)
        .where(Document.kind == DocumentKind.RECEIPT)
        .where(Document.collection_id == collection.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert document is not None
    content = await anyio.to_thread.run_sync(render.receipt_pdf, data)
    _store(document, content, now=now)
    await session.flush()
    return document


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
    session: AsyncSession,
    *,
    error: str,
    final: bool,
    document_id: uuid.UUID | None = None,
    collection_id: uuid.UUID | None = None,
) -> None:
    """Record why making a document failed; after the last attempt it is ``failed``."""
    query = select(Document).with_for_update()
    if document_id is not None:
        query = query.where(Document.id == document_id)
    else:
        query = query.where(Document.kind == DocumentKind.RECEIPT).where(
            Document.collection_id == collection_id
        )
    document = await session.scalar(query)
    if document is None or document.status is DocumentStatus.READY:
        return
    document.error = error[:ERROR_MAX]
    if final:
        document.status = DocumentStatus.FAILED
