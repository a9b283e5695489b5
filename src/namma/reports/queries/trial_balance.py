"""Report 10: trial balance (docs/reports.md)."""

from __future__ import annotations

import dataclasses

from sqlalchemy.ext.asyncio import AsyncSession

from namma.ledger.queries import trial_balance
from namma.reports.base import (
    Report,
    ReportFilters,
    money,
    text,
)


async def trial_balance_report(session: AsyncSession, f: ReportFilters) -> Report:
    """The ledger's trial balance as of ``to`` (``namma.ledger.queries.trial_balance``)."""
    tb = await trial_balance(session, as_of=f.date_to, branch_id=f.branch_id)
    rows = [
        {
            "code": r.code,
            "name": r.name,
            "kind": r.kind.value,
            "type": r.type.value,
            "debit": r.debit,
            "credit": r.credit,
            "balance": r.balance,
        }
        for r in tb.rows
    ]
    return Report(
        name="trial-balance",
        title="Trial balance",
        filters=dataclasses.replace(f, agent_id=None, product_id=None),
        as_of=f.date_to,
        uses_dates=False,  # cumulative: every entry dated on or before ``to``
        columns=[
            text("code", "Code"),
            text("name", "Account"),
            text("kind", "Kind"),
            text("type", "Type"),
            money("debit", "Debit"),
            money("credit", "Credit"),
            money("balance", "Balance"),
        ],
        rows=rows,
        totals={"debit": tb.total_debit, "credit": tb.total_credit},
        summary={"balanced": "yes" if tb.balanced else "NO"},
    )
