"""What `/api/cash-handovers` answers."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import Field

from namma.kit.money import Money
from namma.kit.schemas import ApiModel, Timestamp, from_row
from namma.models import CashHandover, User


class HandoverOut(ApiModel):
    """One agent's cash of one business date, counted at the branch."""

    id: uuid.UUID
    agent_id: uuid.UUID
    agent_name: str | None
    branch_id: uuid.UUID
    business_date: dt.date
    expected: Money = Field(description="The agent's posted cash collections of the date")
    collections: int = Field(description="How many collections `expected` sums")
    amount_deposited: Money
    difference: Money = Field(description="deposited − expected: negative is a shortage")
    result: Literal["exact", "short", "excess"]
    remarks: str | None
    journal_entry_id: int
    recorded_by_id: uuid.UUID
    created_at: Timestamp | None
    status: Literal["standing", "reversed"]
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
            result="exact" if h.difference == 0 else ("short" if h.difference < 0 else "excess"),
            status="reversed" if h.reversed_at else "standing",
        )


class HandoverList(ApiModel):
    cash_handovers: list[HandoverOut] = Field(description="Newest business date first")
    expected: Money = Field(description="Totals of the standing hand-overs listed")
    amount_deposited: Money
    difference: Money
