"""Reads for documents: what a receipt and a statement show (built from the collection,
installment, loan and waiver rows), and the documents a caller may see.

Scope (DESIGN.md §2.6) is the customer's: Admin every document, a Manager their branch's
customers', an Agent those of the customers assigned to them, a Customer their own. Out of
scope answers like unknown (404).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import unicodedata
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Date, and_, cast, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import undefer

from namma.auth.deps import Principal
from namma.auth.scope import customer_scope
from namma.documents.render import (
    Letterhead,
    Parts,
    ReceiptData,
    ReceiptLine,
    ReceiptReschedule,
    StatementCollection,
    StatementData,
    StatementInstallment,
    StatementLoan,
    StatementWaiver,
)
from namma.documents.schemas import DocumentOut, DocumentPage
from namma.finance.owed import due_total, owed, paid, waived
from namma.kit.clock import INDIA
from namma.kit.errors import InvalidInputError, NotFoundError
from namma.models import (
    AdvanceApplication,
    Branch,
    Collection,
    CollectionAllocation,
    CollectionStatus,
    Customer,
    Document,
    DocumentKind,
    InstallmentStatus,
    JournalEntry,
    Loan,
    LoanInstallment,
    LoanProduct,
    LoanProductVersion,
    LoanScheduleRevision,
    LoanStatus,
    LoanWaiver,
    User,
)

ZERO = Decimal("0.00")
INDIA_ZONE = "Asia/Kolkata"


def _india_date(value: dt.datetime | None) -> dt.date | None:
    return None if value is None else value.astimezone(INDIA).date()


def _parts(row: Collection | CollectionAllocation) -> Parts:
    return Parts(row.principal, row.interest, row.fee, row.penalty)


# --- receipts ------------------------------------------------------------------------------------


async def receipt_data(
    session: AsyncSession,
    *,
    collection_id: uuid.UUID,
    lender_name: str,
    grievance_contact: str,
    generated_at: dt.datetime,
) -> tuple[ReceiptData, Collection, Loan]:
    """What the receipt of a collection shows, as the rows say now (a reversed collection's
    receipt says so; a re-allocated one shows its current split)."""
    row = (
        await session.execute(
            select(Collection, Loan, Customer, Branch, User.name)
            .join(Loan, Loan.id == Collection.loan_id)
            .join(Customer, Customer.id == Loan.customer_id)
            .join(Branch, Branch.id == Collection.branch_id)
            .join(User, User.id == Collection.collected_by_id)
            .where(Collection.id == collection_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError("Collection not found")
    collection, loan, customer, branch, collector = row
    allocations = (
        await session.execute(
            select(CollectionAllocation, LoanInstallment.due_date)
            .join(LoanInstallment, LoanInstallment.id == CollectionAllocation.installment_id)
            .where(CollectionAllocation.collection_id == collection.id)
            .order_by(CollectionAllocation.installment_number)
        )
    ).all()
    reversed_ = collection.status is CollectionStatus.REVERSED
    note: str | None = None
    outstanding: Decimal | None = None
    recovered = (
        loan.written_off_at is not None
        and collection.created_at is not None
        and collection.created_at > loan.written_off_at
    )
    if recovered:
        note = "Received on a loan that was written off: a recovery, not applied to installments."
    elif not reversed_:
        repaid = await session.scalar(
            select(func.coalesce(func.sum(Collection.principal), ZERO))
            .where(Collection.loan_id == loan.id)
            .where(Collection.status == CollectionStatus.POSTED)
            .where(Collection.seq <= collection.seq)
        )
        # ... and the principal advances paid as installments fell due before it.
        applied = await session.scalar(
            select(func.coalesce(func.sum(AdvanceApplication.principal), ZERO))
            .where(AdvanceApplication.loan_id == loan.id)
            .where(AdvanceApplication.seq <= collection.seq)
        )
        outstanding = loan.principal - (repaid or ZERO) - (applied or ZERO)
    waived = sum(
        (a.interest_waived + a.fee_waived + a.penalty_waived for a, _ in allocations), ZERO
    )
    data = ReceiptData(
        head=Letterhead(
            lender_name=lender_name,
            branch_name=branch.name,
            branch_code=branch.code,
            grievance_contact=grievance_contact,
            generated_at=generated_at,
        ),
        receipt_number=collection.receipt_number,
        collected_on=collection.collected_on,
        customer_name=customer.name,
        language=customer.preferred_language,
        loan_number=loan.loan_number,
        amount=collection.amount,
        method=collection.method.value,
        reference=collection.reference,
        parts=_parts(collection),
        lines=[ReceiptLine(a.installment_number, due, _parts(a)) for a, due in allocations],
        collected_by=collector,
        outstanding_principal_after=outstanding,
        preclosure=collection.preclosure,
        waived=waived,
        advance=collection.advance,
        rescheduled=await _receipt_reschedule(session, collection),
        reversed_on=_india_date(collection.reversed_at) if reversed_ else None,
        reversal_reason=collection.reversal_reason if reversed_ else None,
        note=note,
    )
    return data, collection, loan


async def _receipt_reschedule(
    session: AsyncSession, collection: Collection
) -> ReceiptReschedule | None:
    """What the collection's prepayment did to the schedule (its revision; a reversed
    collection's is gone, and its receipt says it was reversed)."""
    if not collection.prepaid_principal:
        return None
    revision = await session.scalar(
        select(LoanScheduleRevision).where(LoanScheduleRevision.collection_id == collection.id)
    )
    if revision is None:
        return None
    return ReceiptReschedule(
        policy=revision.policy,
        prepaid=revision.prepaid_principal,
        installments_after=revision.installments_after,
        installment_after=revision.installment_after,
    )


