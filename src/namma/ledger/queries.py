"""Reads of the general ledger: trial balance, account statements, a loan's ledger balances, and
the integrity check behind ``namma ledger check``.

Balances are shown in an account's *normal direction*: debit − credit for assets and expenses,
credit − debit for liabilities, equity and income, so a healthy account shows a positive number.

Convention the posting services follow (and ``ledger_check`` relies on):

- A loan's principal sits in ``LOAN_PORTFOLIO``, every line tagged with the loan's id, from
  disbursement until it is repaid or written off. So for every disbursed loan
  ``loans.outstanding_principal`` = Σ(debit − credit) of its tagged portfolio lines.
- Interest, fees and penalties are recognised as income when collected (cash basis): nothing is
  accrued, so the loan's outstanding interest/fees/penalties have no ledger counterpart.
- A write-off moves the remaining principal from ``LOAN_PORTFOLIO`` to ``WRITE_OFF_EXPENSE``
  (both tagged with the loan); the loan's ``outstanding_principal`` becomes 0. Later recoveries
  are ``RECOVERY_INCOME``.
- ``BORROWINGS`` moves only with the capital service's borrowings, their repayments' principal
  and the reversals and reallocations of those; so its balance is Σ ``outstanding_principal`` of
  the standing (not reversed) borrowings. ``CAPITAL`` moves only with owners' investments and
  their reversals; so its balance is Σ ``amount`` of the standing investments. (Nothing else
  posts to either: a future posting that does — a year-end transfer of profit, say — needs a
  row of its own, or this check must learn about it.)
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from namma.kit.errors import InvalidInputError, NotFoundError
from namma.models import (
    AccountKind,
    AccountType,
    Borrowing,
    BorrowingRepayment,
    Collection,
    Investment,
    JournalEntry,
    JournalLine,
    LedgerAccount,
    Loan,
    LoanStatus,
)

ZERO = Decimal("0.00")
STATEMENT_MAX_LIMIT = 200

# Normal side: +1 when a debit increases the account, −1 when a credit does.
DEBIT_NORMAL = frozenset({AccountType.ASSET, AccountType.EXPENSE})

# Statuses a loan reaches only through disbursement.
DISBURSED_STATUSES = (
    LoanStatus.ACTIVE,
    LoanStatus.CLOSED,
    LoanStatus.PRECLOSED,
    LoanStatus.REFINANCED,
    LoanStatus.WRITTEN_OFF,
)


def normal_side(account_type: AccountType) -> str:
    """``"debit"`` for assets and expenses, ``"credit"`` for liabilities, equity and income."""
    return "debit" if account_type in DEBIT_NORMAL else "credit"


def normal_balance(account_type: AccountType, debit: Decimal, credit: Decimal) -> Decimal:
    return debit - credit if account_type in DEBIT_NORMAL else credit - debit


# --- trial balance ----------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialBalanceRow:
    account_id: uuid.UUID
    code: str
    name: str
    kind: AccountKind
    type: AccountType
    branch_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    debit: Decimal  # total of the debit lines
    credit: Decimal  # total of the credit lines
    balance: Decimal  # in the account's normal direction

    @property
    def normal_side(self) -> str:
        return normal_side(self.type)


@dataclass(frozen=True)
class TrialBalance:
    as_of: dt.date | None
    branch_id: uuid.UUID | None
    rows: list[TrialBalanceRow]
    total_debit: Decimal
    total_credit: Decimal

    @property
    def balanced(self) -> bool:
        return self.total_debit == self.total_credit


async def trial_balance(
    session: AsyncSession,
    *,
    as_of: dt.date | None = None,
    branch_id: uuid.UUID | None = None,
) -> TrialBalance:
    """Per account with any line: debit and credit totals and the balance, in code order.

    ``as_of`` includes entries dated on or before that day; ``branch_id`` keeps the entries of
    that branch (``journal_entries.branch_id``). Every entry balances, so any such selection of
    whole entries balances too: total debits = total credits.
    """
    debit = func.coalesce(func.sum(JournalLine.debit), 0)
    credit = func.coalesce(func.sum(JournalLine.credit), 0)
    query = (
        select(LedgerAccount, debit, credit)
        .join(JournalLine, JournalLine.account_id == LedgerAccount.id)
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .group_by(LedgerAccount.id)
        .order_by(LedgerAccount.code)
    )
    if as_of is not None:
        query = query.where(JournalEntry.entry_date <= as_of)
    if branch_id is not None:
        query = query.where(JournalEntry.branch_id == branch_id)
    rows = [
        TrialBalanceRow(
            account_id=account.id,
            code=account.code,
            name=account.name,
            kind=account.kind,
            type=account.type,
            branch_id=account.branch_id,
            agent_id=account.agent_id,
            debit=Decimal(d),
            credit=Decimal(c),
            balance=normal_balance(account.type, Decimal(d), Decimal(c)),
        )
        for account, d, c in (await session.execute(query)).all()
    ]
    return TrialBalance(
        as_of=as_of,
        branch_id=branch_id,
        rows=rows,
        total_debit=sum((r.debit for r in rows), ZERO),
        total_credit=sum((r.credit for r in rows), ZERO),
    )


async def account_balances(
    session: AsyncSession, account_ids: list[uuid.UUID]
) -> dict[uuid.UUID, tuple[Decimal, Decimal]]:
    """(debit total, credit total) of each account; accounts without lines are absent."""
    if not account_ids:
        return {}
    rows = await session.execute(
        select(
            JournalLine.account_id,
            func.coalesce(func.sum(JournalLine.debit), 0),
            func.coalesce(func.sum(JournalLine.credit), 0),
        )
        .where(JournalLine.account_id.in_(account_ids))
        .group_by(JournalLine.account_id)
    )
    return {account_id: (Decimal(d), Decimal(c)) for account_id, d, c in rows.all()}


# --- account statement -----------------------------------------------------------------------


@dataclass(frozen=True)
class StatementLine:
    line_id: int
    entry_id: int
    entry_date: dt.date
    kind: str
    memo: str | None
    # The receipt of the collection this entry posted (a collection's memo names only its loan:
    # the entry is written before the receipt number is taken).
    receipt_number: str | None
    loan_id: uuid.UUID | None
    reverses_id: int | None
    debit: Decimal
    credit: Decimal
    balance: Decimal  # the account's balance after this line, in its normal direction


@dataclass(frozen=True)
class AccountStatement:
    account: LedgerAccount
    opening_balance: Decimal  # before the first line of this page
    lines: list[StatementLine]
    next_after_line_id: int | None  # pass as ``after_line_id`` for the next page

    @property
    def closing_balance(self) -> Decimal:
        return self.lines[-1].balance if self.lines else self.opening_balance


async def account_statement(
    session: AsyncSession,
    *,
    account_id: uuid.UUID,
    since: dt.date | None = None,
    until: dt.date | None = None,
    after_line_id: int | None = None,
    limit: int = 100,
    scope: ColumnElement[bool] | None = None,
) -> AccountStatement:
    """The account's lines in (entry date, line id) order with a running balance.

    ``since`` and ``until`` are inclusive entry dates. Keyset pagination: pass the previous
    page's ``next_after_line_id`` as ``after_line_id``. The running balance is the account's
    true balance after each line (everything dated earlier counts, whatever the filters), in the
    account's normal direction. ``scope`` (a condition on ``LedgerAccount``) hides accounts
    outside the caller's reach: such an account is ``NotFoundError`` like an unknown one.
    """
    limit = max(1, min(limit, STATEMENT_MAX_LIMIT))
    if since is not None and until is not None and until < since:
        raise InvalidInputError("until", "The end date is before the start date.")
    account_query = select(LedgerAccount).where(LedgerAccount.id == account_id)
    if scope is not None:
        account_query = account_query.where(scope)
    account = await session.scalar(account_query)
    if account is None:
        raise NotFoundError("No such ledger account.")

    key = tuple_(JournalEntry.entry_date, JournalLine.id)
    of_account = JournalLine.account_id == account.id
    lines_from = (
        select()
        .select_from(JournalLine)
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
    )

    cursor: tuple[dt.date, int] | None = None
    if after_line_id is not None:
        row = (
            await session.execute(
                select(JournalEntry.entry_date, JournalLine.id)
                .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
                .where(of_account, JournalLine.id == after_line_id)
            )
        ).one_or_none()
        if row is None:
            raise InvalidInputError("after_line_id", "Not a line of this account.")
        cursor = (row[0], row[1])

    # Opening balance: every line before the page's first one.
    before: ColumnElement[bool] | None = None
    if cursor is not None:
        before = key <= tuple_(literal(cursor[0]), literal(cursor[1]))
    elif since is not None:
        before = JournalEntry.entry_date < since
    opening = ZERO
    if before is not None:
        d, c = (
            await session.execute(
                lines_from.add_columns(
                    func.coalesce(func.sum(JournalLine.debit), 0),
                    func.coalesce(func.sum(JournalLine.credit), 0),
                ).where(of_account, before)
            )
        ).one()
        opening = normal_balance(account.type, Decimal(d), Decimal(c))

    page = (
        select(JournalLine, JournalEntry, Collection.receipt_number)
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .outerjoin(Collection, Collection.journal_entry_id == JournalEntry.id)
        .where(of_account)
        .order_by(JournalEntry.entry_date, JournalLine.id)
        .limit(limit)
    )
    if cursor is not None:
        page = page.where(key > tuple_(literal(cursor[0]), literal(cursor[1])))
    if since is not None:
        page = page.where(JournalEntry.entry_date >= since)
    if until is not None:
        page = page.where(JournalEntry.entry_date <= until)

    balance = opening
    lines: list[StatementLine] = []
    for line, entry, receipt_number in (await session.execute(page)).all():
        balance += normal_balance(account.type, line.debit, line.credit)
        lines.append(
            StatementLine(
                line_id=line.id,
                entry_id=entry.id,
                entry_date=entry.entry_date,
                kind=entry.kind,
                memo=entry.memo,
                receipt_number=receipt_number,
                loan_id=line.loan_id,
                reverses_id=entry.reverses_id,
                debit=line.debit,
                credit=line.credit,
                balance=balance,
            )
        )
    return AccountStatement(
        account=account,
        opening_balance=opening,
        lines=lines,
        next_after_line_id=lines[-1].line_id if len(lines) == limit else None,
    )


# --- a loan in the ledger --------------------------------------------------------------------


async def loan_ledger_balances(
    session: AsyncSession, loan_id: uuid.UUID
) -> dict[AccountKind, Decimal]:
    """Balances of the journal lines tagged with the loan, by account kind, each in its kind's
    normal direction: ``LOAN_PORTFOLIO`` is the principal outstanding, ``INTEREST_INCOME`` the
    interest collected, ``WRITE_OFF_EXPENSE`` the principal written off, and so on. Kinds with no
    tagged line are absent. A cash or bank line tagged with the loan (the disbursement's payout
    is) shows as a negative asset balance: money that left for this loan."""
    rows = await session.execute(
        select(
            LedgerAccount.kind,
            LedgerAccount.type,
            func.sum(JournalLine.debit),
            func.sum(JournalLine.credit),
        )
        .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
        .where(JournalLine.loan_id == loan_id)
        .group_by(LedgerAccount.kind, LedgerAccount.type)
    )
    return {
        kind: normal_balance(account_type, Decimal(d), Decimal(c))
        for kind, account_type, d, c in rows.all()
    }


# --- ledger check ----------------------------------------------------------------------------


@dataclass(frozen=True)
class UnbalancedEntry:
    entry_id: int
    debit: Decimal
    credit: Decimal
    lines: int

    def describe(self) -> str:
        if self.lines < 2:
            return f"Journal entry {self.entry_id} has {self.lines} line(s); it needs at least 2."
        return (
            f"Journal entry {self.entry_id} does not balance: "
            f"debits {self.debit:.2f}, credits {self.credit:.2f}."
        )


@dataclass(frozen=True)
class LoanMismatch:
    loan_id: uuid.UUID
    loan_number: str
    status: LoanStatus
    outstanding_principal: Decimal  # what the loan row says
    portfolio_balance: Decimal  # what the ledger says (tagged LOAN_PORTFOLIO lines, Dr − Cr)
    disbursed: bool

    def describe(self) -> str:
        if not self.disbursed:
            return (
                f"Loan {self.loan_number} ({self.status.value}) was never disbursed, yet the loan "
                f"portfolio holds {self.portfolio_balance:.2f} for it."
            )
        return (
            f"Loan {self.loan_number} ({self.status.value}): outstanding principal "
            f"{self.outstanding_principal:.2f} on the loan, but {self.portfolio_balance:.2f} "
            f"in the loan portfolio (difference "
            f"{self.outstanding_principal - self.portfolio_balance:.2f})."
        )


@dataclass(frozen=True)
class AdvanceMismatch:
    """A loan whose advance held differs from the advances account's lines tagged with it."""

    loan_number: str
    advance_balance: Decimal  # what the loan row says
    ledger_balance: Decimal  # tagged CUSTOMER_ADVANCES lines, Cr − Dr

    def describe(self) -> str:
        return (
            f"Loan {self.loan_number}: advance held {self.advance_balance:.2f} on the loan, but "
            f"{self.ledger_balance:.2f} in advances from customers (difference "
            f"{self.advance_balance - self.ledger_balance:.2f})."
        )


