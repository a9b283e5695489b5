"""Report 8: loan aging (docs/reports.md)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Date,
    case,
    distinct,
    func,
    literal,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from namma.finance.owed import (
    owed_fee,
    owed_interest,
    owed_penalty,
    owed_principal,
)
from namma.kit.clock import today_india
from namma.kit.sqltext import expression_of
from namma.models import (
    Loan,
    LoanInstallment,
    LoanStatus,
)
from namma.reports.base import (
    ZERO,
    ColumnType,
    Reconciliation,
    Report,
    ReportFilters,
    count,
    money,
    text,
)
from namma.reports.queries.blocks import (
    AGING_BUCKETS,
    _dec,
    _sum,
    installment_owed,
    ledger_portfolio,
    scoped_loans,
)


async def loan_aging(session: AsyncSession, f: ReportFilters) -> Report:
    """What active loans still owe, by how long each installment has been overdue (today − its
    due date): "not overdue" (due today or later), 1–30, 31–60, 61–90, 90+ days. The principal
    column adds up to the outstanding principal, hence to the loan portfolio."""
    today = today_india()
    sl = scoped_loans(f)
    age = literal(today, Date) - LoanInstallment.due_date
    bucket = case(
        (age <= 0, AGING_BUCKETS[0]),
        (age <= 30, AGING_BUCKETS[1]),
        (age <= 60, AGING_BUCKETS[2]),
        (age <= 90, AGING_BUCKETS[3]),
        else_=AGING_BUCKETS[4],
    )
    i = LoanInstallment
    result = await session.execute(
        select(
            bucket,
            func.count(i.id),
            func.count(distinct(i.loan_id)),
            _sum(expression_of(owed_principal, i)),
            _sum(expression_of(owed_interest, i)),
            _sum(expression_of(owed_fee, i)),
            _sum(expression_of(owed_penalty, i)),
        )
        .select_from(sl)
        .join(Loan, Loan.id == sl.c.loan_id)
        .join(i, i.loan_id == Loan.id)
        .where(Loan.status == LoanStatus.ACTIVE)
        .where(installment_owed(i) > 0)
        .group_by(bucket)
    )
    found = {r[0]: r[1:] for r in result.all()}
    rows = []
    for b in AGING_BUCKETS:
        n, loans, p, it, fe, pe = found.get(b, (0, 0, ZERO, ZERO, ZERO, ZERO))
        rows.append(
            {
                "age": b,
                "installments": n,
                "loans": loans,
                "principal": _dec(p),
                "interest": _dec(it),
                "fees": _dec(fe),
                "penalties": _dec(pe),
                "total": _dec(p) + _dec(it) + _dec(fe) + _dec(pe),
            }
        )
    keys = ("principal", "interest", "fees", "penalties", "total")
    totals: dict[str, Any] = {k: sum((r[k] for r in rows), ZERO) for k in keys}
    totals["installments"] = sum(r["installments"] for r in rows)
    overdue_total = sum((r["total"] for r in rows[1:]), ZERO)
    return Report(
        name="loan-aging",
        title="Loan aging",
        filters=f,
        as_of=today,
        uses_dates=False,
        columns=[
            text("age", "Days overdue"),
            count("installments", "Installments"),
            count("loans", "Loans"),
            money("principal", "Principal"),
            money("interest", "Interest"),
            money("fees", "Fees"),
            money("penalties", "Penalties"),
            money("total", "Total owed"),
        ],
        rows=rows,
        totals=totals,
        summary={"overdue_total": overdue_total},
        summary_types={"overdue_total": ColumnType.MONEY},
        reconciliation=[
            Reconciliation(
                "principal",
                "loan_portfolio balance",
                totals["principal"],
                await ledger_portfolio(session, f),
            )
        ],
    )
