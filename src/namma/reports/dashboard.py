"""Dashboards: per role, the figures the original app's dashboards showed (reference/origin.md
§3.2), computed right — from the same queries as the reports (one collection rate, one profit:
``namma.reports.base``), the ledger, and the nightly portfolio snapshots for the 30-day trend.

- Admin: the institution, a per-branch breakdown, loan counts, recent loans, capital.
- Manager: their branch, a per-agent breakdown.
- Agent: their portfolio: today's dues and collections, overdue customers, cash in hand (their
  ``agent_cash`` balance), the next 7 days' dues.
- Customer: their loans: outstanding, next due, last payment.

The period of the flow figures is chosen with ``period`` (``DashboardPeriod``: today, the last 7
days, the month, quarter, half-year or financial year to date — India's year starts on 1 April —
or everything); the default is the month to date. "Today" is the Indian day. Admins and
Managers also get a 12-month trend from the ledger (the original app's analytics chart), whose
sums are kept between builds and brought up to date with the entries posted since
(``namma.reports.monthly``, D-204).

Each answer is cached under ``dashboard:{branch}:{role}:{scope}:{period}`` (``dashboard_key``;
branch: the branch whose figures it shows, ``all`` for the institution's; scope: ``all``, the
branch id, the user id) for 30 s. After its commit, a loan mutation (``namma.loans.cache``)
drops only the dashboards its branch's figures appear on — that branch's and the institution's
(``namma.loans.cache.dashboard_patterns``); writes to capital, cash hand-overs, staff and
branches (``dashboards_stale_after_writes``) drop them all, as does the close of business.
Dropped, a staff or agent dashboard is not built while its reader waits: the last one built
(kept 10 minutes) is answered at once, marked ``stale`` with the time of its figures, and a new
one is built in the background for the next request (D-221) — unless the reader wrote in the
last seconds (they see their own write) or it is a customer's (a few cheap statements).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

from fastapi import Request
from sqlalchemy import and_, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.auth.deps import Principal
from namma.capital.queries import capital_summary
from namma.finance import add_months
from namma.finance.owed import loan_outstanding
from namma.kit.cache import Cache, cache_get_or_refresh, shape_of
from namma.kit.clock import INDIA, today_india
from namma.kit.db import after_commit
from namma.kit.deps import CacheDep, SessionDep
from namma.kit.money import money_str
from namma.kit.replica import read_session_like
from namma.loans.cache import dashboard_patterns
from namma.models import (
    AccountKind,
    AccountType,
    AgentAssignment,
    Branch,
    CashHandover,
    Collection,
    CollectionStatus,
    Customer,
    CustomerStatus,
    JournalEntry,
    JournalLine,
    LedgerAccount,
    Loan,
    LoanInstallment,
    LoanStatus,
    PortfolioSnapshot,
    Role,
    User,
)
from namma.reports import queries
from namma.reports.base import (
    ZERO,
    ColumnType,
    Report,
    ReportFilters,
    collection_rate,
    percent,
    profit,
    row_json,
    value_json,
)
from namma.reports.monthly import monthly_trend
from namma.reports.schemas import Dashboard

DASHBOARD_TTL_SECONDS = 30
# How long the last answer built is kept to be served, marked stale, while a new one is built
# after a write (D-221): a dashboard opened again within this time answers at once.
DASHBOARD_KEEP_SECONDS = 600
# The dashboards' answers as the API validates them (``reports.schemas.Dashboard``): a cached
# answer of another shape, written before an upgrade, is built afresh (``cache_get_or_refresh``).
_DASHBOARD_SHAPE = shape_of(Dashboard)
TREND_DAYS = 30
UPCOMING_DAYS = 7
UPCOMING_INSTALLMENTS = 6  # the customer's list of installments to come


FINANCIAL_YEAR_START_MONTH = 4  # India: 1 April


class DashboardPeriod(enum.StrEnum):
    TODAY = "today"
    WEEK = "week"  # the last 7 days, today included
    MONTH = "month"  # month to date
    QUARTER = "quarter"  # quarter to date (Jan-Mar, Apr-Jun, Jul-Sep, Oct-Dec)
    HALF_YEAR = "half-year"  # financial half-year to date (Apr-Sep, Oct-Mar)
    YEAR = "year"  # financial year to date (from 1 April)
    ALL = "all"  # from the first day in the ledger


def period_dates(
    period: DashboardPeriod, today: dt.date, *, first_day: dt.date | None = None
) -> tuple[dt.date, dt.date]:
    """The first and last day of ``period`` ending ``today``. ``first_day``: the ledger's first
    entry date (for ``all``; today when the ledger is empty)."""
    fy_start = dt.date(
        today.year if today.month >= FINANCIAL_YEAR_START_MONTH else today.year - 1,
        FINANCIAL_YEAR_START_MONTH,
        1,
    )
    second_half = add_months(fy_start, 6)  # 1 October
    starts = {
        DashboardPeriod.TODAY: today,
        DashboardPeriod.WEEK: today - dt.timedelta(days=6),
        DashboardPeriod.MONTH: today.replace(day=1),
        DashboardPeriod.QUARTER: today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1),
        DashboardPeriod.HALF_YEAR: second_half if today >= second_half else fy_start,
        DashboardPeriod.YEAR: fy_start,
        DashboardPeriod.ALL: min(first_day or today, today),
    }
    return starts[period], today


def dashboard_key(
    role: Role | str,
    scope: str,
    period: DashboardPeriod | str = DashboardPeriod.MONTH,
    *,
    branch: str | None = None,
) -> str:
    """The cache key of a dashboard. ``branch``: the branch whose writes move it (its id, or
    ``all``); by default the scope, which is the branch for Admins and Managers."""
    return f"dashboard:{branch or scope}:{Role(role).value}:{scope}:{DashboardPeriod(period).value}"


def dashboard_branch(principal: Principal, branch_id: uuid.UUID | None = None) -> str:
    """The branch whose figures the caller's dashboard shows (``all``: the institution's)."""
    if principal.role is Role.ADMIN:
        return str(branch_id) if branch_id is not None else "all"
    return str(principal.branch_id) if principal.branch_id is not None else "all"


def dashboard_scope(principal: Principal, branch_id: uuid.UUID | None = None) -> str:
    if principal.role is Role.ADMIN:
        return str(branch_id) if branch_id is not None else "all"
    if principal.role is Role.MANAGER:
        return str(principal.branch_id)
    return str(principal.user_id)


async def dashboards_stale_after_writes(
    request: Request, session: SessionDep, cache: CacheDep
) -> None:
    """A router dependency for routers whose writes move dashboard figures without going
    through a loan (capital: the Admin's capital panel; cash hand-overs: an agent's cash in
    hand; staff and branches: agent counts and per-agent rows). A write (any method but
    GET/HEAD/OPTIONS) deletes every cached dashboard once its transaction commits (nothing if
    it rolls back): such writes are few in a day (a hand-over per agent, a capital movement, a
    staff change), and a staff transfer or a branch edit moves two branches' figures. Loan and
    collection routes drop only their branch's dashboards (``namma.loans.cache``); the close of
    business drops them all."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return

    async def invalidate() -> None:
        await cache.delete_matching(dashboard_patterns(None))

    after_commit(session, invalidate)


