"""The posting path's store: every statement a collection (and its reversal, waiver and the
bulk sheet post) sends straight to the driver for a loan and its collections, with the row
adoption and the installment state, behind one small API. Other domains and the benchmark
import these from here only.

A collection sends, in this order (`POSTING_STATEMENTS` lists them for the benchmark's
baseline, which replays exactly these):

1. the caller (`namma.auth.deps`), 2. the idempotency claim (`namma.kit.idempotency`),
3. `loan_locked` — the loan row ``FOR UPDATE`` in the caller's scope (`loan_scope_sql`,
   compiled from the ORM's `loan_scope`), with its terms (`loan_terms`), 4. `loan_version`,
5. `installment_states`, 6. `installment_states_write` (only the installments the payment
changed), 7. `loan_columns_write` (the loan's balances), 8. the journal entry and its lines
(`namma.ledger.service.journal_post`), 9. the receipts job, 10. `receipt_prefix` (the branch's
code), 11. `collection_insert_numbered` — the receipt number, the collection and its allocation
rows in one statement (the branch's sequence row stays locked from here to the commit, so it
comes last), 12. the stored answer, 13. the audit append at the commit (`namma.audit.service`).

Why straight to the driver, and the rules that keep it safe (a raw read flushes the session
first; rows that callers keep using join the session as if loaded; an ORM copy of a changed row
is brought up to date): docs/decisions.md, "Collections under load".
"""

from __future__ import annotations

import datetime as dt
import enum
import operator
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, LiteralString

from psycopg import sql
from psycopg.errors import UniqueViolation
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

from namma.audit.service import (
    AUDIT_CHAIN_LOCK_KEY,
    AUDIT_INSERT,
    AUDIT_LAST,
    AUDIT_LOCK,
    AUDIT_ROW,
)
from namma.auth.deps import PRINCIPAL_QUERY, Principal
from namma.auth.scope import loan_scope_sql
from namma.kit.clock import today_india
from namma.kit.db import RowLoader, raw_connection, session_adopt, sql_values
from namma.kit.errors import ConflictError, NotFoundError
from namma.kit.idempotency import IDEMPOTENCY_ANSWER, IDEMPOTENCY_CLAIM
from namma.ledger.service import JOURNAL_ENTRY_INSERT, JOURNAL_LINE_INSERT, JOURNAL_LINE_ROW
from namma.models import (
    Collection,
    CollectionAllocation,
    InstallmentStatus,
    Loan,
    LoanInstallment,
    LoanProductVersion,
    LoanTermsSnapshot,
    Role,
)

# --- numbers ---------------------------------------------------------------------------------

# The next number of a branch's sequence (parameters: branch, kind, year); a collection runs it
# inside the statement that writes the numbered rows.
NUMBER_NEXT = (
    "INSERT INTO number_sequences (branch_id, kind, year, last_value) VALUES (%s, %s, %s, 1) "
    "ON CONFLICT (branch_id, kind, year) "
    "DO UPDATE SET last_value = number_sequences.last_value + 1 RETURNING last_value"
)


async def number_next(session: AsyncSession, *, branch_id: uuid.UUID, kind: str, year: int) -> int:
    """The next number of ``kind`` for the branch and year; the row stays locked until commit,
    so numbers are sequential without gaps even under concurrency."""
    connection = await raw_connection(session)
    cursor = await connection.execute(NUMBER_NEXT, (branch_id, kind, year))
    row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


# --- the loan and its product version ------------------------------------------------------

# A loan read straight from the driver comes with its terms (`Loan.terms`, a table of their
# own: D-212): select `LOAN_ROWS.columns` from `LOANS_WITH_TERMS`.
LOANS_WITH_TERMS = "loans l JOIN loan_terms t ON t.loan_id = l.id"


