"""Posting to the general ledger. Services call ``journal_post`` inside their own transaction;
nothing here commits.

Accounts are resolved by kind: head-office accounts (income, expense, portfolio, capital …) are
one per installation; cash accounts exist per branch (``BRANCH_CASH``) and per agent
(``AGENT_CASH``) and are created on first use.
"""

from __future__ import annotations

import datetime as dt
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from sqlalchemy import event, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from namma.kit.db import after_commit, raw_connection, session_adopt, sql_values
from namma.kit.errors import ConflictError, InvalidInputError, NotFoundError
from namma.models import (
    AccountKind,
    Branch,
    JournalEntry,
    JournalLine,
    LedgerAccount,
    User,
)
from namma.models.ledger import ACCOUNT_TYPES

CENT = Decimal("0.01")
ZERO = Decimal("0.00")

# Chart of accounts: number prefixes by kind (assets 1xxx, liabilities 2xxx, equity 3xxx,
# income 4xxx, expenses 5xxx, memorandum 9xxx).
ACCOUNT_NUMBERS: dict[AccountKind, str] = {
    AccountKind.BRANCH_CASH: "1010",
    AccountKind.AGENT_CASH: "1020",
    AccountKind.BANK: "1030",
    AccountKind.LOAN_PORTFOLIO: "1100",
    AccountKind.INTEREST_RECEIVABLE: "1110",
    AccountKind.FEE_RECEIVABLE: "1120",
    AccountKind.LOAN_LOSS_PROVISION: "1190",
    AccountKind.BORROWINGS: "2100",
    AccountKind.CUSTOMER_ADVANCES: "2200",
    AccountKind.INTEREST_CAPITALISED: "2300",
    AccountKind.CAPITAL: "3100",
    AccountKind.INTEREST_INCOME: "4100",
    AccountKind.FEE_INCOME: "4200",
    AccountKind.PENALTY_INCOME: "4300",
    AccountKind.RECOVERY_INCOME: "4400",
    AccountKind.WRITE_OFF_EXPENSE: "5100",
    AccountKind.WAIVER_EXPENSE: "5200",
    AccountKind.CASH_SHORTAGE: "5300",
    AccountKind.INTEREST_EXPENSE: "5400",
    AccountKind.PROVISION_EXPENSE: "5500",
    # Memorandum (off-balance-sheet) accounts: 9xxx.
    AccountKind.WAIVERS_MEMO: "9100",
    AccountKind.WAIVERS_MEMO_CONTRA: "9110",
    AccountKind.INTEREST_SUSPENSE: "9200",
    AccountKind.INTEREST_SUSPENSE_CONTRA: "9210",
}

ACCOUNT_NAMES: dict[AccountKind, str] = {
    AccountKind.BRANCH_CASH: "Cash at branch",
    AccountKind.AGENT_CASH: "Cash with agent",
    AccountKind.BANK: "Bank",
    AccountKind.LOAN_PORTFOLIO: "Loan portfolio (principal outstanding)",
    AccountKind.INTEREST_RECEIVABLE: "Interest receivable",
    AccountKind.FEE_RECEIVABLE: "Fees receivable",
    AccountKind.LOAN_LOSS_PROVISION: "Provision for loan losses (contra-asset)",
    AccountKind.BORROWINGS: "Borrowings",
    AccountKind.CUSTOMER_ADVANCES: "Advances from customers",
    AccountKind.INTEREST_CAPITALISED: "Interest capitalised, not yet received",
    AccountKind.CAPITAL: "Owners' capital",
    AccountKind.INTEREST_INCOME: "Interest income",
    AccountKind.FEE_INCOME: "Fee income",
    AccountKind.PENALTY_INCOME: "Penalty income",
    AccountKind.RECOVERY_INCOME: "Recoveries of written-off loans",
    AccountKind.WRITE_OFF_EXPENSE: "Loan write-offs",
    AccountKind.WAIVER_EXPENSE: "Waivers",
    AccountKind.CASH_SHORTAGE: "Cash shortages and excesses",
    AccountKind.INTEREST_EXPENSE: "Interest on borrowings",
    AccountKind.PROVISION_EXPENSE: "Provision for loan losses (expense)",
    AccountKind.WAIVERS_MEMO: "Memo: interest, fees and penalties waived",
    AccountKind.WAIVERS_MEMO_CONTRA: "Memo: waivers (contra)",
    AccountKind.INTEREST_SUSPENSE: "Memo: interest in suspense (non-performing loans)",
    AccountKind.INTEREST_SUSPENSE_CONTRA: "Memo: interest in suspense (contra)",
}


