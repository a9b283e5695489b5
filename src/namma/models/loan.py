"""Loans, their installments (the schedule) and charges, and per-branch number sequences.

The loan row carries denormalised balances (outstanding principal, interest, fees, penalties,
total collected, next due date, days past due) kept equal to its installments and reconcilable
with the ledger (`namma ledger check`).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from namma.kit.db import Base, value_enum
from namma.models.cob import AssetClass, DpdBucket, ProvisionClass
from namma.models.product import RATE

MONEY = Numeric(20, 2)
ZERO = Decimal("0.00")


class LoanStatus(enum.StrEnum):
    APPLIED = "applied"
    APPROVED = "approved"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"
    ACTIVE = "active"
    CLOSED = "closed"  # every obligation met on schedule
    PRECLOSED = "preclosed"  # paid off early
    REFINANCED = "refinanced"  # paid off by a top-up loan
    WRITTEN_OFF = "written_off"


OPEN_STATUSES = (LoanStatus.APPLIED, LoanStatus.APPROVED, LoanStatus.ACTIVE)


class DisbursementMethod(enum.StrEnum):
    CASH = "cash"
    BANK_TRANSFER = "bank_transfer"
    UPI = "upi"


class InstallmentStatus(enum.StrEnum):
    DUE = "due"
    PARTLY_PAID = "partly_paid"
    PAID = "paid"
    OVERDUE = "overdue"


# The day a loan started: paid out, else applied for (that day in India). The loan lists sort
# by it (``loans.queries.STARTED_ON``, which must stay this expression for the index to serve).
STARTED_ON_SQL = "COALESCE(disbursed_on, timezone('Asia/Kolkata'::text, applied_at)::date)"


def money_column(**kwargs: Any) -> Mapped[Decimal]:
    return mapped_column(MONEY, default=ZERO, server_default="0", **kwargs)


class Loan(Base):
    __tablename__ = "loans"
    __table_args__ = (
        CheckConstraint("principal > 0", name="principal_positive"),
        CheckConstraint("installments >= 1", name="installments_positive"),
        CheckConstraint(
            "outstanding_principal >= 0 AND outstanding_interest >= 0 "
            "AND outstanding_fees >= 0 AND outstanding_penalties >= 0",
            name="outstanding_not_negative",
        ),
        CheckConstraint("advance_balance >= 0", name="advance_not_negative"),
        CheckConstraint("provision_held >= 0", name="provision_not_negative"),
        CheckConstraint("interest_receivable >= 0", name="interest_receivable_not_negative"),
        CheckConstraint("interest_suspense >= 0", name="interest_suspense_not_negative"),
        Index("ix_loans_branch_id_status", "branch_id", "status"),
        # The dashboards' recent loans: the newest five, read from the end of the index.
        Index("ix_loans_applied_at", "applied_at", "loan_number"),
        # The loan lists' default order, newest start first (``loans.queries.STARTED_ON``): a
        # page is read from the end of the index instead of sorting every loan in scope.
        Index("ix_loans_started_on", text(STARTED_ON_SQL), "id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # BLR01-2026-000123: branch code, year of application, sequence within the branch and year.
    loan_number: Mapped[str] = mapped_column(String(40), unique=True)
    branch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("branches.id", ondelete="RESTRICT"))
    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="RESTRICT"), index=True
    )
    product_version_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("loan_product_versions.id", ondelete="RESTRICT")
    )
    status: Mapped[LoanStatus] = mapped_column(value_enum(LoanStatus, "loan_status"), index=True)
    principal: Mapped[Decimal] = mapped_column(MONEY)
    annual_rate: Mapped[Decimal] = mapped_column(RATE)
    installments: Mapped[int]
    # The terms' repayment frequency, which every list shows: a list then reads no terms
    # (`loan_terms`). Set with them (`terms`), never on its own (D-212).
    frequency: Mapped[str | None] = mapped_column(String(20))
    requested_first_due_on: Mapped[dt.date | None] = mapped_column(Date)
    purpose: Mapped[str | None] = mapped_column(Text)

    applied_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    applied_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    decided_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    rejection_reason: Mapped[str | None] = mapped_column(Text)
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))

    disbursed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    disbursed_on: Mapped[dt.date | None] = mapped_column(Date)
    disbursed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    disbursement_method: Mapped[DisbursementMethod | None] = mapped_column(
        value_enum(DisbursementMethod, "disbursement_method")
    )
    disbursement_reference: Mapped[str | None] = mapped_column(String(100))
    net_disbursed: Mapped[Decimal | None] = mapped_column(MONEY)
    installment_amount: Mapped[Decimal | None] = mapped_column(MONEY)
    total_interest: Mapped[Decimal | None] = mapped_column(MONEY)
    apr_percent: Mapped[Decimal | None] = mapped_column(Numeric(9, 4))

    outstanding_principal: Mapped[Decimal] = money_column()
    outstanding_interest: Mapped[Decimal] = money_column()
    outstanding_fees: Mapped[Decimal] = money_column()
    outstanding_penalties: Mapped[Decimal] = money_column()
    total_collected: Mapped[Decimal] = money_column()
    # Money received beyond the dues and held for the installments still to fall due (a
    # liability, `customer_advances`): the close of business applies it as they fall due.
    advance_balance: Mapped[Decimal] = money_column()
    # Accrual accounting (a product's `interest_accounting`): interest earned and not yet
    # collected, recognised as income by the close of business (`interest_receivable`, an
    # asset); 0 on cash-basis loans. Reconciled by `namma ledger check` (D-200).
    interest_receivable: Mapped[Decimal] = money_column()
    # Interest in suspense (D-215): what a non-performing accrual-basis loan has earned on its
    # schedule and not paid, kept off the books (the memorandum `interest_suspense`) because it
    # is income only when collected; 0 while it performs (the receivable holds it then).
    interest_suspense: Mapped[Decimal] = money_column()
    next_due_on: Mapped[dt.date | None] = mapped_column(Date)
    days_past_due: Mapped[int] = mapped_column(default=0, server_default="0")
    # What the installments due before ``balances_as_of`` still owed on that day (every
    # component), kept with the balances by every write to the installments and by the close of
    # business (for the morning after its date); ``balances_as_of``: the Indian date those
    # balances are for (NULL: not kept yet). The reports' overdue amount corrects a day's
    # difference from today (D-179, D-205).
    overdue_amount: Mapped[Decimal] = money_column()
    balances_as_of: Mapped[dt.date | None] = mapped_column(Date)
    # Set by the close of business (namma.cob): bucket and RBI asset class by days past due,
    # and the date the loan became a non-performing asset (NPA).
    dpd_bucket: Mapped[DpdBucket] = mapped_column(
        value_enum(DpdBucket, "dpd_bucket"), default=DpdBucket.CURRENT, server_default="current"
    )
    asset_class: Mapped[AssetClass] = mapped_column(
        value_enum(AssetClass, "asset_class"),
        default=AssetClass.STANDARD,
        server_default="standard",
    )
    npa_since: Mapped[dt.date | None] = mapped_column(Date)
    # Set by the close of business's provisioning step: the prudential class the loan is
    # provided for, and the provision held for it — equal to the balance of the
    # `loan_loss_provision` lines tagged with the loan (`namma ledger check`).
    provision_class: Mapped[ProvisionClass] = mapped_column(
        value_enum(ProvisionClass, "provision_class"),
        default=ProvisionClass.STANDARD,
        server_default="standard",
    )
    provision_held: Mapped[Decimal] = money_column()
    # Set when a restructuring is approved (the latest one): RBI downgrades a restructured
    # standard asset, so asset classification and provisioning read this.
    restructured_on: Mapped[dt.date | None] = mapped_column(Date)
    restructure_reason: Mapped[str | None] = mapped_column(Text)
    # Set by the close of business that found a year of satisfactory performance after the
    # latest restructuring (D-210): the loan is standard again if nothing else keeps it down, and
    # accrues. Cleared by a new restructuring.
    restructure_upgraded_on: Mapped[dt.date | None] = mapped_column(Date)

    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    written_off_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    write_off_reason: Mapped[str | None] = mapped_column(Text)
    # A top-up loan names the loan its disbursement paid off.
    refinances_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("loans.id", ondelete="RESTRICT"), index=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )

    # Loaded with the loan in the same statement whenever a query selects the loan itself (an
    # async session cannot load it later); a statement over loans' columns never joins it.
    terms_snapshot: Mapped[LoanTermsSnapshot] = relationship(
        lazy="joined", innerjoin=True, cascade="all, delete-orphan"
    )

    @property
    def terms(self) -> dict[str, Any]:
        """The complete money-core terms of this loan (its product version's, as applied for);
        kept in their own table, out of the rows every report scans (D-212)."""
        return self.terms_snapshot.terms

    @terms.setter
    def terms(self, value: dict[str, Any]) -> None:
        # A new loan has no snapshot yet; a loaded one has it loaded (joined), so this never
        # reads the database.
        if self.terms_snapshot is None:
            self.terms_snapshot = LoanTermsSnapshot(terms=value)
        else:
            self.terms_snapshot.terms = value
        self.frequency = value.get("frequency")


class LoanTermsSnapshot(Base):
    """One loan's terms (`Loan.terms`), a row of their own: the JSON is most of a loan's
    bytes, read for one loan at a time when its money is computed, and never by the reports
    that scan every loan of a branch (D-212)."""

    __tablename__ = "loan_terms"

    loan_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("loans.id", ondelete="RESTRICT"), primary_key=True
    )
    terms: Mapped[dict[str, Any]] = mapped_column(JSONB)


class LoanInstallment(Base):
    __tablename__ = "loan_installments"
    __table_args__ = (
        UniqueConstraint("loan_id", "number"),
        # A period's dues and what a day's installments still owe, read from the index alone
        # (`reports.queries.blocks.installment_demand`, `overdue_now`): each installment's
        # loan and every amount of the money core's `demanded` and `owed`.
        Index(
            "ix_loan_installments_due_date_status",
            "due_date",
            "status",
            postgresql_include=[
                "id",
                "loan_id",
                "principal_due",
                "interest_due",
                "fee_due",
                "interest_waived",
                "fee_waived",
                "principal_paid",
                "interest_paid",
                "fee_paid",
                "penalty_due",
                "penalty_paid",
                "penalty_waived",
            ],
        ),
        # A scope's dues of a period, found per loan (`reports.queries.blocks.installment_demand`)
        # rather than among every loan's installments of those days.
        Index("ix_loan_installments_loan_id_due_date", "loan_id", "due_date"),
        # A branch's dues of a period from the index alone, among that branch's installments
        # only: the due-date index above holds every branch's, so a branch's month read the
        # institution's (~95,000 entries at 100,000 loans in a month's first week; D-220).
        Index(
            "ix_loan_installments_branch_id_due_date",
            "branch_id",
            "due_date",
            postgresql_include=[
                "id",
                "loan_id",
                "status",
                "principal_due",
                "interest_due",
                "fee_due",
                "interest_waived",
                "fee_waived",
                "principal_paid",
                "interest_paid",
                "fee_paid",
            ],
        ),
        # The arrears of a loan, found without reading its paid installments: a loan's overdue
        # amount when its kept balances are stale, and what fell due yesterday
        # (`reports.queries.blocks.overdue_now`).
        Index(
            "ix_loan_installments_unpaid",
            "loan_id",
            "due_date",
            postgresql_where=text("status <> 'paid'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    loan_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("loans.id", ondelete="RESTRICT"))
    # The loan's branch (a loan never changes branch): a branch's installments of a period are
    # read by it (D-220).
    branch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("branches.id", ondelete="RESTRICT"))
    number: Mapped[int]
    due_date: Mapped[dt.date] = mapped_column(Date)
    period_start: Mapped[dt.date] = mapped_column(Date)
    principal_due: Mapped[Decimal] = mapped_column(MONEY)
    interest_due: Mapped[Decimal] = mapped_column(MONEY)
    fee_due: Mapped[Decimal] = money_column()
    penalty_due: Mapped[Decimal] = money_column()
    # The money core's interest for the period (needed for pro-rata payoff quotes).
    interest_for_period: Mapped[Decimal] = mapped_column(MONEY)
    balance_after: Mapped[Decimal] = mapped_column(MONEY)
    principal_paid: Mapped[Decimal] = money_column()
    interest_paid: Mapped[Decimal] = money_column()
    fee_paid: Mapped[Decimal] = money_column()
    penalty_paid: Mapped[Decimal] = money_column()
    interest_waived: Mapped[Decimal] = money_column()
    fee_waived: Mapped[Decimal] = money_column()
    penalty_waived: Mapped[Decimal] = money_column()
    status: Mapped[InstallmentStatus] = mapped_column(
        value_enum(InstallmentStatus, "installment_status"), default=InstallmentStatus.DUE
    )
    paid_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class LoanCharge(Base):
    """A charge of the loan, as computed at disbursement."""

    __tablename__ = "loan_charges"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    loan_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("loans.id", ondelete="RESTRICT"), index=True
    )
    name: Mapped[str] = mapped_column(String(60))
    timing: Mapped[str] = mapped_column(String(30))
    basis: Mapped[str] = mapped_column(String(30))
    value: Mapped[Decimal] = mapped_column(Numeric(20, 4))
    amount: Mapped[Decimal | None] = mapped_column(MONEY)  # known once disbursed


class NumberSequence(Base):
    """Gapless human-readable numbers per branch, kind and year (loan numbers, receipts).

    Taken with ``INSERT … ON CONFLICT DO UPDATE … RETURNING``, which locks the row until the
    transaction ends: concurrent takers queue, and a rolled-back number is reused.
    """

    __tablename__ = "number_sequences"

    branch_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("branches.id", ondelete="RESTRICT"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    year: Mapped[int] = mapped_column(primary_key=True)
    last_value: Mapped[int] = mapped_column(default=0)
