"""Report 9: interest and fee income (docs/reports.md)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from namma.models import (
    AccountKind,
    AccountType,
)
from namma.reports.base import (
    ZERO,
    Report,
    ReportFilters,
    money,
    text,
)
from namma.reports.queries.blocks import (
    _branches,
    ledger_period_totals,
)


async def income_report(session: AsyncSession, f: ReportFilters) -> Report:
    """Per branch: interest, fee, penalty and recovery income of the period, from the ledger's
    income accounts (net of reversals and re-allocations)."""
    totals_by = await ledger_period_totals(session, f, types=(AccountType.INCOME,))
    per: dict[uuid.UUID | None, dict[AccountKind, Decimal]] = defaultdict(dict)
    for t in totals_by:
        per[t.branch_id][t.kind] = per[t.branch_id].get(t.kind, ZERO) + t.amount
    branches = await _branches(session, per)
    names = {
        AccountKind.INTEREST_INCOME: "interest",
        AccountKind.FEE_INCOME: "fees",
        AccountKind.PENALTY_INCOME: "penalties",
        AccountKind.RECOVERY_INCOME: "recoveries",
    }
    rows = []
    for branch_id, amounts in sorted(
        per.items(), key=lambda kv: branches[kv[0]].code if kv[0] in branches else ""
    ):
        row: dict[str, Any] = {
            "branch_code": branches[branch_id].code if branch_id in branches else "(head office)"
        }
        for kind, key in names.items():
            row[key] = amounts.get(kind, ZERO)
        row["total"] = sum(amounts.values(), ZERO)
        rows.append(row)
    keys = (*names.values(), "total")
    totals = {k: sum((r[k] for r in rows), ZERO) for k in keys}
    return Report(
        name="income",
        title="Interest and fee income",
        filters=f,
        columns=[
            text("branch_code", "Branch"),
            money("interest", "Interest"),
            money("fees", "Fees"),
            money("penalties", "Penalties"),
            money("recoveries", "Recoveries"),
            money("total", "Total income"),
        ],
        rows=rows,
        totals=totals,
    )
