"""`/api/cash-handovers`: an agent's daily cash deposited at the branch, reconciled with the
day's cash collections (a shortfall or an excess is posted, never hidden)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.handover import service
from namma.kit.deps import SessionDep
from namma.kit.money import Money

router = APIRouter(prefix="/api/cash-handovers", tags=["cash hand-over"])


class HandoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: uuid.UUID | None = Field(
        default=None, description="Whose cash; an agent may leave it out (their own)"
    )
    business_date: dt.date = Field(description="The day whose collections are handed over")
    amount_deposited: Money = Field(description="Rupees counted at the branch, a decimal string")
    remarks: str | None = Field(default=None, max_length=1000)


@router.post("", status_code=201)
async def cash_handover_record(
    body: HandoverIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.HANDOVER_RECORD, limit="money"))],
) -> dict[str, Any]:
    """Record the hand-over: expected = the agent's posted cash collections of the date;
    Dr branch cash (deposited), Cr agent cash (expected), the difference to cash shortage.
    409 if that agent's cash of that date was already handed over."""
    handover, agent = await service.cash_handover_record(
        session,
        principal=principal,
        agent_id=body.agent_id,
        business_date=body.business_date,
        amount_deposited=body.amount_deposited,
        remarks=body.remarks,
    )
    return service.handover_json(handover, agent)


@router.get("")
async def cash_handovers_list(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.HANDOVER_READ))],
    business_date: Annotated[dt.date | None, Query(alias="date")] = None,
    agent_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> dict[str, Any]:
    """Hand-overs in scope, newest first, with totals of the standing ones."""
    return await service.cash_handovers_list(
        session, principal, business_date=business_date, agent_id=agent_id, limit=limit
    )
