"""`/api/notifications`: the messages sent (or being sent) to customers, with their status."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.kit.deps import SessionDep
from namma.models import NotificationStatus, Role
from namma.notifications import queries

router = APIRouter(prefix="/api/notifications", tags=["notifications"])


@router.get("")
async def notifications_list(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.NOTIFICATION_READ))],
    customer_id: uuid.UUID | None = None,
    loan_id: uuid.UUID | None = None,
    status: NotificationStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> dict[str, Any]:
    """Messages to customers in the caller's scope (Admin: all; Manager: their branch;
    Agent: their customers; Customer: their own), newest first: channel, recipient (`to`),
    template, language, the text sent, status (`queued`, `sent`, `failed`), attempts and the
    last error (the error and the job id are not shown to customers). A `customer_id` or
    `loan_id` out of scope answers 404."""
    rows = await queries.notifications_list(
        session, principal, customer_id=customer_id, loan_id=loan_id, status=status, limit=limit
    )
    internal = principal.role is not Role.CUSTOMER
    return {"notifications": [queries.notification_json(n, internal=internal) for n in rows]}


@router.get("/{notification_id}")
async def notification_get(
    notification_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.NOTIFICATION_READ))],
) -> dict[str, Any]:
    """One message (404 if its customer is outside the caller's scope)."""
    row = await queries.notification_get(session, principal, notification_id=notification_id)
    internal = principal.role is not Role.CUSTOMER
    return {"notification": queries.notification_json(row, internal=internal)}
