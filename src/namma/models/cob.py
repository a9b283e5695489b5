"""Close of business (COB): the run of each business date, the loans' delinquency classes, and
the daily portfolio snapshots per branch and per agent.

- ``cob_runs``: one row per business date; ``steps_done`` counts the steps committed so far, so
  a run that died halfway resumes at the next step (docs/cob.md).
- ``DpdBucket`` / ``AssetClass``: the values of ``loans.dpd_bucket`` and ``loans.asset_class``
  (RBI: SMA-0 1–30 days past due, SMA-1 31–60, SMA-2 61–90, NPA beyond 90).
- ``ProvisionClass``: the values of ``loans.provision_class``, the RBI prudential asset class a
  loan is provided for (standard, sub-standard, doubtful, loss; docs/ledger.md "Provisioning");
  ``provisioning_rates``: the rate provided per class, set by the Admin.
- ``portfolio_snapshots``: the portfolio as of each business date, per branch (``agent_id``
  NULL) and per agent (the customer's current agent). Reports and dashboards read these names.
"""

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
    Identity,
    Index,
    Numeric,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from namma.kit.db import Base, value_enum

MONEY = Numeric(20, 2)
ZERO = Decimal("0.00")


class CobRunStatus(enum.StrEnum):
    RUNNING = "running"  # started (or died while running: the next run resumes it)
    COMPLETED = "completed"
    FAILED = "failed"  # a step raised; the next run resumes at that step


class DpdBucket(enum.StrEnum):
    CURRENT = "current"
    D1_30 = "1-30"
    D31_60 = "31-60"
    D61_90 = "61-90"
    D90_PLUS = "90+"


class AssetClass(enum.StrEnum):
    STANDARD = "standard"
    SMA_0 = "sma_0"  # 1–30 days past due
    SMA_1 = "sma_1"  # 31–60
    SMA_2 = "sma_2"  # 61–90
    NPA = "npa"  # more than 90; back to standard only when all arrears are cleared


class ProvisionClass(enum.StrEnum):
    """RBI's prudential classes (income recognition and asset classification norms), as this
    system draws them (D-190): standard (not NPA: SMA-0/1/2 included), sub-standard (NPA for up
    to 12 months, or a standard loan restructured), doubtful (NPA for more than 12 months), loss
    (NPA for more than 36 months, in place of "identified as loss")."""

    STANDARD = "standard"
    SUB_STANDARD = "sub_standard"
    DOUBTFUL = "doubtful"
    LOSS = "loss"


class ProvisioningRate(Base):
    """The share of a loan's outstanding principal provided for, per class (percent). Read by
    the close of business; changed by the Admin (audited), taking effect at the next close."""

    __tablename__ = "provisioning_rates"
    __table_args__ = (CheckConstraint("rate >= 0 AND rate <= 100", name="rate_range"),)

    asset_class: Mapped[ProvisionClass] = mapped_column(
        value_enum(ProvisionClass, "provision_class"), primary_key=True
    )
    rate: Mapped[Decimal] = mapped_column(Numeric(7, 4))
    updated_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    updated_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )


class CobRun(Base):
    __tablename__ = "cob_runs"
    __table_args__ = (CheckConstraint("steps_done BETWEEN 0 AND 7", name="steps_done_range"),)

    business_date: Mapped[dt.date] = mapped_column(Date, primary_key=True)
    status: Mapped[CobRunStatus] = mapped_column(value_enum(CobRunStatus, "cob_run_status"))
    # Steps committed, in order (1 advances, 2 installments, 3 penalties, 4 loans, 5 accrual,
    # 6 provisions, 7 snapshots).
    steps_done: Mapped[int] = mapped_column(default=0, server_default="0")
    started_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    # What each step did, by step name (rows changed, amounts charged or accrued).
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    # How many times a run for this date was started (a resumed or forced run adds one).
    attempts: Mapped[int] = mapped_column(default=1, server_default="1")
    error: Mapped[str | None] = mapped_column(Text)


class PortfolioSnapshot(Base):
    """The portfolio of a branch (``agent_id`` NULL) or of one agent in it, as of a date."""

    __tablename__ = "portfolio_snapshots"
    __table_args__ = (
        Index(
            "uq_portfolio_snapshots_date_branch_agent",
            "business_date",
            "branch_id",
            "agent_id",
            unique=True,
            postgresql_nulls_not_distinct=True,
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    business_date: Mapped[dt.date] = mapped_column(Date)
    branch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("branches.id", ondelete="RESTRICT"))
    agent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT"), index=True
    )
    active_loans: Mapped[int] = mapped_column(default=0, server_default="0")
    active_customers: Mapped[int] = mapped_column(default=0, server_default="0")
    outstanding_principal: Mapped[Decimal] = mapped_column(MONEY, default=ZERO, server_default="0")
    outstanding_interest: Mapped[Decimal] = mapped_column(MONEY, default=ZERO, server_default="0")
    outstanding_fees: Mapped[Decimal] = mapped_column(MONEY, default=ZERO, server_default="0")
    outstanding_penalties: Mapped[Decimal] = mapped_column(MONEY, default=ZERO, server_default="0")
    # Outstanding principal of active loans by days-past-due bucket (portfolio at risk).
    par_1_30: Mapped[Decimal] = mapped_column(MONEY, default=ZERO, server_default="0")
    par_31_60: Mapped[Decimal] = mapped_column(MONEY, default=ZERO, server_default="0")
    par_61_90: Mapped[Decimal] = mapped_column(MONEY, default=ZERO, server_default="0")
    par_90_plus: Mapped[Decimal] = mapped_column(MONEY, default=ZERO, server_default="0")
    # Still owed (every component) on installments that fell due before the date.
    overdue_amount: Mapped[Decimal] = mapped_column(MONEY, default=ZERO, server_default="0")
    # Principal + interest + fees of the installments due on the date (the day's demand).
    due_amount: Mapped[Decimal] = mapped_column(MONEY, default=ZERO, server_default="0")
    # Posted (not reversed) collections dated the business date.
    collected_amount: Mapped[Decimal] = mapped_column(MONEY, default=ZERO, server_default="0")
    collections_count: Mapped[int] = mapped_column(default=0, server_default="0")
    # Loans disbursed on the date (their principal).
    disbursed_amount: Mapped[Decimal] = mapped_column(MONEY, default=ZERO, server_default="0")
    disbursed_count: Mapped[int] = mapped_column(default=0, server_default="0")
