"""The portfolio reports: one function per report, each a few set-based SQL statements (no
per-loan Python loop), money as ``Decimal``. docs/reports.md defines every report, its columns
and how it reconciles with the ledger.

Building blocks shared by reports and dashboards:

- ``scoped_loans(f)``: the loans a request may see (branch, current agent, product);
- ``installment_demand(...)``: the dues of a period and what was collected against them — the
  one source of the collection rate (``base.collection_rate``);
- ``ledger_period_totals(...)``: income and expenses of a period from the ledger — the one
  source of profit (``base.profit``).

The agent of a loan is its customer's *current* agent (the open ``agent_assignments`` row).
Balances and days past due are the loan rows' current state (kept by collections and the
nightly close of business); buckets are computed here from ``loans.days_past_due``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CTE,
    ColumnElement,
    Date,
    Select,
    and_,
    case,
    cast,
    distinct,
    func,
    literal,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from namma.capital.queries import capital_summary
from namma.finance.owed import (
    demanded,
    owed,
    owed_fee,
    owed_interest,
    owed_penalty,
    owed_principal,
)
from namma.kit.clock import today_india
from namma.kit.sqltext import expression_of
from namma.ledger.queries import DISBURSED_STATUSES, normal_balance, trial_balance
from namma.models import (
    AccountKind,
    AccountType,
    AgentAssignment,
    Branch,
    Collection,
    CollectionAllocation,
    CollectionStatus,
    Customer,
    JournalEntry,
    JournalLine,
    LedgerAccount,
    Loan,
    LoanInstallment,
    LoanProduct,
    LoanProductVersion,
    LoanStatus,
    Role,
    User,
)
from namma.reports.base import (
    BUCKETS,
    PAR_THRESHOLDS,
    ZERO,
    ColumnType,
    Reconciliation,
    Report,
    ReportFilters,
    collection_rate,
    count,
    day,
    dpd_bucket,
    money,
    pct,
    percent,
    profit,
    text,
)

CASH_KINDS = (AccountKind.BRANCH_CASH, AccountKind.AGENT_CASH, AccountKind.BANK)
COLLECTION_KINDS = ("collection", "collection.recovery")
INCOME_KINDS = (
    AccountKind.INTEREST_INCOME,
    AccountKind.FEE_INCOME,
    AccountKind.PENALTY_INCOME,
    AccountKind.RECOVERY_INCOME,
)
AGING_BUCKETS: tuple[str, ...] = ("not overdue", "1-30", "31-60", "61-90", "90+")


def _sum(expr: Any) -> Any:
    return func.coalesce(func.sum(expr), ZERO)


def _dec(value: Any) -> Decimal:
    return ZERO if value is None else Decimal(value)


# --- building blocks -----------------------------------------------------------------------------


def scoped_loans(f: ReportFilters, *, by_agent: bool = True) -> CTE:
    """Every loan the filters select, with its branch, customer, current agent and product.

    ``by_agent=False`` ignores ``f.agent_id`` (a register that filters by the collector)."""
    query = (
        select(
            Loan.id.label("loan_id"),
            Loan.branch_id.label("branch_id"),
            Loan.customer_id.label("customer_id"),
            AgentAssignment.agent_id.label("agent_id"),
            LoanProductVersion.product_id.label("product_id"),
        )
        .join(LoanProductVersion, LoanProductVersion.id == Loan.product_version_id)
        .outerjoin(
            AgentAssignment,
            and_(
                AgentAssignment.customer_id == Loan.customer_id,
                AgentAssignment.ended_at.is_(None),
            ),
        )
    )
    if f.branch_id is not None:
        query = query.where(Loan.branch_id == f.branch_id)
    if by_agent and f.agent_id is not None:
        query = query.where(AgentAssignment.agent_id == f.agent_id)
    if f.product_id is not None:
        query = query.where(LoanProductVersion.product_id == f.product_id)
    return query.cte("scoped_loans")


def bucket_of(dpd: ColumnElement[int]) -> ColumnElement[str]:
    """``base.dpd_bucket`` in SQL."""
    return case(
        (dpd <= 0, BUCKETS[0]),
        (dpd <= 30, BUCKETS[1]),
        (dpd <= 60, BUCKETS[2]),
        (dpd <= 90, BUCKETS[3]),
        else_=BUCKETS[4],
    )


def installment_owed(i: Any = LoanInstallment) -> ColumnElement[Decimal]:
    """Everything an installment still owes (`namma.finance.owed.owed`, as SQL)."""
    return expression_of(owed, i)


def overdue_by_loan(today: dt.date) -> Any:
    """Per active loan: what its installments that fell due before ``today`` still owe."""
    return (
        select(
            LoanInstallment.loan_id.label("loan_id"),
            _sum(installment_owed()).label("overdue"),
        )
        .join(Loan, Loan.id == LoanInstallment.loan_id)
        .where(Loan.status == LoanStatus.ACTIVE)
        .where(LoanInstallment.due_date < today)
        .group_by(LoanInstallment.loan_id)
        .subquery("overdue_by_loan")
    )


def loan_end_date() -> ColumnElement[dt.date]:
    """The day a loan left the portfolio early (pre-closed, refinanced, written off), else NULL:
    installments due after it are no longer dues."""
    refinancing = aliased(Loan)
    return case(
        (
            Loan.status == LoanStatus.PRECLOSED,
            select(func.max(Collection.collected_on))
            .where(Collection.loan_id == Loan.id)
            .where(Collection.preclosure.is_(True))
            .where(Collection.status == CollectionStatus.POSTED)
            .scalar_subquery(),
        ),
        (
            Loan.status == LoanStatus.REFINANCED,
            select(func.min(refinancing.disbursed_on))
            .where(refinancing.refinances_id == Loan.id)
            .scalar_subquery(),
        ),
        (
            Loan.status == LoanStatus.WRITTEN_OFF,
            func.coalesce(
                select(func.min(JournalEntry.entry_date))
                .where(JournalEntry.loan_id == Loan.id)
                .where(JournalEntry.kind == "loan.write_off")
                .scalar_subquery(),
                cast(func.timezone("Asia/Kolkata", Loan.written_off_at), Date),
            ),
        ),
        else_=None,
    )


def installment_demand(sl: CTE, date_from: dt.date, date_to: dt.date) -> Any:
    """The dues of the period and what was collected against them, one row per installment.

    Dues: installments falling due in [from, to] of loans in scope that were still in the
    portfolio on the due date (see ``loan_end_date``): principal + interest + fees scheduled,
    less what was waived (penalties are charges for lateness, not dues). Collected against
    them: the principal, interest and fees that standing (not reversed) collections dated on or
    before ``to`` allocated to those installments, whenever they were paid (in advance, on
    time or late within the period). Columns: loan_id, branch_id, agent_id, due_date, due,
    collected.
    """
    paid = (
        select(
            CollectionAllocation.installment_id.label("installment_id"),
            _sum(
                CollectionAllocation.principal
                + CollectionAllocation.interest
                + CollectionAllocation.fee
            ).label("paid"),
        )
        .join(Collection, Collection.id == CollectionAllocation.collection_id)
        .join(LoanInstallment, LoanInstallment.id == CollectionAllocation.installment_id)
        .where(Collection.status == CollectionStatus.POSTED)
        .where(Collection.collected_on <= date_to)
        # Only the installments of the period: the aggregate never scans the whole history.
        .where(LoanInstallment.due_date.between(date_from, date_to))
        .group_by(CollectionAllocation.installment_id)
        .subquery("paid_against")
    )
    end = loan_end_date()
    return (
        select(
            sl.c.loan_id,
            sl.c.branch_id,
            sl.c.agent_id,
            LoanInstallment.due_date.label("due_date"),
            expression_of(demanded, LoanInstallment).label("due"),
            func.coalesce(paid.c.paid, ZERO).label("collected"),
        )
        .select_from(sl)
        .join(Loan, Loan.id == sl.c.loan_id)
        .join(LoanInstallment, LoanInstallment.loan_id == sl.c.loan_id)
        .outerjoin(paid, paid.c.installment_id == LoanInstallment.id)
        .where(LoanInstallment.due_date.between(date_from, date_to))
        .where(Loan.status.in_(DISBURSED_STATUSES))
        .where(or_(end.is_(None), LoanInstallment.due_date <= end))
        .subquery("demand")
    )


def collections_received(sl: CTE, date_from: dt.date, date_to: dt.date) -> Any:
    """What collections brought in during the period, net of the reversals made in it — the
    movement of the ledger's cash and bank accounts by collection entries in the period, so it
    reconciles for any period: one row per collection dated in the period on a loan in scope,
    whatever its status now (+amount, n = +1), and one per reversal posted in the period
    (−amount, n = −1, on the reversal's date). A collection reversed after the period counts
    in it, as it did in the books. Columns: loan_id, branch_id, agent_id (the loan's agent),
    collected_by_id, collected_on (the row's day), amount, n."""
    reversal = aliased(JournalEntry)
    columns = (sl.c.loan_id, sl.c.branch_id, sl.c.agent_id, Collection.collected_by_id)
    posted = (
        select(
            *columns,
            Collection.collected_on.label("collected_on"),
            Collection.amount.label("amount"),
            literal(1).label("n"),
        )
        .select_from(sl)
        .join(Collection, Collection.loan_id == sl.c.loan_id)
        .where(Collection.collected_on.between(date_from, date_to))
    )
    reversed_ = (
        select(
            *columns,
            reversal.entry_date.label("collected_on"),
            (ZERO - Collection.amount).label("amount"),
            literal(-1).label("n"),
        )
        .select_from(sl)
        .join(Collection, Collection.loan_id == sl.c.loan_id)
        .join(reversal, reversal.id == Collection.reversal_entry_id)
        .where(reversal.entry_date.between(date_from, date_to))
    )
    return union_all(posted, reversed_).subquery("received")


async def ledger_portfolio(session: AsyncSession, sl: CTE) -> Decimal:
    """The ``loan_portfolio`` balance (Dr − Cr) of the lines tagged with the loans in scope."""
    value = await session.scalar(
        select(_sum(JournalLine.debit - JournalLine.credit))
        .select_from(JournalLine)
        .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
        .join(sl, sl.c.loan_id == JournalLine.loan_id)
        .where(LedgerAccount.kind == AccountKind.LOAN_PORTFOLIO)
    )
    return _dec(value)


async def ledger_disbursed(session: AsyncSession, sl: CTE, f: ReportFilters) -> Decimal:
    """Portfolio debits, tagged with the disbursed loan, of disbursements dated in the period."""
    value = await session.scalar(
        select(_sum(JournalLine.debit))
        .select_from(JournalLine)
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
        .join(sl, sl.c.loan_id == JournalEntry.loan_id)
        .where(JournalEntry.kind == "loan.disbursement")
        .where(JournalLine.loan_id == JournalEntry.loan_id)
        .where(LedgerAccount.kind == AccountKind.LOAN_PORTFOLIO)
        .where(JournalEntry.entry_date.between(f.date_from, f.date_to))
    )
    return _dec(value)


@dataclasses.dataclass(frozen=True)
class PeriodTotal:
    branch_id: uuid.UUID | None
    kind: AccountKind
    type: AccountType
    amount: Decimal  # in the account's normal direction


async def ledger_period_totals(
    session: AsyncSession, f: ReportFilters, *, types: Sequence[AccountType]
) -> list[PeriodTotal]:
    """Per entry branch and account kind: the movement of the period's entries (dated in
    [from, to]) on accounts of ``types``, in their normal direction — income and expenses of the
    period, the basis of profit. A branch filter keeps that branch's entries (as the trial
    balance does); an agent or product filter keeps the lines tagged with the selected loans."""
    query = (
        select(
            JournalEntry.branch_id,
            LedgerAccount.kind,
            LedgerAccount.type,
            _sum(JournalLine.debit),
            _sum(JournalLine.credit),
        )
        .select_from(JournalLine)
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
        .where(LedgerAccount.type.in_(list(types)))
        .where(JournalEntry.entry_date.between(f.date_from, f.date_to))
        .group_by(JournalEntry.branch_id, LedgerAccount.kind, LedgerAccount.type)
    )
    if f.branch_id is not None:
        query = query.where(JournalEntry.branch_id == f.branch_id)
    if f.narrows_loans:
        sl = scoped_loans(f)
        query = query.join(sl, sl.c.loan_id == JournalLine.loan_id)
    return [
        PeriodTotal(branch_id, kind, account_type, normal_balance(account_type, _dec(d), _dec(c)))
        for branch_id, kind, account_type, d, c in (await session.execute(query)).all()
    ]


async def income_and_expenses(
    session: AsyncSession, f: ReportFilters
) -> dict[uuid.UUID | None, tuple[Decimal, Decimal]]:
    """(income, expenses) of the period per entry branch (``None``: head office)."""
    out: dict[uuid.UUID | None, tuple[Decimal, Decimal]] = {}
    for t in await ledger_period_totals(
        session, f, types=(AccountType.INCOME, AccountType.EXPENSE)
    ):
        income, expenses = out.get(t.branch_id, (ZERO, ZERO))
        if t.type is AccountType.INCOME:
            income += t.amount
        else:
            expenses += t.amount
        out[t.branch_id] = (income, expenses)
    return out


async def _branches(session: AsyncSession, ids: Iterable[uuid.UUID | None]) -> dict[Any, Branch]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.scalars(select(Branch).where(Branch.id.in_(wanted)))
    return {b.id: b for b in rows}


async def _users(session: AsyncSession, ids: Iterable[uuid.UUID | None]) -> dict[Any, User]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = await session.scalars(select(User).where(User.id.in_(wanted)))
    return {u.id: u for u in rows}


def _par(outstanding: Decimal, at_risk: dict[int, Decimal]) -> dict[str, Decimal | None]:
    return {f"par_{n}": percent(at_risk.get(n, ZERO), outstanding) for n in PAR_THRESHOLDS}


def _par_sums(principal: Any, dpd: Any) -> list[Any]:
    """Σ principal at risk for PAR1, PAR30, PAR90 (``base.PAR_THRESHOLDS``), in that order."""
    return [_sum(case((dpd >= least, principal), else_=ZERO)) for least in PAR_THRESHOLDS.values()]


# --- 1. portfolio summary ----------------------------------------------------------------------


async def portfolio_summary(session: AsyncSession, f: ReportFilters) -> Report:
    """Per branch: the active portfolio now (loans, customers, outstanding by component,
    overdue, PAR) and the period's flows (disbursed, due, collected against dues, collection
    rate, collected)."""
    today = today_india()
    sl = scoped_loans(f)
    overdue = overdue_by_loan(today)
    stock = await session.execute(
        select(
            sl.c.branch_id,
            func.count(Loan.id),
            func.count(distinct(Loan.customer_id)),
            _sum(Loan.outstanding_principal),
            _sum(Loan.outstanding_interest),
            _sum(Loan.outstanding_fees),
            _sum(Loan.outstanding_penalties),
            _sum(func.coalesce(overdue.c.overdue, ZERO)),
            *_par_sums(Loan.outstanding_principal, Loan.days_past_due),
        )
        .select_from(sl)
        .join(Loan, Loan.id == sl.c.loan_id)
        .outerjoin(overdue, overdue.c.loan_id == Loan.id)
        .where(Loan.status == LoanStatus.ACTIVE)
        .group_by(sl.c.branch_id)
    )
    rows: dict[uuid.UUID, dict[str, Any]] = defaultdict(dict)
    for branch_id, loans, customers, op, oi, of, opn, od, p1, p30, p90 in stock.all():
        rows[branch_id].update(
            active_loans=loans,
            active_customers=customers,
            outstanding_principal=_dec(op),
            outstanding_interest=_dec(oi),
            outstanding_fees=_dec(of),
            outstanding_penalties=_dec(opn),
            overdue_amount=_dec(od),
            _risk={1: _dec(p1), 30: _dec(p30), 90: _dec(p90)},
        )
    disbursed = await session.execute(
        select(sl.c.branch_id, func.count(Loan.id), _sum(Loan.principal))
        .select_from(sl)
        .join(Loan, Loan.id == sl.c.loan_id)
        .where(Loan.status.in_(DISBURSED_STATUSES))
        .where(Loan.disbursed_on.between(f.date_from, f.date_to))
        .group_by(sl.c.branch_id)
    )
    for branch_id, n, amount in disbursed.all():
        rows[branch_id].update(disbursed_count=n, disbursed_amount=_dec(amount))
    demand = installment_demand(sl, f.date_from, f.date_to)
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
    count_keys = ("active_loans", "active_customers", "disbursed_count")
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
        reconciliation=[
            Reconciliation(
                "outstanding_principal",
                "loan_portfolio balance",
                totals["outstanding_principal"],
                await ledger_portfolio(session, sl),
            ),
            Reconciliation(
                "disbursed_amount",
                "loan_portfolio debits of disbursements in the period",
                totals["disbursed_amount"],
                await ledger_disbursed(session, sl, f),
            ),
        ],
    )


# --- 2. PAR by bucket ----------------------------------------------------------------------------


async def par_report(session: AsyncSession, f: ReportFilters) -> Report:
    """Active loans by days-past-due bucket, with PAR1/PAR30/PAR90."""
    today = today_india()
    sl = scoped_loans(f)
    overdue = overdue_by_loan(today)
    bucket = bucket_of(Loan.days_past_due.expression)
    result = await session.execute(
        select(
            bucket,
            func.count(Loan.id),
            _sum(Loan.outstanding_principal),
            _sum(func.coalesce(overdue.c.overdue, ZERO)),
        )
        .select_from(sl)
        .join(Loan, Loan.id == sl.c.loan_id)
        .outerjoin(overdue, overdue.c.loan_id == Loan.id)
        .where(Loan.status == LoanStatus.ACTIVE)
        .group_by(bucket)
    )
    found = {b: (n, _dec(p), _dec(o)) for b, n, p, o in result.all()}
    total = sum((v[1] for v in found.values()), ZERO)
    rows = []
    for b in BUCKETS:
        n, principal, od = found.get(b, (0, ZERO, ZERO))
        rows.append(
            {
                "bucket": b,
                "loans": n,
                "outstanding_principal": principal,
                "share": percent(principal, total),
                "overdue_amount": od,
            }
        )
    risk = await session.execute(
        select(*_par_sums(Loan.outstanding_principal, Loan.days_past_due))
        .select_from(sl)
        .join(Loan, Loan.id == sl.c.loan_id)
        .where(Loan.status == LoanStatus.ACTIVE)
    )
    p1, p30, p90 = (_dec(v) for v in risk.one())
    summary: dict[str, Any] = {
        "portfolio_outstanding": total,
        "at_risk_1": p1,
        "at_risk_30": p30,
        "at_risk_90": p90,
    } | _par(total, {1: p1, 30: p30, 90: p90})
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
            "at_risk_90": ColumnType.MONEY,
            "par_1": ColumnType.PERCENT,
            "par_30": ColumnType.PERCENT,
            "par_90": ColumnType.PERCENT,
        },
        reconciliation=[
            Reconciliation(
                "outstanding_principal",
                "loan_portfolio balance",
                total,
                await ledger_portfolio(session, sl),
            )
        ],
    )


