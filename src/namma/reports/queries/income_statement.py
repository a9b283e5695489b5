"""Report 11: income statement (docs/reports.md)."""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from namma.models import (
    AccountKind,
    AccountType,
)
from namma.reports.base import (
    ZERO,
    ColumnType,
    Report,
    ReportFilters,
    money,
    profit,
    text,
)
from namma.reports.queries.blocks import (
    ledger_period_totals,
)


async def income_statement(session: AsyncSession, f: ReportFilters) -> Report:
    """Income and expenses of the period by account kind, and profit (income − expenses)."""
    found: dict[tuple[AccountType, AccountKind], Decimal] = defaultdict(lambda: ZERO)
    for t in await ledger_period_totals(
        session, f, types=(AccountType.INCOME, AccountType.EXPENSE)
    ):
        found[(t.type, t.kind)] += t.amount
    rows = []
    income = expenses = ZERO
    for (account_type, kind), amount in sorted(
        found.items(), key=lambda kv: (kv[0][0] is AccountType.EXPENSE, kv[0][1].value)
    ):
        rows.append(
            {
                "section": account_type.value,
                "account": kind.value.replace("_", " "),
                "amount": amount,
            }
        )
        if account_type is AccountType.INCOME:
            income += amount
        else:
            expenses += amount
    result = profit(income, expenses)
    return Report(
        name="income-statement",
        title="Income statement",
        filters=f,
        columns=[
            text("section", "Section"),
            text("account", "Account"),
            money("amount", "Amount"),
        ],
        rows=rows,
        totals={},
        summary={"total_income": income, "total_expenses": expenses, "profit": result},
        summary_types=dict.fromkeys(("total_income", "total_expenses", "profit"), ColumnType.MONEY),
    )
