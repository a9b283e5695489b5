"""What `/api/cob/runs` answers."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import Field

from namma.cob.service import STEPS
from namma.kit.schemas import ApiModel, Timestamp
from namma.models import CobRun, CobRunStatus


class CobStepOut(ApiModel):
    number: int
    name: str
    done: bool


class CobRunOut(ApiModel):
    business_date: dt.date
    status: CobRunStatus
    running_now: bool = Field(
        description="A worker is running it now. A `running` run whose process died shows "
        "false; the next run resumes it."
    )
    steps_done: int
    steps: list[CobStepOut]
    started_at: Timestamp | None
    finished_at: Timestamp | None
    attempts: int
    counts: dict[str, Any] = Field(description="What each step did, by name")
    error: str | None

    @classmethod
    def of(cls, run: CobRun, *, running_now: bool) -> CobRunOut:
        return cls(
            business_date=run.business_date,
            status=run.status,
            running_now=running_now,
            steps_done=run.steps_done,
            steps=[
                CobStepOut(number=n, name=name, done=n <= run.steps_done)
                for n, name in enumerate(STEPS, start=1)
            ],
            started_at=run.started_at,
            finished_at=run.finished_at,
            attempts=run.attempts,
            counts=run.counts,
            error=run.error,
        )


class CobRunList(ApiModel):
    items: list[CobRunOut] = Field(description="Newest business date first")
    running: bool = Field(description="A run is going on (or queued) now")


class CobQueuedOut(ApiModel):
    business_date: dt.date
    force: bool
    job_id: int
    status: Literal["queued"]