# --- 3. demand vs collection -----------------------------------------------------------------


async def demand_collection(session: AsyncSession, f: ReportFilters) -> Report:
    """Per day, branch and agent: the dues falling due that day, what was collected against
    them (by the period's end), the shortfall and the collection rate; and the money received
    that day on the agent's loans."""
    sl = scoped_loans(f)
    demand = installment_demand(sl, f.date_from, f.date_to)
    key: dict[tuple[dt.date, uuid.UUID, uuid.UUID | None], dict[str, Any]] = defaultdict(dict)
    for due_date, branch_id, agent_id, loans, due, against in (
        await session.execute(
            select(
                demand.c.due_date,
                demand.c.branch_id,
                demand.c.agent_id,
                func.count(distinct(demand.c.loan_id)),
                _sum(demand.c.due),
                _sum(demand.c.collected),
            ).group_by(demand.c.due_date, demand.c.branch_id, demand.c.agent_id)
        )
    ).all():
        key[(due_date, branch_id, agent_id)].update(
            loans_due=loans, due_amount=_dec(due), collected_against_due=_dec(against)
        )
    received = collections_received(sl, f.date_from, f.date_to)
    for on, branch_id, agent_id, n, amount in (
        await session.execute(
            select(
                received.c.collected_on,
                received.c.branch_id,
                received.c.agent_id,
                func.sum(received.c.n),
                _sum(received.c.amount),
            ).group_by(received.c.collected_on, received.c.branch_id, received.c.agent_id)
        )
    ).all():
        key[(on, branch_id, agent_id)].update(collections=n, collected_amount=_dec(amount))
    branches = await _branches(session, (k[1] for k in key))
    agents = await _users(session, (k[2] for k in key))
    rows = []
    for (on, branch_id, agent_id), r in sorted(
        key.items(),
        key=lambda kv: (
            kv[0][0],
            branches[kv[0][1]].code,
            agents[kv[0][2]].name if kv[0][2] in agents else "",
        ),
    ):
        due = r.get("due_amount", ZERO)
        against = r.get("collected_against_due", ZERO)
        rows.append(
            {
                "date": on,
                "branch_code": branches[branch_id].code,
                "agent_name": agents[agent_id].name if agent_id in agents else "(unassigned)",
                "loans_due": r.get("loans_due", 0),
                "due_amount": due,
                "collected_against_due": against,
                "shortfall": due - against,
                "collection_rate": collection_rate(against, due),
                "collections": r.get("collections", 0),
                "collected_amount": r.get("collected_amount", ZERO),
            }
        )
    totals: dict[str, Any] = {
        k: sum((r[k] for r in rows), ZERO)
        for k in ("due_amount", "collected_against_due", "shortfall", "collected_amount")
    }
    totals["loans_due"] = sum(r["loans_due"] for r in rows)
    totals["collections"] = sum(r["collections"] for r in rows)
    totals["collection_rate"] = collection_rate(
        totals["collected_against_due"], totals["due_amount"]
    )
    return Report(
        name="demand-collection",
        title="Demand vs collection",
        filters=f,
        columns=[
            day("date", "Date"),
            text("branch_code", "Branch"),
            text("agent_name", "Agent"),
            count("loans_due", "Loans due"),
            money("due_amount", "Due"),
            money("collected_against_due", "Collected against due"),
            money("shortfall", "Shortfall"),
            pct("collection_rate", "Collection rate %"),
            count("collections", "Collections"),
            money("collected_amount", "Collected"),
        ],
        rows=rows,
        totals=totals,
    )