async def dashboard_cached(
    session: AsyncSession,
    cache: Cache,
    principal: Principal,
    period: DashboardPeriod = DashboardPeriod.MONTH,
    *,
    branch_id: uuid.UUID | None = None,
    fresh: bool = False,
) -> Any:
    """The caller's dashboard: built within the last 30 s with no write in its branch since,
    else the last one built (at most ``DASHBOARD_KEEP_SECONDS`` old) while a new one is built
    in the background, else built now (D-221, `answer_kept_or_built`). ``fresh``: the caller
    wrote in the last seconds and must see it — built now unless nothing was written since.
    ``branch_id``: an Admin's view of one branch (the Manager's figures for it, under the
    Admin's key); ignored for other roles, whose scope is fixed."""
    if principal.role is not Role.ADMIN:
        branch_id = None
    if principal.role is Role.CUSTOMER:
        fresh = True  # a few statements over their own loans: never a copy that may be behind
    key = dashboard_key(
        principal.role,
        dashboard_scope(principal, branch_id),
        period,
        branch=dashboard_branch(principal, branch_id),
    )

    async def build(s: AsyncSession) -> dict[str, Any]:
        return await dashboard_build(s, principal, period, branch_id=branch_id, cache=cache)

    return await answer_kept_or_built(
        session, cache, key, build, fresh=fresh, shape=_DASHBOARD_SHAPE
    )