# --- statements ------------------------------------------------------------------------------


def month_bounds(month: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day of the month containing ``month``."""
    start = month.replace(day=1)
    following = (start + dt.timedelta(days=32)).replace(day=1)
    return start, following - dt.timedelta(days=1)


def parse_month(text: str, *, field: str = "month") -> dt.date:
    """``"2026-10"`` → 2026-10-01, or a 422 naming the field."""
    match = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
        raise InvalidInputError(field, 'A month is written "YYYY-MM", e.g. "2026-10"')
    return dt.date(int(match.group(1)), int(match.group(2)), 1)


def loan_active_during(start: dt.date, end: dt.date) -> ColumnElement[bool]:
    """A loan disbursed by ``end`` and not closed, paid off or written off before ``start``
    (dates in India)."""
    ended = cast(
        func.timezone(INDIA_ZONE, func.coalesce(Loan.closed_at, Loan.written_off_at)), Date
    )
    return and_(
        Loan.disbursed_on.is_not(None),
        Loan.disbursed_on <= end,
        or_(Loan.status == LoanStatus.ACTIVE, ended >= start),
    )


async def _settled_on(session: AsyncSession, loans: list[Loan]) -> dict[uuid.UUID, dt.date]:
    """When a written-off or refinanced loan left the books: the write-off's journal date (or
    its timestamp when nothing was left to write off), the top-up's disbursement date."""
    out: dict[uuid.UUID, dt.date] = {}
    written_off = [loan.id for loan in loans if loan.status is LoanStatus.WRITTEN_OFF]
    refinanced = [loan.id for loan in loans if loan.status is LoanStatus.REFINANCED]
    if written_off:
        for loan_id, on in await session.execute(
            select(JournalEntry.loan_id, func.min(JournalEntry.entry_date))
            .where(JournalEntry.kind == "loan.write_off")
            .where(JournalEntry.loan_id.in_(written_off))
            .group_by(JournalEntry.loan_id)
        ):
            if loan_id is not None and on is not None:
                out[loan_id] = on
    if refinanced:
        for old_id, disbursed in await session.execute(
            select(Loan.refinances_id, func.min(Loan.disbursed_on))
            .where(Loan.refinances_id.in_(refinanced))
            .where(Loan.disbursed_on.is_not(None))
            .group_by(Loan.refinances_id)
        ):
            if old_id is not None and disbursed is not None:
                out[old_id] = disbursed
    for loan in loans:
        if loan.id not in out and loan.status in (LoanStatus.WRITTEN_OFF, LoanStatus.REFINANCED):
            fallback = _india_date(loan.written_off_at or loan.closed_at)
            if fallback is not None:
                out[loan.id] = fallback
    return out