@dataclass(frozen=True)
class ProvisionMismatch:
    """A loan whose provision held differs from the provision account's lines tagged with it."""

    loan_number: str
    provision_held: Decimal  # what the loan row says
    ledger_balance: Decimal  # tagged LOAN_LOSS_PROVISION lines, Cr − Dr

    def describe(self) -> str:
        return (
            f"Loan {self.loan_number}: provision held {self.provision_held:.2f} on the loan, "
            f"but {self.ledger_balance:.2f} in the provision for loan losses (difference "
            f"{self.provision_held - self.ledger_balance:.2f})."
        )


@dataclass(frozen=True)
class CapitalisedMismatch:
    """A loan whose capitalised-interest liability is not min(capitalised, outstanding
    principal) (D-196)."""

    loan_number: str
    capitalised: Decimal  # credited by its restructurings
    outstanding_principal: Decimal
    ledger_balance: Decimal  # tagged INTEREST_CAPITALISED lines, Cr − Dr

    def describe(self) -> str:
        expected = min(self.capitalised, self.outstanding_principal)
        return (
            f"Loan {self.loan_number}: interest capitalised {self.capitalised:.2f}, outstanding "
            f"principal {self.outstanding_principal:.2f}, so {expected:.2f} should be held as "
            f"capitalised interest, but the ledger holds {self.ledger_balance:.2f}."
        )