async def answer_kept_or_built(
    session: AsyncSession,
    cache: Cache,
    key: str,
    build: Callable[[AsyncSession], Awaitable[dict[str, Any]]],
    *,
    fresh: bool,
    shape: str | None = None,
) -> dict[str, Any]:
    """A dashboard's answer (``build``'s JSON) through `cache_get_or_refresh`, with when its
    figures were read (``figures_at``, Indian time) and whether they may miss writes since
    (``stale``: a kept copy, served while a new one is built). An answer built on another
    Indian day is never served. A refresh reads in a session of its own on the same database
    (the request's ends with its answer)."""
    today = today_india().isoformat()

    async def refresh() -> dict[str, Any]:
        async with read_session_like(session) as own:
            return await build(own)

    answer = await cache_get_or_refresh(
        cache,
        key,
        ttl=DASHBOARD_TTL_SECONDS,
        keep=DASHBOARD_KEEP_SECONDS,
        load=lambda: build(session),
        refresh=refresh,
        shape=shape,
        fresh=fresh,
        usable=lambda value: isinstance(value, dict) and value.get("as_of") == today,
        # At most one rebuild per answer in the seed's 30 s of tolerated staleness, whatever
        # the rate of writes and requests: a copy is then at most ~30 s behind while people
        # keep asking.
        refresh_every=DASHBOARD_TTL_SECONDS,
    )
    figures_at = dt.datetime.fromtimestamp(answer.built_at, INDIA).replace(microsecond=0)
    value: dict[str, Any] = answer.value
    return value | {"figures_at": figures_at.isoformat(), "stale": answer.stale}


async def dashboard_build(
    session: AsyncSession,
    principal: Principal,
    period: DashboardPeriod = DashboardPeriod.MONTH,
    *,
    branch_id: uuid.UUID | None = None,
    cache: Cache | None = None,
) -> dict[str, Any]:
    """The dashboard's figures. ``cache``: where the 12-month trend's sums are kept between
    builds (``namma.reports.monthly``); without it they are read in full."""
    today = today_india()
    first_day = None
    if period is DashboardPeriod.ALL:
        first_day = await session.scalar(select(func.min(JournalEntry.entry_date)))
    start, end = period_dates(period, today, first_day=first_day)
    span = {"name": period.value, "from": start.isoformat(), "to": end.isoformat()}
    if principal.role is Role.ADMIN:
        built = await _staff_dashboard(session, principal, branch_id, start, span, cache)
        built["scope"] = dashboard_scope(principal, branch_id)
        return built
    if principal.role is Role.MANAGER:
        return await _staff_dashboard(session, principal, principal.branch_id, start, span, cache)
    if principal.role is Role.AGENT:
        return await _agent_dashboard(session, principal, start, span)
    return await _customer_dashboard(session, principal)


def _m(value: Decimal | None) -> str | None:
    return money_str(value)


def _pct(value: Decimal | None) -> str | None:
    shown: str | None = value_json(value, ColumnType.PERCENT)
    return shown


async def _flows(
    session: AsyncSession, f: ReportFilters, *, collector_id: uuid.UUID | None = None
) -> dict[str, Any]:
    """Dues of the period, collected against them, the collection rate, and what was received
    (collections of the period net of its reversals, ``queries.collections_received``; with
    ``collector_id``: collected by them)."""
    demand = queries.installment_demand(f, f.date_from, f.date_to, by_agent=False)
    due, against = (
        await session.execute(
            select(
                func.coalesce(func.sum(demand.c.due), ZERO),
                func.coalesce(func.sum(demand.c.collected), ZERO),
            )
        )
    ).one()
    received_from = queries.scoped_loans(f, by_agent=collector_id is None)
    received = queries.collections_received(received_from, f.date_from, f.date_to)
    query = select(
        func.coalesce(func.sum(received.c.n), 0), func.coalesce(func.sum(received.c.amount), ZERO)
    )
    if collector_id is not None:
        query = query.where(received.c.collected_by_id == collector_id)
    n, amount = (await session.execute(query)).one()
    return {
        "due_amount": _m(Decimal(due)),
        "collected_against_due": _m(Decimal(against)),
        "collection_rate": _pct(collection_rate(Decimal(against), Decimal(due))),
        "collections": int(n),
        "collected_amount": _m(Decimal(amount)),
    }


def _totals(report: Report) -> dict[str, Any]:
    return row_json(report.totals, report.columns)


