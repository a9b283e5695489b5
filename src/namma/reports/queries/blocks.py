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
from typing import Any, TypeVarTuple

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


_Row = TypeVarTuple("_Row")  # a statement's column types

# --- building blocks -----------------------------------------------------------------------------


def _current_agent(query: Select[*_Row]) -> Select[*_Row]:
    """``query`` (over ``Loan``) joined to each loan's customer's current agent, if any (a
    customer has at most one current assignment: the join adds no row)."""
    return query.outerjoin(
        AgentAssignment,
        and_(
            AgentAssignment.customer_id == Loan.customer_id,
            AgentAssignment.ended_at.is_(None),
        ),
    )


def scoped_loans(f: ReportFilters, *, by_agent: bool = True) -> CTE:
    """Every loan the filters select, with its branch, customer, current agent and product.

    ``by_agent=False`` ignores ``f.agent_id`` (a register that filters by the collector)."""
    query = _current_agent(
        select(
            Loan.id.label("loan_id"),
            Loan.branch_id.label("branch_id"),
            Loan.customer_id.label("customer_id"),
            AgentAssignment.agent_id.label("agent_id"),
            LoanProductVersion.product_id.label("product_id"),
        ).join(LoanProductVersion, LoanProductVersion.id == Loan.product_version_id)
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
class AgentStock:
    """The active loans of one agent's customers now (agent performance's portfolio columns)."""

    loans: int
    customers: int
    outstanding_principal: Decimal
    at_risk: dict[int, Decimal]


@dataclasses.dataclass(frozen=True)
class LoanStock:
    by_branch: dict[uuid.UUID, BranchStock]
    by_bucket: dict[str, BucketStock]
    # Per current agent (None: customers with no agent); None when not read.
    by_agent: dict[uuid.UUID | None, AgentStock] | None = None


_SHARED = "namma.reports.shared_reads"


@dataclasses.dataclass
class _SharedReads:
    by_agent: bool  # read per agent too: a report of the block will show agent performance
    reads: dict[Any, Any]


@contextlib.contextmanager
def report_reads_shared(session: AsyncSession, *, by_agent: bool = False) -> Iterator[None]:
    """Within the block, reports of the same moment read each scope's loan stock
    (``loan_stock``), the period's dues (``period_dues``) and what it received
    (``period_received``) once: for a page that shows several reports and writes nothing (the
    dashboards: the summary, PAR, agent performance). ``by_agent=True``: a report in the block
    will show them per agent, so the first read groups by agent as well as by branch, in the same
    statement (``GROUPING SETS``), rather than each report reading the branch again. Blocks
    nest: an inner one only widens what is read."""
    outer: _SharedReads | None = session.info.get(_SHARED)
    if outer is not None:
        before = outer.by_agent
        outer.by_agent = before or by_agent
        try:
            yield
        finally:
            outer.by_agent = before
        return
    session.info[_SHARED] = _SharedReads(by_agent=by_agent, reads={})
    try:
        yield
    finally:
        session.info.pop(_SHARED, None)


def _shared_read(session: AsyncSession, key: Any, by_agent: bool) -> tuple[Any, bool]:
    """(what the block already read for ``key`` with the per-agent part if it is needed — or
    None, whether to read per agent)."""
    shared: _SharedReads | None = session.info.get(_SHARED)
    if shared is None:
        return None, by_agent
    kept = shared.reads.get(key)
    if kept is not None and (kept.by_agent is not None or not by_agent):
        return kept, by_agent
    return None, by_agent or shared.by_agent


def _shared_keep(session: AsyncSession, key: Any, value: Any) -> None:
    shared: _SharedReads | None = session.info.get(_SHARED)
    if shared is not None:
        shared.reads[key] = value


async def loan_stock(
    session: AsyncSession, f: ReportFilters, *, by_agent: bool = False
) -> LoanStock:
    """The active loans of the scope now, per branch and per DPD bucket (and per current agent
    with ``by_agent``), in one pass over them (``GROUPING SETS``): the portfolio summary's
    stock, the PAR report's rows, agent performance's portfolios. Inside
    ``report_reads_shared`` a second report of the same scope reuses the first one's read (the
    stock does not depend on the period: the key is the scope and the day)."""
    today = today_india()
    key = ("stock", f.branch_id, f.agent_id, f.product_id, today)
    kept, by_agent = _shared_read(session, key, by_agent)
    if kept is not None:
        found: LoanStock = kept
        return found
    overdue = overdue_now(today)
    bucket = bucket_of(Loan.days_past_due.expression)
    agent = AgentAssignment.agent_id if by_agent else null().cast(AgentAssignment.agent_id.type)
    sets = [Loan.branch_id, bucket, *([AgentAssignment.agent_id] if by_agent else [])]
    query = select(
        func.grouping(Loan.branch_id),
        func.grouping(bucket),
        Loan.branch_id,
        bucket,
        agent,
        func.count(Loan.id),
        func.count(func.distinct(Loan.customer_id)),
        _sum(Loan.outstanding_principal),
        _sum(Loan.outstanding_interest),
        _sum(Loan.outstanding_fees),
        _sum(Loan.outstanding_penalties),
        _sum(overdue),
        func.count(Loan.id).filter(Loan.days_past_due >= 1),
        *_par_sums(Loan.outstanding_principal, Loan.days_past_due),
    ).select_from(Loan)
    if by_agent:
        query = _current_agent(query)
    rows = await session.execute(
        loans_in_scope(
            query.where(Loan.status == LoanStatus.ACTIVE).group_by(func.grouping_sets(*sets)),
            f,
        )
    )
    by_branch: dict[uuid.UUID, BranchStock] = {}
    by_bucket: dict[str, BucketStock] = {}
    agents: dict[uuid.UUID | None, AgentStock] = {}
    for (
        not_branch,
        not_bucket,
        branch_id,
        b,
        agent_id,
        n,
        customers,
        op,
        oi,
        of,
        opn,
        od,
        late,
        *risk,
    ) in rows.all():
        at_risk = {t: _dec(v) for t, v in zip(PAR_THRESHOLDS, risk, strict=True)}
        if not not_branch:
            by_branch[branch_id] = BranchStock(
                loans=n,
                customers=customers,
                outstanding_principal=_dec(op),
                outstanding_interest=_dec(oi),
                outstanding_fees=_dec(of),
                outstanding_penalties=_dec(opn),
                overdue_amount=_dec(od),
                overdue_loans=late,
                at_risk=at_risk,
            )
        elif not not_bucket:
            by_bucket[b] = BucketStock(n, _dec(op), _dec(od))
        else:
            agents[agent_id] = AgentStock(n, customers, _dec(op), at_risk)
    stock = LoanStock(by_branch, by_bucket, agents if by_agent else None)
    _shared_keep(session, key, stock)
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
    if f.branch_id is not None:
        # The branch's installments only, by their own index (D-220): the loans' branch alone
        # leaves the planner reading every branch's installments of those days.
        paid_by_installment = paid_by_installment.where(LoanInstallment.branch_id == f.branch_id)
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
        dues = _current_agent(dues)
    dues = (
        dues.join(LoanInstallment, LoanInstallment.loan_id == Loan.id)
        .outerjoin(paid, paid.c.installment_id == LoanInstallment.id)
        .where(LoanInstallment.due_date.between(date_from, date_to))
        .where(Loan.status.in_(DISBURSED_STATUSES))
        .where(or_(end.is_(None), LoanInstallment.due_date <= end))
    )
    if f.branch_id is not None:
        dues = dues.where(LoanInstallment.branch_id == f.branch_id)
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


@dataclasses.dataclass(frozen=True)
class PeriodDues:
    """A period's dues and what was collected against them (``installment_demand``): per
    branch, per current agent (None when not read) and on the period's last day."""

    by_branch: dict[uuid.UUID, tuple[Decimal, Decimal]]  # (due, collected against)
    by_agent: dict[uuid.UUID | None, tuple[Decimal, Decimal]] | None
    last_day: tuple[Decimal, Decimal]


async def period_dues(session: AsyncSession, f: ReportFilters, *, by_agent: bool) -> PeriodDues:
    """The dues of ``f``'s period, summed per branch (and per agent), in one statement;
    shared inside ``report_reads_shared``."""
    key = ("dues", f.branch_id, f.agent_id, f.product_id, f.date_from, f.date_to)
    kept, by_agent = _shared_read(session, key, by_agent)
    if kept is not None:
        found: PeriodDues = kept
        return found
    demand = installment_demand(f, f.date_from, f.date_to, by_agent=by_agent)
    last_day = demand.c.due_date == f.date_to
    sets = [demand.c.branch_id, *([demand.c.agent_id] if by_agent else [])]
    rows = await session.execute(
        select(
            func.grouping(demand.c.branch_id),
            demand.c.branch_id,
            demand.c.agent_id if by_agent else null(),
            _sum(demand.c.due),
            _sum(demand.c.collected),
            func.coalesce(func.sum(demand.c.due).filter(last_day), ZERO),
            func.coalesce(func.sum(demand.c.collected).filter(last_day), ZERO),
        ).group_by(func.grouping_sets(*sets))
    )
    by_branch: dict[uuid.UUID, tuple[Decimal, Decimal]] = {}
    agents: dict[uuid.UUID | None, tuple[Decimal, Decimal]] = {}
    day_due, day_against = ZERO, ZERO
    for not_branch, branch_id, agent_id, due, against, d_due, d_against in rows.all():
        if not not_branch:
            by_branch[branch_id] = (_dec(due), _dec(against))
            day_due += _dec(d_due)
            day_against += _dec(d_against)
        else:
            agents[agent_id] = (_dec(due), _dec(against))
    dues = PeriodDues(by_branch, agents if by_agent else None, (day_due, day_against))
    _shared_keep(session, key, dues)
    return dues


@dataclasses.dataclass(frozen=True)
class PeriodReceived:
    """What a period's collections brought in, net of its reversals (``collections_received``):
    per branch, per collector (None when not read) and on the period's last day."""

    by_branch: dict[uuid.UUID, Decimal]
    by_collector: dict[uuid.UUID, tuple[int, Decimal]] | None  # (count, amount)
    last_day: tuple[int, Decimal]

    @property
    def by_agent(self) -> dict[uuid.UUID, tuple[int, Decimal]] | None:
        """The per-agent part ``report_reads_shared`` asks for: per collecting agent here."""
        return self.by_collector


async def period_received(
    session: AsyncSession, f: ReportFilters, *, by_collector: bool, agent_scope: bool
) -> PeriodReceived:
    """What ``f``'s period received on the scope's loans, per branch (and per collector), in
    one statement; shared inside ``report_reads_shared``. ``agent_scope=False``: ``f.agent_id``
    does not narrow the loans (a register by collector, ``scoped_loans(by_agent=False)``)."""
    narrowed = agent_scope and f.agent_id is not None
    key = ("received", f.branch_id, f.agent_id, f.product_id, f.date_from, f.date_to, narrowed)
    kept, by_collector = _shared_read(session, key, by_collector)
    if kept is not None:
        found: PeriodReceived = kept
        return found
    received = collections_received(scoped_loans(f, by_agent=agent_scope), f.date_from, f.date_to)
    last_day = received.c.collected_on == f.date_to
    sets = [received.c.branch_id, *([received.c.collected_by_id] if by_collector else [])]
    rows = await session.execute(
        select(
            func.grouping(received.c.branch_id),
            received.c.branch_id,
            received.c.collected_by_id if by_collector else null(),
            func.sum(received.c.n),
            _sum(received.c.amount),
            func.coalesce(func.sum(received.c.n).filter(last_day), 0),
            func.coalesce(func.sum(received.c.amount).filter(last_day), ZERO),
        ).group_by(func.grouping_sets(*sets))
    )
    by_branch: dict[uuid.UUID, Decimal] = {}
    collectors: dict[uuid.UUID, tuple[int, Decimal]] = {}
    day_n, day_amount = 0, ZERO
    for not_branch, branch_id, collector_id, n, amount, d_n, d_amount in rows.all():
        if not not_branch:
            by_branch[branch_id] = _dec(amount)
            day_n += int(d_n)
            day_amount += _dec(d_amount)
        else:
            collectors[collector_id] = (int(n), _dec(amount))
    got = PeriodReceived(by_branch, collectors if by_collector else None, (day_n, day_amount))
    _shared_keep(session, key, got)
    return got


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
        session,
        None if f.narrows_loans else transaction_cache(session),
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
