"""The dashboards' 12-month trend from the ledger, kept and brought up to date (D-204).

Read in full, the trend sums twelve months of a branch's journal lines (the institution's for
the Admin): on a year-old book, the largest statement a dashboard sends, and a dashboard is
rebuilt after every write in its branch. So the sums are kept in the cache together with the
PostgreSQL snapshot they were read in (``pg_current_snapshot()``, in the same statement), and
a later read adds only the entries that snapshot could not see: every journal entry records the
transaction that posted it (``journal_entries.posted_xact``, a column default), and
``pg_visible_in_snapshot`` says whether the kept read saw it. Exact whatever order
transactions commit in — an entry with a lower id that commits after the kept read is still
added, which a watermark on entry ids would miss — with no lock and nothing in the posting path.
Entries are never updated or deleted (a correction is a new entry), and a loan has one
disbursement entry (a unique index), so every figure adds up across reads.

What is kept is for one Indian day (the window of months moves at midnight: the first read of a
day reads in full) and is replaced by each read, which is exact for its own snapshot whichever
of two concurrent reads writes last. A read inside a transaction that has written anything
keeps nothing: its own uncommitted entries would be in the sums while its snapshot calls them
in progress, so they would be added twice.

The cost, in clarity: the dashboards' trend has two paths (full and kept + new), which the
tests hold equal after every kind of write, including a transaction that commits after a kept
read began.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    Date,
    Select,
    and_,
    case,
    cast,
    distinct,
    func,
    literal_column,
    or_,
    select,
    text,
    true,
)
from sqlalchemy.ext.asyncio import AsyncSession

from namma.finance import add_months
from namma.kit.cache import Cache
from namma.kit.money import money_str
from namma.models import AccountKind, AccountType, JournalEntry, JournalLine, LedgerAccount
from namma.reports import queries
from namma.reports.base import ZERO, profit

MONTHS_IN_TREND = 12
# Kept at most a day and a bit: a read on another Indian day reads in full anyway.
KEPT_TTL_SECONDS = 26 * 3600

# Per month: loans disbursed, principal disbursed, collected, income, expenses.
MonthSums = tuple[int, Decimal, Decimal, Decimal, Decimal]
NO_SUMS: MonthSums = (0, ZERO, ZERO, ZERO, ZERO)


def _first_month(today: dt.date) -> dt.date:
    """The first day of the trend's first month: 12 calendar months with this one."""
    return add_months(today.replace(day=1), -(MONTHS_IN_TREND - 1))


def monthly_key(branch_id: uuid.UUID | None) -> str:
    return f"trend:monthly:{branch_id or 'all'}"


def _sums_query(
    *, branch_id: uuid.UUID | None, first: dt.date, today: dt.date, unseen_by: str | None
) -> Select[Any]:
    """The months' sums with the snapshot they are read in. ``unseen_by``: only the entries
    that snapshot (``pg_snapshot`` text) could not see."""
    e, line, account = JournalEntry, JournalLine, LedgerAccount
    month = cast(func.date_trunc("month", e.entry_date), Date)
    disbursement = e.kind == "loan.disbursement"
    collection = or_(e.kind == "collection", e.kind.like("collection.%"))
    grouped = (
        select(
            month.label("month"),
            func.count(distinct(case((disbursement, e.loan_id)))).label("loans"),
            func.coalesce(
                func.sum(
                    case(
                        (
                            and_(disbursement, account.kind == AccountKind.LOAN_PORTFOLIO),
                            line.debit,
                        ),
                        else_=ZERO,
                    )
                ),
                ZERO,
            ).label("disbursed"),
            func.coalesce(
                func.sum(
                    case(
                        (
                            and_(collection, account.kind.in_(queries.CASH_KINDS)),
                            line.debit - line.credit,
                        ),
                        else_=ZERO,
                    )
                ),
                ZERO,
            ).label("collected"),
            func.coalesce(
                func.sum(
                    case((account.type == AccountType.INCOME, line.credit - line.debit), else_=ZERO)
                ),
                ZERO,
            ).label("income"),
            func.coalesce(
                func.sum(
                    case(
                        (account.type == AccountType.EXPENSE, line.debit - line.credit), else_=ZERO
                    )
                ),
                ZERO,
            ).label("expenses"),
        )
        .select_from(line)
        .join(e, e.id == line.entry_id)
        .join(account, account.id == line.account_id)
        .where(e.entry_date.between(first, today))
        .group_by(month)
    )
    if branch_id is not None:
        grouped = grouped.where(e.branch_id == branch_id)
    if unseen_by is not None:
        # Transactions below the kept snapshot's xmin had ended when it was taken: the index on
        # posted_xact finds the few entries at or above it, the visibility test the rest.
        grouped = grouped.where(
            text(
                "journal_entries.posted_xact >= "
                "pg_snapshot_xmin(CAST(:unseen_by AS pg_snapshot))::text::bigint "
                "AND NOT pg_visible_in_snapshot("
                "journal_entries.posted_xact::text::xid8, CAST(:unseen_by AS pg_snapshot))"
            ).bindparams(unseen_by=unseen_by)
        )
    sums = grouped.subquery("sums")
    # The snapshot of this very statement (READ COMMITTED takes one per statement), and whether
    # this transaction has written anything (then nothing may be kept).
    now = select(
        literal_column("pg_current_snapshot()::text").label("snapshot"),
        literal_column("pg_current_xact_id_if_assigned() IS NULL").label("read_only"),
        literal_column(
            "(SELECT oid FROM pg_database WHERE datname = current_database())::text"
        ).label("database"),
    ).subquery("now")
    return select(
        now.c.snapshot,
        now.c.read_only,
        now.c.database,
        sums.c.month,
        sums.c.loans,
        sums.c.disbursed,
        sums.c.collected,
        sums.c.income,
        sums.c.expenses,
    ).select_from(now.outerjoin(sums, true()))


