"""The reports' kept sums, kept on the primary for the read replica (D-222).

A standby never keeps sums (`namma.reports.kept`); it adds to what a primary kept, once it has
replayed past it. When every report and dashboard reads the replica, nothing reads — and so
nothing keeps — on the primary, and each report on the standby would sum the whole ledger. So,
with ``NAMMA_DATABASE_REPLICA_URL`` set, the worker reads on the primary every minute each
branch's and the institution's portfolio balance (the reports' reconciliation) and 12-month
sums (the dashboards' trend): after the first read of the day, each only the entries posted
since the last; a standby then adds at most a minute's entries.
"""

from __future__ import annotations

import procrastinate
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.config import get_settings
from namma.kit.cache import Cache
from namma.kit.clock import today_india
from namma.kit.jobs import job_task
from namma.models import Branch
from namma.reports.base import ReportFilters
from namma.reports.monthly import monthly_sums
from namma.reports.queries.blocks import ledger_portfolio

blueprint = procrastinate.Blueprint()


async def report_sums_keep(session: AsyncSession, cache: Cache) -> int:
    """Read and keep, on ``session``'s primary, the portfolio balance and the 12-month sums of
    every branch and of the institution; how many scopes. Writes nothing to the database."""
    today = today_india()
    scopes = [None, *(await session.scalars(select(Branch.id).order_by(Branch.code))).all()]
    for branch_id in scopes:
        # ledger_portfolio keeps through the transaction's cache (the job's: `job_task`).
        await ledger_portfolio(session, ReportFilters(today, today, branch_id))
        await monthly_sums(session, cache, branch_id=branch_id, today=today)
    return len(scopes)


@blueprint.periodic(cron="* * * * *", periodic_id="reports-keep-sums")
@job_task(blueprint, name="keep_sums", retry=False)
async def keep_sums(timestamp: int, session: AsyncSession, cache: Cache | None) -> int:
    """Every minute, with a read replica: `report_sums_keep`."""
    if cache is None or not get_settings().database_replica_url:
        return 0
    return await report_sums_keep(session, cache)