@dataclass(frozen=True)
class ReceivableMismatch:
    """An accrual-basis loan whose interest receivable differs from the interest receivable
    lines tagged with it: accrued (debits) − settled by collections − reversed (credits)."""

    loan_number: str
    interest_receivable: Decimal  # what the loan row says
    accrued: Decimal  # Σ debits of the close of business's accruals
    settled: Decimal  # Σ (Cr − Dr) of collection entries (net of reversed collections)
    reversed: Decimal  # Σ credits of the accrual reversals (NPA, waivers, loans closed)

    def describe(self) -> str:
        ledger = self.accrued - self.settled - self.reversed
        return (
            f"Loan {self.loan_number}: interest receivable {self.interest_receivable:.2f} on "
            f"the loan, but the ledger has {self.accrued:.2f} accrued − {self.settled:.2f} "
            f"settled − {self.reversed:.2f} reversed = {ledger:.2f} (difference "
            f"{self.interest_receivable - ledger:.2f})."
        )


@dataclass(frozen=True)
class SuspenseMismatch:
    """A loan whose interest in suspense differs from its memorandum lines: put in (debits of
    `interest_suspense`) − released (its credits), or whose contra lines do not mirror them."""

    loan_number: str
    interest_suspense: Decimal  # what the loan row says
    put_in: Decimal  # Σ debits of its interest-suspense lines
    released: Decimal  # Σ credits of its interest-suspense lines
    contra: Decimal  # Σ (Cr − Dr) of its contra lines

    def describe(self) -> str:
        ledger = self.put_in - self.released
        text = (
            f"Loan {self.loan_number}: interest in suspense {self.interest_suspense:.2f} on the "
            f"loan, but the memorandum has {self.put_in:.2f} put in − {self.released:.2f} "
            f"released = {ledger:.2f}"
        )
        if self.contra != ledger:
            text += f" and its contra {self.contra:.2f}"
        return text + "."


