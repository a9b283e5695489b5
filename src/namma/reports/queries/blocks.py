"""Building blocks shared by the reports and the dashboards (see the package docstring): the
loans in scope, arrears and demand (the money core's rules as SQL), collections received, the
ledger's portfolio and period totals."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable, Iterator, Sequence
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
    func,
    literal,
    null,
    or_,
    select,
    union_all,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from namma.finance.owed import (
    demanded,
    owed,
)
from namma.kit.clock import today_india
from namma.kit.db import transaction_cache
from namma.kit.replica import reads_standby
from namma.kit.sqltext import expression_of
from namma.ledger.queries import DISBURSED_STATUSES, normal_balance
from namma.models import (
    AccountKind,
    AccountType,
    AgentAssignment,
    Branch,
    Collection,
    CollectionAllocation,
    CollectionStatus,
    InstallmentStatus,
    JournalEntry,
    JournalLine,
    LedgerAccount,
    Loan,
    LoanInstallment,
    LoanProductVersion,
    LoanStatus,
    User,
)
from namma.reports.base import (
    BUCKETS,
    PAR_THRESHOLDS,
    ZERO,
    ReportFilters,
    percent,
)
from namma.reports.kept import SnapshotRead, entries_unseen_by, kept_sums, with_snapshot

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
    # Not materialized: a statement that reads it twice would otherwise compute every loan of
    # the scope first and join it by hashing, where the planner, seeing through it, reads the
    # branch's loans by index (3-4x faster at 100,000 loans; D-177).
    return query.cte("scoped_loans").prefix_with("NOT MATERIALIZED")


def loans_in_scope(query: Select[Any], f: ReportFilters) -> Select[Any]:
    """``query``, which reads ``Loan``, limited to the loans ``scoped_loans(f)`` selects —
    without a second pass over the loans: a statement that joins ``scoped_loans`` (a CTE over
    the loans) to ``Loan`` reads and hashes the loan table twice, a self-join PostgreSQL cannot
    remove (at 100,000 loans half of a dashboard statement's time, D-179). For the statements
    that need only the loans' own columns; one that reports by agent or product joins
    ``scoped_loans``."""
    if f.branch_id is not None:
        query = query.where(Loan.branch_id == f.branch_id)
    if f.agent_id is not None:
        current = aliased(AgentAssignment)  # the statement may join the assignments itself
        query = query.where(
            select(current.customer_id)
            .where(current.customer_id == Loan.customer_id)
            .where(current.ended_at.is_(None))
            .where(current.agent_id == f.agent_id)
            .correlate(Loan)
            .exists()
        )
    if f.product_id is not None:
        query = query.where(
            Loan.product_version_id.in_(
                select(LoanProductVersion.id).where(LoanProductVersion.product_id == f.product_id)
            )
        )
    return query


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


def overdue_now(today: dt.date) -> ColumnElement[Decimal]:
    """A loan's overdue amount as of ``today`` — what its installments that fell due before
    today still owe — read from the loan row: the amount kept with its balances
    (``loans.overdue_amount``, what the installments due before ``loans.balances_as_of`` still
    owed), written by every write to its installments and by the close of business, which
    keeps it for the morning after its business date (D-179, D-205). Kept for today: read as
    it is, all day after a close. Kept for yesterday (last night's close has not run): plus
    what fell due yesterday. Kept for tomorrow (this evening's close has run): less what falls
    due today. Those two read one day's unpaid installments of that loan only; kept for
    another day or not at all, its unpaid installments. Exact in every case. 0 for a loan that
    is not active. An expression over ``Loan``."""
    i = aliased(LoanInstallment)
    # A paid installment owes nothing (its status says so, `loans.service.loan_balances`):
    # leaving it out lets the partial index of unpaid installments answer.
    unpaid = (
        select(_sum(installment_owed(i)))
        .where(i.loan_id == Loan.id)
        .where(i.status != InstallmentStatus.PAID)
    )
    yesterday, tomorrow = today - dt.timedelta(days=1), today + dt.timedelta(days=1)
    # Correlated subqueries inside the CASE: PostgreSQL evaluates one only for a loan whose
    # branch of the CASE is taken, so a loan kept for today costs its row and nothing more.
    return case(
        (Loan.status != LoanStatus.ACTIVE, ZERO),
        (Loan.balances_as_of == today, Loan.overdue_amount),
        (
            Loan.balances_as_of == yesterday,
            Loan.overdue_amount + unpaid.where(i.due_date == yesterday).scalar_subquery(),
        ),
        (
            Loan.balances_as_of == tomorrow,
            Loan.overdue_amount - unpaid.where(i.due_date == today).scalar_subquery(),
        ),
        else_=unpaid.where(i.due_date < today).scalar_subquery(),
    )


@dataclasses.dataclass(frozen=True)
class BranchStock:
    """A branch's active loans now (the portfolio summary's stock columns)."""

    loans: int
    customers: int
    outstanding_principal: Decimal
    outstanding_interest: Decimal
    outstanding_fees: Decimal
    outstanding_penalties: Decimal
    overdue_amount: Decimal
    overdue_loans: int  # days past due >= 1
    at_risk: dict[int, Decimal]  # principal at risk by PAR threshold (base.PAR_THRESHOLDS)


@dataclasses.dataclass(frozen=True)
class BucketStock:
    """The active loans of one DPD bucket now (the PAR report's rows)."""

    loans: int
    outstanding_principal: Decimal
    overdue_amount: Decimal


@dataclasses.dataclass(frozen=True)
class LoanStock:
    by_branch: dict[uuid.UUID, BranchStock]
    by_bucket: dict[str, BucketStock]


_LOAN_STOCK = "namma.reports.loan_stock"


@contextlib.contextmanager
def loan_stock_shared(session: AsyncSession) -> Iterator[None]:
    """Within the block, the reports read each scope's loan stock once (``loan_stock``): for a
    page that shows several reports of the same moment and writes nothing (the dashboards'
    summary and PAR)."""
    session.info[_LOAN_STOCK] = {}
    try:
        yield
    finally:
        session.info.pop(_LOAN_STOCK, None)


async def loan_stock(session: AsyncSession, f: ReportFilters) -> LoanStock:
    """The active loans of the scope now, per branch and per DPD bucket, in one pass over them
    (``GROUPING SETS``): the portfolio summary's stock and the PAR report's rows. Inside
    ``loan_stock_shared`` a second report of the same scope reuses the first one's read (the
    stock does not depend on the period: the key is the scope and the day)."""
    today = today_india()
    key = (f.branch_id, f.agent_id, f.product_id, today)
    kept: dict[Any, LoanStock] | None = session.info.get(_LOAN_STOCK)
    if kept is not None and key in kept:
        return kept[key]
    overdue = overdue_now(today)
    bucket = bucket_of(Loan.days_past_due.expression)
    rows = await session.execute(
        loans_in_scope(
            select(
                func.grouping(Loan.branch_id),
                Loan.branch_id,
                bucket,
                func.count(Loan.id),
                func.count(func.distinct(Loan.customer_id)),
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
            .group_by(func.grouping_sets(Loan.branch_id, bucket)),
            f,
        )
    )
    by_branch: dict[uuid.UUID, BranchStock] = {}
    by_bucket: dict[str, BucketStock] = {}
    for per_bucket, branch_id, b, n, customers, op, oi, of, opn, od, late, *risk in rows.all():
        if per_bucket:
            by_bucket[b] = BucketStock(n, _dec(op), _dec(od))
        else:
            by_branch[branch_id] = BranchStock(
                loans=n,
                customers=customers,
                outstanding_principal=_dec(op),
                outstanding_interest=_dec(oi),
                outstanding_fees=_dec(of),
                outstanding_penalties=_dec(opn),
                overdue_amount=_dec(od),
                overdue_loans=late,
                at_risk={t: _dec(v) for t, v in zip(PAR_THRESHOLDS, risk, strict=True)},
            )
    stock = LoanStock(by_branch, by_bucket)
    if kept is not None:
        kept[key] = stock
    return stock


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


def installment_demand(
    f: ReportFilters, date_from: dt.date, date_to: dt.date, *, by_agent: bool = True
) -> Any:
    """The dues of the period and what was collected against them, one row per installment.

    Dues: installments falling due in [from, to] of loans in scope that were still in the
    portfolio on the due date (see ``loan_end_date``): principal + interest + fees scheduled,
    less what was waived (penalties are charges for lateness, not dues). Collected against
    them: the principal, interest and fees that standing (not reversed) collections dated on or
    before ``to`` allocated to those installments, whenever they were paid (in advance, on
    time or late within the period). Loans: those ``scoped_loans(f)`` selects, read once
    (``loans_in_scope``). Columns: loan_id, branch_id, agent_id (the loan's current agent;
    NULL with ``by_agent=False``, for a caller that sums by branch: the assignments are then not
    read), due_date, due, collected.
    """
    paid_by_installment = (
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
        .join(Loan, Loan.id == LoanInstallment.loan_id)  # the scope's installments only
        .where(Collection.status == CollectionStatus.POSTED)
        .where(Collection.collected_on <= date_to)
        # Only the installments of the period: the aggregate never scans the whole history.
        .where(LoanInstallment.due_date.between(date_from, date_to))
        .group_by(CollectionAllocation.installment_id)
    )
    paid = loans_in_scope(paid_by_installment, f).subquery("paid_against")
    end = loan_end_date()
    agent_id = AgentAssignment.agent_id if by_agent else null().cast(AgentAssignment.agent_id.type)
    dues: Select[Any] = select(
        Loan.id.label("loan_id"),
        Loan.branch_id.label("branch_id"),
        agent_id.label("agent_id"),
        LoanInstallment.due_date.label("due_date"),
        expression_of(demanded, LoanInstallment).label("due"),
        func.coalesce(paid.c.paid, ZERO).label("collected"),
    ).select_from(Loan)
    if by_agent:
        dues = dues.outerjoin(
            AgentAssignment,
            and_(
                AgentAssignment.customer_id == Loan.customer_id,
                AgentAssignment.ended_at.is_(None),
            ),
        )
    dues = (
        dues.join(LoanInstallment, LoanInstallment.loan_id == Loan.id)
        .outerjoin(paid, paid.c.installment_id == LoanInstallment.id)
        .where(LoanInstallment.due_date.between(date_from, date_to))
        .where(Loan.status.in_(DISBURSED_STATUSES))
        .where(or_(end.is_(None), LoanInstallment.due_date <= end))
    )
    return loans_in_scope(dues, f).subquery("demand")


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


async def ledger_portfolio(session: AsyncSession, f: ReportFilters) -> Decimal:
    """The ``loan_portfolio`` balance (Dr − Cr) of the lines tagged with the loans in scope
    (``scoped_loans(f)``). A branch's or the institution's is a sum over every entry since the
    first: it is kept with its snapshot in the transaction's cache and brought up to date with
    the entries that snapshot could not see (``namma.reports.kept``; a loan never changes
    branch, so an entry once counted stays in its scope). A narrower scope (an agent's
    customers move between agents; a product) is read in full."""
    sl = scoped_loans(f)

    async def read(unseen_by: str | None) -> SnapshotRead[Decimal]:
        lines = (
            select(_sum(JournalLine.debit - JournalLine.credit).label("balance"))
            .select_from(JournalLine)
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .join(sl, sl.c.loan_id == JournalLine.loan_id)
            .where(LedgerAccount.kind == AccountKind.LOAN_PORTFOLIO)
        )
        if unseen_by is not None:
            lines = lines.join(JournalEntry, JournalEntry.id == JournalLine.entry_id).where(
                entries_unseen_by(unseen_by)
            )
        row = (await session.execute(with_snapshot(lines.subquery("lines")))).one()
        return SnapshotRead.of(row, _dec(row.balance))

    return await kept_sums(
        None if f.narrows_loans or reads_standby(session) else transaction_cache(session),
        f"kept:portfolio:{f.branch_id or 'all'}",
        today=today_india(),
        read=read,
        add=lambda kept, new: kept + new,
        encode=str,
        decode=Decimal,
    )


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
