"""Capital: the owners' investments (equity) and the institution's borrowings (liabilities).

A borrowing is a loan seen from the other side: its schedule comes from the money core
(`generate_schedule` on the terms stored here) and is kept as `BorrowingInstallment` rows with
what has been paid on each; `BorrowingRepayment` records each payment and its split. Every row
that moves money names its journal entry.

Corrections are reversals, never edits or deletes: an investment, a borrowing (only while no
repayment stands on it) or a repayment is kept and marked reversed (``reversed_at``, who, why,
and the reversing journal entry); only standing rows count in balances and totals.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from namma.kit.db import Base, value_enum
from namma.models.loan import MONEY, money_column
from namma.models.product import RATE


class CapitalMethod(enum.StrEnum):
    BANK = "bank"  # through the institution's bank account
    CASH = "cash"  # cash at the head office


class BorrowingStatus(enum.StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"
    REVERSED = "reversed"  # recorded by mistake and reversed: nothing was ever owed


class Investment(Base):
    """Money the owners put in: Dr bank (or head-office cash), Cr capital."""

    __tablename__ = "investments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_investments_invested_on", "invested_on"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    source: Mapped[str] = mapped_column(String(200))  # the investor
    invested_on: Mapped[dt.date] = mapped_column(Date)
    method: Mapped[CapitalMethod] = mapped_column(value_enum(CapitalMethod, "capital_method"))
    reference: Mapped[str | None] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(Text)
    journal_entry_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("journal_entries.id", ondelete="RESTRICT"), unique=True
    )
    created_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    reversed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reversed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    reversal_reason: Mapped[str | None] = mapped_column(Text)
    reversal_entry_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("journal_entries.id", ondelete="RESTRICT"), unique=True
    )


class Borrowing(Base):
    """Money borrowed from a lender, repaid on a money-core schedule."""

    __tablename__ = "borrowings"
    __table_args__ = (
        CheckConstraint("principal > 0", name="principal_positive"),
        CheckConstraint("installments >= 1", name="installments_positive"),
        CheckConstraint(
            "outstanding_principal >= 0 AND outstanding_interest >= 0",
            name="outstanding_not_negative",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    lender_name: Mapped[str] = mapped_column(String(200))
    lender_contact: Mapped[str | None] = mapped_column(String(200))
    principal: Mapped[Decimal] = mapped_column(MONEY)
    annual_rate: Mapped[Decimal] = mapped_column(RATE)
    installments: Mapped[int]
    # The money core's vocabulary (frequency, every, interest method, amortization).
    terms: Mapped[dict[str, Any]] = mapped_column(JSONB)
    received_on: Mapped[dt.date] = mapped_column(Date)
    first_due_on: Mapped[dt.date | None] = mapped_column(Date)
    method: Mapped[CapitalMethod] = mapped_column(value_enum(CapitalMethod, "capital_method"))
    reference: Mapped[str | None] = mapped_column(String(100))
    remarks: Mapped[str | None] = mapped_column(Text)
    status: Mapped[BorrowingStatus] = mapped_column(
        value_enum(BorrowingStatus, "borrowing_status"), index=True
    )
    installment_amount: Mapped[Decimal] = mapped_column(MONEY)
    total_interest: Mapped[Decimal] = mapped_column(MONEY)
    # Denormalised from the installments: unpaid principal, and scheduled interest not yet
    # paid (or waived by a payoff).
    outstanding_principal: Mapped[Decimal] = money_column()
    outstanding_interest: Mapped[Decimal] = money_column()
    total_repaid: Mapped[Decimal] = money_column()
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    journal_entry_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("journal_entries.id", ondelete="RESTRICT"), unique=True
    )
    created_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    reversed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reversed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    reversal_reason: Mapped[str | None] = mapped_column(Text)
    reversal_entry_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("journal_entries.id", ondelete="RESTRICT"), unique=True
    )


class BorrowingInstallment(Base):
    __tablename__ = "borrowing_installments"
    __table_args__ = (UniqueConstraint("borrowing_id", "number"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    borrowing_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("borrowings.id", ondelete="RESTRICT")
    )
    number: Mapped[int]
    due_date: Mapped[dt.date] = mapped_column(Date)
    period_start: Mapped[dt.date] = mapped_column(Date)
    principal_due: Mapped[Decimal] = mapped_column(MONEY)
    interest_due: Mapped[Decimal] = mapped_column(MONEY)
    interest_for_period: Mapped[Decimal] = mapped_column(MONEY)
    balance_after: Mapped[Decimal] = mapped_column(MONEY)
    principal_paid: Mapped[Decimal] = money_column()
    interest_paid: Mapped[Decimal] = money_column()
    interest_waived: Mapped[Decimal] = money_column()  # future interest a payoff forgave
    paid_on: Mapped[dt.date | None] = mapped_column(Date)


class BorrowingRepayment(Base):
    """One payment to the lender: Dr borrowings (principal), Dr interest expense, Cr bank.

    ``seq`` is the order repayments were applied in (taken under the borrowing's row lock):
    reversing one replays the standing ones in that order. ``principal_paid``/``interest_paid``
    are the current split, which a replay may change (a ``…reallocation`` entry moves the
    difference in the ledger).
    """

    __tablename__ = "borrowing_repayments"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("amount = principal_paid + interest_paid", name="parts_add_up"),
        Index("ix_borrowing_repayments_borrowing_id_paid_on", "borrowing_id", "paid_on"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    borrowing_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("borrowings.id", ondelete="RESTRICT")
    )
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    paid_on: Mapped[dt.date] = mapped_column(Date)
    amount: Mapped[Decimal] = mapped_column(MONEY)
    principal_paid: Mapped[Decimal] = mapped_column(MONEY)
    interest_paid: Mapped[Decimal] = mapped_column(MONEY)
    payoff: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    method: Mapped[CapitalMethod] = mapped_column(value_enum(CapitalMethod, "capital_method"))
    reference: Mapped[str | None] = mapped_column(String(100))
    journal_entry_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("journal_entries.id", ondelete="RESTRICT"), unique=True
    )
    created_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    reversed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reversed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    reversal_reason: Mapped[str | None] = mapped_column(Text)
    reversal_entry_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("journal_entries.id", ondelete="RESTRICT"), unique=True
    )