# --- 4. collection register ------------------------------------------------------------------


REALLOCATION_KINDS = ("collection.reallocation", "collection.reversal_reallocation")
SPLIT_PARTS: dict[str, AccountKind] = {
    "principal": AccountKind.LOAN_PORTFOLIO,
    "interest": AccountKind.INTEREST_INCOME,
    "fee": AccountKind.FEE_INCOME,
    "penalty": AccountKind.PENALTY_INCOME,
    "recovery": AccountKind.RECOVERY_INCOME,
}


def collection_entry(entry: Any = JournalEntry) -> ColumnElement[bool]:
    """An entry a collection posted: the collection or recovery, its reversal, a re-allocation."""
    is_collection: ColumnElement[bool] = or_(
        entry.kind == "collection", entry.kind.like("collection.%")
    )
    return is_collection


def entry_splits(date_from: dt.date, date_to: dt.date) -> Any:
    """Per collection entry dated in the period: what it moved on each account, in the
    account's normal direction for a collection — cash (debit − credit of cash and bank) and
    principal, interest, fee, penalty, recovery (credit − debit). A reversal's are negative."""
    return (
        select(
            JournalLine.entry_id.label("entry_id"),
            _sum(
                case(
                    (LedgerAccount.kind.in_(CASH_KINDS), JournalLine.debit - JournalLine.credit),
                    else_=ZERO,
                )
            ).label("cash"),
            *(
                _sum(
                    case(
                        (LedgerAccount.kind == kind, JournalLine.credit - JournalLine.debit),
                        else_=ZERO,
                    )
                ).label(part)
                for part, kind in SPLIT_PARTS.items()
            ),
        )
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
        .where(collection_entry())
        .where(JournalEntry.entry_date.between(date_from, date_to))
        .group_by(JournalLine.entry_id)
        .subquery("entry_splits")
    )