def _outstanding(
    loan: Loan, collections: list[Collection], settled_on: dt.date | None, on: dt.date
) -> Decimal:
    """Principal outstanding at the end of ``on``: the principal, less the principal of every
    standing collection up to that day; nothing before disbursement or after leaving the
    books."""
    if loan.disbursed_on is None or loan.disbursed_on > on:
        return ZERO
    if settled_on is not None and settled_on <= on:
        return ZERO
    repaid = sum(
        (
            c.principal
            for c in collections
            if c.status is CollectionStatus.POSTED and c.collected_on <= on
        ),
        ZERO,
    )
    return loan.principal - repaid


SETTLED_LABELS = {LoanStatus.WRITTEN_OFF: "Written off", LoanStatus.REFINANCED: "Paid by top-up"}
WAIVER_NAMES = {"interest": "Interest", "fee": "Fees", "penalty": "Penalties"}


@dataclass
class _StatementRows:
    """What a statement reads for its loans: collections up to the period's end, every
    installment, the period's waivers, what pre-closures in it forgave, when loans left."""

    collections: dict[uuid.UUID, list[Collection]] = field(
        default_factory=lambda: defaultdict(list)
    )
    installments: dict[uuid.UUID, list[LoanInstallment]] = field(
        default_factory=lambda: defaultdict(list)
    )
    waivers: dict[uuid.UUID, list[LoanWaiver]] = field(default_factory=lambda: defaultdict(list))
    closure_waived: dict[uuid.UUID, Decimal] = field(default_factory=dict)
    settled: dict[uuid.UUID, dt.date] = field(default_factory=dict)


