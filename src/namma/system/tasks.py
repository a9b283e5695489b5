"""Housekeeping tasks of the platform itself."""

from __future__ import annotations

import procrastinate
import structlog

from namma.config import get_settings
from namma.kit.jobs import job_task, jobs_recover_stalled

blueprint = procrastinate.Blueprint()
log = structlog.get_logger(__name__)


@blueprint.periodic(cron="* * * * *", periodic_id="recover-stalled")
@job_task(blueprint, name="recover_stalled", retry=False, pass_context=True)
async def recover_stalled(context: procrastinate.JobContext, timestamp: int) -> int:
    """Every minute: requeue jobs whose worker died mid-run (no heartbeat for a while)."""
    assert context.app is not None
    return await jobs_recover_stalled(
        context.app, seconds_since_heartbeat=get_settings().stalled_worker_seconds
    )
