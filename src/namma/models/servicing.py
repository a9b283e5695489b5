"""Servicing events on a loan after disbursement: overdue penalties charged, waivers, and
schedules rewritten by a prepayment."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Numeric,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from namma.kit.db import Base, value_enum

MONEY = Numeric(20, 2)


class LoanPenaltyCharge(Base):
    """Penalty charged on one overdue installment by a run for a business date.

    A run charges the difference between the penalty the product's rule gives as of the date
    (the money core's total) and what the installment was already charged, so a second run for
    the same date charges nothing (and the unique key makes a duplicate impossible).
    """

    __tablename__ = "loan_penalty_charges"
    __table_args__ = (
        UniqueConstraint("installment_id", "charged_on"),
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_loan_penalty_charges_loan_id_charged_on", "loan_id", "charged_on"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    loan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("loans.id", ondelete="RESTRICT"))
    installment_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("loan_installments.id", ondelete="RESTRICT")
    )
    installment_number: Mapped[int]
    charged_on: Mapped[dt.date] = mapped_column(Date)
    days_overdue: Mapped[int]
    amount: Mapped[Decimal] = mapped_column(MONEY)
    # The installment's total penalty after this charge (the rule's total as of charged_on).
    total_after: Mapped[Decimal] = mapped_column(MONEY)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class WaiverComponent(enum.StrEnum):
    INTEREST = "interest"
    FEE = "fee"
    PENALTY = "penalty"


class LoanWaiver(Base):
    """A Manager's or Admin's waiver of interest, fees or penalties owed, with a reason."""

    __tablename__ = "loan_waivers"
    __table_args__ = (CheckConstraint("amount > 0", name="amount_positive"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    loan_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("loans.id", ondelete="RESTRICT"), index=True
    )
    branch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("branches.id", ondelete="RESTRICT"))
    component: Mapped[WaiverComponent] = mapped_column(
        value_enum(WaiverComponent, "waiver_component")
    )
    amount: Mapped[Decimal] = mapped_column(MONEY)
    reason: Mapped[str] = mapped_column(Text)
    waived_on: Mapped[dt.date] = mapped_column(Date)
    # [{"number": 3, "amount": "12.50"}, …]: how the amount was spread over the installments.
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    waived_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    journal_entry_id: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("journal_entries.id", ondelete="RESTRICT")
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class LoanScheduleRevision(Base):
    """A rewrite of the installments still to fall due: a collection's prepayment (the
    product's excess policy `reduce-term` or `reduce-installment`), or an approved
    restructuring (`restructure`, with its request).

    ``replaced`` keeps those installments as they were (number, dates and the scheduled
    amounts, as strings): a prepayment's reversal puts the schedule back exactly before it
    replays the loan's remaining collections (`namma.collections.prepayments`); a
    restructuring's is the loan's old schedule, kept for history. The receipt and the loan's
    schedule tab say what it did: the installments before and after, the regular installment
    before and after.
    """

    __tablename__ = "loan_schedule_revisions"
    __table_args__ = (
        CheckConstraint("prepaid_principal > 0 OR policy = 'restructure'", name="prepaid_positive"),
        CheckConstraint(
            "policy IN ('reduce-term', 'reduce-installment', 'restructure')",
            name="policy_reschedules",
        ),
        CheckConstraint("(collection_id IS NULL) <> (restructure_id IS NULL)", name="one_cause"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    loan_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("loans.id", ondelete="RESTRICT"), index=True
    )
    collection_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("collections.id", ondelete="RESTRICT"), unique=True
    )
    restructure_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("loan_restructure_requests.id", ondelete="RESTRICT"), index=True
    )
    policy: Mapped[str] = mapped_column(Text)
    prepaid_principal: Mapped[Decimal] = mapped_column(MONEY)
    from_number: Mapped[int]  # the first installment rewritten
    installments_before: Mapped[int]
    installments_after: Mapped[int]
    installment_before: Mapped[Decimal] = mapped_column(MONEY)
    installment_after: Mapped[Decimal] = mapped_column(MONEY)
    replaced: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # A restructuring's: the first rebuilt installment's regular due date before a calendar
    # moved it (the later ones follow it by the frequency); a calendar changed afterwards moves
    # the rebuilt installments from there (D-208). NULL for a prepayment.
    regular_first_due_on: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class RestructureStatus(enum.StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class LoanRestructureRequest(Base):
    """A restructuring asked by a maker and decided by a checker (never the same person): one
    loan, or every active loan of a village of a branch (natural-calamity relief), under one
    change (`namma.finance.RestructureKind`, its value in ``params``).

    ``preview`` is what the checker sees and approves, per loan id: the rebuilt rows and the
    figures before and after. An approval recomputes each loan and writes it only if it still
    equals the preview; otherwise nothing is written (409, ask again).
    """

    __tablename__ = "loan_restructure_requests"
    __table_args__ = (
        CheckConstraint("(loan_id IS NULL) <> (village IS NULL)", name="one_scope"),
        CheckConstraint(
            "kind IN ('next-due-date', 'moratorium', 'rate', 'term', 'installment')",
            name="kind_known",
        ),
        CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status_known"),
        Index("ix_loan_restructure_requests_branch_id_status", "branch_id", "status"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    branch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("branches.id", ondelete="RESTRICT"))
    loan_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("loans.id", ondelete="RESTRICT"), index=True
    )
    village: Mapped[str | None] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    params: Mapped[dict[str, Any]] = mapped_column(JSONB)
    reason: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, default="pending", server_default="pending")
    preview: Mapped[dict[str, Any]] = mapped_column(JSONB)
    loan_count: Mapped[int]
    requested_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    requested_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    decided_on: Mapped[dt.date | None] = mapped_column(Date)
    rejection_reason: Mapped[str | None] = mapped_column(Text)