class LoanRowLoader:
    """`RowLoader` of loans with their terms: ``columns`` are the loan's every column (qualified
    by ``l``), then its terms' (by ``t``); `adopt` makes such a row the session's loan with its
    terms loaded, as the ORM's joined load does, so `loan.terms` never has to read them (which
    an async session cannot do on attribute access)."""

    def __init__(self) -> None:
        self._loans = RowLoader(Loan, "l")
        self._terms = RowLoader(LoanTermsSnapshot, "t")
        self.keys = self._loans.keys  # the loan's columns, first in the row
        self.columns = sql.SQL(", ").join((self._loans.columns, self._terms.columns))

    def adopt(self, session: AsyncSession, row: Sequence[Any]) -> Loan:
        split = len(self.keys)
        loan = self._loans.adopt(session, row[:split])
        set_committed_value(loan, "terms_snapshot", self._terms.adopt(session, row[split:]))
        return loan


LOAN_ROWS = LoanRowLoader()


def loan_for_update_query(scope: LiteralString) -> bytes:
    """The locking read of a loan in a scope (`loan_scope_sql`): the loan's columns and its
    terms'; only the loan's row is locked."""
    return (
        sql.SQL("SELECT {} FROM {} WHERE l.id = %s AND ({}) FOR UPDATE OF l")
        .format(LOAN_ROWS.columns, sql.SQL(LOANS_WITH_TERMS), sql.SQL(scope))
        .as_bytes()
    )


async def loan_locked(session: AsyncSession, principal: Principal, loan_id: uuid.UUID) -> Loan:
    """The loan with its terms, its row locked to the commit, if it is in the caller's scope
    (else 404).

    Every change to a loan's money starts here, every collection too: one statement straight
    to the driver (`RowLoader`)."""
    scope, scope_params = loan_scope_sql(principal)
    query = _loan_locks.get(scope)
    if query is None:
        query = _loan_locks[scope] = loan_for_update_query(scope)
    await session.flush()  # as a query would: the read sees what the session changed
    connection = await raw_connection(session)
    cursor = await connection.execute(query, (loan_id, *scope_params))
    row = await cursor.fetchone()
    if row is None:
        raise NotFoundError("Loan not found")
    return LOAN_ROWS.adopt(session, row)


_loan_locks: dict[str, bytes] = {}
_VERSION_ROWS = RowLoader(LoanProductVersion, "v")
LOAN_VERSION_QUERY = (
    sql.SQL("SELECT {} FROM loan_product_versions v WHERE v.id = %s")
    .format(_VERSION_ROWS.columns)
    .as_bytes()
)


async def loan_version(session: AsyncSession, loan: Loan) -> LoanProductVersion:
    """The loan's product version: the session's copy if it holds one (as ``session.get``),
    else read straight from the driver (every collection reads it)."""
    held = session.identity_map.get(identity_key(LoanProductVersion, loan.product_version_id))
    if isinstance(held, LoanProductVersion):
        return held
    connection = await raw_connection(session)
    cursor = await connection.execute(LOAN_VERSION_QUERY, (loan.product_version_id,))
    row = await cursor.fetchone()
    assert row is not None  # a foreign key
    return _VERSION_ROWS.adopt(session, row)


# --- the installments and the loan's balances ---------------------------------------------


@dataclass(slots=True)
class InstallmentState:
    """An installment's dates, amounts and status as plain values: what posting a collection
    reads and changes. Loaded and written with Core statements (`installment_states`,
    `installment_states_write`): the ORM's per-attribute instrumentation and unit of work cost
    more than the arithmetic on the one or two installments a payment touches."""

    id: uuid.UUID
    number: int
    due_date: dt.date
    principal_due: Decimal
    interest_due: Decimal
    fee_due: Decimal
    penalty_due: Decimal
    principal_paid: Decimal
    interest_paid: Decimal
    fee_paid: Decimal
    penalty_paid: Decimal
    interest_waived: Decimal
    fee_waived: Decimal
    penalty_waived: Decimal
    status: InstallmentStatus
    paid_at: dt.datetime | None


