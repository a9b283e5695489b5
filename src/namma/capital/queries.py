"""Capital: reads (lists, one borrowing with its schedule, the capital summary).

Money is a two-decimal string in every answer. Reversed rows are listed (marked with
``status``/``reversed_at``) but count in no total: own capital is Σ standing investments.
"""

from __future__ import annotations

import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.capital.service import borrowing_installments, installment_owed
from namma.kit.errors import NotFoundError
from namma.kit.money import money_str
from namma.models import (
    Borrowing,
    BorrowingInstallment,
    BorrowingRepayment,
    BorrowingStatus,
    Investment,
    Loan,
    LoanStatus,
)

ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


def reversal_json(row: Investment | Borrowing | BorrowingRepayment) -> dict[str, Any]:
    return {
        "reversed_at": row.reversed_at.isoformat() if row.reversed_at else None,
        "reversed_by_id": str(row.reversed_by_id) if row.reversed_by_id else None,
        "reversal_reason": row.reversal_reason,
        "reversal_entry_id": row.reversal_entry_id,
    }


def investment_json(i: Investment) -> dict[str, Any]:
    return {
        "id": str(i.id),
        "amount": money_str(i.amount),
        "source": i.source,
        "invested_on": i.invested_on.isoformat(),
        "method": i.method.value,
        "reference": i.reference,
        "description": i.description,
        "journal_entry_id": i.journal_entry_id,
        "created_by_id": str(i.created_by_id),
        "created_at": i.created_at.isoformat(),
        "status": "reversed" if i.reversed_at else "standing",
        **reversal_json(i),
    }


async def investments_list(session: AsyncSession, *, limit: int) -> dict[str, Any]:
    """Investments, newest first (reversed ones included, marked), with the count and total
    of the standing ones."""
    rows = (
        await session.scalars(
            select(Investment)
            .order_by(Investment.invested_on.desc(), Investment.created_at.desc())
            .limit(limit)
        )
    ).all()
    total, count = (
        await session.execute(
            select(
                func.coalesce(func.sum(Investment.amount), ZERO), func.count(Investment.id)
            ).where(Investment.reversed_at.is_(None))
        )
    ).one()
    return {
        "items": [investment_json(i) for i in rows],
        "count": int(count),
        "total": money_str(Decimal(total)),
    }


def borrowing_json(b: Borrowing) -> dict[str, Any]:
    return {
        "id": str(b.id),
        "lender_name": b.lender_name,
        "lender_contact": b.lender_contact,
        "principal": money_str(b.principal),
        "annual_rate": str(b.annual_rate),
        "installments": b.installments,
        "terms": b.terms,
        "received_on": b.received_on.isoformat(),
        "first_due_on": b.first_due_on.isoformat() if b.first_due_on else None,
        "method": b.method.value,
        "reference": b.reference,
        "remarks": b.remarks,
        "status": b.status.value,
        "installment_amount": money_str(b.installment_amount),
        "total_interest": money_str(b.total_interest),
        "outstanding_principal": money_str(b.outstanding_principal),
        "outstanding_interest": money_str(b.outstanding_interest),
        "total_repaid": money_str(b.total_repaid),
        "closed_at": b.closed_at.isoformat() if b.closed_at else None,
        "journal_entry_id": b.journal_entry_id,
        "created_at": b.created_at.isoformat(),
        **reversal_json(b),
    }


def installment_json(r: BorrowingInstallment) -> dict[str, Any]:
    principal_owed, interest_owed = installment_owed(r)
    return {
        "number": r.number,
        "due_date": r.due_date.isoformat(),
        "principal_due": money_str(r.principal_due),
        "interest_due": money_str(r.interest_due),
        "total_due": money_str(r.principal_due + r.interest_due),
        "balance_after": money_str(r.balance_after),
        "principal_paid": money_str(r.principal_paid),
        "interest_paid": money_str(r.interest_paid),
        "interest_waived": money_str(r.interest_waived),
        "owed": money_str(principal_owed + interest_owed),
        "paid_on": r.paid_on.isoformat() if r.paid_on else None,
    }


