"""`/api/notifications`: the messages sent (or being sent) to customers, with their status."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.kit.deps import SessionDep
from namma.kit.openapi import error_responses
from namma.models import NotificationStatus, Role
from namma.notifications import queries
from namma.notifications.schemas import NotificationList, NotificationOne, NotificationOut

router = APIRouter(prefix="/api/notifications", tags=["notifications"])


@router.get("", response_model_exclude_unset=True, responses=error_responses(404))
async def notifications_list(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.NOTIFICATION_READ))],
    customer_id: uuid.UUID | None = None,
    loan_id: uuid.UUID | None = None,
    status: NotificationStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> NotificationList:
    """Messages to customers in the caller's scope (Admin: all; Manager: their branch;
    Agent: their customers; Customer: their own), newest first: channel, recipient (`to`),
    template, language, the text sent, status (`queued`, `sent`, `failed`), attempts and the
    last error (the error and the job id are not shown to customers). A `customer_id` or
    `loan_id` out of scope answers 404."""
    rows = await queries.notifications_list(
        session, principal, customer_id=customer_id, loan_id=loan_id, status=status, limit=limit
    )
    internal = principal.role is not Role.CUSTOMER
    return NotificationList(notifications=[NotificationOut.of(n, internal=internal) for n in rows])


@router.get("/{notification_id}", response_model_exclude_unset=True)
async def notification_get(
    notification_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.NOTIFICATION_READ))],
) -> NotificationOne:
    """One message (404 if its customer is outside the caller's scope)."""
    row = await queries.notification_get(session, principal, notification_id=notification_id)
    internal = principal.role is not Role.CUSTOMER
    return NotificationOne(notification=NotificationOut.of(row, internal=internal))
