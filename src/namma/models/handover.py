"""Agent cash hand-overs: an agent deposits the day's cash at the branch.

Two people, two steps (maker-checker): the agent declares the cash handed over
(``amount_declared``, ``recorded_by_id``: the declarer) and the branch counts it
(``amount_deposited``: the amount counted, ``counted_by_id``, ``counted_at``) — someone other
than the declarer, as the database checks. Until counted the hand-over is pending and nothing is
posted. ``expected`` is what the agent's posted cash collections of ``business_date`` add up to
(set again at the count); ``difference`` = counted − expected (negative: a shortfall, positive:
an excess), on the agent's hand-over and posted to the cash shortage account, never hidden. One
hand-over per agent and business date while it stands; a reversed one (``reversed_at``) frees
the date for a corrected hand-over.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from namma.kit.db import Base
from namma.models.loan import MONEY


class CashHandover(Base):
    __tablename__ = "cash_handovers"
    __table_args__ = (
        CheckConstraint(
            "expected >= 0 AND amount_declared >= 0 AND amount_deposited >= 0",
            name="amounts_not_negative",
        ),
        CheckConstraint("difference = amount_deposited - expected", name="difference_adds_up"),
        # Counted: the amount, the difference, the journal, who and when — all or none.
        CheckConstraint(
            "(counted_at IS NULL) = (amount_deposited IS NULL) "
            "AND (counted_at IS NULL) = (difference IS NULL) "
            "AND (counted_at IS NULL) = (journal_entry_id IS NULL) "
            "AND (counted_at IS NULL) = (counted_by_id IS NULL)",
            name="counted_whole",
        ),
        # Maker-checker: whoever declared the cash never counts it.
        CheckConstraint("counted_by_id <> recorded_by_id", name="counter_not_declarer"),
        # One standing hand-over per agent and business date.
        Index(
            "uq_cash_handovers_agent_id_business_date",
            "agent_id",
            "business_date",
            unique=True,
            postgresql_where=text("reversed_at IS NULL"),
        ),
        Index("ix_cash_handovers_branch_id_business_date", "branch_id", "business_date"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    branch_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("branches.id", ondelete="RESTRICT"))
    business_date: Mapped[dt.date] = mapped_column(Date)
    # Σ of the agent's posted (not reversed) cash collections dated business_date.
    expected: Mapped[Decimal] = mapped_column(MONEY)
    collections_count: Mapped[int]
    # What the declarer says was handed over.
    amount_declared: Mapped[Decimal] = mapped_column(MONEY)
    # What the branch counted (None while pending).
    amount_deposited: Mapped[Decimal | None] = mapped_column(MONEY)
    difference: Mapped[Decimal | None] = mapped_column(MONEY)
    remarks: Mapped[str | None] = mapped_column(Text)
    journal_entry_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("journal_entries.id", ondelete="RESTRICT"), unique=True
    )
    # The declarer (the maker).
    recorded_by_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    counted_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="RESTRICT")
    )
    counted_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    count_remarks: Mapped[str | None] = mapped_column(Text)
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
