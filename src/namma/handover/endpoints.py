"""`/api/cash-handovers`: an agent's daily cash deposited at the branch, reconciled with the
day's cash collections (a shortfall or an excess is posted, never hidden), and the reversal of
a mistaken hand-over.

Recording and reversing accept an ``Idempotency-Key`` header (`namma.kit.idempotency`, as every
money route): the first answer is stored, byte for byte, in the
same transaction as the effect; a retry with the same key and body gets it again
(``Idempotent-Replayed: true``), the same key with another body is a 422. Without a key a
retry is still harmless, answered 409 (one standing hand-over per agent and date; a reversal
happens once).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import ConfigDict, Field

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.handover import service
from namma.handover.schemas import HandoverList, HandoverOut
from namma.kit.apitypes import Day, RequestModel
from namma.kit.deps import IdempotencyDep, SessionDep
from namma.kit.money import Money
from namma.kit.openapi import error_responses

router = APIRouter(prefix="/api/cash-handovers", tags=["cash hand-over"])


class HandoverIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: uuid.UUID | None = Field(
        default=None, description="Whose cash; an agent may leave it out (their own)"
    )
    business_date: dt.date = Field(description="The day whose collections are handed over")
    amount_deposited: Money = Field(description="Rupees counted at the branch, a decimal string")
    remarks: str | None = Field(default=None, max_length=1000)


class ReverseIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


@router.post(
    "",
    status_code=201,
    response_model=HandoverOut,
    responses={
        201: {"description": "The hand-over with its expected amount and difference"},
        **error_responses(404, 409),
    },
)
async def cash_handover_record(
    body: HandoverIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.HANDOVER_RECORD, limit="money"))],
    idempotency: IdempotencyDep,
) -> Response:
    """Record the hand-over: expected = the agent's posted cash collections of the date;
    Dr branch cash (deposited), Cr agent cash (expected), the difference to cash shortage.
    409 if that agent's cash of that date was already handed over (and not reversed)."""

    async def run() -> HandoverOut:
        handover, agent = await service.cash_handover_record(
            session,
            principal=principal,
            agent_id=body.agent_id,
            business_date=body.business_date,
            amount_deposited=body.amount_deposited,
            remarks=body.remarks,
        )
        return HandoverOut.of(handover, agent)

    return await idempotency.run(
        user_id=principal.user_id, body=body.model_dump(mode="json"), status=201, produce=run
    )


@router.post(
    "/{handover_id}/reverse",
    response_model=HandoverOut,
    responses={200: {"description": "The hand-over, marked reversed"}, **error_responses(409)},
)
async def cash_handover_reverse(
    handover_id: uuid.UUID,
    body: ReverseIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.HANDOVER_REVERSE, limit="money"))],
    idempotency: IdempotencyDep,
) -> Response:
    """Reverse a mistaken hand-over (a Manager their branch's, an Admin any): the mirror
    journal puts the cash back on the agent's account; the hand-over stays listed, marked
    reversed, and a corrected one may be recorded for that agent and date. 409 if already
    reversed."""

    async def run() -> HandoverOut:
        handover, agent = await service.cash_handover_reverse(
            session, principal=principal, handover_id=handover_id, reason=body.reason
        )
        return HandoverOut.of(handover, agent)

    return await idempotency.run(
        user_id=principal.user_id,
        body={"handover_id": str(handover_id), **body.model_dump(mode="json")},
        status=200,
        produce=run,
    )


@router.get("", responses=error_responses(404))
async def cash_handovers_list(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.HANDOVER_READ))],
    business_date: Annotated[Day | None, Query(alias="date")] = None,
    agent_id: uuid.UUID | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> HandoverList:
    """Hand-overs in scope, newest first, with totals of the standing ones."""
    return await service.cash_handovers_list(
        session, principal, business_date=business_date, agent_id=agent_id, limit=limit
    )