@dataclasses.dataclass(frozen=True)
class _Read:
    snapshot: str  # pg_snapshot as text: "xmin:xmax:xip,…"
    database: str  # the database's oid: another database's kept sums are not this one's
    read_only: bool
    months: dict[dt.date, MonthSums]


async def _sums_read(
    session: AsyncSession,
    *,
    branch_id: uuid.UUID | None,
    first: dt.date,
    today: dt.date,
    unseen_by: str | None,
) -> _Read:
    rows = (
        await session.execute(
            _sums_query(branch_id=branch_id, first=first, today=today, unseen_by=unseen_by)
        )
    ).all()
    months = {
        r.month: (int(r.loans), Decimal(r.disbursed), Decimal(r.collected), Decimal(r.income),
                  Decimal(r.expenses))
        for r in rows
        if r.month is not None
    }  # fmt: skip
    return _Read(rows[0].snapshot, rows[0].database, bool(rows[0].read_only), months)


def _xmax(snapshot: str) -> int:
    return int(snapshot.split(":")[1])


def _add(a: MonthSums, b: MonthSums) -> MonthSums:
    return (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4])


def _kept_decode(kept: Any, *, today: dt.date) -> tuple[str, str, dict[dt.date, MonthSums]] | None:
    if not isinstance(kept, dict) or kept.get("day") != today.isoformat():
        return None
    months = {
        dt.date.fromisoformat(on): (int(v[0]), Decimal(v[1]), Decimal(v[2]), Decimal(v[3]),
                                    Decimal(v[4]))
        for on, v in kept["months"].items()
    }  # fmt: skip
    return str(kept["snapshot"]), str(kept["database"]), months


def _kept_encode(read: _Read, months: dict[dt.date, MonthSums], *, today: dt.date) -> Any:
    return {
        "day": today.isoformat(),
        "snapshot": read.snapshot,
        "database": read.database,
        "months": {
            on.isoformat(): [v[0], str(v[1]), str(v[2]), str(v[3]), str(v[4])]
            for on, v in months.items()
        },
    }


async def monthly_sums(
    session: AsyncSession,
    cache: Cache | None,
    *,
    branch_id: uuid.UUID | None,
    today: dt.date,
) -> dict[dt.date, MonthSums]:
    """Each of the last 12 calendar months' sums (this one to date; a month without entries is
    absent) for a branch's entries, or every entry (``branch_id`` None). With ``cache``: the
    kept sums plus the entries their snapshot could not see, kept again."""
    first = _first_month(today)
    key = monthly_key(branch_id)
    kept = _kept_decode(await cache.get(key), today=today) if cache is not None else None
    read = await _sums_read(
        session,
        branch_id=branch_id,
        first=first,
        today=today,
        unseen_by=kept[0] if kept is not None else None,
    )
    months = read.months
    if kept is not None:
        kept_snapshot, kept_database, kept_months = kept
        if kept_database != read.database or _xmax(kept_snapshot) > _xmax(read.snapshot):
            # Another database, or this one restored to an earlier moment (its transaction ids
            # went back): the kept sums are not its.
            read = await _sums_read(
                session, branch_id=branch_id, first=first, today=today, unseen_by=None
            )
            months = read.months
        else:
            months = dict(kept_months)
            for on, sums in read.months.items():
                months[on] = _add(months.get(on, NO_SUMS), sums)
    if cache is not None and read.read_only:
        await cache.set(key, _kept_encode(read, months, today=today), KEPT_TTL_SECONDS)
    return months


async def monthly_trend(
    session: AsyncSession,
    cache: Cache | None,
    *,
    branch_id: uuid.UUID | None,
    today: dt.date,
) -> list[dict[str, Any]]:
    """The last 12 calendar months (this one to date) from the ledger: loans disbursed and
    principal disbursed (portfolio debits of disbursements), collected (cash and bank movement
    of collection entries, net of reversals), income, expenses and profit — the same
    definitions as the reports. A branch: its entries only."""
    months = await monthly_sums(session, cache, branch_id=branch_id, today=today)
    first = _first_month(today)
    out = []
    for k in range(MONTHS_IN_TREND):
        on = add_months(first, k)
        loans, disbursed, collected, income, expenses = months.get(on, NO_SUMS)
        out.append(
            {
                "month": on.strftime("%Y-%m"),
                "loans_disbursed": loans,
                "disbursed_amount": money_str(disbursed),
                "collected_amount": money_str(collected),
                "income": money_str(income),
                "expenses": money_str(expenses),
                "profit": money_str(profit(income, expenses)),
            }
        )
    return out
