"""Commands on the working calendars: add or remove a holiday, set the non-working weekdays.

Who: the institution's calendar is the Admin's; a branch's is the Admin's or the branch's
Manager's (another branch answers 404, as everywhere). Every change is audited, and the loans
whose due dates it may move are handed, in the same transaction, to the EMI Gen job
(`loans:schedules_regenerate` in calendar mode) in batches: the job moves their unpaid
installments and sends the notices (D-187). Services never commit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import audit_record
from namma.auth.deps import Principal
from namma.calendars.tasks import calendar_moves_defer
from namma.finance import WEEKDAYS
from namma.kit.clock import today_india
from namma.kit.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from namma.models import Branch, Holiday, Role, WorkingWeek

# Loans per regeneration job: one job's transaction locks this many loans.
BATCH = 200
NAME_MAX = 120


async def _scope_check(
    session: AsyncSession, principal: Principal, branch_id: uuid.UUID | None
) -> None:
    """The institution's calendar: Admin only (403). A branch's: the Admin, or the Manager of
    that branch; another branch, or none such, is 404."""
    if branch_id is None:
        if principal.role is not Role.ADMIN:
            raise PermissionDeniedError(
                "Only head office (an Admin) changes the institution's calendar"
            )
        return
    branch = await session.get(Branch, branch_id)
    if branch is None or (principal.role is not Role.ADMIN and principal.branch_id != branch_id):
        raise NotFoundError("Branch not found")
    if principal.role not in (Role.ADMIN, Role.MANAGER):
        raise PermissionDeniedError("Only an Admin or the branch's Manager changes its calendar")


def _name_checked(name: str) -> str:
    cleaned = " ".join(name.split())
    if not cleaned:
        raise InvalidInputError("name", "Give the holiday a name")
    if len(cleaned) > NAME_MAX:
        raise InvalidInputError("name", f"At most {NAME_MAX} characters")
    return cleaned


async def _loans_affected(
    session: AsyncSession, *, branch_id: uuid.UUID | None, on: dt.date | None
) -> list[uuid.UUID]:
    """Active loans (of the branch, or all) with an installment not paid that falls due on
    ``on`` — or, when ``on`` is None, on any day from today on (ordered by id)."""
    await session.flush()
    rows = await session.execute(
        text(
            "SELECT DISTINCT l.id FROM loans l JOIN loan_installments i ON i.loan_id = l.id "
            "WHERE l.status = 'active' AND i.status <> 'paid' "
            "AND (CAST(:branch AS uuid) IS NULL OR l.branch_id = CAST(:branch AS uuid)) "
            "AND (CASE WHEN CAST(:on AS date) IS NULL THEN i.due_date >= :today "
            "ELSE i.due_date = CAST(:on AS date) END) ORDER BY l.id"
        ),
        {"branch": branch_id, "on": on, "today": today_india()},
    )
    return [row[0] for row in rows]


async def _moves_defer(
    session: AsyncSession, loan_ids: Sequence[uuid.UUID], *, holiday: str | None
) -> int:
    """Hand ``loan_ids`` to the EMI Gen job in calendar mode, ``BATCH`` loans a job; the
    number of jobs."""
    jobs = 0
    for start in range(0, len(loan_ids), BATCH):
        await calendar_moves_defer(session, list(loan_ids[start : start + BATCH]), holiday=holiday)
        jobs += 1
    return jobs


async def holiday_create(
    session: AsyncSession,
    *,
    principal: Principal,
    branch_id: uuid.UUID | None,
    on_date: dt.date,
    name: str,
) -> tuple[Holiday, int]:
    """Add a holiday (institution-wide when ``branch_id`` is None) from today on; the loans
    with an installment due that day are moved by the job. Returns the holiday and how many
    loans were handed to the job."""
    await _scope_check(session, principal, branch_id)
    cleaned = _name_checked(name)
    if on_date < today_india():
        raise InvalidInputError("on_date", "A holiday must be today or later")
    existing = await session.scalar(
        select(Holiday)
        .where(Holiday.on_date == on_date)
        .where(Holiday.branch_id.is_(None) if branch_id is None else Holiday.branch_id == branch_id)
    )
    if existing is not None:
        raise ConflictError(
            "That day is already a holiday",
            details={"holiday_id": str(existing.id), "name": existing.name},
        )
    holiday = Holiday(
        branch_id=branch_id, on_date=on_date, name=cleaned, created_by_id=principal.user_id
    )
    session.add(holiday)
    await session.flush()
    loans = await _loans_affected(session, branch_id=branch_id, on=on_date)
    await _moves_defer(session, loans, holiday=cleaned)
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="calendar.holiday_created",
        entity_type="holiday",
        entity_id=str(holiday.id),
        after={
            "branch_id": branch_id,
            "on_date": on_date,
            "name": cleaned,
            "loans_to_move": len(loans),
        },
    )
    return holiday, len(loans)


async def holiday_delete(
    session: AsyncSession, *, principal: Principal, holiday_id: uuid.UUID
) -> int:
    """Remove a holiday that has not passed; the loans it had moved go back (by the job).
    Returns how many loans were handed to the job."""
    holiday = await session.scalar(
        select(Holiday).where(Holiday.id == holiday_id).with_for_update()
    )
    if holiday is None:
        raise NotFoundError("Holiday not found")
    try:
        await _scope_check(session, principal, holiday.branch_id)
    except NotFoundError:
        raise NotFoundError("Holiday not found") from None
    if holiday.on_date < today_india():
        raise ConflictError("A holiday that has passed stays on record")
    before = {"branch_id": holiday.branch_id, "on_date": holiday.on_date, "name": holiday.name}
    await session.delete(holiday)
    await session.flush()
    # Which installments it moved is not kept: every loan with dues ahead is checked (the
    # job leaves a loan already on its calendar alone).
    loans = await _loans_affected(session, branch_id=before["branch_id"], on=None)  # type: ignore[arg-type]
    await _moves_defer(session, loans, holiday=None)
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="calendar.holiday_deleted",
        entity_type="holiday",
        entity_id=str(holiday_id),
        before=before,
        after={"loans_to_check": len(loans)},
    )
    return len(loans)


async def working_week_set(
    session: AsyncSession,
    *,
    principal: Principal,
    branch_id: uuid.UUID | None,
    non_working_weekdays: Sequence[int] | None,
) -> int:
    """Set the weekdays (0 = Monday … 6 = Sunday) on which the institution (``branch_id``
    None) or a branch is closed; for a branch, None follows the institution's again. Every
    loan with dues ahead is checked by the job. Returns how many loans were handed to it."""
    await _scope_check(session, principal, branch_id)
    wanted: list[int] | None = None
    if non_working_weekdays is not None:
        wanted = sorted(set(non_working_weekdays))
        if any(not 0 <= d <= 6 for d in wanted):
            raise InvalidInputError("non_working_weekdays", "Weekdays are 0 (Monday) to 6 (Sunday)")
        if len(wanted) == 7:
            raise InvalidInputError(
                "non_working_weekdays", "At least one weekday must be a working day"
            )
    elif branch_id is None:
        wanted = []
    row = await session.scalar(
        select(WorkingWeek)
        .where(
            WorkingWeek.branch_id.is_(None)
            if branch_id is None
            else WorkingWeek.branch_id == branch_id
        )
        .with_for_update()
    )
    before = None if row is None else sorted(row.non_working_weekdays)
    if before == wanted:
        return 0
    if wanted is None:
        assert row is not None
        await session.delete(row)
    elif row is None:
        session.add(WorkingWeek(branch_id=branch_id, non_working_weekdays=wanted))
    else:
        row.non_working_weekdays = wanted
    await session.flush()
    loans = await _loans_affected(session, branch_id=branch_id, on=None)
    await _moves_defer(session, loans, holiday=None)

    def names(days: list[int] | None) -> list[str] | None:
        return None if days is None else [WEEKDAYS[d] for d in days]

    await audit_record(
        session,
        actor=principal.audit_actor,
        action="calendar.weekdays_set",
        entity_type="working_week",
        entity_id=str(branch_id) if branch_id else "institution",
        before={"non_working_weekdays": names(before)},
        after={"non_working_weekdays": names(wanted), "loans_to_check": len(loans)},
    )
    return len(loans)
