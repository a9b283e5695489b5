"""Branch and staff reads for the back-office lists: keyset pages (``namma.kit.pagination``)
with search and filters, in the caller's scope (``staff_scope``; branches: an Admin sees every
branch, anyone else only their own)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import ColumnElement, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.auth.deps import Principal
from namma.auth.scope import staff_scope
from namma.kit.errors import NotFoundError
from namma.kit.pagination import Keyset, KeysetPage, SortColumn, keyset_page, keyset_select
from namma.models import Branch, Role, User


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _branch_scope(principal: Principal) -> ColumnElement[bool]:
    if principal.role is Role.ADMIN:
        return Branch.id.is_not(None)
    return Branch.id == principal.branch_id


_STAFF_COUNT = (
    select(func.count())
    .where(User.branch_id == Branch.id)
    .where(User.is_active)
    .where(User.role != Role.CUSTOMER)
    .correlate(Branch)
    .scalar_subquery()
)

BRANCH_SORTS: dict[str, SortColumn] = {
    "code": SortColumn("code", Branch.code, str),
    "name": SortColumn("name", Branch.name, str),
    "created": SortColumn("created", Branch.created_at, dt.datetime.fromisoformat),
}


async def branches_page(
    session: AsyncSession,
    principal: Principal,
    keyset: Keyset,
    *,
    q: str | None = None,
    active: bool | None = None,
) -> KeysetPage[Any]:
    """Rows of (branch, active staff count, sort value)."""
    query = select(
        Branch, _STAFF_COUNT.label("staff_count"), keyset.sort.column.label("sort_value")
    ).where(_branch_scope(principal))
    if q:
        query = query.where(
            or_(Branch.code.ilike(_like(q), escape="\\"), Branch.name.ilike(_like(q), escape="\\"))
        )
    if active is not None:
        query = query.where(Branch.is_active == active)
    rows = (await session.execute(keyset_select(query, keyset, Branch.id))).all()
    return keyset_page(rows, keyset, lambda row: (row.sort_value, row[0].id))


async def branch_get(session: AsyncSession, principal: Principal, branch_id: uuid.UUID) -> Branch:
    branch = await session.scalar(
        select(Branch).where(Branch.id == branch_id).where(_branch_scope(principal))
    )
    if branch is None:
        raise NotFoundError("Branch not found")
    return branch


async def branches_all(session: AsyncSession, principal: Principal) -> list[Branch]:
    """Every branch in scope by code (for a form's choice of branch)."""
    return list(
        (
            await session.scalars(
                select(Branch).where(_branch_scope(principal)).order_by(Branch.code)
            )
        ).all()
    )


STAFF_SORTS: dict[str, SortColumn] = {
    "name": SortColumn("name", User.name, str),
    "role": SortColumn("role", User.role, Role),
    "created": SortColumn("created", User.created_at, dt.datetime.fromisoformat),
}


async def staff_page(
    session: AsyncSession,
    principal: Principal,
    keyset: Keyset,
    *,
    q: str | None = None,
    role: Role | None = None,
    branch_id: uuid.UUID | None = None,
    active: bool | None = None,
) -> KeysetPage[Any]:
    """Rows of (user, branch code or None, sort value), staff in the caller's scope."""
    query = (
        select(User, Branch.code, keyset.sort.column.label("sort_value"))
        .outerjoin(Branch, Branch.id == User.branch_id)
        .where(staff_scope(principal))
    )
    if q:
        pattern = _like(q)
        query = query.where(
            or_(
                User.name.ilike(pattern, escape="\\"),
                User.email.ilike(pattern, escape="\\"),
                User.phone.ilike(pattern, escape="\\"),
            )
        )
    if role is not None:
        query = query.where(User.role == role)
    if branch_id is not None:
        query = query.where(User.branch_id == branch_id)
    if active is not None:
        query = query.where(User.is_active == active)
    rows = (await session.execute(keyset_select(query, keyset, User.id))).all()
    return keyset_page(rows, keyset, lambda row: (row.sort_value, row[0].id))


async def staff_get(session: AsyncSession, principal: Principal, user_id: uuid.UUID) -> User:
    user = await session.scalar(
        select(User).where(User.id == user_id).where(staff_scope(principal))
    )
    if user is None:
        raise NotFoundError("Staff member not found")
    return user


async def agents_of_branch(
    session: AsyncSession, principal: Principal, branch_id: uuid.UUID
) -> list[User]:
    """The active agents of a branch the caller may see, by name (a reassignment's choices)."""
    return list(
        (
            await session.scalars(
                select(User)
                .where(staff_scope(principal))
                .where(User.role == Role.AGENT)
                .where(User.is_active)
                .where(User.branch_id == branch_id)
                .order_by(User.name, User.id)
            )
        ).all()
    )


async def agents_in_scope(session: AsyncSession, principal: Principal) -> list[Any]:
    """Rows of (agent, branch code): the active agents the caller may see, by branch then name
    (a filter's and a bulk reassignment's choices)."""
    return list(
        (
            await session.execute(
                select(User, Branch.code)
                .join(Branch, Branch.id == User.branch_id)
                .where(staff_scope(principal))
                .where(User.role == Role.AGENT)
                .where(User.is_active)
                .order_by(Branch.code, User.name, User.id)
            )
        ).all()
    )