@dataclass(frozen=True)
class BorrowingMismatch:
    """A standing borrowing whose outstanding principal is not its principal less the principal
    of its standing repayments."""

    borrowing_id: uuid.UUID
    lender_name: str
    principal: Decimal
    repaid_principal: Decimal  # Σ principal_paid of its standing repayments
    outstanding_principal: Decimal  # what the borrowing row says

    def describe(self) -> str:
        expected = self.principal - self.repaid_principal
        return (
            f"Borrowing from {self.lender_name} ({self.borrowing_id}): outstanding principal "
            f"{self.outstanding_principal:.2f} on the borrowing, but {self.principal:.2f} "
            f"borrowed less {self.repaid_principal:.2f} repaid is {expected:.2f} (difference "
            f"{self.outstanding_principal - expected:.2f})."
        )


@dataclass(frozen=True)
class LedgerCheckResult:
    entries: int
    lines: int
    total_debit: Decimal
    total_credit: Decimal
    loans_reconciled: int  # disbursed loans compared with the portfolio
    unbalanced: list[UnbalancedEntry] = field(default_factory=list)
    loan_mismatches: list[LoanMismatch] = field(default_factory=list)
    untagged_portfolio_lines: int = 0  # portfolio lines without a loan
    # Capital: the rows against their accounts (balances in the normal direction, credit − debit).
    borrowings_outstanding: Decimal = ZERO  # Σ outstanding principal of standing borrowings
    borrowings_balance: Decimal = ZERO  # the BORROWINGS account
    investments_total: Decimal = ZERO  # Σ standing investments
    capital_balance: Decimal = ZERO  # the CAPITAL account
    borrowing_mismatches: list[BorrowingMismatch] = field(default_factory=list)
    advance_mismatches: list[AdvanceMismatch] = field(default_factory=list)
    untagged_advance_lines: int = 0  # advances lines without a loan
    provision_mismatches: list[ProvisionMismatch] = field(default_factory=list)
    untagged_provision_lines: int = 0  # provision lines without a loan
    provision_balance: Decimal = ZERO  # the LOAN_LOSS_PROVISION account, Cr − Dr
    capitalised_mismatches: list[CapitalisedMismatch] = field(default_factory=list)
    receivable_mismatches: list[ReceivableMismatch] = field(default_factory=list)
    untagged_receivable_lines: int = 0  # interest receivable lines without a loan
    suspense_mismatches: list[SuspenseMismatch] = field(default_factory=list)
    untagged_suspense_lines: int = 0  # interest-suspense (or contra) lines without a loan

    @property
    def ok(self) -> bool:
        return (
            not self.unbalanced
            and not self.loan_mismatches
            and self.untagged_portfolio_lines == 0
            and self.total_debit == self.total_credit
            and self.borrowings_outstanding == self.borrowings_balance
            and self.investments_total == self.capital_balance
            and not self.borrowing_mismatches
            and not self.advance_mismatches
            and self.untagged_advance_lines == 0
            and not self.provision_mismatches
            and self.untagged_provision_lines == 0
            and not self.capitalised_mismatches
            and not self.receivable_mismatches
            and self.untagged_receivable_lines == 0
            and not self.suspense_mismatches
            and self.untagged_suspense_lines == 0
        )

    def problems(self) -> list[str]:
        """Every problem found, in plain words (empty when ``ok``)."""
        found = [u.describe() for u in self.unbalanced]
        if self.total_debit != self.total_credit:
            found.append(
                f"All debits ({self.total_debit:.2f}) differ from all credits "
                f"({self.total_credit:.2f}) by {self.total_debit - self.total_credit:.2f}."
            )
        if self.untagged_portfolio_lines:
            found.append(
                f"{self.untagged_portfolio_lines} loan portfolio line(s) name no loan; every "
                "portfolio line must carry its loan."
            )
        found.extend(m.describe() for m in self.loan_mismatches)
        if self.untagged_advance_lines:
            found.append(
                f"{self.untagged_advance_lines} advances-from-customers line(s) name no loan; "
                "every advance line must carry its loan."
            )
        found.extend(m.describe() for m in self.advance_mismatches)
        if self.untagged_provision_lines:
            found.append(
                f"{self.untagged_provision_lines} provision-for-loan-losses line(s) name no "
                "loan; every provision line must carry its loan."
            )
        found.extend(m.describe() for m in self.provision_mismatches)
        found.extend(m.describe() for m in self.capitalised_mismatches)
        if self.untagged_receivable_lines:
            found.append(
                f"{self.untagged_receivable_lines} interest receivable line(s) name no loan; "
                "every receivable line must carry its loan."
            )
        found.extend(m.describe() for m in self.receivable_mismatches)
        if self.untagged_suspense_lines:
            found.append(
                f"{self.untagged_suspense_lines} interest-in-suspense line(s) name no loan; "
                "every suspense line must carry its loan."
            )
        found.extend(m.describe() for m in self.suspense_mismatches)
        if self.borrowings_outstanding != self.borrowings_balance:
            found.append(
                f"Borrowings: the standing borrowings owe {self.borrowings_outstanding:.2f} "
                f"principal, but the borrowings account holds {self.borrowings_balance:.2f} "
                f"(difference {self.borrowings_outstanding - self.borrowings_balance:.2f})."
            )
        found.extend(m.describe() for m in self.borrowing_mismatches)
        if self.investments_total != self.capital_balance:
            found.append(
                f"Capital: the standing investments add up to {self.investments_total:.2f}, "
                f"but the capital account holds {self.capital_balance:.2f} (difference "
                f"{self.investments_total - self.capital_balance:.2f})."
            )
        return found


