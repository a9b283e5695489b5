"""Reads of recorded notifications, scoped like the customers they were sent to."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.auth.deps import Principal
from namma.auth.scope import customer_scope
from namma.kit.errors import NotFoundError
from namma.models import Customer, Loan, Notification, NotificationStatus


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