async def _trend(
    session: AsyncSession, *, branch_id: uuid.UUID | None, agent_id: uuid.UUID | None
) -> list[dict[str, Any]]:
    """The last 30 business dates' snapshots (summed over branches for the institution)."""
    since = today_india() - dt.timedelta(days=TREND_DAYS)
    s = PortfolioSnapshot
    query = (
        select(
            s.business_date,
            func.sum(s.active_loans),
            func.sum(s.outstanding_principal),
            func.sum(s.par_1_30 + s.par_31_60 + s.par_61_90 + s.par_90_plus),
            func.sum(s.par_31_60 + s.par_61_90 + s.par_90_plus),
            func.sum(s.par_90_plus),
            func.sum(s.overdue_amount),
            func.sum(s.due_amount),
            func.sum(s.collected_amount),
            func.sum(s.disbursed_amount),
        )
        .where(s.business_date > since)
        .group_by(s.business_date)
        .order_by(s.business_date)
    )
    if agent_id is not None:
        query = query.where(s.agent_id == agent_id)
    else:
        query = query.where(s.agent_id.is_(None))
    if branch_id is not None:
        query = query.where(s.branch_id == branch_id)
    out = []
    for on, loans, op, risk1, risk31, risk91, od, due, got, disbursed in (
        await session.execute(query)
    ).all():
        op = Decimal(op)
        out.append(
            {
                "date": on.isoformat(),
                "active_loans": int(loans),
                "outstanding_principal": _m(op),
                "par_1": _pct(percent(Decimal(risk1), op)),
                # PAR30 = DPD > 30 = the snapshot's buckets 31-60, 61-90 and 90+ (base.py).
                "par_30": _pct(percent(Decimal(risk31), op)),
                "par_90": _pct(percent(Decimal(risk91), op)),
                "overdue_amount": _m(Decimal(od)),
                "due_amount": _m(Decimal(due)),
                "collected_amount": _m(Decimal(got)),
                "disbursed_amount": _m(Decimal(disbursed)),
            }
        )
    return out


async def _staff_dashboard(
    session: AsyncSession,
    principal: Principal,
    branch_id: uuid.UUID | None,
    start: dt.date,
    span: dict[str, str],
    cache: Cache | None,
) -> dict[str, Any]:
    today = today_india()
    month = ReportFilters(start, today, branch_id)
    # A branch's dashboard shows its agents too: the summary and agent performance read the
    # loans' stock, the period's dues and its receipts once, per branch and per agent (D-220).
    with queries.report_reads_shared(session, by_agent=branch_id is not None):
        return await _staff_figures(session, principal, branch_id, month, span, cache)


async def _staff_figures(
    session: AsyncSession,
    principal: Principal,
    branch_id: uuid.UUID | None,
    month: ReportFilters,
    span: dict[str, str],
    cache: Cache | None,
) -> dict[str, Any]:
    today = month.date_to
    summary = await queries.portfolio_summary(session, month, reconcile=False, last_day=True)
    totals = _totals(summary)
    day = summary.summary
    money_flow = await queries.income_and_expenses(session, month)
    if branch_id is not None:
        income, expenses = money_flow.get(branch_id, (ZERO, ZERO))
    else:
        income = sum((v[0] for v in money_flow.values()), ZERO)
        expenses = sum((v[1] for v in money_flow.values()), ZERO)
    penalties = sum(
        (
            t.amount
            for t in await queries.ledger_period_totals(session, month, types=(AccountType.INCOME,))
            if t.kind is AccountKind.PENALTY_INCOME
        ),
        ZERO,
    )
    status_counts = {s.value: 0 for s in LoanStatus}
    count_query = select(Loan.status, func.count()).group_by(Loan.status)
    if branch_id is not None:
        count_query = count_query.where(Loan.branch_id == branch_id)
    for status, n in (await session.execute(count_query)).all():
        status_counts[status.value] = int(n)
    customers_query = select(func.count(Customer.id)).where(
        Customer.status == CustomerStatus.ACTIVE
    )
    agents_query = (
        select(func.count(User.id)).where(User.role == Role.AGENT).where(User.is_active.is_(True))
    )
    if branch_id is not None:
        customers_query = customers_query.where(Customer.branch_id == branch_id)
        agents_query = agents_query.where(User.branch_id == branch_id)
    recent_query = (
        select(Loan, Customer.name, Branch.code)
        .join(Customer, Customer.id == Loan.customer_id)
        .join(Branch, Branch.id == Loan.branch_id)
        .order_by(Loan.applied_at.desc(), Loan.loan_number.desc())
        .limit(5)
    )
    if branch_id is not None:
        recent_query = recent_query.where(Loan.branch_id == branch_id)
    recent = [
        {
            "id": str(loan.id),
            "loan_number": loan.loan_number,
            "customer_name": name,
            "branch_code": code,
            "principal": _m(loan.principal),
            "outstanding_principal": _m(loan.outstanding_principal),
            "status": loan.status.value,
            "applied_at": loan.applied_at.isoformat(),
        }
        for loan, name, code in (await session.execute(recent_query)).all()
    ]
    result: dict[str, Any] = {
        "role": principal.role.value,
        "scope": dashboard_scope(principal),
        "as_of": today.isoformat(),
        "period": span,
        "portfolio": {
            key: totals[key]
            for key in (
                "active_loans",
                "active_customers",
                "outstanding_principal",
                "outstanding_interest",
                "outstanding_fees",
                "outstanding_penalties",
                "overdue_amount",
                "overdue_loans",
                "par_1",
                "par_30",
                "par_90",
            )
        },
        "flows": {
            key: totals[key]
            for key in (
                "disbursed_count",
                "disbursed_amount",
                "due_amount",
                "collected_against_due",
                "collection_rate",
                "collected_amount",
            )
        }
        | {
            "income": _m(income),
            "expenses": _m(expenses),
            "profit": _m(profit(income, expenses)),
            "penalties_collected": _m(penalties),
        },
        # Today's flows, from the period's statements (the period ends today).
        "today": {
            "due_amount": _m(day["last_day_due_amount"]),
            "collected_against_due": _m(day["last_day_collected_against_due"]),
            "collection_rate": _pct(
                collection_rate(day["last_day_collected_against_due"], day["last_day_due_amount"])
            ),
            "collections": day["last_day_collections"],
            "collected_amount": _m(day["last_day_collected_amount"]),
        },
        "loan_counts": status_counts,
        "people": {
            "customers": int(await session.scalar(customers_query) or 0),
            "agents": int(await session.scalar(agents_query) or 0),
        },
        "recent_loans": recent,
        "trend": await _trend(session, branch_id=branch_id, agent_id=None),
        "monthly": await monthly_trend(session, cache, branch_id=branch_id, today=today),
    }
    if branch_id is None:
        branch_rows = []
        by_code = {
            b.code: b
            for b in await session.scalars(
                select(Branch).where(Branch.code.in_([r["branch_code"] for r in summary.rows]))
            )
        }
        for row in summary.rows:
            branch = by_code[row["branch_code"]]
            b_income, b_expenses = money_flow.get(branch.id, (ZERO, ZERO))
            branch_rows.append(
                {"branch_id": str(branch.id)}
                | row_json(row, summary.columns)
                | {"profit": _m(profit(b_income, b_expenses))}
            )
        result["branches"] = branch_rows
        result["head_office"] = {
            "profit": _m(profit(*money_flow.get(None, (ZERO, ZERO)))),
        }
        result["capital"] = await capital_summary(
            session, disbursed_outstanding=summary.totals["outstanding_principal"]
        )
    else:
        agents = await queries.agent_performance(session, month, reconcile=False)
        result["agents"] = [row_json(r, agents.columns) for r in agents.rows]
    return result