async def collection_register(session: AsyncSession, f: ReportFilters) -> Report:
    """The period's collection journal, row by row: every collection dated in the period with
    the split it was posted with, every reversal made in the period (negative, on its date), and
    every re-allocation the period's reversals caused on later receipts (amount 0, the split
    moving between principal and income). So every column's total is the ledger's movement in
    the period, for any period. ``agent_id`` selects the collector."""
    sl = scoped_loans(f, by_agent=False)
    collector = aliased(User)
    entry = aliased(JournalEntry)
    split = entry_splits(f.date_from, f.date_to)
    parts = ("amount", *SPLIT_PARTS)
    names = (Loan.loan_number, Customer.name, Branch.code)

    def of_collections(link: Any, kind: str) -> Select[Any]:
        query = (
            select(
                literal(kind).label("entry"),
                entry.entry_date,
                Collection,
                *names,
                collector.name,
                split.c.cash,
                *(split.c[p] for p in SPLIT_PARTS),
            )
            .select_from(sl)
            .join(Collection, Collection.loan_id == sl.c.loan_id)
            .join(entry, entry.id == link)
            .join(split, split.c.entry_id == entry.id)
            .join(Loan, Loan.id == Collection.loan_id)
            .join(Customer, Customer.id == Loan.customer_id)
            .join(Branch, Branch.id == Collection.branch_id)
            .join(collector, collector.id == Collection.collected_by_id)
        )
        if f.agent_id is not None:
            query = query.where(Collection.collected_by_id == f.agent_id)
        return query

    # A re-allocation names its receipt in the memo ("Receipt R…: …", "Receipt R… re-allocated
    # …"): that links it to the collection, hence to the collector.
    receipt = func.substring(entry.memo, r"^Receipt ([^ :]+)")
    made_by = aliased(User)
    reallocations = (
        select(
            literal("re-allocation").label("entry"),
            entry.entry_date,
            Collection,
            *names,
            func.coalesce(collector.name, made_by.name),
            split.c.cash,
            *(split.c[p] for p in SPLIT_PARTS),
            receipt,
        )
        .select_from(sl)
        .join(entry, entry.loan_id == sl.c.loan_id)
        .join(split, split.c.entry_id == entry.id)
        .join(Loan, Loan.id == entry.loan_id)
        .join(Customer, Customer.id == Loan.customer_id)
        .join(Branch, Branch.id == entry.branch_id)
        .outerjoin(
            Collection,
            and_(Collection.loan_id == entry.loan_id, Collection.receipt_number == receipt),
        )
        .outerjoin(collector, collector.id == Collection.collected_by_id)
        .outerjoin(made_by, made_by.id == entry.created_by_id)
        .where(entry.kind.in_(REALLOCATION_KINDS))
    )
    if f.agent_id is not None:
        reallocations = reallocations.where(Collection.collected_by_id == f.agent_id)

    rows: list[dict[str, Any]] = []
    results = [
        *(await session.execute(of_collections(Collection.journal_entry_id, "collection"))).all(),
        *(await session.execute(of_collections(Collection.reversal_entry_id, "reversal"))).all(),
        *(await session.execute(reallocations)).all(),
    ]
    for kind, on, c, loan_number, customer, branch, by, cash, *amounts in results:
        rows.append(
            {
                "date": on,
                "entry": kind,
                "receipt_number": c.receipt_number if c is not None else (amounts[-1] or ""),
                "loan_number": loan_number,
                "customer_name": customer,
                "branch_code": branch,
                "collected_by": by or "",
                "method": c.method.value if c is not None else "",
                "preclosure": "yes" if c is not None and c.preclosure else "",
                "status": c.status.value if c is not None else "",
                "amount": _dec(cash),
            }
            | {p: _dec(v) for p, v in zip(SPLIT_PARTS, amounts, strict=False)}
        )
    order = {"collection": 0, "reversal": 1, "re-allocation": 2}
    rows.sort(key=lambda r: (r["date"], order[r["entry"]], r["receipt_number"]))
    totals: dict[str, Any] = {p: sum((r[p] for r in rows), ZERO) for p in parts}
    gross = sum((r["amount"] for r in rows if r["entry"] == "collection"), ZERO)
    reversals = sum((-r["amount"] for r in rows if r["entry"] == "reversal"), ZERO)

    # The ledger, independently of the rows: the period's collection entries of the loans in
    # scope (by the entry's loan), or with a collector, the cash they took into their account.
    reconciliation = []
    if f.agent_id is None:
        ledger = (
            await session.execute(
                select(*(_sum(split.c[p]) for p in ("cash", *SPLIT_PARTS)))
                .select_from(split)
                .join(entry, entry.id == split.c.entry_id)
                .join(sl, sl.c.loan_id == entry.loan_id)
            )
        ).one()
        accounts = ("cash and bank", *(k.value for k in SPLIT_PARTS.values()))
        for part, account, amount in zip(parts, accounts, ledger, strict=True):
            reconciliation.append(
                Reconciliation(
                    part,
                    f"{account} movement of the period's collection entries",
                    totals[part],
                    _dec(amount),
                )
            )
    else:
        taken = await session.scalar(
            select(_sum(JournalLine.debit - JournalLine.credit))
            .select_from(JournalLine)
            .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .join(sl, sl.c.loan_id == JournalEntry.loan_id)
            .where(collection_entry())
            .where(JournalEntry.entry_date.between(f.date_from, f.date_to))
            .where(LedgerAccount.kind == AccountKind.AGENT_CASH)
            .where(LedgerAccount.agent_id == f.agent_id)
        )
        reconciliation.append(
            Reconciliation(
                "amount",
                "the collector's agent cash movement by the period's collection entries",
                totals["amount"],
                _dec(taken),
            )
        )
    return Report(
        name="collections",
        title="Collection register",
        filters=f,
        columns=[
            day("date", "Date"),
            text("entry", "Entry"),
            text("receipt_number", "Receipt"),
            text("loan_number", "Loan"),
            text("customer_name", "Customer"),
            text("branch_code", "Branch"),
            text("collected_by", "Collected by"),
            text("method", "Method"),
            text("preclosure", "Pre-closure"),
            text("status", "Status now"),
            money("amount", "Amount"),
            money("principal", "Principal"),
            money("interest", "Interest"),
            money("fee", "Fees"),
            money("penalty", "Penalties"),
            money("recovery", "Recovery"),
        ],
        rows=rows,
        totals=totals,
        summary={"gross": gross, "reversals": reversals, "net": gross - reversals},
        summary_types=dict.fromkeys(("gross", "reversals", "net"), ColumnType.MONEY),
        reconciliation=reconciliation,
    )


