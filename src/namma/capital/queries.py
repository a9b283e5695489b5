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

from namma.capital.schemas import (
    BorrowingDetailOut,
    BorrowingInstallmentOut,
    BorrowingList,
    BorrowingOut,
    InvestmentList,
    InvestmentOut,
    RepaymentOut,
)
from namma.capital.service import borrowing_installments
from namma.kit.errors import NotFoundError
from namma.kit.money import money_str
from namma.kit.schemas import from_row
from namma.models import (
    Borrowing,
    BorrowingRepayment,
    BorrowingStatus,
    Investment,
    Loan,
    LoanStatus,
)

ZERO = Decimal("0.00")
HUNDRED = Decimal(100)


async def investments_list(session: AsyncSession, *, limit: int) -> InvestmentList:
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
    return InvestmentList(
        items=[InvestmentOut.of(i) for i in rows], count=int(count), total=Decimal(total)
    )


async def borrowings_list(
    session: AsyncSession, *, status: BorrowingStatus | None, limit: int
) -> BorrowingList:
    query = select(Borrowing).order_by(Borrowing.received_on.desc(), Borrowing.created_at.desc())
    if status is not None:
        query = query.where(Borrowing.status == status)
    rows = (await session.scalars(query.limit(limit))).all()
    outstanding = await session.scalar(
        select(func.coalesce(func.sum(Borrowing.outstanding_principal), ZERO)).where(
            Borrowing.status == BorrowingStatus.ACTIVE
        )
    )
    return BorrowingList(
        items=[BorrowingOut.of(b) for b in rows], outstanding_principal=Decimal(outstanding or 0)
    )


async def borrowing_detail(session: AsyncSession, borrowing_id: uuid.UUID) -> BorrowingDetailOut:
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
    return from_row(
        BorrowingDetailOut,
        borrowing,
        schedule=[BorrowingInstallmentOut.of(r) for r in rows],
        repayments=[RepaymentOut.of(r) for r in repayments],
    )


async def capital_summary(
    session: AsyncSession, *, disbursed_outstanding: Decimal | None = None
) -> dict[str, Any]:
    """Own capital (Σ standing investments), borrowings outstanding (Σ unpaid principal of active
    borrowings), total capital, disbursed outstanding (Σ outstanding principal of active loans),
    utilisation % = disbursed outstanding / total capital × 100 (2 places, half-up; null when
    total capital is 0 — a ratio to nothing is undefined, not 0), surplus (negative: deficit).
    ``disbursed_outstanding``: that sum when the caller has just read it (the Admin's dashboard,
    from the portfolio summary of the same transaction), instead of reading every loan again."""
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
    disbursed = disbursed_outstanding
    if disbursed is None:
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