async def _agent_dashboard(
    session: AsyncSession, principal: Principal, start: dt.date, span: dict[str, str]
) -> dict[str, Any]:
    today = today_india()
    me = principal.user_id
    month = ReportFilters(start, today, agent_id=me)
    day = ReportFilters(today, today, agent_id=me)
    summary = await queries.portfolio_summary(session, month, reconcile=False)
    totals = _totals(summary)
    overdue = await queries.overdue_list(session, day, reconcile=False)
    customers = await session.scalar(
        select(func.count(AgentAssignment.customer_id))
        .where(AgentAssignment.agent_id == me)
        .where(AgentAssignment.ended_at.is_(None))
    )
    cash = await session.execute(
        select(
            func.coalesce(func.sum(JournalLine.debit), ZERO),
            func.coalesce(func.sum(JournalLine.credit), ZERO),
        )
        .select_from(LedgerAccount)
        .join(JournalLine, JournalLine.account_id == LedgerAccount.id)
        .where(LedgerAccount.kind == AccountKind.AGENT_CASH)
        .where(LedgerAccount.agent_id == me)
    )
    debit, credit = cash.one()
    upcoming = ReportFilters(
        today + dt.timedelta(days=1), today + dt.timedelta(days=UPCOMING_DAYS), agent_id=me
    )
    return {
        "role": "agent",
        "scope": str(me),
        "as_of": today.isoformat(),
        "period": span,
        "customers": int(customers or 0),
        "portfolio": {
            key: totals[key]
            for key in (
                "active_loans",
                "active_customers",
                "outstanding_principal",
                "outstanding_interest",
                "outstanding_fees",
                "outstanding_penalties",
                "overdue_amount",
                "par_1",
                "par_30",
                "par_90",
            )
        },
        # Dues of the agent's loans today, and what the agent collected today in person.
        "today": await _flows(session, day)
        | {
            k: v
            for k, v in (await _flows(session, day, collector_id=me)).items()
            if k in ("collections", "collected_amount")
        },
        "flows": await _flows(session, month, collector_id=None),
        "upcoming": {
            "days": UPCOMING_DAYS,
            "due_amount": (await _flows(session, upcoming))["due_amount"],
        },
        "overdue": {
            "loans": len(overdue.rows),
            "customers": len({r["customer_name"] + r["phone"] for r in overdue.rows}),
            "amount": _m(overdue.totals["overdue_amount"]),
            "list": [
                {
                    k: value_json(r[k], t)
                    for k, t in (
                        ("customer_name", ColumnType.TEXT),
                        ("phone", ColumnType.TEXT),
                        ("village", ColumnType.TEXT),
                        ("loan_number", ColumnType.TEXT),
                        ("days_past_due", ColumnType.INT),
                        ("overdue_amount", ColumnType.MONEY),
                    )
                }
                for r in overdue.rows
            ],
        },
        "cash_in_hand": _m(Decimal(debit) - Decimal(credit)),
        "recent_loans": await _recent_active_loans(session, me),
        "trend": await _trend(session, branch_id=None, agent_id=me),
    }


