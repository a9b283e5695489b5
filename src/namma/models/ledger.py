"""The general ledger: accounts, and journal entries whose lines balance.

Balance is enforced twice: by ``journal_post`` before writing, and by a deferred constraint
trigger at COMMIT (see the ledger migration). Entries and lines are immutable; a correction is a
reversing entry.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from namma.kit.db import Base, value_enum


class AccountType(enum.StrEnum):
    ASSET = "asset"
    LIABILITY = "liability"
    EQUITY = "equity"
    INCOME = "income"
    EXPENSE = "expense"
    # Off-balance-sheet memorandum accounts: a self-balancing pair that records events with no
    # effect on the books (waivers of interest, fees and penalties never recognised: cash basis;
    # interest in suspense on non-performing loans).
    MEMO = "memo"


class AccountKind(enum.StrEnum):
    """What an account is for. Cash accounts exist per branch and per agent."""

    BRANCH_CASH = "branch_cash"
    AGENT_CASH = "agent_cash"
    BANK = "bank"
    LOAN_PORTFOLIO = "loan_portfolio"
    INTEREST_RECEIVABLE = "interest_receivable"
    FEE_RECEIVABLE = "fee_receivable"
    INTEREST_INCOME = "interest_income"
    FEE_INCOME = "fee_income"
    PENALTY_INCOME = "penalty_income"
    RECOVERY_INCOME = "recovery_income"
    WRITE_OFF_EXPENSE = "write_off_expense"
    WAIVER_EXPENSE = "waiver_expense"
    CASH_SHORTAGE = "cash_shortage"  # agent hand-over differences
    BORROWINGS = "borrowings"
    # Money received beyond a loan's dues, held until its installments fall due (loan-tagged).
    CUSTOMER_ADVANCES = "customer_advances"
    # Interest a restructuring's moratorium capitalised into principal, not yet received
    # (cash basis: not income until collected; loan-tagged).
    INTEREST_CAPITALISED = "interest_capitalised"
    INTEREST_EXPENSE = "interest_expense"
    CAPITAL = "capital"
    # Memorandum pair: Dr `waivers_memo`, Cr `waivers_memo_contra` for each waiver (loan-tagged).
    WAIVERS_MEMO = "waivers_memo"
    WAIVERS_MEMO_CONTRA = "waivers_memo_contra"
    # Memorandum pair for interest in suspense (D-215): interest a non-performing accrual-basis
    # loan owes that is not recognised as income — Dr `interest_suspense`, Cr its contra, as it
    # goes in; the mirror as it is collected or cleared (loan-tagged).
    INTEREST_SUSPENSE = "interest_suspense"
    INTEREST_SUSPENSE_CONTRA = "interest_suspense_contra"
    # Provisioning (docs/ledger.md): the contra-asset that holds the provision for loan losses
    # (credit-normal, loan-tagged), and the expense the close of business charges it from.
    LOAN_LOSS_PROVISION = "loan_loss_provision"
    PROVISION_EXPENSE = "provision_expense"


ACCOUNT_TYPES: dict[AccountKind, AccountType] = {
    AccountKind.BRANCH_CASH: AccountType.ASSET,
    AccountKind.AGENT_CASH: AccountType.ASSET,
    AccountKind.BANK: AccountType.ASSET,
    AccountKind.LOAN_PORTFOLIO: AccountType.ASSET,
    AccountKind.INTEREST_RECEIVABLE: AccountType.ASSET,
    AccountKind.FEE_RECEIVABLE: AccountType.ASSET,
    AccountKind.INTEREST_INCOME: AccountType.INCOME,
    AccountKind.FEE_INCOME: AccountType.INCOME,
    AccountKind.PENALTY_INCOME: AccountType.INCOME,
    AccountKind.RECOVERY_INCOME: AccountType.INCOME,
    AccountKind.WRITE_OFF_EXPENSE: AccountType.EXPENSE,
    AccountKind.WAIVER_EXPENSE: AccountType.EXPENSE,
    AccountKind.CASH_SHORTAGE: AccountType.EXPENSE,
    AccountKind.BORROWINGS: AccountType.LIABILITY,
    AccountKind.CUSTOMER_ADVANCES: AccountType.LIABILITY,
    AccountKind.INTEREST_CAPITALISED: AccountType.LIABILITY,
    AccountKind.INTEREST_EXPENSE: AccountType.EXPENSE,
    AccountKind.CAPITAL: AccountType.EQUITY,
    AccountKind.WAIVERS_MEMO: AccountType.MEMO,
    AccountKind.WAIVERS_MEMO_CONTRA: AccountType.MEMO,
    AccountKind.INTEREST_SUSPENSE: AccountType.MEMO,
    AccountKind.INTEREST_SUSPENSE_CONTRA: AccountType.MEMO,
    # A contra-asset: an asset account whose balance is a credit (shown negative, as "less").
    AccountKind.LOAN_LOSS_PROVISION: AccountType.ASSET,
    AccountKind.PROVISION_EXPENSE: AccountType.EXPENSE,
}

MONEY = Numeric(20, 2)


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        Index(
            "uq_ledger_accounts_kind_branch_agent",
            "kind",
            "branch_id",
            "agent_id",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # Human-readable and unique, e.g. "1010-BLR01" or "1020-BLR01-9800000003".
    code: Mapped[str] = mapped_column(String(60), unique=True)
    name: Mapped[str] = mapped_column(String(160))
    kind: Mapped[AccountKind] = mapped_column(value_enum(AccountKind, "ledger_account_kind"))
    type: Mapped[AccountType] = mapped_column(value_enum(AccountType, "ledger_account_type"))
    branch_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("branches.id", ondelete="RESTRICT")
    )
    agent_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class JournalEntry(Base):
    __tablename__ = "journal_entries"
    __table_args__ = (
        # A loan is paid out once: "loans disbursed" adds up across partial reads (D-204).
        Index(
            "uq_journal_entries_loan_disbursement",
            "loan_id",
            unique=True,
            postgresql_where=text("kind = 'loan.disbursement'"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    entry_date: Mapped[dt.date] = mapped_column(Date, index=True)
    posted_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    # What happened, e.g. "loan.disbursement", "collection", "collection.reversal".
    kind: Mapped[str] = mapped_column(String(50), index=True)
    memo: Mapped[str | None] = mapped_column(Text)
    branch_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("branches.id", ondelete="RESTRICT"), index=True
    )
    loan_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("loans.id", ondelete="RESTRICT"), index=True
    )
    # A correction is a new entry reversing an old one; an entry is reversed at most once.
    reverses_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("journal_entries.id", ondelete="RESTRICT"), unique=True
    )
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    # The transaction that posted the entry (its 64-bit id, set by the database; NULL for
    # entries older than the column). Sums kept with the snapshot they were read in are brought
    # up to date with exactly the entries that snapshot could not see (D-204,
    # ``namma.reports.kept``).
    posted_xact: Mapped[int | None] = mapped_column(
        BigInteger, server_default=text("(pg_current_xact_id())::text::bigint"), index=True
    )


class JournalLine(Base):
    __tablename__ = "journal_lines"
    __table_args__ = (
        CheckConstraint(
            "debit >= 0 AND credit >= 0 AND (debit = 0) <> (credit = 0)", name="one_side_positive"
        ),
        Index("ix_journal_lines_account_id_entry_id", "account_id", "entry_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    entry_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("journal_entries.id", ondelete="RESTRICT"), index=True
    )
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("ledger_accounts.id", ondelete="RESTRICT")
    )
    debit: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"), server_default="0")
    credit: Mapped[Decimal] = mapped_column(MONEY, default=Decimal("0.00"), server_default="0")
    # Sub-ledger tag: the loan this line belongs to (for per-loan reconciliation).
    loan_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("loans.id", ondelete="RESTRICT"), index=True
    )
