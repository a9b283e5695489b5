"""Report 1: portfolio summary (docs/reports.md)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from namma.kit.clock import today_india
from namma.ledger.queries import DISBURSED_STATUSES
from namma.models import (
    Loan,
)
from namma.reports.base import (
    ZERO,
    ColumnType,
    Reconciliation,
    Report,
    ReportFilters,
    collection_rate,
    count,
    money,
    pct,
    text,
)
from namma.reports.queries.blocks import (
    _branches,
    _dec,
    _par,
    _sum,
    ledger_disbursed,
    ledger_portfolio,
    loan_stock,
    loans_in_scope,
    period_dues,
    period_received,
    scoped_loans,
)

# ``portfolio_summary(last_day=True)``'s summary: the flows of the period's last day.
LAST_DAY_TYPES = {
    "last_day_due_amount": ColumnType.MONEY,
    "last_day_collected_against_due": ColumnType.MONEY,
    "last_day_collections": ColumnType.INT,
    "last_day_collected_amount": ColumnType.MONEY,
}


async def portfolio_summary(
    session: AsyncSession, f: ReportFilters, *, reconcile: bool = True, last_day: bool = False
) -> Report:
    """Per branch: the active portfolio now (loans, customers, outstanding by component,
    overdue, PAR) and the period's flows (disbursed, due, collected against dues, collection
    rate, collected).

    ``reconcile=False`` leaves out the reconciliation with the ledger (its statements read the
    scope's journal lines): the dashboards show the figures, not the check, which the report's
    own page and the tests run. ``last_day=True`` also gives the flows of the period's last day
    (its dues, collected against them, collections and what they brought in) in ``summary``,
    from the period's own statements: the dashboards' "today" without reading the day's dues
    and collections a second time.
    """
    today = today_india()
    sl = scoped_loans(f)
    day: dict[str, Any] = {
        "due_amount": ZERO,
        "collected_against_due": ZERO,
        "collections": 0,
        "collected_amount": ZERO,
    }
    rows: dict[uuid.UUID, dict[str, Any]] = defaultdict(dict)
    for branch_id, b in (await loan_stock(session, f)).by_branch.items():
        rows[branch_id].update(
            active_loans=b.loans,
            active_customers=b.customers,
            outstanding_principal=b.outstanding_principal,
            outstanding_interest=b.outstanding_interest,
            outstanding_fees=b.outstanding_fees,
            outstanding_penalties=b.outstanding_penalties,
            overdue_amount=b.overdue_amount,
            overdue_loans=b.overdue_loans,
            _risk=b.at_risk,
        )
    disbursed = await session.execute(
        loans_in_scope(
            select(Loan.branch_id, func.count(Loan.id), _sum(Loan.principal))
            .where(Loan.status.in_(DISBURSED_STATUSES))
            .where(Loan.disbursed_on.between(f.date_from, f.date_to))
            .group_by(Loan.branch_id),
            f,
        )
    )
    for branch_id, n, amount in disbursed.all():
        rows[branch_id].update(disbursed_count=n, disbursed_amount=_dec(amount))
    dues = await period_dues(session, f, by_agent=False)
    for branch_id, (due, against) in dues.by_branch.items():
        rows[branch_id].update(due_amount=due, collected_against_due=against)
    day["due_amount"], day["collected_against_due"] = dues.last_day
    received = await period_received(session, f, by_collector=False, agent_scope=True)
    for branch_id, amount in received.by_branch.items():
        rows[branch_id]["collected_amount"] = amount
    day["collections"], day["collected_amount"] = received.last_day

    money_keys = (
        "outstanding_principal",
        "outstanding_interest",
        "outstanding_fees",
        "outstanding_penalties",
        "overdue_amount",
        "disbursed_amount",
        "due_amount",
        "collected_against_due",
        "collected_amount",
    )
    count_keys = ("active_loans", "active_customers", "overdue_loans", "disbursed_count")
    branches = await _branches(session, rows)
    out: list[dict[str, Any]] = []
    totals: dict[str, Any] = {k: ZERO for k in money_keys} | dict.fromkeys(count_keys, 0)
    total_risk: dict[int, Decimal] = defaultdict(lambda: ZERO)
    for branch_id, r in sorted(rows.items(), key=lambda kv: branches[kv[0]].code):
        row: dict[str, Any] = {
            "branch_code": branches[branch_id].code,
            "branch_name": branches[branch_id].name,
        }
        row |= {k: r.get(k, ZERO) for k in money_keys} | {k: r.get(k, 0) for k in count_keys}
        risk = r.get("_risk", {})
        row |= _par(row["outstanding_principal"], risk)
        row["collection_rate"] = collection_rate(row["collected_against_due"], row["due_amount"])
        for k in (*money_keys, *count_keys):
            totals[k] += row[k]
        for n, v in risk.items():
            total_risk[n] += v
        out.append(row)
    totals |= _par(totals["outstanding_principal"], total_risk)
    totals["collection_rate"] = collection_rate(
        totals["collected_against_due"], totals["due_amount"]
    )
    # Active customers across branches: a customer belongs to one branch, so the sum is exact.
    return Report(
        name="portfolio-summary",
        title="Portfolio summary",
        filters=f,
        as_of=today,
        columns=[
            text("branch_code", "Branch"),
            text("branch_name", "Branch name"),
            count("active_loans", "Active loans"),
            count("active_customers", "Active customers"),
            money("outstanding_principal", "Outstanding principal"),
            money("outstanding_interest", "Outstanding interest"),
            money("outstanding_fees", "Outstanding fees"),
            money("outstanding_penalties", "Outstanding penalties"),
            money("overdue_amount", "Overdue amount"),
            count("overdue_loans", "Overdue loans"),
            pct("par_1", "PAR1 %"),
            pct("par_30", "PAR30 %"),
            pct("par_90", "PAR90 %"),
            count("disbursed_count", "Loans disbursed"),
            money("disbursed_amount", "Disbursed"),
            money("due_amount", "Due"),
            money("collected_against_due", "Collected against due"),
            pct("collection_rate", "Collection rate %"),
            money("collected_amount", "Collected"),
        ],
        rows=out,
        totals=totals,
        summary={f"last_day_{k}": v for k, v in day.items()} if last_day else {},
        summary_types=LAST_DAY_TYPES if last_day else {},
        reconciliation=(
            [
                Reconciliation(
                    "outstanding_principal",
                    "loan_portfolio balance",
                    totals["outstanding_principal"],
                    await ledger_portfolio(session, f),
                ),
                Reconciliation(
                    "disbursed_amount",
                    "loan_portfolio debits of disbursements in the period",
                    totals["disbursed_amount"],
                    await ledger_disbursed(session, sl, f),
                ),
            ]
            if reconcile
            else []
        ),
    )