# --- 5. disbursement register ----------------------------------------------------------------


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


# --- 6. agent performance --------------------------------------------------------------------


async def agent_performance(session: AsyncSession, f: ReportFilters) -> Report:
    """Per agent: customers, active loans, outstanding principal, PAR of their portfolio, the
    period's dues and what was collected against them (collection efficiency), and what they
    collected themselves. Loans of customers with no current agent form their own row, so the
    outstanding column adds up to the portfolio."""
    today = today_india()
    sl = scoped_loans(f)
    by_agent: dict[uuid.UUID | None, dict[str, Any]] = defaultdict(dict)

    staff = select(User.id).where(User.role == Role.AGENT).where(User.is_active.is_(True))
    if f.branch_id is not None:
        staff = staff.where(User.branch_id == f.branch_id)
    if f.agent_id is not None:
        staff = staff.where(User.id == f.agent_id)
    if not f.narrows_loans or f.agent_id is not None:
        # Every (active) agent in scope appears, even with nothing to show yet.
        for (agent_id,) in (await session.execute(staff)).all():
            by_agent[agent_id]
    customers_q = (
        select(AgentAssignment.agent_id, func.count(distinct(AgentAssignment.customer_id)))
        .join(Customer, Customer.id == AgentAssignment.customer_id)
        .where(AgentAssignment.ended_at.is_(None))
        .group_by(AgentAssignment.agent_id)
    )
    if f.branch_id is not None:
        customers_q = customers_q.where(Customer.branch_id == f.branch_id)
    if f.agent_id is not None:
        customers_q = customers_q.where(AgentAssignment.agent_id == f.agent_id)
    if f.product_id is None:
        for agent_id, n in (await session.execute(customers_q)).all():
            by_agent[agent_id]["customers"] = n
    stock = await session.execute(
        select(
            sl.c.agent_id,
            func.count(Loan.id),
            func.count(distinct(Loan.customer_id)),
            _sum(Loan.outstanding_principal),
            *_par_sums(Loan.outstanding_principal, Loan.days_past_due),
        )
        .select_from(sl)
        .join(Loan, Loan.id == sl.c.loan_id)
        .where(Loan.status == LoanStatus.ACTIVE)
        .group_by(sl.c.agent_id)
    )
    for agent_id, loans, borrowers, op, p1, p30, p90 in stock.all():
        by_agent[agent_id].update(
            active_loans=loans,
            active_customers=borrowers,
            outstanding_principal=_dec(op),
            _risk={1: _dec(p1), 30: _dec(p30), 90: _dec(p90)},
        )
    demand = installment_demand(sl, f.date_from, f.date_to)
    for agent_id, due, against in (
        await session.execute(
            select(demand.c.agent_id, _sum(demand.c.due), _sum(demand.c.collected)).group_by(
                demand.c.agent_id
            )
        )
    ).all():
        by_agent[agent_id].update(due_amount=_dec(due), collected_against_due=_dec(against))
    # What each agent collected in person (any loan in scope), standing collections.
    received = collections_received(scoped_loans(f, by_agent=False), f.date_from, f.date_to)
    collected_q = select(
        received.c.collected_by_id, func.sum(received.c.n), _sum(received.c.amount)
    ).group_by(received.c.collected_by_id)
    if f.agent_id is not None:
        collected_q = collected_q.where(received.c.collected_by_id == f.agent_id)
    collected_rows = (await session.execute(collected_q)).all()
    collectors = await _users(session, [r[0] for r in collected_rows])
    for collector_id, n, amount in collected_rows:
        if collectors[collector_id].role is Role.AGENT:
            by_agent[collector_id].update(collections=n, collected_amount=_dec(amount))
    agents = await _users(session, by_agent)
    branches = await _branches(session, (a.branch_id for a in agents.values()))
    rows = []
    for agent_key, r in sorted(
        by_agent.items(),
        key=lambda kv: (kv[0] is None, agents[kv[0]].name if kv[0] in agents else ""),
    ):
        agent = agents.get(agent_key)
        outstanding = r.get("outstanding_principal", ZERO)
        due = r.get("due_amount", ZERO)
        against = r.get("collected_against_due", ZERO)
        rows.append(
            {
                "agent_name": agent.name if agent else "(unassigned)",
                "branch_code": branches[agent.branch_id].code
                if agent and agent.branch_id in branches
                else "",
                "customers": r.get("customers", r.get("active_customers", 0)),
                "active_loans": r.get("active_loans", 0),
                "outstanding_principal": outstanding,
                **_par(outstanding, r.get("_risk", {})),
                "due_amount": due,
                "collected_against_due": against,
                "collection_efficiency": collection_rate(against, due),
                "collections": r.get("collections", 0),
                "collected_amount": r.get("collected_amount", ZERO),
            }
        )
    money_keys = ("outstanding_principal", "due_amount", "collected_against_due")
    totals: dict[str, Any] = {k: sum((r[k] for r in rows), ZERO) for k in money_keys}
    totals["collected_amount"] = sum((r["collected_amount"] for r in rows), ZERO)
    totals["active_loans"] = sum(r["active_loans"] for r in rows)
    totals["collections"] = sum(r["collections"] for r in rows)
    totals["collection_efficiency"] = collection_rate(
        totals["collected_against_due"], totals["due_amount"]
    )
    risk = {
        n: sum((_dec(by_agent[a].get("_risk", {}).get(n)) for a in by_agent), ZERO)
        for n in (1, 30, 90)
    }
    totals |= _par(totals["outstanding_principal"], risk)
    return Report(
        name="agent-performance",
        title="Agent performance",
        filters=f,
        as_of=today,
        columns=[
            text("agent_name", "Agent"),
            text("branch_code", "Branch"),
            count("customers", "Customers"),
            count("active_loans", "Active loans"),
            money("outstanding_principal", "Outstanding principal"),
            pct("par_1", "PAR1 %"),
            pct("par_30", "PAR30 %"),
            pct("par_90", "PAR90 %"),
            money("due_amount", "Due"),
            money("collected_against_due", "Collected against due"),
            pct("collection_efficiency", "Collection efficiency %"),
            count("collections", "Collections made"),
            money("collected_amount", "Collected in person"),
        ],
        rows=rows,
        totals=totals,
        reconciliation=[
            Reconciliation(
                "outstanding_principal",
                "loan_portfolio balance",
                totals["outstanding_principal"],
                await ledger_portfolio(session, sl),
            )
        ],
    )


