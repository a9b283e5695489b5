"""``/office/customers`` (Admin: every customer; Manager: the branch's): the list with search
and filters, a customer's page (KYC, agent and the history of assignments, loans) and moving
customers to another agent — one from their page, or many at once from the list (one
transaction: all move or none)."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select

from namma.auth.permissions import Permission
from namma.customers import assignments, queries
from namma.customers.endpoints import AssignBody
from namma.kit.deps import CacheDep, ReadSessionDep, SessionDep
from namma.kit.errors import AppError
from namma.loans.cache import customer_and_loans_changed
from namma.models import CustomerStatus, KycStatus, User
from namma.reports.base import ColumnType as CT
from namma.users.queries import agents_in_scope, agents_of_branch
from namma.web.forms import Form, empty_form, form_parse
from namma.web.i18n import N_
from namma.web.office import (
    OFFICE,
    list_keyset,
    param_enum,
    param_text,
    param_uuid,
    wants_csv,
)
from namma.web.tables import Column, table_csv, table_of
from namma.web.templating import render
from namma.web.viewer import Viewer, viewer_of

router = APIRouter(prefix="/office/customers", include_in_schema=False)
LIST = "/office/customers"

Reader = Annotated[Viewer, Depends(viewer_of(Permission.CUSTOMER_READ, roles=OFFICE))]
Assigner = Annotated[
    Viewer, Depends(viewer_of(Permission.CUSTOMER_ASSIGN, roles=OFFICE, limit="writes"))
]

COLUMNS = (
    Column("pick", N_("Choose"), sortable=False),
    Column("name", N_("Name")),
    Column("phone", N_("Mobile number"), sortable=False, phone=False),
    Column("village", N_("Village"), phone=False),
    Column("agent", N_("Agent"), sortable=False),
    Column("kyc", N_("KYC"), sortable=False, phone=False),
    Column("status", N_("Status"), sortable=False, phone=False),
    Column("onboarded", N_("Onboarded"), phone=False),
)


class BulkReassignBody(BaseModel):
    customer_ids: list[uuid.UUID] = Field(default_factory=list, max_length=1000)
    agent_id: uuid.UUID
    reason: str | None = Field(default=None, max_length=500)


async def _list_page(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    *,
    form: Form[Any] | None = None,
    status_code: int = 200,
) -> Response:
    keyset, after = list_keyset(request, queries.CUSTOMER_SORTS, default="name")
    kyc = param_enum(request, "kyc_status", KycStatus)
    status = param_enum(request, "status", CustomerStatus)
    agent_id = param_uuid(request, "agent_id")
    filters = {
        "q": param_text(request, "q"),
        "kyc_status": kyc.value if kyc else None,
        "status": status.value if status else None,
        "agent_id": str(agent_id) if agent_id else None,
    }
    page = await queries.customers_page(
        session,
        viewer.principal,
        keyset,
        q=filters["q"],
        kyc_status=kyc,
        status=status,
        agent_id=agent_id,
    )
    if wants_csv(request):
        return table_csv(
            "customers.csv",
            [
                ("name", CT.TEXT),
                ("phone", CT.TEXT),
                ("village", CT.TEXT),
                ("agent", CT.TEXT),
                ("kyc_status", CT.TEXT),
                ("status", CT.TEXT),
                ("onboarded_on", CT.DATE),
            ],
            (
                (
                    c.name,
                    c.phone,
                    c.village,
                    agent_name,
                    c.kyc_status.value,
                    c.status.value,
                    c.created_at.date(),
                )
                for c, _, agent_name, _sort in page.rows
            ),
        )
    table = table_of(request, COLUMNS, keyset, next_cursor=page.next, after=after, extra=filters)
    # After a refused bulk move (a POST elsewhere) the links still point at the list.
    table = dataclasses.replace(table, path=LIST)
    agents = await agents_in_scope(session, viewer.principal)
    return render(
        request,
        "office/customers.html",
        {
            "rows": page.rows,
            "table": table,
            "filters": filters,
            "csv": _csv_link(request, filters),
            "agents": agents,
            "form": form or empty_form(),
            "chosen": set(form.values.get("_chosen", "").split()) if form else set(),
            "moved": request.query_params.get("moved"),
            "back": _back(request),
        },
        status_code=status_code,
    )


def filters_set(filters: dict[str, str | None]) -> dict[str, str]:
    return {k: v for k, v in filters.items() if v}


def _csv_link(request: Request, filters: dict[str, str | None]) -> str:
    """The list's CSV with its filters and sort (whatever address this page answers)."""
    sort = {k: v for k, v in request.query_params.items() if k in ("sort", "dir")}
    return f"{LIST}?{urlencode({**filters_set(filters), **sort, 'format': 'csv'})}"


