"""The dashboards' 12-month trend from the ledger, kept and brought up to date (D-204).

Read in full, the trend sums twelve months of a branch's journal lines (the institution's for
the Admin): on a year-old book, the largest statement a dashboard sends, and a dashboard is
rebuilt after every write in its branch. So the sums are kept with the PostgreSQL snapshot they
were read in, and a later read adds only the entries that snapshot could not see
(``namma.reports.kept``: how, and why it is exact). A loan has one disbursement entry (a unique
index), so its count adds up across reads too. What is kept is for one Indian day: the window
of months moves at midnight.

The cost, in clarity: the dashboards' trend has two paths (full and kept + new), which the
tests hold equal after every kind of write, including a transaction that commits after a kept
read began.
"""

from __future__ import annotations

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
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from namma.finance import add_months
from namma.kit.cache import Cache
from namma.kit.money import money_str
from namma.models import AccountKind, AccountType, JournalEntry, JournalLine, LedgerAccount
from namma.reports import queries
from namma.reports.base import ZERO, profit
from namma.reports.kept import SnapshotRead, entries_unseen_by, kept_sums, with_snapshot

MONTHS_IN_TREND = 12

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
        grouped = grouped.where(entries_unseen_by(unseen_by))
    return with_snapshot(grouped.subquery("sums"))


async def _sums_read(
    session: AsyncSession,
    *,
    branch_id: uuid.UUID | None,
    first: dt.date,
    today: dt.date,
    unseen_by: str | None,
) -> SnapshotRead[dict[dt.date, MonthSums]]:
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
    return SnapshotRead.of(rows[0], months)


def _add(kept: dict[dt.date, MonthSums], new: dict[dt.date, MonthSums]) -> dict[dt.date, MonthSums]:
    months = dict(kept)
    for on, b in new.items():
        a = months.get(on, NO_SUMS)
        months[on] = (a[0] + b[0], a[1] + b[1], a[2] + b[2], a[3] + b[3], a[4] + b[4])
    return months


def _encode(months: dict[dt.date, MonthSums]) -> Any:
    return {
        on.isoformat(): [v[0], str(v[1]), str(v[2]), str(v[3]), str(v[4])]
        for on, v in months.items()
    }


def _decode(kept: Any) -> dict[dt.date, MonthSums]:
    return {
        dt.date.fromisoformat(on): (int(v[0]), Decimal(v[1]), Decimal(v[2]), Decimal(v[3]),
                                    Decimal(v[4]))
        for on, v in kept.items()
    }  # fmt: skip


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

    async def read(unseen_by: str | None) -> SnapshotRead[dict[dt.date, MonthSums]]:
        return await _sums_read(
            session, branch_id=branch_id, first=first, today=today, unseen_by=unseen_by
        )

    return await kept_sums(
        session,
        cache,
        monthly_key(branch_id),
        today=today,
        read=read,
        add=_add,
        encode=_encode,
        decode=_decode,
    )


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