async def _recent_active_loans(session: AsyncSession, agent_id: uuid.UUID) -> list[dict[str, Any]]:
    """The agent's 5 most recently disbursed active loans (their current customers')."""
    rows = await session.execute(
        select(Loan, Customer.name)
        .join(Customer, Customer.id == Loan.customer_id)
        .join(
            AgentAssignment,
            and_(
                AgentAssignment.customer_id == Loan.customer_id,
                AgentAssignment.ended_at.is_(None),
            ),
        )
        .where(AgentAssignment.agent_id == agent_id)
        .where(Loan.status == LoanStatus.ACTIVE)
        .order_by(Loan.disbursed_on.desc(), Loan.loan_number.desc())
        .limit(5)
    )
    return [
        {
            "id": str(loan.id),
            "loan_number": loan.loan_number,
            "customer_name": name,
            "principal": _m(loan.principal),
            "outstanding_principal": _m(loan.outstanding_principal),
            "days_past_due": loan.days_past_due,
            "next_due_on": loan.next_due_on.isoformat() if loan.next_due_on else None,
            "disbursed_on": loan.disbursed_on.isoformat() if loan.disbursed_on else None,
        }
        for loan, name in rows.all()
    ]


async def _customer_dashboard(session: AsyncSession, principal: Principal) -> dict[str, Any]:
    today = today_india()
    customer = await session.scalar(select(Customer).where(Customer.user_id == principal.user_id))
    base: dict[str, Any] = {
        "role": "customer",
        "scope": str(principal.user_id),
        "as_of": today.isoformat(),
    }
    if customer is None:
        return base | {
            "loans": [],
            "totals": None,
            "next_due": None,
            "upcoming_installments": [],
            "last_payment": None,
        }
    i = LoanInstallment
    owed = queries.installment_owed(i)
    # Every aggregate reads this customer's loans' installments only (index on loan_id), never
    # the institution's.
    mine = select(Loan.id.label("loan_id")).where(Loan.customer_id == customer.id).cte("mine")
    next_due = (
        select(i.loan_id.label("loan_id"), func.min(i.due_date).label("due_date"))
        .join(mine, mine.c.loan_id == i.loan_id)
        .where(owed > 0)
        .group_by(i.loan_id)
        .subquery("next_due")
    )
    next_amount = (
        select(i.loan_id.label("loan_id"), func.sum(owed).label("amount"))
        .join(next_due, and_(next_due.c.loan_id == i.loan_id, next_due.c.due_date == i.due_date))
        .group_by(i.loan_id)
        .subquery("next_amount")
    )
    overdue = queries.overdue_now(today)
    rows = (
        await session.execute(
            select(
                Loan,
                next_due.c.due_date,
                func.coalesce(next_amount.c.amount, ZERO),
                overdue,
            )
            .outerjoin(next_due, next_due.c.loan_id == Loan.id)
            .outerjoin(next_amount, next_amount.c.loan_id == Loan.id)
            .where(Loan.customer_id == customer.id)
            .where(Loan.status.not_in((LoanStatus.REJECTED, LoanStatus.WITHDRAWN)))
            .order_by(Loan.applied_at.desc())
        )
    ).all()
    loans = []
    borrowed = outstanding = overdue_total = outstanding_principal = outstanding_interest = ZERO
    outstanding_fees = outstanding_penalties = ZERO
    upcoming: list[tuple[dt.date, Decimal, str]] = []
    for loan, due_on, due_amount, od in rows:
        active = loan.status is LoanStatus.ACTIVE
        total = loan_outstanding(loan)
        if loan.disbursed_on is not None:
            borrowed += loan.principal
        if active:
            outstanding += total
            outstanding_principal += loan.outstanding_principal
            outstanding_interest += loan.outstanding_interest
            outstanding_fees += loan.outstanding_fees
            outstanding_penalties += loan.outstanding_penalties
            overdue_total += Decimal(od)
            if due_on is not None:
                upcoming.append((due_on, Decimal(due_amount), loan.loan_number))
        loans.append(
            {
                "id": str(loan.id),
                "loan_number": loan.loan_number,
                "status": loan.status.value,
                "principal": _m(loan.principal),
                "disbursed_on": loan.disbursed_on.isoformat() if loan.disbursed_on else None,
                "outstanding_principal": _m(loan.outstanding_principal),
                "outstanding_interest": _m(loan.outstanding_interest),
                "outstanding_fees": _m(loan.outstanding_fees),
                "outstanding_penalties": _m(loan.outstanding_penalties),
                "outstanding_total": _m(total),
                "overdue_amount": _m(Decimal(od) if active else ZERO),
                "days_past_due": loan.days_past_due if active else 0,
                "next_due_on": due_on.isoformat() if active and due_on else None,
                "next_due_amount": _m(Decimal(due_amount)) if active and due_on else None,
            }
        )
    paid = await session.execute(
        select(func.count(Collection.id), func.coalesce(func.sum(Collection.amount), ZERO))
        .join(Loan, Loan.id == Collection.loan_id)
        .where(Loan.customer_id == customer.id)
        .where(Collection.status == CollectionStatus.POSTED)
    )
    payments, total_paid = paid.one()
    last = (
        await session.execute(
            select(Collection, Loan.loan_number)
            .join(Loan, Loan.id == Collection.loan_id)
            .where(Loan.customer_id == customer.id)
            .where(Collection.status == CollectionStatus.POSTED)
            .order_by(Collection.collected_on.desc(), Collection.seq.desc())
            .limit(1)
        )
    ).first()
    upcoming.sort()
    week_due, week_count, late_count = (
        await session.execute(
            select(
                func.coalesce(
                    func.sum(owed).filter(
                        i.due_date.between(today, today + dt.timedelta(days=UPCOMING_DAYS))
                    ),
                    ZERO,
                ),
                func.count().filter(
                    i.due_date.between(today, today + dt.timedelta(days=UPCOMING_DAYS))
                ),
                func.count().filter(i.due_date < today),
            )
            .join(Loan, Loan.id == i.loan_id)
            .where(Loan.customer_id == customer.id)
            .where(Loan.status == LoanStatus.ACTIVE)
            .where(owed > 0)
        )
    ).one()
    # The next installments still owing, across the active loans (late ones first).
    coming = (
        await session.execute(
            select(i.due_date, i.number, owed, Loan.id, Loan.loan_number, i.status)
            .join(Loan, Loan.id == i.loan_id)
            .where(Loan.customer_id == customer.id)
            .where(Loan.status == LoanStatus.ACTIVE)
            .where(owed > 0)
            .order_by(i.due_date, Loan.loan_number, i.number)
            .limit(UPCOMING_INSTALLMENTS)
        )
    ).all()
    next_due_json = None
    if upcoming:
        due_on, amount, number = upcoming[0]
        next_due_json = {
            "loan_number": number,
            "due_on": due_on.isoformat(),
            "amount": _m(amount),
            "days_remaining": (due_on - today).days,
        }
    return base | {
        "loans": loans,
        "totals": {
            "loans": len(loans),
            "active_loans": sum(1 for x in loans if x["status"] == LoanStatus.ACTIVE.value),
            "total_borrowed": _m(borrowed),
            "closed_loans": sum(
                1
                for x in loans
                if x["status"] in (LoanStatus.CLOSED.value, LoanStatus.PRECLOSED.value)
            ),
            "total_paid": _m(Decimal(total_paid)),
            "payments": int(payments),
            "outstanding": _m(outstanding),
            "outstanding_principal": _m(outstanding_principal),
            "outstanding_interest": _m(outstanding_interest),
            "outstanding_fees": _m(outstanding_fees),
            "outstanding_penalties": _m(outstanding_penalties),
            "overdue_amount": _m(overdue_total),
            "overdue_installments": int(late_count),
            "due_next_7_days": _m(Decimal(week_due)),
            "installments_next_7_days": int(week_count),
        },
        "next_due": next_due_json,
        "upcoming_installments": [
            {
                "loan_id": str(loan_id),
                "loan_number": number,
                "installment": n,
                "due_on": due_on.isoformat(),
                "amount": _m(Decimal(amount)),
                "overdue": due_on < today,
                "status": status.value,
            }
            for due_on, n, amount, loan_id, number, status in coming
        ],
        "last_payment": None
        if last is None
        else {
            "collected_on": last[0].collected_on.isoformat(),
            "amount": _m(last[0].amount),
            "receipt_number": last[0].receipt_number,
            "loan_number": last[1],
        },
    }


