"""Report 4: collection register (docs/reports.md)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    case,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from namma.models import (
    AccountKind,
    Branch,
    Collection,
    Customer,
    JournalEntry,
    JournalLine,
    LedgerAccount,
    Loan,
    User,
)
from namma.reports.base import (
    ZERO,
    ColumnType,
    Reconciliation,
    Report,
    ReportFilters,
    day,
    money,
    text,
)
from namma.reports.queries.blocks import (
    CASH_KINDS,
    _dec,
    _sum,
    scoped_loans,
)

REALLOCATION_KINDS = ("collection.reallocation", "collection.reversal_reallocation")
SPLIT_PARTS: dict[str, AccountKind] = {
    "principal": AccountKind.LOAN_PORTFOLIO,
    "interest": AccountKind.INTEREST_INCOME,
    "fee": AccountKind.FEE_INCOME,
    "penalty": AccountKind.PENALTY_INCOME,
    "recovery": AccountKind.RECOVERY_INCOME,
    "advance": AccountKind.CUSTOMER_ADVANCES,  # held for installments still to fall due
}
# On an accrual-basis loan a collection's interest first settles the interest receivable
# (docs/ledger.md, "Accrual accounting"): that credit is interest collected too.
PART_KINDS: dict[str, tuple[AccountKind, ...]] = {
    part: (kind, AccountKind.INTEREST_RECEIVABLE) if part == "interest" else (kind,)
    for part, kind in SPLIT_PARTS.items()
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
    principal, interest, fee, penalty, recovery and advance held (credit − debit). A reversal's
    are negative."""
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
                        (LedgerAccount.kind.in_(kinds), JournalLine.credit - JournalLine.debit),
                        else_=ZERO,
                    )
                ).label(part)
                for part, kinds in PART_KINDS.items()
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
            money("advance", "Held as advance"),
        ],
        rows=rows,
        totals=totals,
        summary={"gross": gross, "reversals": reversals, "net": gross - reversals},
        summary_types=dict.fromkeys(("gross", "reversals", "net"), ColumnType.MONEY),
        reconciliation=reconciliation,
    )
