"""`/api/cash-handovers`: an agent's daily cash deposited at the branch — declared by the agent,
counted by the branch (someone other than the declarer), reconciled at the count with the day's
cash collections (a shortfall or an excess is posted, never hidden) — and the reversal of a
mistaken hand-over.

Declaring, counting and reversing accept an ``Idempotency-Key`` header
(`namma.kit.idempotency`, as every money route): the first answer is stored, byte for byte, in
the same transaction as the effect; a retry with the same key and body gets it again
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
from namma.handover.schemas import HandoverList, HandoverOut, HandoverStatus
from namma.kit.apitypes import Day, RequestModel
from namma.kit.deps import IdempotencyDep, ReadSessionDep, SessionDep
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


class CountIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    amount_counted: Money = Field(description="Rupees counted at the branch, a decimal string")
    remarks: str | None = Field(default=None, max_length=1000)


class ReverseIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


@router.post(
    "",
    status_code=201,
    response_model=HandoverOut,
    responses={
        201: {"description": "The declared hand-over, pending its count"},
        **error_responses(404, 409),
    },
)
async def cash_handover_record(
    body: HandoverIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.HANDOVER_RECORD, limit="money"))],
    idempotency: IdempotencyDep,
) -> Response:
    """Declare the hand-over (an agent their own cash; a Manager or Admin on an agent's behalf):
    ``amount_deposited`` is the amount declared; the hand-over is ``pending`` and nothing is
    posted until the branch counts it (`POST /api/cash-handovers/{id}/count`). 409 if that
    agent's cash of that date was already handed over (pending or received, not reversed)."""

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
    "/{handover_id}/count",
    response_model=HandoverOut,
    responses={
        200: {"description": "The hand-over, received, with its difference and journal"},
        **error_responses(403, 404, 409),
    },
)
async def cash_handover_count(
    handover_id: uuid.UUID,
    body: CountIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.HANDOVER_COUNT, limit="money"))],
    idempotency: IdempotencyDep,
) -> Response:
    """Record the branch's count of a declared hand-over (a Manager their branch's, an Admin
    any): expected = the agent's posted cash collections of the date; Dr branch cash (counted),
    Cr agent cash (expected), the difference to cash shortage, kept on the agent's hand-over.
    403 for the declarer (maker-checker); 409 if already counted or reversed."""

    async def run() -> HandoverOut:
        handover, agent = await service.cash_handover_count(
            session,
            principal=principal,
            handover_id=handover_id,
            amount_counted=body.amount_counted,
            remarks=body.remarks,
        )
        return HandoverOut.of(handover, agent)

    return await idempotency.run(
        user_id=principal.user_id,
        body={"handover_id": str(handover_id), **body.model_dump(mode="json")},
        status=200,
        produce=run,
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
    journal puts the cash back on the agent's account (a pending one, never posted, is only
    withdrawn); the hand-over stays listed, marked reversed, and a corrected one may be
    declared for that agent and date. 409 if already reversed."""

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
    session: ReadSessionDep,
    principal: Annotated[Principal, Depends(require(Permission.HANDOVER_READ))],
    business_date: Annotated[Day | None, Query(alias="date")] = None,
    agent_id: uuid.UUID | None = None,
    status: HandoverStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> HandoverList:
    """Hand-overs in scope, newest first (``status``: pending, received or reversed only),
    with totals of the received ones and of the pending declarations."""
    return await service.cash_handovers_list(
        session,
        principal,
        business_date=business_date,
        agent_id=agent_id,
        limit=limit,
        status=status,
    )