async def _held_against_tagged_lines(
    session: AsyncSession, kind: AccountKind, held: Any
) -> tuple[int, list[tuple[str, Decimal, Decimal]]]:
    """A loan column that says what the loan holds on a credit-balance account (an advance, a
    provision) against the balance (Cr − Dr) of that account's lines tagged with the loan: how
    many of the account's lines name no loan, and the loans where the two differ (number, held,
    ledger), by loan number."""
    of_kind = LedgerAccount.kind == kind
    untagged = (
        await session.scalar(
            select(func.count())
            .select_from(JournalLine)
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .where(of_kind, JournalLine.loan_id.is_(None))
        )
        or 0
    )
    tagged = (
        select(
            JournalLine.loan_id.label("loan_id"),
            func.sum(JournalLine.credit - JournalLine.debit).label("balance"),
        )
        .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
        .where(of_kind, JournalLine.loan_id.is_not(None))
        .group_by(JournalLine.loan_id)
        .subquery()
    )
    in_ledger = func.coalesce(tagged.c.balance, 0)
    rows = (
        await session.execute(
            select(Loan.loan_number, held, in_ledger)
            .outerjoin(tagged, tagged.c.loan_id == Loan.id)
            .where(held != in_ledger)
            .order_by(Loan.loan_number)
        )
    ).all()
    return int(untagged), [(number, h, Decimal(ledger)) for number, h, ledger in rows]


