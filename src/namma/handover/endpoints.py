"""`/api/cash-handovers`: an agent's daily cash deposited at the branch, reconciled with the
day's cash collections (a shortfall or an excess is posted, never hidden), and the reversal of
a mistaken hand-over.

Recording and reversing accept an ``Idempotency-Key`` header with the semantics of
collections (`namma.collections.service`): the first answer is stored, byte for byte, in the
same transaction as the effect; a retry with the same key and body gets it again
(``Idempotent-Replayed: true``), the same key with another body is a 422. Without a key a
retry is still harmless, answered 409 (one standing hand-over per agent and date; a reversal
happens once).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.handover import service
from namma.kit.deps import SessionDep
from namma.kit.idempotency import (
    idempotency_begin,
    idempotency_complete,
    request_fingerprint,
)
from namma.kit.money import Money

router = APIRouter(prefix="/api/cash-handovers", tags=["cash hand-over"])

JSON = "application/json"
RECORD_ROUTE = "POST /api/cash-handovers"
REVERSE_ROUTE = "POST /api/cash-handovers/{handover_id}/reverse"

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="Optional: a retry with the same key gets the first answer, byte for byte",
    ),
]


class HandoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    agent_id: uuid.UUID | None = Field(
        default=None, description="Whose cash; an agent may leave it out (their own)"
    )
    business_date: dt.date = Field(description="The day whose collections are handed over")
    amount_deposited: Money = Field(description="Rupees counted at the branch, a decimal string")
    remarks: str | None = Field(default=None, max_length=1000)


class ReverseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


def _json_bytes(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


async def _idempotent(
    session: SessionDep,
    principal: Principal,
    *,
    key: str | None,
    route: str,
    body: dict[str, Any],
    status: int,
    run: Callable[[], Awaitable[dict[str, Any]]],
) -> Response:
    """Run ``run`` once per idempotency key (when one is sent) and answer its JSON."""
    if key is not None:
        stored = await idempotency_begin(
            session,
            user_id=principal.user_id,
            key=key,
            fingerprint=request_fingerprint(route, body),
        )
        if stored is not None:
            return Response(
                stored.body,
                status_code=stored.status,
                media_type=JSON,
                headers={"Idempotent-Replayed": "true"},
            )
    content = _json_bytes(await run())
    if key is not None:
        await idempotency_complete(
            session, user_id=principal.user_id, key=key, status=status, body=content
        )
    return Response(content, status_code=status, media_type=JSON)


@router.post(
    "",
    status_code=201,
    responses={201: {"description": "The hand-over with its expected amount and difference"}},
)
async def cash_handover_record(
    body: HandoverIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.HANDOVER_RECORD, limit="money"))],
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Record the hand-over: expected = the agent's posted cash collections of the date;
    Dr branch cash (deposited), Cr agent cash (expected), the difference to cash shortage.
    409 if that agent's cash of that date was already handed over (and not reversed)."""

    async def run() -> dict[str, Any]:
        handover, agent = await service.cash_handover_record(
            session,
            principal=principal,
            agent_id=body.agent_id,
            business_date=body.business_date,
            amount_deposited=body.amount_deposited,
            remarks=body.remarks,
        )
        return service.handover_json(handover, agent)

    return await _idempotent(
        session,
        principal,
        key=idempotency_key,
        route=RECORD_ROUTE,
        body=body.model_dump(mode="json"),
        status=201,
        run=run,
    )


@router.post(
    "/{handover_id}/reverse",
    responses={200: {"description": "The hand-over, marked reversed"}},
)
async def cash_handover_reverse(
    handover_id: uuid.UUID,
    body: ReverseIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.HANDOVER_REVERSE, limit="money"))],
    idempotency_key: IdempotencyKeyHeader = None,
) -> Response:
    """Reverse a mistaken hand-over (a Manager their branch's, an Admin any): the mirror
    journal puts the cash back on the agent's account; the hand-over stays listed, marked
    reversed, and a corrected one may be recorded for that agent and date. 409 if already
    reversed."""

    async def run() -> dict[str, Any]:
        handover, agent = await service.cash_handover_reverse(
            session, principal=principal, handover_id=handover_id, reason=body.reason
        )
        return service.handover_json(handover, agent)

    return await _idempotent(
        session,
        principal,
        key=idempotency_key,
        route=REVERSE_ROUTE,
        body={"handover_id": str(handover_id), **body.model_dump(mode="json")},
        status=200,
        run=run,
    )


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
