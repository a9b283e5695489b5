"""Report 7: overdue / defaulter list (docs/reports.md)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import (
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from namma.kit.clock import today_india
from namma.models import (
    AccountKind,
    Branch,
    Collection,
    CollectionStatus,
    Customer,
    JournalLine,
    LedgerAccount,
    Loan,
    LoanProduct,
    LoanStatus,
    User,
)
from namma.reports.base import (
    ZERO,
    ColumnType,
    Reconciliation,
    Report,
    ReportFilters,
    count,
    day,
    dpd_bucket,
    money,
    text,
)
from namma.reports.queries.blocks import (
    _dec,
    _sum,
    overdue_now,
    scoped_loans,
)


async def overdue_list(
    session: AsyncSession, f: ReportFilters, *, min_dpd: int = 1, reconcile: bool = True
) -> Report:
    """Active loans at least ``min_dpd`` days past due, the longest overdue first.

    ``reconcile=False`` leaves out the reconciliation with the ledger (its statement sums the
    listed loans' journal lines since their disbursement): the dashboards and the Manager's
    desk show the list, not the check, which the report's own page and the tests run."""
    today = today_india()
    sl = scoped_loans(f)
    overdue = overdue_now(today)
    agent = aliased(User)
    last_paid = (
        select(Collection.loan_id.label("loan_id"), func.max(Collection.collected_on).label("on"))
        .join(Loan, Loan.id == Collection.loan_id)
        .join(sl, sl.c.loan_id == Collection.loan_id)  # the scope's loans only
        .where(Loan.status == LoanStatus.ACTIVE)
        .where(Loan.days_past_due >= max(min_dpd, 1))
        .where(Collection.status == CollectionStatus.POSTED)
        .group_by(Collection.loan_id)
        .subquery("last_paid")
    )
    outstanding_total = (
        Loan.outstanding_principal
        + Loan.outstanding_interest
        + Loan.outstanding_fees
        + Loan.outstanding_penalties
    )
    result = await session.execute(
        # Columns, not entities: a defaulter list can be long.
        select(
            Loan.id,
            Loan.customer_id,
            Loan.loan_number,
            Customer.name,
            Customer.phone,
            Customer.village,
            Branch.code,
            agent.name,
            LoanProduct.code,
            Loan.days_past_due,
            overdue,
            Loan.outstanding_principal,
            outstanding_total,
            Loan.next_due_on,
            last_paid.c.on,
            Loan.restructured_on,
        )
        .select_from(sl)
        .join(Loan, Loan.id == sl.c.loan_id)
        .join(Customer, Customer.id == Loan.customer_id)
        .join(Branch, Branch.id == Loan.branch_id)
        .join(LoanProduct, LoanProduct.id == sl.c.product_id)
        .outerjoin(agent, agent.id == sl.c.agent_id)
        .outerjoin(last_paid, last_paid.c.loan_id == Loan.id)
        .where(Loan.status == LoanStatus.ACTIVE)
        .where(Loan.days_past_due >= max(min_dpd, 1))
        .order_by(Loan.days_past_due.desc(), Loan.loan_number)
    )
    rows = []
    for (
        loan_id,
        customer_id,
        number,
        name,
        phone,
        village,
        branch,
        agent_name,
        product,
        dpd,
        od,
        principal,
        total,
        next_due,
        last_on,
        restructured_on,
    ) in result.all():
        rows.append(
            {
                # Not columns (never in the answer or the files): the pages' links.
                "loan_id": loan_id,
                "customer_id": customer_id,
                "loan_number": number,
                "customer_name": name,
                "phone": phone,
                "village": village or "",
                "branch_code": branch,
                "agent_name": agent_name or "",
                "product_code": product,
                "days_past_due": dpd,
                "bucket": dpd_bucket(dpd),
                "overdue_amount": _dec(od),
                "outstanding_principal": _dec(principal),
                "outstanding_total": _dec(total),
                "next_due_on": next_due,
                "last_payment_on": last_on,
                # RBI: a restructured standard asset is downgraded (D-198).
                "restructured_on": restructured_on,
            }
        )
    keys = ("overdue_amount", "outstanding_principal", "outstanding_total")
    totals: dict[str, Any] = {k: sum((r[k] for r in rows), ZERO) for k in keys}
    reconciliation: list[Reconciliation] = []
    if reconcile:
        reconciliation = [
            Reconciliation(
                "outstanding_principal",
                "loan_portfolio balance of the listed loans",
                totals["outstanding_principal"],
                await _ledger_of_listed(session, f, min_dpd),
            )
        ]
    return Report(
        name="overdue",
        title="Overdue loans (defaulter list)",
        filters=f,
        as_of=today,
        uses_dates=False,
        columns=[
            text("loan_number", "Loan"),
            text("customer_name", "Customer"),
            text("phone", "Phone"),
            text("village", "Village"),
            text("branch_code", "Branch"),
            text("agent_name", "Agent"),
            text("product_code", "Product"),
            count("days_past_due", "Days past due"),
            text("bucket", "Bucket"),
            money("overdue_amount", "Overdue amount"),
            money("outstanding_principal", "Outstanding principal"),
            money("outstanding_total", "Outstanding total"),
            day("next_due_on", "Oldest unpaid due"),
            day("last_payment_on", "Last payment"),
            day("restructured_on", "Restructured on"),
        ],
        rows=rows,
        totals=totals,
        summary={"loans": len(rows), "min_dpd": max(min_dpd, 1)},
        summary_types={"loans": ColumnType.INT, "min_dpd": ColumnType.INT},
        reconciliation=reconciliation,
    )


async def _ledger_of_listed(session: AsyncSession, f: ReportFilters, min_dpd: int) -> Decimal:
    """The loan_portfolio balance of the loans the list shows."""
    listed = scoped_loans(f)
    return _dec(
        await session.scalar(
            select(_sum(JournalLine.debit - JournalLine.credit))
            .select_from(JournalLine)
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .join(listed, listed.c.loan_id == JournalLine.loan_id)
            .join(Loan, Loan.id == JournalLine.loan_id)
            .where(LedgerAccount.kind == AccountKind.LOAN_PORTFOLIO)
            .where(Loan.status == LoanStatus.ACTIVE)
            .where(Loan.days_past_due >= max(min_dpd, 1))
        )
    )