OVERDUE_TO_VISIT = 10


def _by_agent(rows: Any) -> dict[uuid.UUID, Decimal]:
    return {agent_id: Decimal(amount) for agent_id, amount in rows if agent_id is not None}


async def branch_desk(
    session: AsyncSession, *, branch_id: uuid.UUID, overdue_limit: int = OVERDUE_TO_VISIT
) -> dict[str, Any]:
    """A branch's day at the Manager's desk, live (not cached): per agent, today's dues, what
    was collected against them and in person so far (the agent-performance report for today),
    the cash each agent holds (their ``agent_cash`` balance: collected, not yet handed over)
    and what they handed over today; and the overdue customers to visit (the overdue report,
    the longest overdue first). Money as the reports' ``Decimal``s."""
    today = today_india()
    day = ReportFilters(today, today, branch_id)
    performance = await queries.agent_performance(session, day, reconcile=False, stock=False)
    overdue = await queries.overdue_list(session, day, reconcile=False)
    in_hand: dict[uuid.UUID, Decimal] = _by_agent(
        (
            await session.execute(
                select(
                    LedgerAccount.agent_id,
                    func.coalesce(func.sum(JournalLine.debit - JournalLine.credit), ZERO),
                )
                .select_from(LedgerAccount)
                .join(JournalLine, JournalLine.account_id == LedgerAccount.id)
                .join(User, User.id == LedgerAccount.agent_id)
                .where(LedgerAccount.kind == AccountKind.AGENT_CASH)
                .where(User.branch_id == branch_id)
                .group_by(LedgerAccount.agent_id)
            )
        ).all()
    )
    handed: dict[uuid.UUID, Decimal] = _by_agent(
        (
            await session.execute(
                select(
                    CashHandover.agent_id,
                    func.coalesce(func.sum(CashHandover.amount_deposited), ZERO),
                )
                .where(CashHandover.branch_id == branch_id)
                .where(CashHandover.business_date == today)
                .where(CashHandover.reversed_at.is_(None))
                .group_by(CashHandover.agent_id)
            )
        ).all()
    )
    agents = []
    for row in performance.rows:
        agent_id = row.get("agent_id")
        agents.append(
            {
                "agent_id": str(agent_id) if agent_id else None,
                "agent_name": row["agent_name"],
                "due_amount": row["due_amount"],
                "collected_against_due": row["collected_against_due"],
                "collection_rate": row["collection_efficiency"],
                "collections": row["collections"],
                "collected_amount": row["collected_amount"],
                "cash_in_hand": Decimal(in_hand.get(agent_id, ZERO) if agent_id else ZERO),
                "handed_over": Decimal(handed.get(agent_id, ZERO) if agent_id else ZERO),
            }
        )
    totals = performance.totals
    return {
        "as_of": today,
        "agents": agents,
        "due_amount": totals["due_amount"],
        "collected_against_due": totals["collected_against_due"],
        "collection_rate": totals["collection_efficiency"],
        "collected_amount": totals["collected_amount"],
        "cash_in_hand": sum((Decimal(v) for v in in_hand.values()), ZERO),
        "handed_over": sum((Decimal(v) for v in handed.values()), ZERO),
        "overdue_loans": len(overdue.rows),
        "overdue_customers": len({r["customer_id"] for r in overdue.rows}),
        "overdue_amount": overdue.totals["overdue_amount"],
        "overdue": [
            {k: str(v) if isinstance(v, uuid.UUID) else v for k, v in r.items()}
            for r in overdue.rows[:overdue_limit]
        ],
    }


