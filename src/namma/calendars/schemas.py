"""What `/api/calendar` answers."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Literal

from pydantic import Field

from namma.calendars.queries import CalendarView
from namma.finance import WEEKDAYS
from namma.kit.schemas import ApiModel
from namma.models import Holiday

Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def weekday_names(days: list[int]) -> list[Weekday]:
    return [WEEKDAYS[d] for d in sorted(days)]  # type: ignore[misc]


def weekday_numbers(names: list[Weekday]) -> list[int]:
    return sorted({WEEKDAYS.index(n) for n in names})


class HolidayOut(ApiModel):
    id: uuid.UUID
    branch_id: uuid.UUID | None = Field(description="null: the whole institution's holiday")
    on_date: dt.date
    name: str

    @classmethod
    def of(cls, holiday: Holiday) -> HolidayOut:
        return cls(
            id=holiday.id, branch_id=holiday.branch_id, on_date=holiday.on_date, name=holiday.name
        )


class HolidayCreated(HolidayOut):
    loans_to_move: int = Field(
        description="Active loans with an installment due that day, handed to the EMI Gen job"
    )


class CalendarChanged(ApiModel):
    loans_to_check: int = Field(
        description="Active loans with dues ahead, handed to the EMI Gen job to be moved to "
        "the calendar as it now is"
    )


class CalendarOut(ApiModel):
    """The institution's calendar (``branch_id`` null) or a branch's."""

    branch_id: uuid.UUID | None
    branch_code: str | None
    non_working_weekdays: list[Weekday] = Field(
        description="The weekdays its loans do not fall due on (the branch's own, or the "
        "institution's it follows)"
    )
    own_weekdays: bool = Field(
        description="Whether a branch has set its own weekdays (false: it follows the "
        "institution's); always true for the institution"
    )
    holidays: list[HolidayOut] = Field(
        description="Its holidays and, for a branch, the institution's, by date"
    )

    @classmethod
    def of(cls, view: CalendarView) -> CalendarOut:
        holidays = sorted(
            [*view.holidays, *view.institution_holidays], key=lambda h: (h.on_date, h.name)
        )
        return cls(
            branch_id=view.branch.id if view.branch else None,
            branch_code=view.branch.code if view.branch else None,
            non_working_weekdays=weekday_names(view.effective_weekdays),
            own_weekdays=view.branch is None or view.non_working_weekdays is not None,
            holidays=[HolidayOut.of(h) for h in holidays],
        )
