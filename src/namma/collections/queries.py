"""Reads of collections, scoped in the query (DESIGN.md §2.6): Admin every collection, a
Manager their branch's, an Agent the collections they recorded on customers assigned to them,
a Customer those of their own loans. Out of scope answers like unknown (404)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from namma.auth.deps import Principal
from namma.auth.scope import customer_scope, loan_scope
from namma.finance import PayoffError, PayoffQuote, payoff_quote
from namma.finance.owed import owed_penalty
from namma.kit.errors import ConflictError, InvalidInputError, NotFoundError
from namma.kit.money import money_str
from namma.loans.service import loan_dues, loan_schedule_compute, today_india
from namma.loans.store import InstallmentLike
from namma.models import (
    Collection,
    CollectionAllocation,
    Customer,
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
) -> dict[str, Any]:
    row = (
        await session.execute(
            _scoped().where(Collection.id == collection_id).where(collection_scope(principal))
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError("Collection not found")
    collection, loan = row
    allocations = await allocations_of(session, [collection.id])
    return collection_json(collection, loan, allocations.get(collection.id, []))


async def collections_list(
    session: AsyncSession,
    principal: Principal,
    *,
    loan_id: uuid.UUID | None,
    from_date: dt.date | None,
    to_date: dt.date | None,
    after: int | None,
    limit: int,
) -> dict[str, Any]:
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
    return {
        "collections": [collection_json(c, loan, allocations.get(c.id, [])) for c, loan in rows],
        "next": str(rows[-1][0].seq) if len(rows) == limit else None,
    }


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


def allocation_json(a: CollectionAllocation, i: InstallmentLike) -> dict[str, Any]:
    return {
        "installment_number": a.installment_number,
        "due_date": i.due_date.isoformat(),
        "principal": money_str(a.principal),
        "interest": money_str(a.interest),
        "fee": money_str(a.fee),
        "penalty": money_str(a.penalty),
        "total": money_str(a.principal + a.interest + a.fee + a.penalty),
        "interest_waived": money_str(a.interest_waived),
        "fee_waived": money_str(a.fee_waived),
        "penalty_waived": money_str(a.penalty_waived),
    }


def collection_json(
    c: Collection,
    loan: Loan,
    allocations: Sequence[tuple[CollectionAllocation, InstallmentLike]] = (),
) -> dict[str, Any]:
    return {
        "id": str(c.id),
        "receipt_number": c.receipt_number,
        "loan_id": str(c.loan_id),
        "loan_number": loan.loan_number,
        "customer_id": str(loan.customer_id),
        "branch_id": str(c.branch_id),
        "collected_by_id": str(c.collected_by_id),
        "amount": money_str(c.amount),
        "principal": money_str(c.principal),
        "interest": money_str(c.interest),
        "fee": money_str(c.fee),
        "penalty": money_str(c.penalty),
        "recovery": money_str(c.recovery),
        "collected_on": c.collected_on.isoformat(),
        "method": c.method.value,
        "reference": c.reference,
        "remarks": c.remarks,
        "client_id": c.client_id,
        "preclosure": c.preclosure,
        "status": c.status.value,
        "reversed_at": c.reversed_at.isoformat() if c.reversed_at else None,
        "reversed_by_id": str(c.reversed_by_id) if c.reversed_by_id else None,
        "reversal_reason": c.reversal_reason,
        "journal_entry_id": c.journal_entry_id,
        "reversal_entry_id": c.reversal_entry_id,
        "created_at": c.created_at.isoformat() if c.created_at else None,
        "allocation": [allocation_json(a, i) for a, i in allocations],
    }


def loan_balances_json(loan: Loan) -> dict[str, Any]:
    return {
        "id": str(loan.id),
        "loan_number": loan.loan_number,
        "status": loan.status.value,
        "outstanding_principal": money_str(loan.outstanding_principal),
        "outstanding_interest": money_str(loan.outstanding_interest),
        "outstanding_fees": money_str(loan.outstanding_fees),
        "outstanding_penalties": money_str(loan.outstanding_penalties),
        "total_collected": money_str(loan.total_collected),
        "next_due_on": loan.next_due_on.isoformat() if loan.next_due_on else None,
        "days_past_due": loan.days_past_due,
        "closed_at": loan.closed_at.isoformat() if loan.closed_at else None,
    }


async def preclosure_quote(
    session: AsyncSession, principal: Principal, *, loan_id: uuid.UUID, as_of: dt.date | None
) -> dict[str, Any]:
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
    schedule = loan_schedule_compute(loan, version)
    installments = (
        await session.scalars(
            select(LoanInstallment)
            .where(LoanInstallment.loan_id == loan.id)
            .order_by(LoanInstallment.number)
        )
    ).all()
    dues = loan_dues(installments)
    try:
        quote = payoff_quote(schedule=schedule, dues=dues, as_of=on)
    except PayoffError as exc:
        raise ConflictError(exc.message) from None
    return quote_json(loan, quote, scheduled=sum((d.total for d in dues), ZERO))


def quote_json(loan: Loan, quote: PayoffQuote, *, scheduled: Decimal) -> dict[str, Any]:
    o = quote.outstanding
    return {
        "loan_id": str(loan.id),
        "loan_number": loan.loan_number,
        "as_of": o.as_of.isoformat(),
        "principal": money_str(o.principal),
        "overdue_principal": money_str(o.overdue_principal),
        "overdue_interest": money_str(o.overdue_interest),
        "accrued_interest": money_str(o.accrued_interest),
        "overdue_fees": money_str(o.overdue_fees),
        "upfront_fees": money_str(o.upfront_fees),
        "penalties": money_str(o.penalties),
        "prepayment_penalty": money_str(quote.prepayment_penalty),
        "total": money_str(quote.total),
        "waived_interest": money_str(sum((w.interest for w in quote.waived), ZERO)),
        "waived_fees": money_str(sum((w.fee for w in quote.waived), ZERO)),
        "scheduled_remaining": money_str(scheduled),
    }


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
) -> dict[str, Any]:
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
    rows = [
        {
            "installment_number": i.number,
            "due_date": i.due_date.isoformat(),
            "days_overdue": max(0, (today - i.due_date).days) if i.status.value != "paid" else 0,
            "charged": money_str(i.penalty_due),
            "paid": money_str(i.penalty_paid),
            "waived": money_str(i.penalty_waived),
            "owed": money_str(owed_penalty(i)),
        }
        for i in installments
        if i.penalty_due > 0 or i.penalty_waived > 0
    ]
    return {
        "loan_id": str(loan.id),
        "loan_number": loan.loan_number,
        "rule": loan.terms.get("penalty"),
        "outstanding_penalties": money_str(loan.outstanding_penalties),
        "charged_total": money_str(sum((i.penalty_due for i in installments), ZERO)),
        "installments": rows,
        "charges": [
            {
                "installment_number": c.installment_number,
                "charged_on": c.charged_on.isoformat(),
                "days_overdue": c.days_overdue,
                "amount": money_str(c.amount),
                "total_after": money_str(c.total_after),
            }
            for c in charges
        ],
    }


def waiver_json(w: LoanWaiver) -> dict[str, Any]:
    return {
        "id": str(w.id),
        "loan_id": str(w.loan_id),
        "component": w.component.value,
        "amount": money_str(w.amount),
        "reason": w.reason,
        "waived_on": w.waived_on.isoformat(),
        "lines": w.lines,
        "waived_by_id": str(w.waived_by_id),
        "journal_entry_id": w.journal_entry_id,
        "created_at": w.created_at.isoformat() if w.created_at else None,
    }


async def loan_waivers(
    session: AsyncSession, principal: Principal, loan_id: uuid.UUID
) -> dict[str, Any]:
    loan = await _loan_in_scope(session, principal, loan_id)
    waivers = (
        await session.scalars(
            select(LoanWaiver).where(LoanWaiver.loan_id == loan.id).order_by(LoanWaiver.created_at)
        )
    ).all()
    return {
        "loan_id": str(loan.id),
        "loan_number": loan.loan_number,
        "waivers": [waiver_json(w) for w in waivers],
    }
