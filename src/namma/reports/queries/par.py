"""Report 2: PAR by bucket (docs/reports.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from namma.kit.clock import today_india
from namma.reports.base import (
    BUCKETS,
    ZERO,
    ColumnType,
    Reconciliation,
    Report,
    ReportFilters,
    count,
    money,
    pct,
    percent,
    text,
)
from namma.reports.queries.blocks import (
    BucketStock,
    _par,
    ledger_portfolio,
    loan_stock,
)


async def par_report(session: AsyncSession, f: ReportFilters, *, reconcile: bool = True) -> Report:
    """Active loans by days-past-due bucket, with PAR1/PAR30/PAR90.

    ``reconcile=False`` leaves out the reconciliation with the ledger (its statements read the
    scope's journal lines): the dashboards show the figures, not the check, which the report's
    own page and the tests run.
    """
    today = today_india()
    found = (await loan_stock(session, f)).by_bucket
    buckets = {b: found.get(b, BucketStock(0, ZERO, ZERO)) for b in BUCKETS}
    total = sum((v.outstanding_principal for v in buckets.values()), ZERO)
    rows: list[dict[str, Any]] = [
        {
            "bucket": b,
            "loans": v.loans,
            "outstanding_principal": v.outstanding_principal,
            "share": percent(v.outstanding_principal, total),
            "overdue_amount": v.overdue_amount,
        }
        for b, v in buckets.items()
    ]

    # PAR1 / PAR30 / PAR60 / PAR90 are exactly bucket sums (base.PAR_THRESHOLDS: DPD ≥ 1 is
    # every bucket but current, DPD > 30 the buckets from 31-60, and so on), so the one
    # statement over the loans gives them all.
    def at_risk(first_bucket: str) -> Decimal:
        start = BUCKETS.index(first_bucket)
        return sum((buckets[b].outstanding_principal for b in BUCKETS[start:]), ZERO)

    p1, p30, p60, p90 = (at_risk(b) for b in ("1-30", "31-60", "61-90", "90+"))
    summary: dict[str, Any] = {
        "portfolio_outstanding": total,
        "at_risk_1": p1,
        "at_risk_30": p30,
        "at_risk_60": p60,
        "at_risk_90": p90,
    }
    par = _par(total, {1: p1, 30: p30, 90: p90})
    summary |= {
        "par_1": par["par_1"],
        "par_30": par["par_30"],
        "par_60": percent(p60, total),
        "par_90": par["par_90"],
    }
    return Report(
        name="par",
        title="Portfolio at risk by bucket",
        filters=f,
        as_of=today,
        uses_dates=False,
        columns=[
            text("bucket", "Days past due"),
            count("loans", "Loans"),
            money("outstanding_principal", "Outstanding principal"),
            pct("share", "Share of portfolio %"),
            money("overdue_amount", "Overdue amount"),
        ],
        rows=rows,
        totals={
            "loans": sum(r["loans"] for r in rows),
            "outstanding_principal": total,
            "share": percent(total, total),
            "overdue_amount": sum((r["overdue_amount"] for r in rows), ZERO),
        },
        summary=summary,
        summary_types={
            "portfolio_outstanding": ColumnType.MONEY,
            "at_risk_1": ColumnType.MONEY,
            "at_risk_30": ColumnType.MONEY,
            "at_risk_60": ColumnType.MONEY,
            "at_risk_90": ColumnType.MONEY,
            "par_1": ColumnType.PERCENT,
            "par_30": ColumnType.PERCENT,
            "par_60": ColumnType.PERCENT,
            "par_90": ColumnType.PERCENT,
        },
        reconciliation=(
            [
                Reconciliation(
                    "outstanding_principal",
                    "loan_portfolio balance",
                    total,
                    await ledger_portfolio(session, f),
                )
            ]
            if reconcile
            else []
        ),
    )
