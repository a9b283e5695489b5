"""Report 1: portfolio summary (docs/reports.md)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    distinct,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from namma.kit.clock import today_india
from namma.ledger.queries import DISBURSED_STATUSES
from namma.models import (
    Loan,
    LoanStatus,
)
from namma.reports.base import (
    ZERO,
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
    _par_sums,
    _sum,
    collections_received,
    installment_demand,
    ledger_disbursed,
    ledger_portfolio,
    loans_in_scope,
    overdue_now,
    scoped_loans,
)


async def portfolio_summary(
    session: AsyncSession, f: ReportFilters, *, reconcile: bool = True
) -> Report:
    """Per branch: the active portfolio now (loans, customers, outstanding by component,
    overdue, PAR) and the period's flows (disbursed, due, collected against dues, collection
    rate, collected).

    ``reconcile=False`` leaves out the reconciliation with the ledger (its statements read the
    scope's journal lines): the dashboards show the figures, not the check, which the report's
    own page and the tests run.
    """
    today = today_india()
    sl = scoped_loans(f)
    overdue = overdue_now(today)
    stock = await session.execute(
        loans_in_scope(
            select(
                Loan.branch_id,
                func.count(Loan.id),
                func.count(distinct(Loan.customer_id)),
                _sum(Loan.outstanding_principal),
                _sum(Loan.outstanding_interest),
                _sum(Loan.outstanding_fees),
                _sum(Loan.outstanding_penalties),
                _sum(overdue),
                func.count(Loan.id).filter(Loan.days_past_due >= 1),
                *_par_sums(Loan.outstanding_principal, Loan.days_past_due),
            )
            .select_from(Loan)
            .where(Loan.status == LoanStatus.ACTIVE)
            .group_by(Loan.branch_id),
            f,
        )
    )
    rows: dict[uuid.UUID, dict[str, Any]] = defaultdict(dict)
    for branch_id, loans, customers, op, oi, of, opn, od, late, p1, p30, p90 in stock.all():
        rows[branch_id].update(
            active_loans=loans,
            active_customers=customers,
            outstanding_principal=_dec(op),
            outstanding_interest=_dec(oi),
            outstanding_fees=_dec(of),
            outstanding_penalties=_dec(opn),
            overdue_amount=_dec(od),
            overdue_loans=late,
            _risk={1: _dec(p1), 30: _dec(p30), 90: _dec(p90)},
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
    demand = installment_demand(f, f.date_from, f.date_to, by_agent=False)
    for branch_id, due, against in (
        await session.execute(
            select(demand.c.branch_id, _sum(demand.c.due), _sum(demand.c.collected)).group_by(
                demand.c.branch_id
            )
        )
    ).all():
        rows[branch_id].update(due_amount=_dec(due), collected_against_due=_dec(against))
    received = collections_received(sl, f.date_from, f.date_to)
    for branch_id, amount in (
        await session.execute(
            select(received.c.branch_id, _sum(received.c.amount)).group_by(received.c.branch_id)
        )
    ).all():
        rows[branch_id]["collected_amount"] = _dec(amount)

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