# --- 7. overdue / defaulter list -------------------------------------------------------------


async def overdue_list(session: AsyncSession, f: ReportFilters, *, min_dpd: int = 1) -> Report:
    """Active loans at least ``min_dpd`` days past due, the longest overdue first."""
    today = today_india()
    sl = scoped_loans(f)
    overdue = overdue_by_loan(today)
    agent = aliased(User)
    last_paid = (
        select(Collection.loan_id.label("loan_id"), func.max(Collection.collected_on).label("on"))
        .join(Loan, Loan.id == Collection.loan_id)
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
            Loan.loan_number,
            Customer.name,
            Customer.phone,
            Customer.village,
            Branch.code,
            agent.name,
            LoanProduct.code,
            Loan.days_past_due,
            func.coalesce(overdue.c.overdue, ZERO),
            Loan.outstanding_principal,
            outstanding_total,
            Loan.next_due_on,
            last_paid.c.on,
        )
        .select_from(sl)
        .join(Loan, Loan.id == sl.c.loan_id)
        .join(Customer, Customer.id == Loan.customer_id)
        .join(Branch, Branch.id == Loan.branch_id)
        .join(LoanProduct, LoanProduct.id == sl.c.product_id)
        .outerjoin(agent, agent.id == sl.c.agent_id)
        .outerjoin(overdue, overdue.c.loan_id == Loan.id)
        .outerjoin(last_paid, last_paid.c.loan_id == Loan.id)
        .where(Loan.status == LoanStatus.ACTIVE)
        .where(Loan.days_past_due >= max(min_dpd, 1))
        .order_by(Loan.days_past_due.desc(), Loan.loan_number)
    )
    rows = []
    for (
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
    ) in result.all():
        rows.append(
            {
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
            }
        )
    keys = ("overdue_amount", "outstanding_principal", "outstanding_total")
    totals: dict[str, Any] = {k: sum((r[k] for r in rows), ZERO) for k in keys}
    listed = scoped_loans(f)
    ledger = _dec(
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
        ],
        rows=rows,
        totals=totals,
        summary={"loans": len(rows), "min_dpd": max(min_dpd, 1)},
        summary_types={"loans": ColumnType.INT, "min_dpd": ColumnType.INT},
        reconciliation=[
            Reconciliation(
                "outstanding_principal",
                "loan_portfolio balance of the listed loans",
                totals["outstanding_principal"],
                ledger,
            )
        ],
    )