async def ledger_check(session: AsyncSession) -> LedgerCheckResult:
    """Verify the ledger's invariants with a few set-based queries (no per-row Python loop):

    1. every journal entry has at least two lines and its debits equal its credits (entries
       without any line included);
    2. the sum of all debits equals the sum of all credits;
    3. for every disbursed loan, ``loans.outstanding_principal`` equals the balance (Dr − Cr) of
       the ``LOAN_PORTFOLIO`` lines tagged with it; a loan never disbursed has no portfolio
       balance; and no portfolio line lacks its loan tag;
    4. Σ ``outstanding_principal`` of the standing borrowings equals the ``BORROWINGS`` account's
       balance (Cr − Dr), and each standing borrowing's outstanding principal is its principal
       less the principal of its standing repayments;
    5. Σ ``amount`` of the standing investments equals the ``CAPITAL`` account's balance;
    6. every loan's ``advance_balance`` equals the balance (Cr − Dr) of the ``CUSTOMER_ADVANCES``
       lines tagged with it, and no advances line lacks its loan tag;
    7. every loan's ``provision_held`` equals the balance (Cr − Dr) of the
       ``LOAN_LOSS_PROVISION`` lines tagged with it, and no provision line lacks its loan tag
       (so the account's balance is the sum of the loans' provisions, never a debit).
    8. every loan's ``INTEREST_CAPITALISED`` balance (Cr − Dr) is min(the interest its
       restructurings capitalised, its outstanding principal) (D-196);
    9. every loan's ``interest_receivable`` (accrual basis) equals its ``INTEREST_RECEIVABLE``
       lines: accrued (Dr of accruals) − settled (Cr − Dr of collection entries: settlements
       less reversed ones) − reversed (Cr of accrual reversals); no receivable line lacks its
       loan tag.
    10. every loan's ``interest_suspense`` (D-215) equals its ``INTEREST_SUSPENSE`` lines: put
       in (Dr) − released (Cr), and its ``INTEREST_SUSPENSE_CONTRA`` lines mirror them (Cr −
       Dr, the memorandum pair balances per loan); no suspense or contra line lacks its loan
       tag. (That the suspense is the schedule's earned and unpaid interest of a
       non-performing loan is what the close of business sets it to: docs/ledger.md.)

    Read it in a REPEATABLE READ transaction (as ``namma ledger check`` does) for one snapshot.
    """
    debit = func.coalesce(func.sum(JournalLine.debit), 0)
    credit = func.coalesce(func.sum(JournalLine.credit), 0)
    lines = func.count(JournalLine.id)
    unbalanced = [
        UnbalancedEntry(entry_id=entry_id, debit=Decimal(d), credit=Decimal(c), lines=n)
        for entry_id, d, c, n in (
            await session.execute(
                select(JournalEntry.id, debit, credit, lines)
                .outerjoin(JournalLine, JournalLine.entry_id == JournalEntry.id)
                .group_by(JournalEntry.id)
                .having(or_(lines < 2, debit != credit))
                .order_by(JournalEntry.id)
            )
        ).all()
    ]

    entries = await session.scalar(select(func.count()).select_from(JournalEntry)) or 0
    total_d, total_c, line_count = (
        await session.execute(select(debit, credit, func.count()).select_from(JournalLine))
    ).one()

    is_portfolio = LedgerAccount.kind == AccountKind.LOAN_PORTFOLIO
    untagged = (
        await session.scalar(
            select(func.count())
            .select_from(JournalLine)
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .where(is_portfolio, JournalLine.loan_id.is_(None))
        )
        or 0
    )

    portfolio = (
        select(
            JournalLine.loan_id.label("loan_id"),
            func.sum(JournalLine.debit - JournalLine.credit).label("balance"),
        )
        .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
        .where(is_portfolio, JournalLine.loan_id.is_not(None))
        .group_by(JournalLine.loan_id)
        .subquery()
    )
    disbursed = or_(Loan.disbursed_on.is_not(None), Loan.status.in_(DISBURSED_STATUSES))
    balance = func.coalesce(portfolio.c.balance, 0)
    reconciled = await session.scalar(select(func.count()).select_from(Loan).where(disbursed)) or 0
    mismatches = [
        LoanMismatch(
            loan_id=loan_id,
            loan_number=number,
            status=status,
            outstanding_principal=outstanding,
            portfolio_balance=Decimal(ledger),
            disbursed=was_disbursed,
        )
        for loan_id, number, status, outstanding, ledger, was_disbursed in (
            await session.execute(
                select(
                    Loan.id,
                    Loan.loan_number,
                    Loan.status,
                    Loan.outstanding_principal,
                    balance,
                    disbursed,
                )
                .outerjoin(portfolio, portfolio.c.loan_id == Loan.id)
                .where(
                    or_(
                        disbursed & (Loan.outstanding_principal != balance),
                        ~disbursed & (balance != 0),
                    )
                )
                .order_by(Loan.loan_number)
            )
        ).all()
    ]

    # Advances and provisions held: per loan against their account's tagged lines.
    untagged_advances, advance_rows = await _held_against_tagged_lines(
        session, AccountKind.CUSTOMER_ADVANCES, Loan.advance_balance
    )
    advance_mismatches = [
        AdvanceMismatch(loan_number=number, advance_balance=held, ledger_balance=ledger)
        for number, held, ledger in advance_rows
    ]
    untagged_provisions, provision_rows = await _held_against_tagged_lines(
        session, AccountKind.LOAN_LOSS_PROVISION, Loan.provision_held
    )
    provision_mismatches = [
        ProvisionMismatch(loan_number=number, provision_held=held, ledger_balance=ledger)
        for number, held, ledger in provision_rows
    ]

    # Capitalised interest: per loan, min(capitalised, outstanding principal) (D-196).
    capitalised_lines = (
        select(
            JournalLine.loan_id.label("loan_id"),
            func.sum(
                case((JournalEntry.kind == "loan.restructure", JournalLine.credit), else_=0)
            ).label("capitalised"),
            func.sum(JournalLine.credit - JournalLine.debit).label("balance"),
        )
        .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .where(LedgerAccount.kind == AccountKind.INTEREST_CAPITALISED)
        .group_by(JournalLine.loan_id)
        .subquery()
    )
    capitalised_mismatches = [
        CapitalisedMismatch(
            loan_number=number or "(no loan)",
            capitalised=Decimal(capitalised),
            outstanding_principal=Decimal(outstanding),
            ledger_balance=Decimal(balance),
        )
        for number, capitalised, outstanding, balance in (
            await session.execute(
                select(
                    Loan.loan_number,
                    capitalised_lines.c.capitalised,
                    func.coalesce(Loan.outstanding_principal, 0),
                    capitalised_lines.c.balance,
                )
                .select_from(capitalised_lines)
                .outerjoin(Loan, Loan.id == capitalised_lines.c.loan_id)
                .where(
                    capitalised_lines.c.balance
                    != func.least(
                        capitalised_lines.c.capitalised,
                        func.coalesce(Loan.outstanding_principal, 0),
                    )
                )
                .order_by(Loan.loan_number)
            )
        ).all()
    ]

    # Interest receivable (accrual basis): per loan against its tagged lines, by what moved it.
    is_receivable = LedgerAccount.kind == AccountKind.INTEREST_RECEIVABLE
    untagged_receivable = (
        await session.scalar(
            select(func.count())
            .select_from(JournalLine)
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .where(is_receivable, JournalLine.loan_id.is_(None))
        )
        or 0
    )
    by_collection = or_(JournalEntry.kind == "collection", JournalEntry.kind.like("collection.%"))
    receivable = (
        select(
            JournalLine.loan_id.label("loan_id"),
            func.sum(case((by_collection, 0), else_=JournalLine.debit)).label("accrued"),
            func.sum(case((by_collection, JournalLine.credit - JournalLine.debit), else_=0)).label(
                "settled"
            ),
            func.sum(case((by_collection, 0), else_=JournalLine.credit)).label("reversed"),
        )
        .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
        .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
        .where(is_receivable, JournalLine.loan_id.is_not(None))
        .group_by(JournalLine.loan_id)
        .subquery()
    )
    accrued = func.coalesce(receivable.c.accrued, 0)
    settled = func.coalesce(receivable.c.settled, 0)
    reversed_ = func.coalesce(receivable.c.reversed, 0)
    receivable_mismatches = [
        ReceivableMismatch(
            loan_number=number,
            interest_receivable=held,
            accrued=Decimal(a),
            settled=Decimal(s_),
            reversed=Decimal(r),
        )
        for number, held, a, s_, r in (
            await session.execute(
                select(Loan.loan_number, Loan.interest_receivable, accrued, settled, reversed_)
                .outerjoin(receivable, receivable.c.loan_id == Loan.id)
                .where(Loan.interest_receivable != accrued - settled - reversed_)
                .order_by(Loan.loan_number)
            )
        ).all()
    ]

    # Interest in suspense (a memorandum pair, D-215): per loan against its tagged lines.
    is_suspense = LedgerAccount.kind == AccountKind.INTEREST_SUSPENSE
    is_contra = LedgerAccount.kind == AccountKind.INTEREST_SUSPENSE_CONTRA
    untagged_suspense = (
        await session.scalar(
            select(func.count())
            .select_from(JournalLine)
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .where(or_(is_suspense, is_contra), JournalLine.loan_id.is_(None))
        )
        or 0
    )
    memo_lines = (
        select(
            JournalLine.loan_id.label("loan_id"),
            func.sum(case((is_suspense, JournalLine.debit), else_=0)).label("put_in"),
            func.sum(case((is_suspense, JournalLine.credit), else_=0)).label("released"),
            func.sum(case((is_contra, JournalLine.credit - JournalLine.debit), else_=0)).label(
                "contra"
            ),
        )
        .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
        .where(or_(is_suspense, is_contra), JournalLine.loan_id.is_not(None))
        .group_by(JournalLine.loan_id)
        .subquery()
    )
    put_in = func.coalesce(memo_lines.c.put_in, 0)
    released = func.coalesce(memo_lines.c.released, 0)
    contra = func.coalesce(memo_lines.c.contra, 0)
    suspense_mismatches = [
        SuspenseMismatch(
            loan_number=number,
            interest_suspense=held,
            put_in=Decimal(p),
            released=Decimal(r),
            contra=Decimal(c),
        )
        for number, held, p, r, c in (
            await session.execute(
                select(Loan.loan_number, Loan.interest_suspense, put_in, released, contra)
                .outerjoin(memo_lines, memo_lines.c.loan_id == Loan.id)
                .where(
                    or_(
                        Loan.interest_suspense != put_in - released,
                        contra != put_in - released,
                    )
                )
                .order_by(Loan.loan_number)
            )
        ).all()
    ]

    # Capital: one statement for the four totals, one for the borrowings that drifted.
    def account_balance(kind: AccountKind) -> ColumnElement[Decimal]:
        return (
            select(func.coalesce(func.sum(JournalLine.credit - JournalLine.debit), 0))
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .where(LedgerAccount.kind == kind)
            .scalar_subquery()
        )

    owed, borrowings_balance, invested, capital_balance, provision_balance = (
        await session.execute(
            select(
                select(func.coalesce(func.sum(Borrowing.outstanding_principal), 0))
                .where(Borrowing.reversed_at.is_(None))
                .scalar_subquery(),
                account_balance(AccountKind.BORROWINGS),
                select(func.coalesce(func.sum(Investment.amount), 0))
                .where(Investment.reversed_at.is_(None))
                .scalar_subquery(),
                account_balance(AccountKind.CAPITAL),
                account_balance(AccountKind.LOAN_LOSS_PROVISION),
            )
        )
    ).one()
    repaid = (
        select(
            BorrowingRepayment.borrowing_id.label("borrowing_id"),
            func.sum(BorrowingRepayment.principal_paid).label("principal"),
        )
        .where(BorrowingRepayment.reversed_at.is_(None))
        .group_by(BorrowingRepayment.borrowing_id)
        .subquery()
    )
    repaid_principal = func.coalesce(repaid.c.principal, 0)
    borrowing_mismatches = [
        BorrowingMismatch(
            borrowing_id=borrowing_id,
            lender_name=lender,
            principal=principal_,
            repaid_principal=Decimal(paid),
            outstanding_principal=outstanding,
        )
        for borrowing_id, lender, principal_, paid, outstanding in (
            await session.execute(
                select(
                    Borrowing.id,
                    Borrowing.lender_name,
                    Borrowing.principal,
                    repaid_principal,
                    Borrowing.outstanding_principal,
                )
                .outerjoin(repaid, repaid.c.borrowing_id == Borrowing.id)
                .where(Borrowing.reversed_at.is_(None))
                .where(Borrowing.outstanding_principal != Borrowing.principal - repaid_principal)
                .order_by(Borrowing.received_on, Borrowing.id)
            )
        ).all()
    ]
    return LedgerCheckResult(
        entries=entries,
        lines=line_count,
        total_debit=Decimal(total_d),
        total_credit=Decimal(total_c),
        loans_reconciled=reconciled,
        unbalanced=unbalanced,
        loan_mismatches=mismatches,
        untagged_portfolio_lines=untagged,
        borrowings_outstanding=Decimal(owed),
        borrowings_balance=Decimal(borrowings_balance),
        investments_total=Decimal(invested),
        capital_balance=Decimal(capital_balance),
        borrowing_mismatches=borrowing_mismatches,
        advance_mismatches=advance_mismatches,
        untagged_advance_lines=untagged_advances,
        provision_mismatches=provision_mismatches,
        untagged_provision_lines=untagged_provisions,
        provision_balance=Decimal(provision_balance),
        capitalised_mismatches=capitalised_mismatches,
        receivable_mismatches=receivable_mismatches,
        untagged_receivable_lines=untagged_receivable,
        suspense_mismatches=suspense_mismatches,
        untagged_suspense_lines=untagged_suspense,
    )


