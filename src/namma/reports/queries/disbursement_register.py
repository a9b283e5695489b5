"""Report 5: disbursement register (docs/reports.md)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    and_,
    case,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from namma.ledger.queries import DISBURSED_STATUSES
from namma.models import (
    AccountKind,
    Branch,
    Customer,
    JournalEntry,
    JournalLine,
    LedgerAccount,
    Loan,
    LoanProduct,
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
    money,
    text,
)
from namma.reports.queries.blocks import (
    _dec,
    _sum,
    ledger_disbursed,
    scoped_loans,
)


async def disbursement_register(session: AsyncSession, f: ReportFilters) -> Report:
    """Every loan disbursed in the period, with the split of its disbursement journal."""
    sl = scoped_loans(f)
    agent = aliased(User)
    parts = (
        select(
            JournalEntry.loan_id.label("loan_id"),
            _sum(
                case(
                    (
                        and_(
                            LedgerAccount.kind == AccountKind.FEE_INCOME,
                            JournalLine.loan_id == JournalEntry.loan_id,
                        ),
                        JournalLine.credit,
                    ),
                    else_=ZERO,
                )
            ).label("fees"),
            _sum(
                case(
                    (
                        LedgerAccount.kind.in_((AccountKind.BRANCH_CASH, AccountKind.BANK)),
                        JournalLine.credit - JournalLine.debit,
                    ),
                    else_=ZERO,
                )
            ).label("paid_out"),
        )
        .join(JournalLine, JournalLine.entry_id == JournalEntry.id)
        .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
        .where(JournalEntry.kind == "loan.disbursement")
        # The entry is dated the disbursement day: only the period's entries are summed.
        .where(JournalEntry.entry_date.between(f.date_from, f.date_to))
        .group_by(JournalEntry.loan_id)
        .subquery("disbursement_parts")
    )
    result = await session.execute(
        # Columns, not Loan entities: a month's register may hold thousands of loans.
        select(
            Loan.disbursed_on,
            Loan.loan_number,
            Customer.name,
            Branch.code,
            agent.name,
            LoanProduct.code,
            Loan.disbursement_method,
            Loan.installments,
            Loan.annual_rate,
            Loan.principal,
            func.coalesce(parts.c.fees, ZERO),
            Loan.net_disbursed,
            func.coalesce(parts.c.paid_out, ZERO),
            Loan.status,
        )
        .select_from(sl)
        .join(Loan, Loan.id == sl.c.loan_id)
        .join(Customer, Customer.id == Loan.customer_id)
        .join(Branch, Branch.id == Loan.branch_id)
        .join(LoanProduct, LoanProduct.id == sl.c.product_id)
        .outerjoin(agent, agent.id == sl.c.agent_id)
        .outerjoin(parts, parts.c.loan_id == Loan.id)
        .where(Loan.status.in_(DISBURSED_STATUSES))
        .where(Loan.disbursed_on.between(f.date_from, f.date_to))
        .order_by(Loan.disbursed_on, Loan.loan_number)
    )
    rows = []
    for (
        on,
        number,
        customer,
        branch,
        agent_name,
        product,
        method,
        installments,
        rate,
        principal,
        fees,
        net,
        paid_out,
        status,
    ) in result.all():
        rows.append(
            {
                "date": on,
                "loan_number": number,
                "customer_name": customer,
                "branch_code": branch,
                "agent_name": agent_name or "",
                "product_code": product,
                "method": method.value if method else "",
                "installments": installments,
                "annual_rate": str(rate),
                "principal": principal,
                "deducted_fees": _dec(fees),
                "net_disbursed": _dec(net),
                "refinanced_payoff": _dec(net) - _dec(paid_out),
                "paid_out": _dec(paid_out),
                "status": status.value,
            }
        )
    keys = ("principal", "deducted_fees", "net_disbursed", "refinanced_payoff", "paid_out")
    totals: dict[str, Any] = {k: sum((r[k] for r in rows), ZERO) for k in keys}
    totals["installments"] = None
    return Report(
        name="disbursements",
        title="Disbursement register",
        filters=f,
        columns=[
            day("date", "Date"),
            text("loan_number", "Loan"),
            text("customer_name", "Customer"),
            text("branch_code", "Branch"),
            text("agent_name", "Agent"),
            text("product_code", "Product"),
            text("method", "Method"),
            count("installments", "Installments"),
            text("annual_rate", "Annual rate %"),
            money("principal", "Principal"),
            money("deducted_fees", "Fees deducted"),
            money("net_disbursed", "Net disbursed"),
            money("refinanced_payoff", "Old loan paid off"),
            money("paid_out", "Paid out"),
            text("status", "Status now"),
        ],
        rows=rows,
        totals={k: v for k, v in totals.items() if v is not None},
        summary={"loans": len(rows)},
        summary_types={"loans": ColumnType.INT},
        reconciliation=[
            Reconciliation(
                "principal",
                "loan_portfolio debits of disbursements in the period",
                totals["principal"],
                await ledger_disbursed(session, sl, f),
            )
        ],
    )
