"""``/office/branches`` (Admin): the branches, a branch's page, creating and editing one. The
commands are the API's (``users.service.branch_create`` / ``branch_update``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from namma.auth.permissions import Permission
from namma.kit.deps import SessionDep
from namma.kit.errors import AppError
from namma.reports.base import ColumnType as CT
from namma.users import queries, service
from namma.users.endpoints import BranchBody
from namma.web.forms import Form, empty_form, form_parse
from namma.web.i18n import N_
from namma.web.office import ADMIN, csv_url, list_keyset, param_bool, param_text, wants_csv
from namma.web.tables import Column, table_csv, table_of
from namma.web.templating import render
from namma.web.viewer import Viewer, viewer_of

router = APIRouter(prefix="/office/branches", include_in_schema=False)

Reader = Annotated[Viewer, Depends(viewer_of(Permission.BRANCH_READ, roles=ADMIN))]
Manager = Annotated[
    Viewer, Depends(viewer_of(Permission.BRANCH_MANAGE, roles=ADMIN, limit="writes"))
]

COLUMNS = (
    Column("code", N_("Code")),
    Column("name", N_("Name")),
    Column("head_office", N_("Head office"), sortable=False, phone=False),
    Column("staff", N_("Active staff"), numeric=True, sortable=False, phone=False),
    Column("status", N_("Status"), sortable=False),
    Column("created", N_("Opened"), phone=False),
)


class BranchEditBody(BaseModel):
    name: str = Field(min_length=1, max_length=120)
    is_head_office: bool = False
    is_active: bool = False


@router.get("")
async def branches(request: Request, session: SessionDep, viewer: Reader) -> Response:
    keyset, after = list_keyset(request, queries.BRANCH_SORTS, default="code")
    filters = {"q": param_text(request, "q"), "active": request.query_params.get("active")}
    page = await queries.branches_page(
        session,
        viewer.principal,
        keyset,
        q=filters["q"],
        active=param_bool(request, "active"),
    )
    if wants_csv(request):
        return table_csv(
            "branches.csv",
            [
                ("code", CT.TEXT),
                ("name", CT.TEXT),
                ("head_office", CT.TEXT),
                ("active_staff", CT.INT),
                ("active", CT.TEXT),
                ("opened_on", CT.DATE),
            ],
            (
                (
                    b.code,
                    b.name,
                    "yes" if b.is_head_office else "no",
                    count,
                    "yes" if b.is_active else "no",
                    b.created_at.date(),
                )
                for b, count, _ in page.rows
            ),
        )
    table = table_of(request, COLUMNS, keyset, next_cursor=page.next, after=after, extra=filters)
    return render(
        request,
        "office/branches.html",
        {"rows": page.rows, "table": table, "filters": filters, "csv": csv_url(request)},
    )


@router.get("/new")
async def branch_new(request: Request, viewer: Manager) -> Response:
    return render(request, "office/branch_form.html", {"form": empty_form(), "branch": None})


@router.post("/new")
async def branch_create(request: Request, session: SessionDep, viewer: Manager) -> Response:
    form = await form_parse(request, BranchBody)
    if form.ok and form.data is not None:
        try:
            branch = await service.branch_create(
                session,
                code=form.data.code,
                name=form.data.name,
                is_head_office=form.data.is_head_office,
                actor=viewer.principal.audit_actor,
            )
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return RedirectResponse(f"/office/branches/{branch.id}", status_code=303)
    return render(
        request, "office/branch_form.html", {"form": form, "branch": None}, status_code=422
    )


@router.get("/{branch_id}")
async def branch(
    request: Request, branch_id: uuid.UUID, session: SessionDep, viewer: Reader
) -> Response:
    found = await queries.branch_get(session, viewer.principal, branch_id)
    return render(request, "office/branch.html", {"branch": found})


@router.get("/{branch_id}/edit")
async def branch_edit(
    request: Request, branch_id: uuid.UUID, session: SessionDep, viewer: Manager
) -> Response:
    found = await queries.branch_get(session, viewer.principal, branch_id)
    form: Form[Any] = Form(
        values={
            "name": found.name,
            "is_head_office": "yes" if found.is_head_office else "",
            "is_active": "yes" if found.is_active else "",
        }
    )
    return render(request, "office/branch_form.html", {"form": form, "branch": found})


@router.post("/{branch_id}/edit")
async def branch_update(
    request: Request, branch_id: uuid.UUID, session: SessionDep, viewer: Manager
) -> Response:
    found = await queries.branch_get(session, viewer.principal, branch_id)
    form = await form_parse(request, BranchEditBody)
    for box in ("is_head_office", "is_active"):  # an unticked box is not posted
        form.values.setdefault(box, "")
    if form.ok and form.data is not None:
        try:
            await service.branch_update(
                session,
                actor=viewer.principal.audit_actor,
                branch_id=found.id,
                name=form.data.name,
                is_head_office=form.data.is_head_office,
                is_active=form.data.is_active,
            )
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return RedirectResponse(f"/office/branches/{found.id}", status_code=303)
    found = await queries.branch_get(session, viewer.principal, branch_id)
    return render(
        request, "office/branch_form.html", {"form": form, "branch": found}, status_code=422
    )