class LedgerError(ValueError):
    """A journal that cannot be posted (unbalanced, negative, fractional paise)."""


@dataclass(frozen=True)
class Leg:
    """One line of a journal to post: exactly one of debit/credit is positive."""

    kind: AccountKind
    debit: Decimal = ZERO
    credit: Decimal = ZERO
    branch_id: uuid.UUID | None = None  # for BRANCH_CASH
    agent_id: uuid.UUID | None = None  # for AGENT_CASH
    loan_id: uuid.UUID | None = None  # sub-ledger tag


async def ledger_account(
    session: AsyncSession,
    kind: AccountKind,
    *,
    branch_id: uuid.UUID | None = None,
    agent_id: uuid.UUID | None = None,
) -> LedgerAccount:
    """The account of ``kind`` (per branch / per agent for cash), created on first use."""
    kind, branch_id, agent_id = _account_key(kind, branch_id, agent_id)
    # Accounts are never deleted or re-keyed: one look-up per transaction is enough (a command
    # may resolve its accounts early, before it takes a lock others wait for).
    known: dict[tuple[AccountKind, uuid.UUID | None, uuid.UUID | None], LedgerAccount]
    known = session.info.setdefault(_ACCOUNTS_SEEN, {})
    if (kind, branch_id, agent_id) in known:
        return known[kind, branch_id, agent_id]
    account = await _ledger_account_fetch(session, kind, branch_id=branch_id, agent_id=agent_id)
    known[kind, branch_id, agent_id] = account
    return account


_ACCOUNTS_SEEN = "namma.ledger_accounts"
# Account ids by database, remembered once a transaction that used them has committed (an
# account is never deleted or re-keyed), so a posting looks nothing up after the first.
_ACCOUNT_IDS: weakref.WeakKeyDictionary[
    Any, dict[tuple[AccountKind, uuid.UUID | None, uuid.UUID | None], uuid.UUID]
] = weakref.WeakKeyDictionary()


async def ledger_account_id(
    session: AsyncSession,
    kind: AccountKind,
    *,
    branch_id: uuid.UUID | None = None,
    agent_id: uuid.UUID | None = None,
) -> uuid.UUID:
    """The id of ``ledger_account(kind, …)``; without a query once this database has seen it."""
    known = _ACCOUNT_IDS.get(session.bind)
    key = _account_key(kind, branch_id, agent_id)
    if known is not None and key in known:
        return known[key]
    account = await ledger_account(session, kind, branch_id=branch_id, agent_id=agent_id)
    account_id, engine = account.id, session.bind

    async def remember() -> None:
        _ACCOUNT_IDS.setdefault(engine, {})[key] = account_id

    after_commit(session, remember)
    return account_id


def _account_key(
    kind: AccountKind, branch_id: uuid.UUID | None, agent_id: uuid.UUID | None
) -> tuple[AccountKind, uuid.UUID | None, uuid.UUID | None]:
    """Cash accounts are per branch or per agent; every other account is institution-wide."""
    if kind is AccountKind.BRANCH_CASH and branch_id is None:
        raise LedgerError("branch cash needs a branch")
    if kind is AccountKind.AGENT_CASH and agent_id is None:
        raise LedgerError("agent cash needs an agent")
    if kind is AccountKind.BRANCH_CASH:
        return kind, branch_id, None
    if kind is AccountKind.AGENT_CASH:
        return kind, None, agent_id
    return kind, None, None


@event.listens_for(Session, "after_soft_rollback")
def _accounts_forget(session: Session, previous_transaction: SessionTransaction) -> None:
    """An account created inside a rolled-back savepoint is gone again: look up afresh."""
    session.info.pop(_ACCOUNTS_SEEN, None)