# What a payment (or a waiver) changes on an installment.
INSTALLMENT_CHANGING = (
    "principal_paid",
    "interest_paid",
    "fee_paid",
    "penalty_paid",
    "interest_waived",
    "fee_waived",
    "penalty_waived",
    "status",
    "paid_at",
)
_changing = operator.attrgetter(*INSTALLMENT_CHANGING)

INSTALLMENTS_SELECT = (
    "SELECT id, number, due_date, principal_due, interest_due, fee_due, penalty_due, "
    "principal_paid, interest_paid, fee_paid, penalty_paid, interest_waived, fee_waived, "
    "penalty_waived, status, paid_at FROM loan_installments WHERE loan_id = %s ORDER BY number"
)
INSTALLMENT_UPDATE = (
    "UPDATE loan_installments SET principal_paid = %s, interest_paid = %s, fee_paid = %s, "
    "penalty_paid = %s, interest_waived = %s, fee_waived = %s, penalty_waived = %s, "
    "status = %s, paid_at = %s WHERE id = %s"
)

InstallmentLike = LoanInstallment | InstallmentState


async def installment_states(session: AsyncSession, loan_id: uuid.UUID) -> list[InstallmentState]:
    """The loan's installments in number order, as plain values (see `InstallmentState`)."""
    await session.flush()  # what the session changed (a pre-closure's settlement) is read back
    connection = await raw_connection(session)
    cursor = await connection.execute(INSTALLMENTS_SELECT, (loan_id,))
    states = [InstallmentState(*row) for row in await cursor.fetchall()]
    for state in states:
        state.status = InstallmentStatus(state.status)  # the driver reads the enum as text
    return states


def installment_changes(states: Sequence[InstallmentState]) -> list[tuple[object, ...]]:
    """A snapshot of what a payment may change, to find the installments it changed."""
    return [_changing(s) for s in states]


async def installment_states_write(
    session: AsyncSession,
    states: Sequence[InstallmentState],
    before: Sequence[tuple[object, ...]],
) -> None:
    """Write the installments that differ from ``before`` (`installment_changes`), and bring any
    ORM copy of them in this session up to date (as committed state: it is what the database
    now holds)."""
    changed = [s for s, old in zip(states, before, strict=True) if _changing(s) != old]
    if not changed:
        return
    params = [
        (
            s.principal_paid,
            s.interest_paid,
            s.fee_paid,
            s.penalty_paid,
            s.interest_waived,
            s.fee_waived,
            s.penalty_waived,
            s.status.value,
            s.paid_at,
            s.id,
        )
        for s in changed
    ]
    connection = await raw_connection(session)
    if len(params) == 1:  # the usual payment: one statement, no batch
        await connection.execute(INSTALLMENT_UPDATE, params[0])
    else:
        async with connection.cursor() as cursor:
            await cursor.executemany(INSTALLMENT_UPDATE, params)
    for s in changed:
        held = session.identity_map.get(identity_key(LoanInstallment, s.id))
        if held is not None:
            for name in INSTALLMENT_CHANGING:
                set_committed_value(held, name, getattr(s, name))


# The loan's columns a payment writes (`loan_columns_write`), by name: never caller input.
# What a payment that leaves the loan open writes, in the order `collection_record` gives them
# (`loan_balances`, then the total collected); closing it adds the status and closing time, and
# money held as an advance the advance balance.
LOAN_PAYMENT_COLUMNS = (
    "outstanding_principal",
    "outstanding_interest",
    "outstanding_fees",
    "outstanding_penalties",
    "next_due_on",
    "days_past_due",
    "overdue_amount",
    "balances_as_of",
    "total_collected",
)
_LOAN_WRITABLE = frozenset((*LOAN_PAYMENT_COLUMNS, "advance_balance", "status", "closed_at"))
_loan_updates: dict[tuple[str, ...], bytes] = {}


