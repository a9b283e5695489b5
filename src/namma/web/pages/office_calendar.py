"""``/office/calendar`` (Admin, Manager): the working calendar — the institution's (Admin) or a
branch's (the Admin, or the branch's Manager): its non-working weekdays and its holidays, with
adding and removing a holiday and setting the weekdays. The commands are the API's
(``calendars.service``); what they hand to the EMI Gen job is said on the page after the change
(``?moved=N``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field

from namma.auth.permissions import Permission
from namma.calendars import service
from namma.calendars.queries import calendar_view
from namma.finance import WEEKDAYS
from namma.kit.clock import today_india
from namma.kit.deps import SessionDep
from namma.kit.errors import AppError
from namma.models import Role
from namma.users.queries import branches_all
from namma.web.forms import FORM_ERROR, Form, empty_form, form_parse, message_translate
from namma.web.i18n import N_
from namma.web.office import OFFICE
from namma.web.templating import render
from namma.web.viewer import Viewer, viewer_of

router = APIRouter(prefix="/office/calendar", include_in_schema=False)

Reader = Annotated[Viewer, Depends(viewer_of(Permission.CALENDAR_READ, roles=OFFICE))]
Changer = Annotated[
    Viewer, Depends(viewer_of(Permission.CALENDAR_MANAGE, roles=OFFICE, limit="writes"))
]

WEEKDAY_LABELS = {
    "monday": N_("Monday"),
    "tuesday": N_("Tuesday"),
    "wednesday": N_("Wednesday"),
    "thursday": N_("Thursday"),
    "friday": N_("Friday"),
    "saturday": N_("Saturday"),
    "sunday": N_("Sunday"),
}
# The calendar services' messages, marked for the catalogue (``message_translate``).
SERVICE_MESSAGES = (
    N_("A holiday must be today or later"),
    N_("Give the holiday a name"),
    N_("That day is already a holiday"),
    N_("A holiday that has passed stays on record"),
    N_("Holiday not found"),
    N_("At least one weekday must be a working day"),
    N_("Only head office (an Admin) changes the institution's calendar"),
)


class HolidayForm(BaseModel):
    on_date: dt.date
    name: str = Field(min_length=1, max_length=120)


def _branch_param(request: Request, viewer: Viewer, value: str | None = None) -> uuid.UUID | None:
    """The calendar asked for: a Manager's is their branch's; an Admin's is the branch in the
    address (or the form), else the institution's."""
    if viewer.principal.role is Role.MANAGER:
        return viewer.principal.branch_id
    text = request.query_params.get("branch_id", "") if value is None else value
    try:
        return uuid.UUID(text) if text else None
    except ValueError:
        return None


def _back(branch_id: uuid.UUID | None, **params: object) -> str:
    query = [f"branch_id={branch_id}"] if branch_id else []
    query += [f"{k}={v}" for k, v in params.items()]
    return "/office/calendar" + ("?" + "&".join(query) if query else "")


async def _page(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    branch_id: uuid.UUID | None,
    *,
    form: Form[Any] | None = None,
    week_error: str | None = None,
    status_code: int = 200,
) -> Response:
    view = await calendar_view(session, viewer.principal, branch_id=branch_id, since=today_india())
    admin = viewer.principal.role is Role.ADMIN
    moved = request.query_params.get("moved")
    return render(
        request,
        "office/calendar.html",
        {
            "view": view,
            "branch_id": branch_id,
            "branches": await branches_all(session, viewer.principal) if admin else [],
            "admin": admin,
            "can_manage": viewer.principal.can(Permission.CALENDAR_MANAGE),
            "weekdays": [(name, WEEKDAY_LABELS[name]) for name in WEEKDAYS],
            "closed": {WEEKDAYS[d] for d in view.effective_weekdays},
            "form": form or empty_form(),
            "week_error": week_error,
            "moved": int(moved) if moved and moved.isdigit() else None,
            "today": today_india(),
        },
        status_code=status_code,
    )


@router.get("")
async def calendar(request: Request, session: SessionDep, viewer: Reader) -> Response:
    return await _page(request, session, viewer, _branch_param(request, viewer))


@router.post("/holidays")
async def holiday_add(request: Request, session: SessionDep, viewer: Changer) -> Response:
    posted = await request.form()
    branch_id = _branch_param(request, viewer, str(posted.get("branch_id") or ""))
    form = await form_parse(request, HolidayForm)
    if form.ok and form.data is not None:
        try:
            _, moved = await service.holiday_create(
                session,
                principal=viewer.principal,
                branch_id=branch_id,
                on_date=form.data.on_date,
                name=form.data.name,
            )
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return RedirectResponse(_back(branch_id, moved=moved), status_code=303)
    return await _page(request, session, viewer, branch_id, form=form, status_code=422)


@router.post("/holidays/{holiday_id}/delete")
async def holiday_remove(
    request: Request, holiday_id: uuid.UUID, session: SessionDep, viewer: Changer
) -> Response:
    posted = await request.form()
    branch_id = _branch_param(request, viewer, str(posted.get("branch_id") or ""))
    try:
        moved = await service.holiday_delete(
            session, principal=viewer.principal, holiday_id=holiday_id
        )
    except AppError as exc:
        await session.rollback()
        form: Form[Any] = empty_form()
        form.add_error(FORM_ERROR, message_translate(exc.message))
        return await _page(
            request, session, viewer, branch_id, form=form, status_code=exc.status_code
        )
    return RedirectResponse(_back(branch_id, moved=moved), status_code=303)


@router.post("/weekdays")
async def weekdays_set(request: Request, session: SessionDep, viewer: Changer) -> Response:
    posted = await request.form()
    branch_id = _branch_param(request, viewer, str(posted.get("branch_id") or ""))
    follow = branch_id is not None and posted.get("follow") == "yes"
    days = [WEEKDAYS.index(d) for d in posted.getlist("weekday") if d in WEEKDAYS]
    try:
        moved = await service.working_week_set(
            session,
            principal=viewer.principal,
            branch_id=branch_id,
            non_working_weekdays=None if follow else days,
        )
    except AppError as exc:
        await session.rollback()
        return await _page(
            request,
            session,
            viewer,
            branch_id,
            week_error=message_translate(exc.message),
            status_code=exc.status_code,
        )
    return RedirectResponse(_back(branch_id, moved=moved), status_code=303)