# --- a loan's journal ---------------------------------------------------------------------------


@dataclass(frozen=True)
class JournalLineRow:
    account_code: str
    account_name: str
    debit: Decimal
    credit: Decimal


@dataclass(frozen=True)
class JournalEntryRow:
    entry: JournalEntry
    lines: list[JournalLineRow]


async def loan_journal(
    session: AsyncSession, loan_id: uuid.UUID, *, limit: int = 200
) -> list[JournalEntryRow]:
    """The journal entries of a loan (the caller has checked the loan is in scope), oldest
    first, each with its lines (two statements for any number of entries)."""
    entries = list(
        (
            await session.scalars(
                select(JournalEntry)
                .where(JournalEntry.loan_id == loan_id)
                .order_by(JournalEntry.id)
                .limit(limit)
            )
        ).all()
    )
    lines: dict[int, list[JournalLineRow]] = {}
    if entries:
        rows = await session.execute(
            select(
                JournalLine.entry_id,
                LedgerAccount.code,
                LedgerAccount.name,
                JournalLine.debit,
                JournalLine.credit,
            )
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .where(JournalLine.entry_id.in_([e.id for e in entries]))
            .order_by(JournalLine.entry_id, JournalLine.id)
        )
        for entry_id, code, name, debit, credit in rows:
            lines.setdefault(entry_id, []).append(JournalLineRow(code, name, debit, credit))
    return [JournalEntryRow(e, lines.get(e.id, [])) for e in entries]
