"""Reads of the working calendars, and the money core's `WorkingCalendar` of a branch."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from sqlalchemy import Date, SmallInteger, Uuid, literal, or_, select, union_all
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import ColumnElement

from namma.auth.deps import Principal
from namma.finance import WorkingCalendar
from namma.kit.errors import NotFoundError
from namma.models import Branch, Holiday, Role, WorkingWeek


async def branch_calendar(
    session: AsyncSession, branch_id: uuid.UUID, *, since: dt.date
) -> WorkingCalendar:
    """The calendar a branch's loans use from ``since`` on: every institution-wide holiday and
    the branch's own, and the branch's non-working weekdays if it has set them, else the
    institution's (D-185). One statement."""
    return await _calendar(session, branch_id, since=since)


async def institution_calendar(session: AsyncSession, *, since: dt.date) -> WorkingCalendar:
    """The institution-wide calendar from ``since`` on: its holidays and non-working weekdays,
    without any branch's own (what a schedule shown for no branch in particular uses: the
    product page's preview, D-209). One statement."""
    return await _calendar(session, None, since=since)


async def _calendar(
    session: AsyncSession, branch_id: uuid.UUID | None, *, since: dt.date
) -> WorkingCalendar:
    own_holiday: ColumnElement[bool] = Holiday.branch_id.is_(None)
    own_week: ColumnElement[bool] = WorkingWeek.branch_id.is_(None)
    if branch_id is not None:
        own_holiday = or_(own_holiday, Holiday.branch_id == branch_id)
        own_week = or_(own_week, WorkingWeek.branch_id == branch_id)
    holidays = select(
        literal("h").label("kind"),
        Holiday.on_date.label("on_date"),
        literal(None, Uuid).label("branch_id"),
        literal(None, ARRAY(SmallInteger)).label("weekdays"),
    ).where(own_holiday, Holiday.on_date >= since)
    weeks = select(
        literal("w"),
        literal(None, Date),
        WorkingWeek.branch_id,
        WorkingWeek.non_working_weekdays,
    ).where(own_week)
    rows = (await session.execute(union_all(holidays, weeks))).all()
    weekdays = {row.branch_id: row.weekdays for row in rows if row.kind == "w"}
    return WorkingCalendar.of(
        holidays=[row.on_date for row in rows if row.kind == "h"],
        non_working_weekdays=weekdays.get(branch_id, weekdays.get(None, [])),
    )


@dataclass(frozen=True)
class CalendarView:
    """One calendar as stored: the institution's (``branch`` None) or a branch's."""

    branch: Branch | None
    holidays: list[Holiday]  # its own, by date
    non_working_weekdays: list[int] | None  # None: a branch that follows the institution's
    institution_holidays: list[Holiday]  # for a branch: the institution's too
    institution_weekdays: list[int]

    @property
    def effective_weekdays(self) -> list[int]:
        if self.non_working_weekdays is None:
            return self.institution_weekdays
        return self.non_working_weekdays


def _visible(principal: Principal, branch_id: uuid.UUID) -> bool:
    return principal.role is Role.ADMIN or principal.branch_id == branch_id


async def calendar_view(
    session: AsyncSession,
    principal: Principal,
    *,
    branch_id: uuid.UUID | None,
    since: dt.date | None = None,
) -> CalendarView:
    """The institution's calendar (``branch_id`` None; every member of staff may read it) or a
    branch's (in scope: 404 otherwise), with holidays from ``since`` on (all if None)."""
    branch: Branch | None = None
    if branch_id is not None:
        branch = await session.get(Branch, branch_id)
        if branch is None or not _visible(principal, branch_id):
            raise NotFoundError("Branch not found")
    query = select(Holiday).order_by(Holiday.on_date)
    if since is not None:
        query = query.where(Holiday.on_date >= since)
    holidays = (
        await session.scalars(
            query.where(or_(Holiday.branch_id.is_(None), Holiday.branch_id == branch_id))
        )
    ).all()
    weeks = {
        row.branch_id: list(row.non_working_weekdays)
        for row in (
            await session.execute(
                select(WorkingWeek.branch_id, WorkingWeek.non_working_weekdays).where(
                    or_(WorkingWeek.branch_id.is_(None), WorkingWeek.branch_id == branch_id)
                )
            )
        ).all()
    }
    institution_weekdays = sorted(weeks.get(None, []))
    own = weeks.get(branch_id) if branch_id is not None else institution_weekdays
    return CalendarView(
        branch=branch,
        holidays=[h for h in holidays if h.branch_id == branch_id],
        non_working_weekdays=sorted(own) if own is not None else None,
        institution_holidays=[h for h in holidays if h.branch_id is None] if branch else [],
        institution_weekdays=institution_weekdays,
    )