async def par_cached(
    session: AsyncSession, cache: Cache, *, branch_id: uuid.UUID | None, fresh: bool = False
) -> Any:
    """The PAR report's buckets and summary (PAR 1/30/60/90, amounts at risk) for the
    institution or a branch, as JSON, kept like the dashboards (under ``dashboard:``, so every
    write that moves a dashboard moves it too)."""
    key = f"dashboard:{branch_id or 'all'}:par"

    async def build(s: AsyncSession) -> dict[str, Any]:
        today = today_india()
        report = await queries.par_report(
            s, ReportFilters(today, today, branch_id), reconcile=False
        )
        return {
            "as_of": today.isoformat(),
            "rows": [row_json(r, report.columns) for r in report.rows],
            "summary": {
                k: value_json(v, report.summary_types.get(k, ColumnType.TEXT))
                for k, v in report.summary.items()
            },
        }

    return await answer_kept_or_built(session, cache, key, build, fresh=fresh)


async def branch_desk_cached(
    session: AsyncSession, cache: Cache, *, branch_id: uuid.UUID, fresh: bool = False
) -> Any:
    """``branch_desk`` as JSON, kept like the dashboards (every collection, hand-over and close
    of business moves ``dashboard:*``)."""

    async def build(s: AsyncSession) -> dict[str, Any]:
        return await branch_desk(s, branch_id=branch_id)

    return await answer_kept_or_built(
        session, cache, f"dashboard:{branch_id}:desk", build, fresh=fresh
    )
