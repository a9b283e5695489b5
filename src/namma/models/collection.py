"""Collections (repayments received on a loan), how each was allocated over the installments,
and idempotency records of money-moving requests.

A collection is never deleted or edited by hand: a mistake is *reversed* (status ``reversed``,
a reversing journal, the loan's state replayed from the remaining collections). ``seq`` is the
order in which collections were applied to their loan (taken under the loan's row lock), the
order a replay follows.
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
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from namma.kit.db import Base, value_enum
from namma.models.loan import MONEY, money_column


class CollectionMethod(enum.StrEnum):
    CASH = "cash"
    UPI = "upi"
    CHEQUE = "cheque"
    BANK_TRANSFER = "bank_transfer"


class CollectionStatus(enum.StrEnum):
    POSTED = "posted"
    REVERSED = "reversed"


class Collection(Base):
    __tablename__ = "collections"
    # seq and created_at come back with the INSERT (RETURNING), not by a second query.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(
            "principal >= 0 AND interest >= 0 AND fee >= 0 AND penalty >= 0 AND recovery >= 0",
            name="parts_not_negative",
        ),
        CheckConstraint(
            "amount = principal + interest + fee + penalty + recovery + advance",
            name="parts_add_up",
        ),
        CheckConstraint(
            "prepaid_principal >= 0 AND prepaid_principal <= principal",
            name="prepaid_within_principal",
        ),
        # An offline device's id for the collection, unique per collector (retries are harmless).
        UniqueConstraint("collected_by_id", "client_id"),
        Index("ix_collections_loan_id_seq", "loan_id", "seq"),
        Index("ix_collections_branch_id_collected_on", "branch_id", "collected_on"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)
    # BLR01-R-2026-000045: branch code, R for receipt, year issued, sequence in branch and year.
    receipt_number: Mapped[str] = mapped_column(String(40), unique=True)
    loan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("loans.id", ondelete="RESTRICT"))
    branch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("branches.id", ondelete="RESTRICT"))
    collected_by_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    amount: Mapped[Decimal] = mapped_column(MONEY)
    # The allocation's totals per component (penalty includes any prepayment penalty).
    principal: Mapped[Decimal] = money_column()
    interest: Mapped[Decimal] = money_column()
    fee: Mapped[Decimal] = money_column()
    penalty: Mapped[Decimal] = money_column()
    # Money received on a written-off loan: income (`recovery_income`), not allocated.
    recovery: Mapped[Decimal] = money_column()
    # Held as an advance (the product's excess policy `advance`): positive, the part of the
    # amount held for installments still to fall due; negative, the advance a pre-closure used.
    advance: Mapped[Decimal] = money_column()
    # The part of `principal` prepaid beyond the dues (the product's excess policy
    # `reduce-term` or `reduce-installment`): it rescheduled the installments still to fall due
    # (`LoanScheduleRevision`).
    prepaid_principal: Mapped[Decimal] = money_column()
    collected_on: Mapped[dt.date] = mapped_column(Date)
    method: Mapped[CollectionMethod] = mapped_column(
        value_enum(CollectionMethod, "collection_method")
    )
    reference: Mapped[str | None] = mapped_column(String(100))
    remarks: Mapped[str | None] = mapped_column(Text)
    client_id: Mapped[str | None] = mapped_column(String(100))
    # True when this collection paid the loan off early (the payoff quote; interest waived).
    preclosure: Mapped[bool] = mapped_column(default=False, server_default="false")
    status: Mapped[CollectionStatus] = mapped_column(
        value_enum(CollectionStatus, "collection_status"),
        default=CollectionStatus.POSTED,
        server_default="posted",
    )
    reversed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    reversed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    reversal_reason: Mapped[str | None] = mapped_column(Text)
    journal_entry_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("journal_entries.id", ondelete="RESTRICT"), unique=True
    )
    reversal_entry_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("journal_entries.id", ondelete="RESTRICT"), unique=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class CollectionAllocation(Base):
    """What one collection paid (and, for a pre-closure, waived) on one installment."""

    __tablename__ = "collection_allocations"

    collection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("collections.id", ondelete="CASCADE"), primary_key=True
    )
    installment_number: Mapped[int] = mapped_column(Integer, primary_key=True)
    installment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("loan_installments.id", ondelete="RESTRICT"), index=True
    )
    principal: Mapped[Decimal] = money_column()
    interest: Mapped[Decimal] = money_column()
    fee: Mapped[Decimal] = money_column()
    penalty: Mapped[Decimal] = money_column()
    interest_waived: Mapped[Decimal] = money_column()
    fee_waived: Mapped[Decimal] = money_column()
    penalty_waived: Mapped[Decimal] = money_column()


class IdempotencyKey(Base):
    """The first answer to a money-moving request, replayed for a retry with the same key.

    Inserted at the start of the request (concurrent requests with the same key queue on the
    primary key until the first commits) and completed in the same transaction as the effect.
    The body is kept as the exact bytes sent, so a replay is byte-for-byte the same.
    """

    __tablename__ = "idempotency_keys"

    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    # sha256 of the route and the canonical request body.
    fingerprint: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None]
    response_body: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), index=True
    )


class AdvanceApplication(Base):
    """Advance money applied to one installment as it fell due (the close of business, or a
    replay after a reversal): one journal entry (Dr `customer_advances`, Cr the portfolio and
    income accounts) per loan and run, one row per installment it paid on.

    ``seq`` comes from the same sequence as ``collections.seq`` and is taken under the loan's
    row lock, so collections and applications of a loan have one order: the order a replay
    follows."""

    __tablename__ = "advance_applications"
    __table_args__ = (
        CheckConstraint(
            "principal >= 0 AND interest >= 0 AND fee >= 0 AND penalty >= 0",
            name="parts_not_negative",
        ),
        Index("ix_advance_applications_loan_id_seq", "loan_id", "seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # nextval('collections_seq_seq'), taken by the application under the loan's lock.
    seq: Mapped[int] = mapped_column(BigInteger)
    loan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("loans.id", ondelete="RESTRICT"))
    installment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("loan_installments.id", ondelete="RESTRICT"), index=True
    )
    installment_number: Mapped[int] = mapped_column(Integer)
    applied_on: Mapped[dt.date] = mapped_column(Date)
    principal: Mapped[Decimal] = money_column()
    interest: Mapped[Decimal] = money_column()
    fee: Mapped[Decimal] = money_column()
    penalty: Mapped[Decimal] = money_column()
    journal_entry_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("journal_entries.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