def loan_update_query(names: tuple[str, ...]) -> bytes:
    """``UPDATE loans SET <names> = %s …, updated_at = now() WHERE id = %s RETURNING
    updated_at``, built once per set of columns."""
    query = _loan_updates.get(names)
    if query is None:
        unknown = set(names) - _LOAN_WRITABLE
        assert not unknown, unknown
        query = _loan_updates[names] = (
            sql.SQL("UPDATE loans SET {}, updated_at = now() WHERE id = %s RETURNING updated_at")
            .format(sql.SQL(", ").join(sql.SQL("{} = %s").format(sql.Identifier(n)) for n in names))
            .as_bytes()
        )
    return query


async def loan_columns_write(session: AsyncSession, loan: Loan, values: Mapping[str, Any]) -> None:
    """Write ``values`` to the (locked) loan row with one UPDATE (and ``updated_at``), and set
    them on ``loan`` as its committed state (with the new ``updated_at``), so the session has
    nothing to flush for it."""
    query = loan_update_query(tuple(values))
    connection = await raw_connection(session)
    cursor = await connection.execute(
        query,
        [v.value if isinstance(v, enum.Enum) else v for v in values.values()] + [loan.id],
    )
    row = await cursor.fetchone()
    assert row is not None
    for name, value in {**values, "updated_at": row[0]}.items():
        set_committed_value(loan, name, value)


# --- the receipt number, the collection and its allocation rows ------------------------------

BRANCH_CODE = "SELECT code FROM branches WHERE id = %s"


async def receipt_prefix(session: AsyncSession, branch_id: uuid.UUID) -> str:
    """What the branch's receipt numbers start with this year: ``BLR01-R-2026-``."""
    connection = await raw_connection(session)
    cursor = await connection.execute(BRANCH_CODE, (branch_id,))
    branch = await cursor.fetchone()
    assert branch is not None
    return f"{branch[0]}-R-{today_india().year}-"


# The receipt number and the rows that carry it, in one statement (`collection_insert_numbered`).
COLLECTION_NUMBERED_INSERT = (
    # S608 is silenced: constant fragments only; the values are bound parameters.
    "WITH number AS (" + NUMBER_NEXT + "), collection AS ("  # noqa: S608
    "INSERT INTO collections (id, receipt_number, loan_id, branch_id, collected_by_id, amount, "
    "principal, interest, fee, penalty, recovery, advance, prepaid_principal, collected_on, "
    "method, reference, remarks, client_id, preclosure, status, journal_entry_id) VALUES (%s, "
    "%s || (SELECT lpad(last_value::text, greatest(6, length(last_value::text)), '0') FROM "
    "number), %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s) "
    "RETURNING receipt_number, seq, created_at)"
)
COLLECTION_NUMBERED_SELECT = " SELECT receipt_number, seq, created_at FROM collection"
ALLOCATIONS_INSERT = (
    ", allocations AS (INSERT INTO collection_allocations (collection_id, installment_number, "
    "installment_id, principal, interest, fee, penalty, interest_waived, fee_waived, "
    "penalty_waived) VALUES "
)
ALLOCATION_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"


def collection_numbered_query(allocations: int) -> LiteralString:
    """The statement that numbers a collection and writes it with ``allocations`` rows."""
    query = COLLECTION_NUMBERED_INSERT
    if allocations:
        query += ALLOCATIONS_INSERT + sql_values(ALLOCATION_ROW, allocations) + ")"
    return query + COLLECTION_NUMBERED_SELECT