# --- 8. loan aging -----------------------------------------------------------------------------


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
                await ledger_portfolio(session, sl),
            )
        ],
    )


# --- 9. interest and fee income --------------------------------------------------------------


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


# --- 10. trial balance -------------------------------------------------------------------------


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


# --- 11. income statement ----------------------------------------------------------------------


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


# --- 12. capital utilisation -------------------------------------------------------------------


async def capital_utilisation(session: AsyncSession, f: ReportFilters) -> Report:
    """The capital summary (``namma.capital.queries.capital_summary``) beside the ledger."""
    summary = await capital_summary(session)
    balances: dict[AccountKind, Decimal] = {}
    for kind, account_type, d, c in (
        await session.execute(
            select(
                LedgerAccount.kind,
                LedgerAccount.type,
                _sum(JournalLine.debit),
                _sum(JournalLine.credit),
            )
            .join(JournalLine, JournalLine.account_id == LedgerAccount.id)
            .where(
                LedgerAccount.kind.in_(
                    (AccountKind.CAPITAL, AccountKind.BORROWINGS, AccountKind.LOAN_PORTFOLIO)
                )
            )
            .group_by(LedgerAccount.kind, LedgerAccount.type)
        )
    ).all():
        balances[kind] = normal_balance(account_type, _dec(d), _dec(c))
    items = [
        ("own_capital", "Own capital (investments)", AccountKind.CAPITAL),
        ("borrowings_outstanding", "Borrowings outstanding", AccountKind.BORROWINGS),
        ("total_capital", "Total capital", None),
        ("disbursed_outstanding", "Loans outstanding (principal)", AccountKind.LOAN_PORTFOLIO),
        ("surplus", "Surplus (negative: deficit)", None),
    ]
    rows = [{"item": label, "key": key, "amount": Decimal(summary[key])} for key, label, _ in items]
    utilisation = summary["utilisation_percent"]
    return Report(
        name="capital-utilisation",
        title="Capital utilisation",
        filters=dataclasses.replace(f, branch_id=None, agent_id=None, product_id=None),
        as_of=today_india(),
        uses_dates=False,
        columns=[text("item", "Item"), text("key", "Key"), money("amount", "Amount")],
        rows=rows,
        summary={
            "utilisation_percent": Decimal(utilisation) if utilisation is not None else None,
            "position": summary["position"],
        },
        summary_types={"utilisation_percent": ColumnType.PERCENT},
        reconciliation=[
            Reconciliation(
                key, f"{kind.value} balance", Decimal(summary[key]), balances.get(kind, ZERO)
            )
            for key, _, kind in items
            if kind is not None
        ],
    )
