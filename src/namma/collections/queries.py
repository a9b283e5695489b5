"""Reads of collections, scoped in the query (DESIGN.md §2.6): Admin every collection, a
Manager their branch's, an Agent the collections they recorded on customers assigned to them,
a Customer those of their own loans. Out of scope answers like unknown (404)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from namma.auth.deps import Principal
from namma.auth.scope import customer_scope, loan_scope
from namma.collections.prepayments import collection_revisions
from namma.collections.schemas import (
    CollectionList,
    CollectionOut,
    InstallmentPenalty,
    LoanPenalties,
    LoanWaivers,
    PenaltyCharge,
    PreclosureQuote,
    WaiverOut,
)
from namma.finance import PayoffError, payoff_quote
from namma.finance.owed import owed_penalty
from namma.kit.errors import ConflictError, InvalidInputError, NotFoundError
from namma.kit.pagination import Keyset, KeysetPage, SortColumn, keyset_page, keyset_select
from namma.loans.service import loan_dues, loan_schedule_stored, today_india
from namma.models import (
    Collection,
    CollectionAllocation,
    CollectionStatus,
    Customer,
    InstallmentStatus,
    Loan,
    LoanInstallment,
    LoanPenaltyCharge,
    LoanProductVersion,
    LoanStatus,
    LoanWaiver,
    Role,
)

ZERO = Decimal("0.00")


def collection_scope(principal: Principal) -> ColumnElement[bool]:
    """Add to a query joining Collection → Loan → Customer."""
    condition = customer_scope(principal)
    if principal.role is Role.AGENT:
        return condition & (Collection.collected_by_id == principal.user_id)
    return condition & true()


def _scoped() -> Any:
    return (
        select(Collection, Loan)
        .join(Loan, Loan.id == Collection.loan_id)
        .join(Customer, Customer.id == Loan.customer_id)
    )


async def collection_in_scope(
    session: AsyncSession, principal: Principal, collection_id: uuid.UUID
) -> Collection | None:
    return await session.scalar(
        select(Collection)
        .join(Loan, Loan.id == Collection.loan_id)
        .join(Customer, Customer.id == Loan.customer_id)
        .where(Collection.id == collection_id)
        .where(collection_scope(principal))
    )


async def collection_get(
    session: AsyncSession, principal: Principal, collection_id: uuid.UUID
) -> CollectionOut:
    row = (
        await session.execute(
            _scoped().where(Collection.id == collection_id).where(collection_scope(principal))
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError("Collection not found")
    collection, loan = row
    allocations = await allocations_of(session, [collection.id])
    revisions = await collection_revisions(session, [collection.id])
    return CollectionOut.of(
        collection, loan, allocations.get(collection.id, []), revisions.get(collection.id)
    )


async def collections_list(
    session: AsyncSession,
    principal: Principal,
    *,
    loan_id: uuid.UUID | None,
    from_date: dt.date | None,
    to_date: dt.date | None,
    after: int | None,
    limit: int,
) -> CollectionList:
    """Newest first (by the order collections were recorded); ``next`` is the cursor."""
    query = _scoped().where(collection_scope(principal))
    if loan_id is not None:
        query = query.where(Collection.loan_id == loan_id)
    if from_date is not None:
        query = query.where(Collection.collected_on >= from_date)
    if to_date is not None:
        query = query.where(Collection.collected_on <= to_date)
    if after is not None:
        query = query.where(Collection.seq < after)
    rows = (await session.execute(query.order_by(Collection.seq.desc()).limit(limit))).all()
    allocations = await allocations_of(session, [c.id for c, _ in rows])
    return CollectionList(
        collections=[CollectionOut.of(c, loan, allocations.get(c.id, [])) for c, loan in rows],
        next=str(rows[-1][0].seq) if len(rows) == limit else None,
    )


COLLECTION_SORTS: dict[str, SortColumn] = {
    "date": SortColumn("date", Collection.collected_on, dt.date.fromisoformat),
    "amount": SortColumn("amount", Collection.amount, Decimal),
}


async def collections_page(
    session: AsyncSession,
    principal: Principal,
    keyset: Keyset,
    *,
    loan_id: uuid.UUID | None = None,
    status: CollectionStatus | None = None,
    from_date: dt.date | None = None,
    to_date: dt.date | None = None,
    search: str | None = None,
) -> KeysetPage[Any]:
    """Collections in the caller's scope as (collection, loan, sort value) rows, sorted and
    keyset-paged (for pages; the API's list is ``collections_list``). Filters: ``status``,
    the dates, ``search`` (a receipt or loan number as typed, any case, or a part of the
    customer's name)."""
    query = (
        select(Collection, Loan, keyset.sort.column.label("sort_value"))
        .join(Loan, Loan.id == Collection.loan_id)
        .join(Customer, Customer.id == Loan.customer_id)
        .where(collection_scope(principal))
    )
    if loan_id is not None:
        query = query.where(Collection.loan_id == loan_id)
    if status is not None:
        query = query.where(Collection.status == status)
    if from_date is not None:
        query = query.where(Collection.collected_on >= from_date)
    if to_date is not None:
        query = query.where(Collection.collected_on <= to_date)
    text = (search or "").strip()
    if text:
        query = query.where(
            or_(
                func.upper(Collection.receipt_number) == text.upper(),
                func.upper(Loan.loan_number) == text.upper(),
                Customer.name.icontains(text, autoescape=True),
            )
        )
    rows = (await session.execute(keyset_select(query, keyset, Collection.id))).all()
    return keyset_page(rows, keyset, lambda row: (row.sort_value, row[0].id))


async def allocations_of(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[CollectionAllocation, LoanInstallment]]]:
    out: dict[uuid.UUID, list[tuple[CollectionAllocation, LoanInstallment]]] = {}
    if not ids:
        return out
    rows = await session.execute(
        select(CollectionAllocation, LoanInstallment)
        .join(LoanInstallment, LoanInstallment.id == CollectionAllocation.installment_id)
        .where(CollectionAllocation.collection_id.in_(ids))
        .order_by(CollectionAllocation.collection_id, CollectionAllocation.installment_number)
    )
    for allocation, installment in rows:
        out.setdefault(allocation.collection_id, []).append((allocation, installment))
    return out


async def preclosure_quote(
    session: AsyncSession, principal: Principal, *, loan_id: uuid.UUID, as_of: dt.date | None
) -> PreclosureQuote:
    """What paying the loan off on ``as_of`` (default today) costs, per component; reads
    only."""
    loan = await session.scalar(
        select(Loan)
        .join(Customer, Customer.id == Loan.customer_id)
        .where(Loan.id == loan_id)
        .where(loan_scope(principal))
    )
    if loan is None:
        raise NotFoundError("Loan not found")
    if loan.status is not LoanStatus.ACTIVE:
        raise ConflictError(
            f"Only an active loan has a pre-closure quote; this one is {loan.status.value}",
            details={"status": loan.status.value},
        )
    assert loan.disbursed_on is not None
    on = as_of or today_india()
    if on < loan.disbursed_on:
        raise InvalidInputError(
            "as_of", f"The loan was disbursed on {loan.disbursed_on.isoformat()}"
        )
    version = await session.get(LoanProductVersion, loan.product_version_id)
    assert version is not None
    installments = (
        await session.scalars(
            select(LoanInstallment)
            .where(LoanInstallment.loan_id == loan.id)
            .order_by(LoanInstallment.number)
        )
    ).all()
    schedule = loan_schedule_stored(loan, version, installments)
    dues = loan_dues(installments)
    try:
        quote = payoff_quote(schedule=schedule, dues=dues, as_of=on)
    except PayoffError as exc:
        raise ConflictError(exc.message) from None
    return PreclosureQuote.of(loan, quote, scheduled=sum((d.total for d in dues), ZERO))


# --- penalties and waivers of a loan ----------------------------------------------------------


async def _loan_in_scope(session: AsyncSession, principal: Principal, loan_id: uuid.UUID) -> Loan:
    loan = await session.scalar(
        select(Loan)
        .join(Customer, Customer.id == Loan.customer_id)
        .where(Loan.id == loan_id)
        .where(loan_scope(principal))
    )
    if loan is None:
        raise NotFoundError("Loan not found")
    return loan


async def loan_penalties(
    session: AsyncSession, principal: Principal, loan_id: uuid.UUID
) -> LoanPenalties:
    """The loan's penalty rule, each installment's penalty (charged, paid, waived, owed, days
    overdue today) and every charge made, oldest first."""
    loan = await _loan_in_scope(session, principal, loan_id)
    today = today_india()
    installments = (
        await session.scalars(
            select(LoanInstallment)
            .where(LoanInstallment.loan_id == loan.id)
            .order_by(LoanInstallment.number)
        )
    ).all()
    charges = (
        await session.scalars(
            select(LoanPenaltyCharge)
            .where(LoanPenaltyCharge.loan_id == loan.id)
            .order_by(LoanPenaltyCharge.charged_on, LoanPenaltyCharge.installment_number)
        )
    ).all()
    return LoanPenalties(
        loan_id=loan.id,
        loan_number=loan.loan_number,
        rule=loan.terms.get("penalty"),
        outstanding_penalties=loan.outstanding_penalties,
        charged_total=sum((i.penalty_due for i in installments), ZERO),
        installments=[
            InstallmentPenalty(
                installment_number=i.number,
                due_date=i.due_date,
                days_overdue=(
                    max(0, (today - i.due_date).days)
                    if i.status is not InstallmentStatus.PAID
                    else 0
                ),
                charged=i.penalty_due,
                paid=i.penalty_paid,
                waived=i.penalty_waived,
                owed=owed_penalty(i),
            )
            for i in installments
            if i.penalty_due > 0 or i.penalty_waived > 0
        ],
        charges=[
            PenaltyCharge(
                installment_number=c.installment_number,
                charged_on=c.charged_on,
                days_overdue=c.days_overdue,
                amount=c.amount,
                total_after=c.total_after,
            )
            for c in charges
        ],
    )


async def loan_waivers(
    session: AsyncSession, principal: Principal, loan_id: uuid.UUID
) -> LoanWaivers:
    loan = await _loan_in_scope(session, principal, loan_id)
    waivers = (
        await session.scalars(
            select(LoanWaiver).where(LoanWaiver.loan_id == loan.id).order_by(LoanWaiver.created_at)
        )
    ).all()
    return LoanWaivers(
        loan_id=loan.id, loan_number=loan.loan_number, waivers=[WaiverOut.of(w) for w in waivers]
    )


async def collection_reallocations(
    session: AsyncSession, collection: CollectionOut
) -> list[tuple[dt.date, str]]:
    """When a reversal changed this collection's split (the ``collection.reallocation``
    entries that name its receipt): (date, memo), oldest first. The caller has checked the
    collection is in scope."""
    from namma.models import JournalEntry

    rows = await session.execute(
        select(JournalEntry.entry_date, JournalEntry.memo)
        .where(JournalEntry.loan_id == collection.loan_id)
        .where(JournalEntry.kind == "collection.reallocation")
        .where(
            JournalEntry.memo.startswith(f"Receipt {collection.receipt_number} ", autoescape=True)
        )
        .order_by(JournalEntry.id)
    )
    return [(on, memo or "") for on, memo in rows.all()]