def repayment_json(r: BorrowingRepayment) -> dict[str, Any]:
    return {
        "id": str(r.id),
        "borrowing_id": str(r.borrowing_id),
        "paid_on": r.paid_on.isoformat(),
        "amount": money_str(r.amount),
        "principal_paid": money_str(r.principal_paid),
        "interest_paid": money_str(r.interest_paid),
        "payoff": r.payoff,
        "method": r.method.value,
        "reference": r.reference,
        "journal_entry_id": r.journal_entry_id,
        "created_at": r.created_at.isoformat(),
        "status": "reversed" if r.reversed_at else "standing",
        **reversal_json(r),
    }


async def borrowings_list(
    session: AsyncSession, *, status: BorrowingStatus | None, limit: int
) -> dict[str, Any]:
    query = select(Borrowing).order_by(Borrowing.received_on.desc(), Borrowing.created_at.desc())
    if status is not None:
        query = query.where(Borrowing.status == status)
    rows = (await session.scalars(query.limit(limit))).all()
    outstanding = await session.scalar(
        select(func.coalesce(func.sum(Borrowing.outstanding_principal), ZERO)).where(
            Borrowing.status == BorrowingStatus.ACTIVE
        )
    )
    return {
        "items": [borrowing_json(b) for b in rows],
        "outstanding_principal": money_str(Decimal(outstanding or 0)),
    }


async def borrowing_detail(session: AsyncSession, borrowing_id: uuid.UUID) -> dict[str, Any]:
    borrowing = await session.get(Borrowing, borrowing_id)
    if borrowing is None:
        raise NotFoundError("Borrowing not found")
    rows = await borrowing_installments(session, borrowing.id)
    repayments = (
        await session.scalars(
            select(BorrowingRepayment)
            .where(BorrowingRepayment.borrowing_id == borrowing.id)
            .order_by(BorrowingRepayment.seq)
        )
    ).all()
    return {
        **borrowing_json(borrowing),
        "schedule": [installment_json(r) for r in rows],
        "repayments": [repayment_json(r) for r in repayments],
    }


async def capital_summary(session: AsyncSession) -> dict[str, Any]:
    """Own capital (Σ standing investments), borrowings outstanding (Σ unpaid principal of active
    borrowings), total capital, disbursed outstanding (Σ outstanding principal of active loans),
    utilisation % = disbursed outstanding / total capital × 100 (2 places, half-up; null when
    total capital is 0 — a ratio to nothing is undefined, not 0), surplus (negative: deficit)."""
    own = Decimal(
        await session.scalar(
            select(func.coalesce(func.sum(Investment.amount), ZERO)).where(
                Investment.reversed_at.is_(None)
            )
        )
        or 0
    )
    borrowed = Decimal(
        await session.scalar(
            select(func.coalesce(func.sum(Borrowing.outstanding_principal), ZERO)).where(
                Borrowing.status == BorrowingStatus.ACTIVE
            )
        )
        or 0
    )
    disbursed = Decimal(
        await session.scalar(
            select(func.coalesce(func.sum(Loan.outstanding_principal), ZERO)).where(
                Loan.status == LoanStatus.ACTIVE
            )
        )
        or 0
    )
    total = own + borrowed
    utilisation = (
        None
        if total == 0
        else str((disbursed * HUNDRED / total).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))
    )
    surplus = total - disbursed
    return {
        "own_capital": money_str(own),
        "borrowings_outstanding": money_str(borrowed),
        "total_capital": money_str(total),
        "disbursed_outstanding": money_str(disbursed),
        "utilisation_percent": utilisation,
        "surplus": money_str(surplus),
        "position": "surplus" if surplus >= 0 else "deficit",
    }
