"""`/api/calendar`: the working calendars — holidays and non-working weekdays, institution-wide
(Admin) and per branch (Admin, or the branch's Manager). A change hands the loans whose due
dates it may move to the EMI Gen job (`loans:schedules_regenerate`, calendar mode), in the same
transaction; see docs/money.md §3 and D-185 … D-187."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import ConfigDict, Field

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.calendars import service
from namma.calendars.queries import calendar_view
from namma.calendars.schemas import (
    CalendarChanged,
    CalendarOut,
    HolidayCreated,
    HolidayOut,
    Weekday,
    weekday_numbers,
)
from namma.kit.apitypes import RequestModel
from namma.kit.clock import today_india
from namma.kit.deps import SessionDep
from namma.kit.openapi import error_responses

router = APIRouter(prefix="/api/calendar", tags=["calendar"])


class HolidayIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    branch_id: uuid.UUID | None = Field(
        default=None, description="The branch; leave out for a holiday of the whole institution"
    )
    on_date: dt.date = Field(description="Today or later")
    name: str = Field(min_length=1, max_length=120, description="e.g. Ugadi")


class WorkingWeekIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    branch_id: uuid.UUID | None = Field(
        default=None, description="The branch; leave out for the institution's weekdays"
    )
    non_working_weekdays: list[Weekday] | None = Field(
        max_length=6,
        description="The weekdays on which it is closed (at least one weekday works); null for "
        "a branch: follow the institution's",
    )


@router.get("", response_model=CalendarOut, responses=error_responses(404))
async def calendar_get(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CALENDAR_READ, limit="reads"))],
    branch_id: Annotated[uuid.UUID | None, Query()] = None,
    include_past: Annotated[bool, Query(description="Holidays before today too")] = False,
) -> CalendarOut:
    """The institution's calendar, or (``branch_id``) a branch's with the institution's
    holidays; from today on unless ``include_past``."""
    view = await calendar_view(
        session, principal, branch_id=branch_id, since=None if include_past else today_india()
    )
    return CalendarOut.of(view)


@router.post(
    "/holidays",
    status_code=201,
    response_model=HolidayCreated,
    responses={
        201: {"description": "The holiday; its loans are being moved by the EMI Gen job"},
        **error_responses(403, 404, 409),
    },
)
async def holiday_create(
    body: HolidayIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CALENDAR_MANAGE, limit="writes"))],
) -> HolidayCreated:
    """Add a holiday, today or later. Installments not yet paid that fall due on it move by
    their product's rule (the EMI Gen job, with a notice to each customer). 403: a Manager
    for the whole institution; 404: another branch; 409: already a holiday."""
    holiday, loans = await service.holiday_create(
        session,
        principal=principal,
        branch_id=body.branch_id,
        on_date=body.on_date,
        name=body.name,
    )
    return HolidayCreated(**HolidayOut.of(holiday).model_dump(), loans_to_move=loans)


@router.delete(
    "/holidays/{holiday_id}",
    response_model=CalendarChanged,
    responses=error_responses(403, 404, 409),
)
async def holiday_delete(
    holiday_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CALENDAR_MANAGE, limit="writes"))],
) -> CalendarChanged:
    """Remove a holiday that has not passed (409 for a past one); the installments it moved go
    back to their dates by the EMI Gen job."""
    loans = await service.holiday_delete(session, principal=principal, holiday_id=holiday_id)
    return CalendarChanged(loans_to_check=loans)


@router.put(
    "/working-week",
    response_model=CalendarChanged,
    responses=error_responses(403, 404),
)
async def working_week_set(
    body: WorkingWeekIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CALENDAR_MANAGE, limit="writes"))],
) -> CalendarChanged:
    """Set the non-working weekdays of the institution or a branch (null for a branch: follow
    the institution's). Loans with dues ahead are moved to the new calendar by the EMI Gen
    job."""
    loans = await service.working_week_set(
        session,
        principal=principal,
        branch_id=body.branch_id,
        non_working_weekdays=None
        if body.non_working_weekdays is None
        else weekday_numbers(body.non_working_weekdays),
    )
    return CalendarChanged(loans_to_check=loans)
