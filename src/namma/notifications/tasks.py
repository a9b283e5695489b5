"""Notification jobs: deliver one message (with the platform's retries), and the daily run
of repayment reminders and overdue notices."""

from __future__ import annotations

import datetime as dt
import uuid

import procrastinate
import structlog

from namma.kit.clock import INDIA
from namma.kit.db import transaction
from namma.kit.jobs import PermanentJobError, job_task

blueprint = procrastinate.Blueprint()
log = structlog.get_logger(__name__)

# 09:00 in India (the cron is read in UTC): reminders arrive in the morning.
DAILY_CRON = "30 3 * * *"


class DeliveryFailedError(RuntimeError):
    """A message could not be delivered this time (the job is retried, then kept failed)."""


class DeliveryRefusedError(PermanentJobError):
    """The mail server refused the message for good (the job fails at once, no retry)."""


@job_task(blueprint, name="deliver", pass_context=True)
async def deliver(context: procrastinate.JobContext, notification_id: str) -> None:
    """Send one recorded message. A failed send is recorded on the row (attempts, error)
    and then raised, so the job is retried by the house policy and finally kept `failed`; a
    message the server refused for good fails the job at once."""
    from namma.jobs import job_database
    from namma.notifications.service import notification_deliver

    job = context.job
    task = context.app.tasks.get(job.task_name) if context.app is not None else None
    strategy = task.retry_strategy if task is not None else None

    def last_attempt(exc: Exception) -> bool:
        return strategy is None or strategy.get_retry_decision(exception=exc, job=job) is None

    async with transaction(job_database()) as session:
        outcome = await notification_deliver(
            session, notification_id=uuid.UUID(notification_id), last_attempt=last_attempt
        )
    if outcome.status is None:
        log.warning("notification.missing", notification_id=notification_id)
    if outcome.error is not None and outcome.refused:
        raise DeliveryRefusedError(
            f"notification {notification_id} refused by the server: {outcome.error}"
        ) from outcome.error
    if outcome.error is not None:
        raise DeliveryFailedError(
            f"notification {notification_id}: {type(outcome.error).__name__}: {outcome.error}"
        ) from outcome.error


@blueprint.periodic(cron=DAILY_CRON, periodic_id="notifications-daily")
@job_task(blueprint, name="daily")
async def daily(timestamp: int) -> int:
    """Every morning: record and enqueue the day's reminders and overdue notices (India's
    date at the scheduled time; a second run the same day records nothing)."""
    from namma.jobs import job_database
    from namma.notifications.service import notifications_daily

    on = dt.datetime.fromtimestamp(timestamp, INDIA).date()
    async with transaction(job_database()) as session:
        result = await notifications_daily(session, on=on)
    return len(result.recorded)
