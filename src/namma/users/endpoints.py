"""`/api/branches` and `/api/staff`: offices and the people who work in them."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import Field
from sqlalchemy import literal, select, tuple_

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.auth.schemas import UserOut
from namma.auth.scope import staff_scope
from namma.kit.apitypes import QueryText, RequestModel
from namma.kit.deps import SessionDep
from namma.kit.errors import InvalidInputError, NotFoundError
from namma.kit.openapi import error_responses
from namma.models import Branch, Role, User, UserPermission
from namma.users import service
from namma.users.schemas import BranchList, BranchOut, ExtraPermissionsOut, StaffOut, StaffPage

router = APIRouter(prefix="/api", tags=["staff"])


class BranchBody(RequestModel):
    code: str = Field(min_length=2, max_length=10, examples=["BLR01"])
    name: str = Field(min_length=1, max_length=120)
    is_head_office: bool = False


class StaffBody(RequestModel):
    name: str = Field(min_length=1, max_length=120)
    role: Role
    branch_id: uuid.UUID | None = None
    email: str | None = Field(default=None, max_length=254)
    phone: str | None = Field(default=None, max_length=20)
    password: str = Field(
        min_length=1, max_length=1024, description="Temporary; changed at first login"
    )


class PasswordResetBody(RequestModel):
    new_password: str = Field(min_length=1, max_length=1024)


class RoleBody(RequestModel):
    role: Role
    branch_id: uuid.UUID | None = None


class PermissionsBody(RequestModel):
    permissions: list[str] = Field(max_length=32)


@router.get("/branches")
async def branches_list(
    session: SessionDep, principal: Annotated[Principal, Depends(require(Permission.BRANCH_READ))]
) -> BranchList:
    query = select(Branch).order_by(Branch.code)
    if principal.role is not Role.ADMIN:
        query = query.where(Branch.id == principal.branch_id)
    return BranchList(
        branches=[BranchOut.model_validate(b) for b in (await session.scalars(query)).all()]
    )


@router.post("/branches", status_code=201, responses=error_responses(409))
async def branches_create(
    body: BranchBody,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.BRANCH_MANAGE, limit="writes"))],
) -> BranchOut:
    branch = await service.branch_create(
        session,
        code=body.code,
        name=body.name,
        is_head_office=body.is_head_office,
        actor=principal.audit_actor,
    )
    return BranchOut.model_validate(branch)


async def _staff_page(session: SessionDep, users: Sequence[User]) -> list[StaffOut]:
    """Staff with their extra permissions, read in one query for the whole page."""
    granted: dict[uuid.UUID, list[str]] = {u.id: [] for u in users}
    rows = await session.execute(
        select(UserPermission.user_id, UserPermission.permission)
        .where(UserPermission.user_id.in_(list(granted)))
        .order_by(UserPermission.permission)
    )
    for user_id, permission in rows:
        granted[user_id].append(permission)
    return [
        StaffOut(
            **UserOut.model_validate(u).model_dump(),
            is_active=u.is_active,
            extra_permissions=granted[u.id],
        )
        for u in users
    ]


async def _staff(session: SessionDep, user: User) -> StaffOut:
    return (await _staff_page(session, [user]))[0]


@router.get("/staff")
async def staff_list(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.STAFF_READ))],
    role: Role | None = None,
    branch_id: uuid.UUID | None = None,
    active: bool | None = None,
    after: Annotated[
        QueryText | None, Query(description="Cursor: the last name of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> StaffPage:
    """Staff in the caller's scope, by name (keyset pagination with `after`)."""
    query = select(User).where(staff_scope(principal))
    if role is not None:
        query = query.where(User.role == role)
    if branch_id is not None:
        query = query.where(User.branch_id == branch_id)
    if active is not None:
        query = query.where(User.is_active == active)
    if after is not None:
        name, _, last_id = after.rpartition("|")
        try:
            cursor_id = uuid.UUID(last_id)
        except ValueError:
            raise InvalidInputError("after", "Not a cursor returned by this list") from None
        query = query.where(tuple_(User.name, User.id) > tuple_(literal(name), literal(cursor_id)))
    rows = (await session.scalars(query.order_by(User.name, User.id).limit(limit))).all()
    next_cursor = f"{rows[-1].name}|{rows[-1].id}" if len(rows) == limit else None
    return StaffPage(staff=await _staff_page(session, rows), next=next_cursor)


@router.get("/staff/{user_id}")
async def staff_get(
    user_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.STAFF_READ))],
) -> StaffOut:
    user = await session.scalar(
        select(User).where(User.id == user_id).where(staff_scope(principal))
    )
    if user is None:
        raise NotFoundError("Staff member not found")
    return await _staff(session, user)


@router.post("/staff", status_code=201, responses=error_responses(409))
async def staff_create(
    body: StaffBody,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.STAFF_CREATE, limit="writes"))],
) -> StaffOut:
    user = await service.staff_create(
        session,
        principal=principal,
        name=body.name,
        role=body.role,
        branch_id=body.branch_id,
        email=body.email,
        phone=body.phone,
        password=body.password,
    )
    return await _staff(session, user)


@router.post("/staff/{user_id}/deactivate", responses=error_responses(409))
async def staff_deactivate(
    user_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.STAFF_MANAGE, limit="writes"))],
) -> StaffOut:
    user = await service.staff_set_active(
        session, principal=principal, user_id=user_id, active=False
    )
    return await _staff(session, user)


@router.post("/staff/{user_id}/reactivate", responses=error_responses(409))
async def staff_reactivate(
    user_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.STAFF_MANAGE, limit="writes"))],
) -> StaffOut:
    user = await service.staff_set_active(
        session, principal=principal, user_id=user_id, active=True
    )
    return await _staff(session, user)


@router.post("/staff/{user_id}/reset-password")
async def staff_reset_password(
    user_id: uuid.UUID,
    body: PasswordResetBody,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.STAFF_MANAGE, limit="writes"))],
) -> StaffOut:
    user = await service.staff_password_reset(
        session, principal=principal, user_id=user_id, new_password=body.new_password
    )
    return await _staff(session, user)


@router.post("/staff/{user_id}/role", responses=error_responses(409))
async def staff_change_role(
    user_id: uuid.UUID,
    body: RoleBody,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.STAFF_CHANGE_ROLE, limit="writes"))],
) -> StaffOut:
    user = await service.staff_role_change(
        session, principal=principal, user_id=user_id, role=body.role, branch_id=body.branch_id
    )
    return await _staff(session, user)


@router.put("/staff/{user_id}/permissions")
async def staff_set_permissions(
    user_id: uuid.UUID,
    body: PermissionsBody,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.STAFF_GRANT, limit="writes"))],
) -> ExtraPermissionsOut:
    granted = await service.staff_permissions_set(
        session, principal=principal, user_id=user_id, permissions=body.permissions
    )
    return ExtraPermissionsOut(extra_permissions=granted)