async def _ledger_account_fetch(
    session: AsyncSession,
    kind: AccountKind,
    *,
    branch_id: uuid.UUID | None,
    agent_id: uuid.UUID | None,
) -> LedgerAccount:
    query = select(LedgerAccount).where(LedgerAccount.kind == kind)
    query = query.where(
        LedgerAccount.branch_id.is_(None)
        if branch_id is None
        else LedgerAccount.branch_id == branch_id
    )
    query = query.where(
        LedgerAccount.agent_id.is_(None) if agent_id is None else LedgerAccount.agent_id == agent_id
    )
    account = await session.scalar(query)
    if account is not None:
        return account
    code, name = ACCOUNT_NUMBERS[kind], ACCOUNT_NAMES[kind]
    if branch_id is not None:
        branch = await session.get(Branch, branch_id)
        if branch is None:
            raise LedgerError(f"no branch {branch_id}")
        code, name = f"{code}-{branch.code}", f"{name} {branch.code}"
    if agent_id is not None:
        agent = await session.get(User, agent_id)
        if agent is None:
            raise LedgerError(f"no user {agent_id}")
        code, name = f"{code}-{agent.id.hex[:12]}", f"{name}: {agent.name}"
    # Concurrent first uses create one account: the unique index decides, both then read it.
    await session.execute(
        insert(LedgerAccount)
        .values(
            id=uuid.uuid4(),
            code=code,
            name=name,
            kind=kind,
            type=ACCOUNT_TYPES[kind],
            branch_id=branch_id,
            agent_id=agent_id,
        )
        .on_conflict_do_nothing()
    )
    account = await session.scalar(query)
    assert account is not None
    return account


def legs_check(legs: Sequence[Leg]) -> None:
    if len(legs) < 2:
        raise LedgerError("a journal entry needs at least two lines")
    for leg in legs:
        for amount in (leg.debit, leg.credit):
            if amount < 0:
                raise LedgerError(f"negative amount {amount} on {leg.kind.value}")
            if amount != amount.quantize(CENT):
                raise LedgerError(f"{amount} on {leg.kind.value} is not whole paise")
        if (leg.debit > 0) == (leg.credit > 0):
            raise LedgerError(f"a line debits or credits, not both or neither ({leg.kind.value})")
    debits = sum((leg.debit for leg in legs), ZERO)
    credits = sum((leg.credit for leg in legs), ZERO)
    if debits != credits:
        raise LedgerError(f"debits {debits} ≠ credits {credits}")


# Every money request posts: the entry and its lines go straight to the driver
# (`raw_connection`), two statements.
JOURNAL_ENTRY_INSERT = (
    "INSERT INTO journal_entries (entry_date, kind, memo, branch_id, loan_id, created_by_id, "
    "reverses_id) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id, posted_at"
)
JOURNAL_LINE_INSERT = (
    "INSERT INTO journal_lines (entry_id, account_id, debit, credit, loan_id) VALUES "
)
JOURNAL_LINE_ROW = "(%s, %s, %s, %s, %s)"
LINES_PER_STATEMENT = 10_000


async def journal_post(
    session: AsyncSession,
    *,
    kind: str,
    entry_date: dt.date,
    legs: Sequence[Leg],
    memo: str | None = None,
    branch_id: uuid.UUID | None = None,
    loan_id: uuid.UUID | None = None,
    created_by_id: uuid.UUID | None = None,
    reverses_id: int | None = None,
) -> JournalEntry:
    """Post one balanced entry. Zero-amount legs are dropped (a fee of 0 is no line)."""
    legs = [leg for leg in legs if leg.debit > 0 or leg.credit > 0]
    legs_check(legs)
    accounts = [
        await ledger_account_id(session, leg.kind, branch_id=leg.branch_id, agent_id=leg.agent_id)
        for leg in legs
    ]
    values = {
        "entry_date": entry_date,
        "kind": kind,
        "memo": memo,
        "branch_id": branch_id,
        "loan_id": loan_id,
        "created_by_id": created_by_id,
        "reverses_id": reverses_id,
    }
    # Straight to the driver: every money request posts an entry, and SQLAlchemy's layer costs
    # more than the two inserts (docs/decisions.md). An account created just above is pending
    # in the session: flush it before the lines refer to it.
    await session.flush()
    connection = await raw_connection(session)
    cursor = await connection.execute(
        JOURNAL_ENTRY_INSERT,
        (entry_date, kind, memo, branch_id, loan_id, created_by_id, reverses_id),
    )
    row = await cursor.fetchone()
    assert row is not None
    entry_id, posted_at = row
    # One statement for the lines (a few, for every request); a journal of many lines (the
    # close of business's provisions: a line per loan) in statements of at most
    # LINES_PER_STATEMENT, under the driver's 65,535 parameters.
    pairs = list(zip(legs, accounts, strict=True))
    for start in range(0, len(pairs), LINES_PER_STATEMENT):
        chunk = pairs[start : start + LINES_PER_STATEMENT]
        lines: list[object] = []
        for leg, account_id in chunk:
            lines += (entry_id, account_id, leg.debit, leg.credit, leg.loan_id)
        await connection.execute(
            JOURNAL_LINE_INSERT + sql_values(JOURNAL_LINE_ROW, len(chunk)), lines
        )
    entry = JournalEntry(id=entry_id, posted_at=posted_at, **values)
    # Known to the session as if it had been loaded (a reversal in this transaction finds it).
    session_adopt(session, entry)
    return entry


