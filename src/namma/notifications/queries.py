"""Reads of recorded notifications, scoped like the customers they were sent to."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.auth.deps import Principal
from namma.auth.scope import customer_scope
from namma.kit.errors import NotFoundError
from namma.models import Customer, Loan, Notification, NotificationStatus


def notification_json(n: Notification, *, internal: bool = True) -> dict[str, Any]:
    """The message as JSON. ``internal=False`` (for the customer it was sent to) leaves out
    the delivery error and the job id: operators' details, not the customer's."""
    data = {
        "id": str(n.id),
        "customer_id": str(n.customer_id),
        "loan_id": str(n.loan_id) if n.loan_id else None,
        "installment_id": str(n.installment_id) if n.installment_id else None,
        "collection_id": str(n.collection_id) if n.collection_id else None,
        "channel": n.channel.value,
        "to": n.recipient,
        "template": n.template,
        "language": n.language,
        "subject": n.subject,
        "body": n.body,
        "status": n.status.value,
        "attempts": n.attempts,
        "last_error": n.last_error,
        "job_id": n.job_id,
        "created_at": n.created_at.isoformat(),
        "sent_at": n.sent_at.isoformat() if n.sent_at else None,
    }
    if not internal:
        del data["last_error"], data["job_id"]
    return data


async def notifications_list(
    session: AsyncSession,
    principal: Principal,
    *,
    customer_id: uuid.UUID | None = None,
    loan_id: uuid.UUID | None = None,
    status: NotificationStatus | None = None,
    limit: int = 50,
) -> list[Notification]:
    """Messages to the customers in the caller's scope (Admin: all; Manager: their branch's;
    Agent: their assigned customers; Customer: their own), newest first. A ``customer_id`` or
    ``loan_id`` outside that scope (or unknown) is refused as not found, never answered with
    an empty list that would confirm it exists."""
    if customer_id is not None:
        found = await session.scalar(
            select(Customer.id).where(Customer.id == customer_id).where(customer_scope(principal))
        )
        if found is None:
            raise NotFoundError("Customer not found")
    if loan_id is not None:
        found = await session.scalar(
            select(Loan.id)
            .join(Customer, Customer.id == Loan.customer_id)
            .where(Loan.id == loan_id)
            .where(customer_scope(principal))
        )
        if found is None:
            raise NotFoundError("Loan not found")
    query = (
        select(Notification)
        .join(Customer, Customer.id == Notification.customer_id)
        .where(customer_scope(principal))
    )
    if customer_id is not None:
        query = query.where(Notification.customer_id == customer_id)
    if loan_id is not None:
        query = query.where(Notification.loan_id == loan_id)
    if status is not None:
        query = query.where(Notification.status == status)
    query = query.order_by(Notification.created_at.desc(), Notification.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())


async def notification_get(
    session: AsyncSession, principal: Principal, *, notification_id: uuid.UUID
) -> Notification:
    """One message, if its customer is in the caller's scope (else: not found)."""
    row = await session.scalar(
        select(Notification)
        .join(Customer, Customer.id == Notification.customer_id)
        .where(Notification.id == notification_id)
        .where(customer_scope(principal))
    )
    if row is None:
        raise NotFoundError("Notification not found")
    return row
