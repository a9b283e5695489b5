"""What `/api/cash-handovers` answers."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Literal

from pydantic import Field

from namma.kit.money import Money
from namma.kit.schemas import ApiModel, Timestamp, from_row
from namma.models import CashHandover, User

HandoverStatus = Literal["pending", "received", "reversed"]


class HandoverOut(ApiModel):
    """One agent's cash of one business date: declared (pending), then counted at the branch
    by someone other than the declarer (received)."""

    id: uuid.UUID
    agent_id: uuid.UUID
    agent_name: str | None
    branch_id: uuid.UUID
    business_date: dt.date
    expected: Money = Field(
        description="The agent's posted cash collections of the date (set again at the count)"
    )
    collections: int = Field(description="How many collections `expected` sums")
    amount_declared: Money = Field(description="What the declarer says was handed over")
    amount_deposited: Money | None = Field(description="What the branch counted (null: pending)")
    difference: Money | None = Field(
        description="counted − expected: negative is a shortage (null: pending)"
    )
    result: Literal["exact", "short", "excess"] | None
    remarks: str | None
    journal_entry_id: int | None = Field(description="Posted at the count (null: pending)")
    recorded_by_id: uuid.UUID = Field(description="The declarer")
    created_at: Timestamp | None
    counted_by_id: uuid.UUID | None
    counted_at: Timestamp | None
    count_remarks: str | None
    status: HandoverStatus
    reversed_at: Timestamp | None
    reversed_by_id: uuid.UUID | None
    reversal_reason: str | None
    reversal_entry_id: int | None

    @classmethod
    def of(cls, h: CashHandover, agent: User | None = None) -> HandoverOut:
        return from_row(
            cls,
            h,
            agent_name=agent.name if agent else None,
            collections=h.collections_count,
            result=handover_result(h.difference),
            status=handover_status(h),
        )


def handover_status(h: CashHandover) -> HandoverStatus:
    if h.reversed_at is not None:
        return "reversed"
    return "pending" if h.counted_at is None else "received"


def handover_result(difference: object) -> Literal["exact", "short", "excess"] | None:
    if difference is None:
        return None
    assert isinstance(difference, Decimal)
    return "exact" if difference == 0 else ("short" if difference < 0 else "excess")


class HandoverList(ApiModel):
    cash_handovers: list[HandoverOut] = Field(description="Newest business date first")
    expected: Money = Field(description="Totals of the received (counted, standing) hand-overs")
    amount_deposited: Money
    difference: Money
    pending: int = Field(description="How many listed hand-overs wait to be counted")
    amount_pending: Money = Field(description="Σ declared of the pending ones")