REVERSAL_SUFFIX = ".reversal"


class Reversible(Protocol):
    """A recorded money movement that is reversed, never deleted: a collection, a cash
    hand-over, a capital investment, borrowing or repayment."""

    @property
    def journal_entry_id(self) -> int | None: ...  # None: never posted (nothing to reverse)

    reversed_at: dt.datetime | None
    reversed_by_id: uuid.UUID | None
    reversal_reason: str | None
    reversal_entry_id: int | None


async def record_reverse(
    session: AsyncSession,
    record: Reversible,
    *,
    by: uuid.UUID,
    reason: str,
    memo: str,
    on: dt.date,
) -> JournalEntry:
    """Reverse a recorded money movement, the one way every domain does: the mirror of its
    journal entry dated ``on`` (``memo`` says what it was), and the record kept, marked
    reversed — when, by whom, why (``reason``), by which entry. The caller checks it may be
    reversed (409 when already reversed), changes what else follows (a loan replayed, a
    borrowing re-opened) and audits."""
    entry_id = record.journal_entry_id
    assert entry_id is not None, "a record never posted has no journal to reverse"
    reversal = await journal_reverse(
        session, entry_id=entry_id, entry_date=on, reason=memo, created_by_id=by
    )
    record.reversed_at = dt.datetime.now(dt.UTC)
    record.reversed_by_id = by
    record.reversal_reason = reason
    record.reversal_entry_id = reversal.id
    await session.flush()
    return reversal


async def journal_reverse(
    session: AsyncSession,
    *,
    entry_id: int,
    entry_date: dt.date,
    reason: str,
    created_by_id: uuid.UUID | None,
) -> JournalEntry:
    """Post the mirror image of entry ``entry_id`` (every debit becomes a credit on the same
    account, with the same loan tag) as a new entry whose ``reverses_id`` names the original.

    An entry is reversed at most once, and a reversal is never itself reversed (post a fresh
    entry instead): both answer ``ConflictError``. The original row is locked first, so two
    concurrent reversals queue and the second one sees the first. Auditing is the caller's.
    """
    reason = reason.strip()
    if not reason:
        raise InvalidInputError("reason", "Say why the entry is reversed.")
    entry = await session.scalar(
        select(JournalEntry).where(JournalEntry.id == entry_id).with_for_update()
    )
    if entry is None:
        raise NotFoundError(f"No journal entry {entry_id}.")
    if entry.reverses_id is not None:
        raise ConflictError(
            f"Journal entry {entry_id} is itself a reversal (of entry {entry.reverses_id}); "
            "post a new entry instead.",
            details={"entry_id": entry_id, "reverses_id": entry.reverses_id},
        )
    existing = await session.scalar(
        select(JournalEntry.id).where(JournalEntry.reverses_id == entry_id)
    )
    if existing is not None:
        raise ConflictError(
            f"Journal entry {entry_id} was already reversed by entry {existing}.",
            details={"entry_id": entry_id, "reversed_by_id": existing},
        )
    rows = (
        await session.execute(
            select(JournalLine, LedgerAccount)
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .where(JournalLine.entry_id == entry_id)
            .order_by(JournalLine.id)
        )
    ).all()
    legs = [
        Leg(
            kind=account.kind,
            debit=line.credit,
            credit=line.debit,
            branch_id=account.branch_id,
            agent_id=account.agent_id,
            loan_id=line.loan_id,
        )
        for line, account in rows
    ]
    kind = entry.kind + REVERSAL_SUFFIX
    if len(kind) > 50:  # the column's width
        kind = "reversal"
    return await journal_post(
        session,
        kind=kind,
        entry_date=entry_date,
        legs=legs,
        memo=f"Reversal of entry {entry_id}: {reason}",
        branch_id=entry.branch_id,
        loan_id=entry.loan_id,
        created_by_id=created_by_id,
        reverses_id=entry_id,
    )