def _back(request: Request) -> str:
    """This list as it is filtered and sorted (where a bulk move comes back to)."""
    params = {k: v for k, v in request.query_params.items() if k not in ("moved", "after")}
    return f"/office/customers?{urlencode(params)}" if params else "/office/customers"


@router.get("")
async def customers(request: Request, session: ReadSessionDep, viewer: Reader) -> Response:
    return await _list_page(request, session, viewer)


@router.post("/reassign")
async def customers_reassign(
    request: Request, session: SessionDep, cache: CacheDep, viewer: Assigner
) -> Response:
    """Many customers to one agent at once (checkboxes on the list)."""
    posted = await request.form()
    ids: list[str] = [str(v) for v in posted.getlist("customer_ids")]
    form = await form_parse(request, BulkReassignBody, customer_ids=ids)
    form.values["_chosen"] = " ".join(ids)
    if form.ok and form.data is not None:
        try:
            moved = await assignments.assignments_set_many(
                session,
                principal=viewer.principal,
                customer_ids=form.data.customer_ids,
                agent_id=form.data.agent_id,
                reason=form.data.reason,
            )
            for moved_id in moved:
                await customer_and_loans_changed(session, cache, moved_id)
        except AppError as exc:
            await form.failed(session, exc)
        else:
            back = posted.get("back")
            target = (
                back
                if isinstance(back, str) and back.startswith("/office/customers")
                else ("/office/customers")
            )
            sep = "&" if "?" in target else "?"
            return RedirectResponse(f"{target}{sep}moved={len(moved)}", status_code=303)
    if "customer_ids" in form.errors:
        form.errors.setdefault("agent_id", form.errors.pop("customer_ids"))
    return await _list_page(request, session, viewer, form=form, status_code=422)


async def _detail(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    customer_id: uuid.UUID,
    *,
    form: Form[Any] | None = None,
    status_code: int = 200,
) -> Response:
    detail = await queries.customer_detail(
        session, principal=viewer.principal, customer_id=customer_id
    )
    history = await assignments.assignment_history(
        session, principal=viewer.principal, customer_id=customer_id
    )
    agents = await agents_of_branch(session, viewer.principal, detail.customer.branch_id)
    names = {a.id: a.name for a in agents}
    names.update(await _agent_names(session, [h.agent_id for h in history]))
    return render(
        request,
        "office/customer.html",
        {
            "d": detail,
            "c": detail.customer,
            "history": history,
            "names": names,
            "agents": [a for a in agents if a.id != detail.agent_id],
            "form": form or empty_form(),
        },
        status_code=status_code,
    )


async def _agent_names(session: SessionDep, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    if not ids:
        return {}
    rows = await session.execute(select(User.id, User.name).where(User.id.in_(set(ids))))
    return {user_id: name for user_id, name in rows}


@router.get("/{customer_id}")
async def customer(
    request: Request, customer_id: uuid.UUID, session: SessionDep, viewer: Reader
) -> Response:
    return await _detail(request, session, viewer, customer_id)


@router.post("/{customer_id}/agent")
async def customer_agent(
    request: Request,
    customer_id: uuid.UUID,
    session: SessionDep,
    cache: CacheDep,
    viewer: Assigner,
) -> Response:
    await queries.customer_detail(session, principal=viewer.principal, customer_id=customer_id)
    form = await form_parse(request, AssignBody)
    if form.ok and form.data is not None:
        try:
            await assignments.assignment_set(
                session,
                principal=viewer.principal,
                customer_id=customer_id,
                agent_id=form.data.agent_id,
                reason=form.data.reason,
            )
            await customer_and_loans_changed(session, cache, customer_id)
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return RedirectResponse(f"/office/customers/{customer_id}", status_code=303)
    return await _detail(request, session, viewer, customer_id, form=form, status_code=422)
