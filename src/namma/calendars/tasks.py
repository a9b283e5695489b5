"""The calendars' jobs: none of their own. A calendar change hands its loans to the loans'
EMI Gen job (`loans:schedules_regenerate`) in calendar mode; this module defers it, so the
calendars' rules do not import the loans domain (which reads the calendars)."""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from namma.loans.tasks import schedules_regenerate_defer


async def calendar_moves_defer(
    session: AsyncSession, loan_ids: list[uuid.UUID], *, holiday: str | None
) -> int:
    """Enqueue the EMI Gen job in calendar mode for ``loan_ids`` in the session's transaction."""
    return await schedules_regenerate_defer(session, loan_ids, calendar=True, holiday=holiday)
