"""`/api/cob/runs`: the close-of-business runs (``cob:read``: Admin and Managers — runs are
institution-wide, so a Manager sees every run), and queueing a run for a date by hand
(``cob:run``: Admin)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import audit_record
from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.cob.runner import cob_request_check, cob_running_date
from namma.cob.schemas import CobQueuedOut, CobRunList, CobRunOut
from namma.cob.tasks import cob_job_defer
from namma.jobs import job_app
from namma.kit.apitypes import RequestModel
from namma.kit.deps import SessionDep
from namma.kit.openapi import error_responses
from namma.models import CobRun

router = APIRouter(prefix="/api/cob", tags=["close of business"])


class CobRunIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    business_date: dt.date = Field(description="The business date to close (not after today)")
    force: bool = Field(
        default=False,
        description="Run again although completed, or although a later date has completed",
    )


async def cob_runs_read(session: AsyncSession, *, limit: int = 30) -> CobRunList:
    """Close-of-business runs, newest business date first (the API's and the page's)."""
    runs = (
        await session.scalars(select(CobRun).order_by(CobRun.business_date.desc()).limit(limit))
    ).all()
    running = await cob_running_date(session)
    return CobRunList(
        items=[
            CobRunOut.of(
                run,
                running_now=isinstance(running, dt.date) and running == run.business_date,
            )
            for run in runs
        ],
        running=running is not False,
    )


async def cob_queue(
    session: AsyncSession, principal: Principal, *, business_date: dt.date, force: bool
) -> int:
    """Queue the close of business for a date (the API's and the page's): the checks, the job
    in the caller's transaction, the audit entry. Returns the job id."""
    await cob_request_check(session, business_date=business_date, force=force)
    job_id = await cob_job_defer(session, job_app, business_date=business_date, force=force)
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="cob.requested",
        entity_type="cob_run",
        entity_id=business_date.isoformat(),
        after={"force": force, "job_id": job_id},
    )
    return job_id


@router.get("/runs")
async def cob_runs_list(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.COB_READ))],
    limit: Annotated[int, Query(ge=1, le=366)] = 30,
) -> CobRunList:
    """Close-of-business runs, newest business date first."""
    return await cob_runs_read(session, limit=limit)


@router.post("/runs", status_code=202, responses=error_responses(409))
async def cob_run_request(
    body: CobRunIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.COB_RUN, limit="writes"))],
) -> CobQueuedOut:
    """Queue the close of business for a date (a job; see GET for its progress). 409 when one
    is running or queued, when the date has completed, or when a later date has (unless
    ``force``); 422 for a date after today."""
    job_id = await cob_queue(session, principal, business_date=body.business_date, force=body.force)
    return CobQueuedOut(
        business_date=body.business_date, force=body.force, job_id=job_id, status="queued"
    )