async def collection_insert_numbered(
    session: AsyncSession,
    collection: Collection,
    allocations: Sequence[CollectionAllocation] = (),
    *,
    prefix: str,
) -> str:
    """Take the branch's next receipt number (``prefix`` and six digits) and write the new
    collection under it (every column but its ``seq`` and ``created_at``, which it learns) with
    its allocation rows, in one statement; answer the receipt number.

    The branch's sequence row stays locked until commit (gapless numbers), so every other
    collection of the branch waits from here to our commit: call it after everything that does
    not carry the number is written (journal, installments, loan, the receipt's job). The
    collection then joins the session as if loaded; the allocation objects stay plain (what the
    response shows). 409 when the same client id raced in on another loan."""
    c = collection
    params: list[object] = [
        c.branch_id,
        "receipt",
        today_india().year,
        c.id,
        prefix,
        c.loan_id,
        c.branch_id,
        c.collected_by_id,
        c.amount,
        c.principal,
        c.interest,
        c.fee,
        c.penalty,
        c.recovery,
        c.advance,
        c.prepaid_principal,
        c.collected_on,
        c.method.value,
        c.reference,
        c.remarks,
        c.client_id,
        c.preclosure,
        c.status.value,
        c.journal_entry_id,
    ]
    for a in allocations:
        params += (
            a.collection_id,
            a.installment_number,
            a.installment_id,
            a.principal,
            a.interest,
            a.fee,
            a.penalty,
            a.interest_waived,
            a.fee_waived,
            a.penalty_waived,
        )
    connection = await raw_connection(session)
    try:
        cursor = await connection.execute(collection_numbered_query(len(allocations)), params)
    except UniqueViolation:  # the same client id raced in on another loan
        raise ConflictError(f"Client id {collection.client_id} was already recorded") from None
    row = await cursor.fetchone()
    assert row is not None
    collection.receipt_number, collection.seq, collection.created_at = row
    session_adopt(session, collection)
    return collection.receipt_number


# --- for the benchmark's baseline: the statements of one collection, in order -------------------


@dataclass(frozen=True)
class PostingStatements:
    """The SQL one collection sends (see the module docstring), for a baseline that replays it
    without the server: the same constants, never copies."""

    principal: str = PRINCIPAL_QUERY
    idempotency_claim: str = IDEMPOTENCY_CLAIM
    loan_version: bytes = b""
    installments: str = ""
    installment_update: str = ""
    loan_update: bytes = b""
    journal_entry: str = JOURNAL_ENTRY_INSERT
    journal_lines: str = JOURNAL_LINE_INSERT
    journal_line_row: str = JOURNAL_LINE_ROW
    branch_code: str = BRANCH_CODE
    idempotency_answer: str = IDEMPOTENCY_ANSWER
    audit_lock: str = AUDIT_LOCK
    audit_lock_key: int = AUDIT_CHAIN_LOCK_KEY
    audit_last: str = AUDIT_LAST
    audit_insert: str = AUDIT_INSERT
    audit_row: str = AUDIT_ROW

    @staticmethod
    def loan_lock(role: Role) -> bytes:
        """The loan lock in the scope of a caller of ``role`` (its parameters: the loan id,
        then the scope's: the caller's ids)."""
        nobody = uuid.UUID(int=0)  # the scope's text depends on the role only
        caller = Principal(
            user_id=nobody,
            role=role,
            branch_id=nobody,
            permissions=frozenset(),
            session_id=nobody,
            via_cookie=False,
            must_change_password=False,
            ip="",
            user_agent=None,
            request_id=None,
        )
        return loan_for_update_query(loan_scope_sql(caller)[0])

    @staticmethod
    def collection_numbered(allocations: int) -> LiteralString:
        return collection_numbered_query(allocations)


POSTING_STATEMENTS = PostingStatements(
    loan_version=LOAN_VERSION_QUERY,
    installments=INSTALLMENTS_SELECT,
    installment_update=INSTALLMENT_UPDATE,
    loan_update=loan_update_query(LOAN_PAYMENT_COLUMNS),
)
# Where each column of the loan lock's row is (name → index).
LOAN_COLUMNS = {key: i for i, key in enumerate(LOAN_ROWS.keys)}
