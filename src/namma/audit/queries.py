"""Audit reads: the listing, newest first, with keyset pagination on id; a Manager granted
`audit:read` sees only the entries of their branch's people."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.models.audit import AuditEntry
from namma.models.customer import Customer
from namma.models.user import User

AUDIT_LIST_MAX_LIMIT = 200


async def audit_list(
    session: AsyncSession,
    *,
    branch_id: uuid.UUID | None,
    actor_id: uuid.UUID | None = None,
    action: str | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    before_id: int | None = None,
    limit: int = 50,
) -> list[AuditEntry]:
    """Entries matching every given filter, newest first.

    ``since`` is inclusive and ``until`` exclusive. For the next page pass the last returned
    entry's id as ``before_id``. ``limit`` is clamped to 1..200.

    ``branch_id`` is the caller's scope: ``None`` for the whole log (Admins); a branch keeps
    the entries whose actor belongs to it, its staff or its customers' logins (an entry has no
    branch of its own; head office's and the system's actions stay with the Admins).
    """
    limit = max(1, min(limit, AUDIT_LIST_MAX_LIMIT))
    query = select(AuditEntry)
    if branch_id is not None:
        query = query.where(
            or_(
                AuditEntry.actor_id.in_(select(User.id).where(User.branch_id == branch_id)),
                AuditEntry.actor_id.in_(
                    select(Customer.user_id)
                    .where(Customer.branch_id == branch_id)
                    .where(Customer.user_id.is_not(None))
                ),
            )
        )
    if actor_id is not None:
        query = query.where(AuditEntry.actor_id == actor_id)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    if entity_type is not None:
        query = query.where(AuditEntry.entity_type == entity_type)
    if entity_id is not None:
        query = query.where(AuditEntry.entity_id == entity_id)
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    if until is not None:
        query = query.where(AuditEntry.at < until)
    if before_id is not None:
        query = query.where(AuditEntry.id < before_id)
    query = query.order_by(AuditEntry.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())