async def statement_data(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    period_start: dt.date,
    period_end: dt.date,
    lender_name: str,
    grievance_contact: str,
    generated_at: dt.datetime,
) -> StatementData:
    """The customer's statement for the period: per loan active in it, the principal
    outstanding at its start and end and what moved it, the collections (reversed ones
    marked), waivers, the installments that fell due and the next one."""
    row = (
        await session.execute(
            select(Customer, Branch)
            .join(Branch, Branch.id == Customer.branch_id)
            .where(Customer.id == customer_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError("Customer not found")
    customer, branch = row
    loan_rows = (
        await session.execute(
            select(Loan, LoanProduct.name)
            .join(LoanProductVersion, LoanProductVersion.id == Loan.product_version_id)
            .join(LoanProduct, LoanProduct.id == LoanProductVersion.product_id)
            .where(Loan.customer_id == customer_id)
            .where(loan_active_during(period_start, period_end))
            .order_by(Loan.disbursed_on, Loan.loan_number)
        )
    ).all()
    loans = [loan for loan, _ in loan_rows]
    rows = await _statement_rows(session, loans, period_start, period_end)
    return StatementData(
        head=Letterhead(
            lender_name=lender_name,
            branch_name=branch.name,
            branch_code=branch.code,
            grievance_contact=grievance_contact,
            generated_at=generated_at,
        ),
        customer_name=customer.name,
        customer_village=customer.village,
        language=customer.preferred_language,
        period_start=period_start,
        period_end=period_end,
        loans=[
            _statement_loan(loan, product_name, rows, period_start, period_end)
            for loan, product_name in loan_rows
        ],
    )


async def _statement_rows(
    session: AsyncSession, loans: list[Loan], s: dt.date, e: dt.date
) -> _StatementRows:
    out = _StatementRows()
    ids = [loan.id for loan in loans]
    if not ids:
        return out
    for c in await session.scalars(
        select(Collection)
        .where(Collection.loan_id.in_(ids))
        .where(Collection.collected_on <= e)
        .order_by(Collection.collected_on, Collection.seq)
    ):
        out.collections[c.loan_id].append(c)
    for i in await session.scalars(
        # All of them: the next due may be an installment overdue since before the period.
        select(LoanInstallment)
        .where(LoanInstallment.loan_id.in_(ids))
        .order_by(LoanInstallment.loan_id, LoanInstallment.number)
    ):
        out.installments[i.loan_id].append(i)
    for w in await session.scalars(
        select(LoanWaiver)
        .where(LoanWaiver.loan_id.in_(ids))
        .where(LoanWaiver.waived_on.between(s, e))
        .order_by(LoanWaiver.waived_on, LoanWaiver.created_at)
    ):
        out.waivers[w.loan_id].append(w)
    closing_ids = [
        c.id
        for rows in out.collections.values()
        for c in rows
        if c.preclosure and c.status is CollectionStatus.POSTED and c.collected_on >= s
    ]
    if closing_ids:
        for collection_id, amount in await session.execute(
            select(
                CollectionAllocation.collection_id,
                func.sum(
                    CollectionAllocation.interest_waived
                    + CollectionAllocation.fee_waived
                    + CollectionAllocation.penalty_waived
                ),
            )
            .where(CollectionAllocation.collection_id.in_(closing_ids))
            .group_by(CollectionAllocation.collection_id)
        ):
            out.closure_waived[collection_id] = amount
    out.settled = await _settled_on(session, loans)
    return out


def _statement_waivers(
    loan: Loan, in_period: list[Collection], rows: _StatementRows
) -> list[StatementWaiver]:
    """The period's waivers of the loan, and what its pre-closures in the period forgave."""
    waivers = [
        StatementWaiver(w.waived_on, WAIVER_NAMES.get(w.component.value, "?"), w.amount, w.reason)
        for w in rows.waivers[loan.id]
    ] + [
        StatementWaiver(
            c.collected_on,
            "Pre-closure",
            rows.closure_waived[c.id],
            f"future interest and fees waived, receipt {c.receipt_number}",
        )
        for c in in_period
        if rows.closure_waived.get(c.id, ZERO) > 0
    ]
    waivers.sort(key=lambda w: w.on)
    return waivers


def _statement_loan(
    loan: Loan, product_name: str, rows: _StatementRows, s: dt.date, e: dt.date
) -> StatementLoan:
    collections = rows.collections[loan.id]
    settled_on = rows.settled.get(loan.id)
    in_period = [c for c in collections if s <= c.collected_on <= e]
    # The next due is the oldest installment still unpaid, overdue ones included (paying the
    # installment after the period's end first would leave the arrears standing).
    unpaid = sorted(
        (i for i in rows.installments[loan.id] if i.status is not InstallmentStatus.PAID),
        key=lambda i: (i.due_date, i.number),
    )
    next_due = unpaid[0] if unpaid and loan.status is LoanStatus.ACTIVE else None
    settled_amount = (
        _outstanding(loan, collections, None, settled_on)
        if settled_on is not None and s <= settled_on <= e
        else ZERO
    )
    return StatementLoan(
        loan_number=loan.loan_number,
        product_name=product_name,
        status=loan.status.value,
        disbursed_on=loan.disbursed_on,
        principal=loan.principal,
        opening=_outstanding(loan, collections, settled_on, s - dt.timedelta(days=1)),
        disbursed=(
            loan.principal
            if loan.disbursed_on is not None and s <= loan.disbursed_on <= e
            else ZERO
        ),
        principal_repaid=sum(
            (c.principal for c in in_period if c.status is CollectionStatus.POSTED), ZERO
        ),
        settled=settled_amount,
        settled_label=SETTLED_LABELS.get(loan.status) if settled_amount else None,
        closing=_outstanding(loan, collections, settled_on, e),
        collections=[
            StatementCollection(
                collected_on=c.collected_on,
                receipt_number=c.receipt_number,
                method=c.method.value,
                amount=c.amount,
                parts=_parts(c),
                reversed=c.status is CollectionStatus.REVERSED,
                reversal_reason=c.reversal_reason,
                advance=c.advance,
            )
            for c in in_period
        ],
        waivers=_statement_waivers(loan, in_period, rows),
        installments_due=[
            StatementInstallment(
                number=i.number,
                due_date=i.due_date,
                due=due_total(i),
                paid=paid(i),
                waived=waived(i),
                status=i.status.value,
            )
            for i in rows.installments[loan.id]
            if s <= i.due_date <= e
        ],
        next_due_on=next_due.due_date if next_due else None,
        next_due_amount=owed(next_due) if next_due else None,
    )


# --- documents in the caller's scope --------------------------------------------------------


def _slug(text: str) -> str:
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^A-Za-z0-9]+", "-", ascii_text).strip("-")[:40] or "customer"


def document_filename(doc: Document, *, customer_name: str, receipt_number: str | None) -> str:
    if doc.kind is DocumentKind.RECEIPT:
        return f"receipt-{receipt_number or doc.collection_id}.pdf"
    assert doc.period_start is not None
    return f"statement-{doc.period_start:%Y-%m}-{_slug(customer_name)}.pdf"


def document_out(doc: Document, *, customer_name: str, receipt_number: str | None) -> DocumentOut:
    return DocumentOut.of(
        doc,
        customer_name=customer_name,
        receipt_number=receipt_number,
        filename=document_filename(doc, customer_name=customer_name, receipt_number=receipt_number),
    )


def _scoped(principal: Principal) -> Any:
    return (
        select(Document, Customer.name, Collection.receipt_number)
        .join(Customer, Customer.id == Document.customer_id)
        .outerjoin(Collection, Collection.id == Document.collection_id)
        .where(customer_scope(principal))
    )


def _cursor_encode(doc: Document) -> str:
    raw = f"{doc.created_at.isoformat()}|{doc.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _cursor_decode(cursor: str) -> tuple[dt.datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, ident = raw.partition("|")
        return dt.datetime.fromisoformat(at), uuid.UUID(ident)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInputError("after", "Not a cursor from this list") from None


async def documents_list(
    session: AsyncSession,
    principal: Principal,
    *,
    customer_id: uuid.UUID | None,
    kind: DocumentKind | None,
    loan_id: uuid.UUID | None,
    after: str | None,
    limit: int,
) -> DocumentPage:
    """Newest first; ``next`` is the cursor of the following page."""
    query = _scoped(principal)
    if customer_id is not None:
        query = query.where(Document.customer_id == customer_id)
    if kind is not None:
        query = query.where(Document.kind == kind)
    if loan_id is not None:
        query = query.where(Document.loan_id == loan_id)
    if after is not None:
        at, ident = _cursor_decode(after)
        query = query.where(tuple_(Document.created_at, Document.id) < tuple_(at, ident))
    rows = (
        await session.execute(
            query.order_by(Document.created_at.desc(), Document.id.desc()).limit(limit)
        )
    ).all()
    return DocumentPage(
        documents=[
            document_out(doc, customer_name=name, receipt_number=receipt)
            for doc, name, receipt in rows
        ],
        next=_cursor_encode(rows[-1][0]) if len(rows) == limit else None,
    )


async def document_get(
    session: AsyncSession,
    principal: Principal,
    document_id: uuid.UUID,
    *,
    with_content: bool = False,
) -> tuple[Document, str, str | None]:
    """The document (its bytes loaded if asked), its customer's name and receipt number."""
    query = (
        _scoped(principal)
        .where(Document.id == document_id)
        .execution_options(populate_existing=True)
    )
    if with_content:
        query = query.options(undefer(Document.content))
    row = (await session.execute(query)).one_or_none()
    if row is None:
        raise NotFoundError("Document not found")
    doc, name, receipt = row
    return doc, name, receipt


async def receipt_document_of(
    session: AsyncSession, principal: Principal, collection_id: uuid.UUID
) -> Document | None:
    """The receipt document of a collection in scope (None: the collection is in scope but
    has no receipt yet). 404 if the collection is unknown or out of scope."""
    visible = await session.scalar(
        select(Collection.id)
        .join(Loan, Loan.id == Collection.loan_id)
        .join(Customer, Customer.id == Loan.customer_id)
        .where(Collection.id == collection_id)
        .where(customer_scope(principal))
    )
    if visible is None:
        raise NotFoundError("Collection not found")
    doc: Document | None = await session.scalar(
        select(Document)
        .where(Document.kind == DocumentKind.RECEIPT)
        .where(Document.collection_id == collection_id)
        .execution_options(populate_existing=True)
    )
    return doc


async def customer_in_scope(
    session: AsyncSession, principal: Principal, customer_id: uuid.UUID
) -> Customer:
    customer: Customer | None = await session.scalar(
        select(Customer).where(Customer.id == customer_id).where(customer_scope(principal))
    )
    if customer is None:
        raise NotFoundError("Customer not found")
    return customer
