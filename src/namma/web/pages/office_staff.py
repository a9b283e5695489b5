"""``/office/staff``: the staff list, a staff member's page and the commands the API offers —
create (the first sign-in forces a password change: ``must_change_password``), deactivate (an
agent's customers move to another agent of the branch in the same transaction), reactivate,
temporary password, two-factor reset (Admin), extra permissions (Admin). An Admin sees everyone;
a Manager their branch's staff and may act on its agents only (``users.service``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from namma.auth.permissions import GRANTABLE, Permission
from namma.customers import assignments
from namma.customers.queries import customers_served
from namma.kit.deps import SessionDep
from namma.kit.errors import AppError
from namma.models import Role, User, UserPermission
from namma.reports.base import ColumnType as CT
from namma.users import queries, service
from namma.users.endpoints import PasswordResetBody, StaffBody
from namma.users.service import STAFF_ROLES
from namma.web.forms import Form, empty_form, form_parse
from namma.web.i18n import N_
from namma.web.office import (
    OFFICE,
    csv_url,
    list_keyset,
    param_bool,
    param_enum,
    param_text,
    param_uuid,
    wants_csv,
)
from namma.web.tables import Column, table_csv, table_of
from namma.web.templating import render
from namma.web.viewer import Viewer, viewer_of

router = APIRouter(prefix="/office/staff", include_in_schema=False)

Reader = Annotated[Viewer, Depends(viewer_of(Permission.STAFF_READ, roles=OFFICE))]
Creator = Annotated[
    Viewer, Depends(viewer_of(Permission.STAFF_CREATE, roles=OFFICE, limit="writes"))
]
Changer = Annotated[
    Viewer, Depends(viewer_of(Permission.STAFF_MANAGE, roles=OFFICE, limit="writes"))
]
Granter = Annotated[
    Viewer, Depends(viewer_of(Permission.STAFF_GRANT, roles=(Role.ADMIN,), limit="writes"))
]

COLUMNS = (
    Column("name", N_("Name")),
    Column("role", N_("Role")),
    Column("branch", N_("Branch"), sortable=False, phone=False),
    Column("login", N_("Email or mobile"), sortable=False, phone=False),
    Column("status", N_("Status"), sortable=False),
    Column("created", N_("Since"), phone=False),
)
PERMISSION_LABELS: dict[str, str] = {
    Permission.COLLECTION_REVERSE.value: N_("Reverse collections"),
    Permission.CUSTOMER_CLOSE.value: N_("Close customers"),
    Permission.AUDIT_READ.value: N_("Read the audit log"),
    Permission.LOAN_WRITE_OFF.value: N_("Write loans off"),
}


class DeactivateBody(BaseModel):
    to_agent_id: uuid.UUID | None = None
    reason: str | None = Field(default=None, max_length=500)


class PermissionsForm(BaseModel):
    permissions: list[str] = Field(default_factory=list, max_length=32)


@router.get("")
async def staff_list(request: Request, session: SessionDep, viewer: Reader) -> Response:
    keyset, after = list_keyset(request, queries.STAFF_SORTS, default="name")
    role = param_enum(request, "role", Role)
    filters = {
        "q": param_text(request, "q"),
        "role": role.value if role in STAFF_ROLES else None,
        "branch_id": str(param_uuid(request, "branch_id") or "") or None,
        "active": request.query_params.get("active"),
    }
    page = await queries.staff_page(
        session,
        viewer.principal,
        keyset,
        q=filters["q"],
        role=role if role in STAFF_ROLES else None,
        branch_id=param_uuid(request, "branch_id"),
        active=param_bool(request, "active"),
    )
    if wants_csv(request):
        return table_csv(
            "staff.csv",
            [
                ("name", CT.TEXT),
                ("role", CT.TEXT),
                ("branch", CT.TEXT),
                ("email", CT.TEXT),
                ("phone", CT.TEXT),
                ("active", CT.TEXT),
                ("since", CT.DATE),
            ],
            (
                (
                    u.name,
                    u.role.value,
                    code,
                    u.email,
                    u.phone,
                    "yes" if u.is_active else "no",
                    u.created_at.date(),
                )
                for u, code, _ in page.rows
            ),
        )
    table = table_of(request, COLUMNS, keyset, next_cursor=page.next, after=after, extra=filters)
    branches = await queries.branches_all(session, viewer.principal)
    return render(
        request,
        "office/staff_list.html",
        {
            "rows": page.rows,
            "table": table,
            "filters": filters,
            "csv": csv_url(request),
            "branches": branches,
            "roles": STAFF_ROLES,
        },
    )


async def _new_page(
    request: Request, session: SessionDep, viewer: Viewer, form: Form[Any], status_code: int = 200
) -> Response:
    branches = [b for b in await queries.branches_all(session, viewer.principal) if b.is_active]
    roles = STAFF_ROLES if viewer.role is Role.ADMIN else (Role.AGENT,)
    return render(
        request,
        "office/staff_form.html",
        {"form": form, "branches": branches, "roles": roles},
        status_code=status_code,
    )


@router.get("/new")
async def staff_new(request: Request, session: SessionDep, viewer: Creator) -> Response:
    form: Form[Any] = Form(values={"role": Role.AGENT.value})
    return await _new_page(request, session, viewer, form)


@router.post("/new")
async def staff_create(request: Request, session: SessionDep, viewer: Creator) -> Response:
    extra: dict[str, Any] = {}
    if viewer.role is Role.MANAGER:  # a Manager creates Agents of their own branch only
        extra = {"role": Role.AGENT, "branch_id": viewer.principal.branch_id}
    form = await form_parse(request, StaffBody, **extra)
    form.values.setdefault("branch_id", "")  # errors about it go next to its field
    if form.ok and form.data is not None:
        try:
            user = await service.staff_create(
                session,
                principal=viewer.principal,
                name=form.data.name,
                role=form.data.role,
                branch_id=form.data.branch_id,
                email=form.data.email,
                phone=form.data.phone,
                password=form.data.password,
            )
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return RedirectResponse(f"/office/staff/{user.id}?created=1", status_code=303)
    return await _new_page(request, session, viewer, form, status_code=422)


async def _detail(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    user_id: uuid.UUID,
    *,
    forms: dict[str, Form[Any]] | None = None,
    status_code: int = 200,
) -> Response:
    user = await queries.staff_get(session, viewer.principal, user_id)
    branch = (
        await queries.branch_get(session, viewer.principal, user.branch_id)
        if user.branch_id
        and (viewer.role is Role.ADMIN or user.branch_id == viewer.principal.branch_id)
        else None
    )
    served = await customers_served(session, user.id) if user.role is Role.AGENT else 0
    others: list[User] = []
    if user.role is Role.AGENT and user.branch_id is not None:
        others = [
            a
            for a in await queries.agents_of_branch(session, viewer.principal, user.branch_id)
            if a.id != user.id
        ]
    granted = await _granted(session, user)
    own = user.id == viewer.principal.user_id
    may_change = not own and (viewer.role is Role.ADMIN or user.role is Role.AGENT)
    context = {
        "user": user,
        "branch": branch,
        "served": served,
        "others": others,
        "granted": granted,
        "grantable": sorted(p.value for p in GRANTABLE[user.role]),
        "permission_labels": PERMISSION_LABELS,
        "own": own,
        "may_change": may_change,
        "is_admin": viewer.role is Role.ADMIN,
        "created": request.query_params.get("created") == "1",
        "forms": {
            name: (forms or {}).get(name) or empty_form()
            for name in ("deactivate", "reactivate", "password", "totp", "permissions")
        },
    }
    return render(request, "office/staff.html", context, status_code=status_code)


async def _granted(session: SessionDep, user: User) -> list[str]:
    return list(
        (
            await session.scalars(
                select(UserPermission.permission)
                .where(UserPermission.user_id == user.id)
                .order_by(UserPermission.permission)
            )
        ).all()
    )


@router.get("/{user_id}")
async def staff_page(
    request: Request, user_id: uuid.UUID, session: SessionDep, viewer: Reader
) -> Response:
    return await _detail(request, session, viewer, user_id)


@router.post("/{user_id}/deactivate")
async def staff_deactivate(
    request: Request, user_id: uuid.UUID, session: SessionDep, viewer: Changer
) -> Response:
    await queries.staff_get(session, viewer.principal, user_id)  # 404 out of scope
    form = await form_parse(request, DeactivateBody)
    form.values.setdefault("to_agent_id", "")
    if form.ok and form.data is not None:
        try:
            await assignments.agent_deactivate_reassigning(
                session,
                principal=viewer.principal,
                agent_id=user_id,
                to_agent_id=form.data.to_agent_id,
                reason=form.data.reason,
            )
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return RedirectResponse(f"/office/staff/{user_id}", status_code=303)
    return await _detail(
        request, session, viewer, user_id, forms={"deactivate": form}, status_code=422
    )


@router.post("/{user_id}/reactivate")
async def staff_reactivate(
    request: Request, user_id: uuid.UUID, session: SessionDep, viewer: Changer
) -> Response:
    await queries.staff_get(session, viewer.principal, user_id)
    form: Form[Any] = Form()
    try:
        await service.staff_set_active(
            session, principal=viewer.principal, user_id=user_id, active=True
        )
    except AppError as exc:
        await form.failed(session, exc)
        return await _detail(
            request, session, viewer, user_id, forms={"reactivate": form}, status_code=422
        )
    return RedirectResponse(f"/office/staff/{user_id}", status_code=303)


@router.post("/{user_id}/password")
async def staff_password(
    request: Request, user_id: uuid.UUID, session: SessionDep, viewer: Changer
) -> Response:
    await queries.staff_get(session, viewer.principal, user_id)
    form = await form_parse(request, PasswordResetBody)
    if form.ok and form.data is not None:
        try:
            await service.staff_password_reset(
                session,
                principal=viewer.principal,
                user_id=user_id,
                new_password=form.data.new_password,
            )
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return RedirectResponse(f"/office/staff/{user_id}", status_code=303)
    return await _detail(
        request, session, viewer, user_id, forms={"password": form}, status_code=422
    )


@router.post("/{user_id}/totp-reset")
async def staff_totp_reset(
    request: Request, user_id: uuid.UUID, session: SessionDep, viewer: Changer
) -> Response:
    await queries.staff_get(session, viewer.principal, user_id)
    form: Form[Any] = Form()
    try:
        await service.staff_totp_reset(session, principal=viewer.principal, user_id=user_id)
    except AppError as exc:
        await form.failed(session, exc)
        return await _detail(
            request, session, viewer, user_id, forms={"totp": form}, status_code=422
        )
    return RedirectResponse(f"/office/staff/{user_id}", status_code=303)


@router.post("/{user_id}/permissions")
async def staff_permissions(
    request: Request, user_id: uuid.UUID, session: SessionDep, viewer: Granter
) -> Response:
    await queries.staff_get(session, viewer.principal, user_id)
    posted = await request.form()
    chosen = [str(p) for p in posted.getlist("permissions")]
    form = await form_parse(request, PermissionsForm, permissions=chosen)
    if form.ok and form.data is not None:
        try:
            await service.staff_permissions_set(
                session,
                principal=viewer.principal,
                user_id=user_id,
                permissions=form.data.permissions,
            )
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return RedirectResponse(f"/office/staff/{user_id}", status_code=303)
    return await _detail(
        request, session, viewer, user_id, forms={"permissions": form}, status_code=422
    )
