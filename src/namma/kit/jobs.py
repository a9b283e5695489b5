"""Background jobs on procrastinate, over the application's own PostgreSQL.

- Each domain declares its tasks on a ``procrastinate.Blueprint`` with ``job_task``; the one
  application (``namma.jobs.job_app``) collects them.
- ``job_defer`` enqueues inside the caller's transaction: a rolled-back request leaves no job.
- Every task retries by ``RETRY_POLICY`` (1 run + 3 retries at +2 s, +4 s, +8 s), after which the
  job stays ``failed``: that is the dead-letter list (``namma jobs failed`` / ``namma jobs retry``).
  A task whose failure no retry can mend raises ``PermanentJobError``: failed at once.
- The request id of the request that enqueued a job is carried into the job's log lines.
"""

from __future__ import annotations

import datetime as dt
import functools
import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, ParamSpec

import procrastinate
import structlog
from procrastinate.psycopg_connector import PsycopgConnector
from sqlalchemy.ext.asyncio import AsyncSession

from namma.kit.cache import Cache
from namma.kit.db import CACHE, Database, libpq_url, raw_connection, transaction


class PermanentJobError(Exception):
    """A failure no retry can mend (a mailbox that does not exist): the job fails at once."""


class _HouseRetryStrategy(procrastinate.RetryStrategy):
    def get_retry_decision(
        self, *, exception: BaseException, job: procrastinate.jobs.Job
    ) -> procrastinate.RetryDecision | None:
        if isinstance(exception, PermanentJobError):
            return None
        return super().get_retry_decision(exception=exception, job=job)


# 1 run + 3 retries, waiting 2**1, 2**2, 2**3 seconds; then the job is kept as `failed`.
RETRY_POLICY = _HouseRetryStrategy(max_attempts=3, exponential_wait=2)

REQUEST_ID_KWARG = "request_id"

P = ParamSpec("P")

log = structlog.get_logger(__name__)


class JobRuntime:
    """What a running job needs from the process it runs in: set by the server's and the
    worker's start-up, handed to tasks by `job_task` (never imported by a task)."""

    db: Database | None = None
    cache: Cache | None = None

    def database(self) -> Database:
        if self.db is None:
            raise RuntimeError("no database configured for jobs in this process")
        return self.db


job_runtime = JobRuntime()

# Parameters a task may declare to receive them from the runtime (never from the job's args).
INJECTED = frozenset({"session", "db", "cache"})


def job_task(
    blueprint: procrastinate.Blueprint,
    *,
    name: str,
    queue: str = "default",
    retry: procrastinate.BaseRetryStrategy | bool = RETRY_POLICY,
    pass_context: bool = False,
) -> Callable[[Callable[..., Awaitable[Any]]], Any]:
    """Register an async function as a task of ``blueprint`` with the house retry policy.

    The wrapper accepts the enqueuing request's id and binds it to every log line of the job.
    A task receives what it declares of: ``session`` — a transaction of its own, committed when
    the task returns (rolled back if it raises: the retry starts clean); ``db`` — the database,
    for a task that manages its own transactions; ``cache`` — the process's cache.
    """

    def decorate(func: Callable[..., Awaitable[Any]]) -> Any:
        wants = INJECTED & set(inspect.signature(func).parameters)

        @functools.wraps(func)
        async def run(*args: Any, request_id: str | None = None, **kwargs: Any) -> Any:
            with structlog.contextvars.bound_contextvars(request_id=request_id, task=name):
                if "db" in wants:
                    kwargs["db"] = job_runtime.database()
                if "cache" in wants:
                    kwargs["cache"] = job_runtime.cache
                if "session" not in wants:
                    return await func(*args, **kwargs)
                async with transaction(job_runtime.database()) as session:
                    if job_runtime.cache is not None:  # what the task changed, invalidated
                        session.info.setdefault(CACHE, job_runtime.cache)
                    return await func(*args, session=session, **kwargs)

        if pass_context:
            return blueprint.task(name=name, queue=queue, retry=retry, pass_context=True)(run)
        return blueprint.task(name=name, queue=queue, retry=retry)(run)

    return decorate


async def job_defer(
    session: AsyncSession, app: procrastinate.App, task_name: str, **task_kwargs: Any
) -> int:
    """Enqueue ``task_name`` in the session's transaction; returns the job id.

    The job becomes visible to workers only when the transaction commits.
    """
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    connection = await raw_connection(session)
    deferrer = app.configure_task(name=task_name, connection=connection)
    job_id: int = await deferrer.defer_async(**task_kwargs, **{REQUEST_ID_KWARG: request_id})
    return job_id


@asynccontextmanager
async def job_app_opened(
    app: procrastinate.App, url: str, *, max_size: int = 10, pooled: bool = False
) -> AsyncIterator[procrastinate.App]:
    """Open ``app`` on a connection pool to ``url`` for the duration of the block.

    The app object is global (tasks refer to it); each opening gets a connector of its own, so
    an app can be closed and opened again on another database (tests, CLI commands).
    ``pooled``: ``url`` is a transaction pooler's; psycopg then prepares no statements (D-218).
    A worker must not be opened so: it LISTENs, which needs a connection of its own.
    """
    extra: dict[str, Any] = {"kwargs": {"prepare_threshold": None}} if pooled else {}
    connector = PsycopgConnector(conninfo=libpq_url(url), min_size=1, max_size=max_size, **extra)
    with app.replace_connector(connector):
        async with app.open_async():
            yield app


def job_connector() -> PsycopgConnector:
    """A connector without a pool of its own; ``open_async(pool)`` supplies one at start-up."""
    return PsycopgConnector()


def worker_options(
    *,
    concurrency: int,
    poll_interval: float,
    stalled_worker_seconds: int,
    name: str = "namma-worker",
    install_signal_handlers: bool = True,
) -> dict[str, Any]:
    """Worker settings shared by ``namma worker`` and the in-process worker of ``namma serve``."""
    return {
        "name": name,
        "concurrency": concurrency,
        # Scheduled retries are found by polling, not by notification: poll often, or the
        # 2/4/8 s back-off drifts by up to the interval.
        "fetch_job_polling_interval": poll_interval,
        "abort_job_polling_interval": max(poll_interval, 1.0),
        "update_heartbeat_interval": max(1.0, stalled_worker_seconds / 6),
        "stalled_worker_timeout": float(stalled_worker_seconds),
        "install_signal_handlers": install_signal_handlers,
        "delete_jobs": "successful",
    }


@dataclass(frozen=True)
class FailedJob:
    id: int
    task_name: str
    queue: str
    attempts: int
    task_kwargs: dict[str, Any]
    failed_at: dt.datetime | None


async def jobs_failed(app: procrastinate.App, *, limit: int = 100) -> list[FailedJob]:
    """The dead-letter list: jobs that used up their retries, newest first."""
    rows = await app.connector.execute_query_all_async(
        query="""
        SELECT j.id, j.task_name, j.queue_name, j.attempts, j.args,
               (SELECT max(e.at) FROM procrastinate_events e
                 WHERE e.job_id = j.id AND e.type = 'failed') AS failed_at
          FROM procrastinate_jobs j
         WHERE j.status = 'failed'
         ORDER BY failed_at DESC NULLS LAST, j.id DESC
         LIMIT %(limit)s
        """,
        limit=limit,
    )
    return [
        FailedJob(
            id=row["id"],
            task_name=row["task_name"],
            queue=row["queue_name"],
            attempts=row["attempts"],
            task_kwargs=dict(row["args"]),
            failed_at=row["failed_at"],
        )
        for row in rows
    ]


@dataclass(frozen=True)
class JobEvent:
    type: str  # procrastinate's: deferred, started, deferred_for_retry, failed, retried, …
    at: dt.datetime | None


async def job_failed_detail(
    app: procrastinate.App, job_id: int
) -> tuple[FailedJob, list[JobEvent]] | None:
    """One failed job and its history (oldest event first), or None if there is no failed job
    with that id. procrastinate keeps no exception text: the history says when each attempt
    started and failed; the error itself is in the worker's log under the job's id."""
    rows = await app.connector.execute_query_all_async(
        query="""
        SELECT j.id, j.task_name, j.queue_name, j.attempts, j.args,
               (SELECT max(e.at) FROM procrastinate_events e
                 WHERE e.job_id = j.id AND e.type = 'failed') AS failed_at
          FROM procrastinate_jobs j
         WHERE j.id = %(job_id)s AND j.status = 'failed'
        """,
        job_id=job_id,
    )
    if not rows:
        return None
    row = rows[0]
    job = FailedJob(
        id=row["id"],
        task_name=row["task_name"],
        queue=row["queue_name"],
        attempts=row["attempts"],
        task_kwargs=dict(row["args"]),
        failed_at=row["failed_at"],
    )
    events = await app.connector.execute_query_all_async(
        query="""
        SELECT type::text AS type, at FROM procrastinate_events
         WHERE job_id = %(job_id)s ORDER BY at, id
        """,
        job_id=job_id,
    )
    return job, [JobEvent(type=e["type"], at=e["at"]) for e in events]


class JobNotFailedError(LookupError):
    """The job does not exist or is not in the failed state."""


async def job_retry(app: procrastinate.App, job_id: int) -> None:
    """Put a failed job back in the queue, to run now."""
    rows = await app.connector.execute_query_all_async(
        query="SELECT status FROM procrastinate_jobs WHERE id = %(job_id)s", job_id=job_id
    )
    if not rows:
        raise JobNotFailedError(f"no job with id {job_id}")
    if rows[0]["status"] != "failed":
        raise JobNotFailedError(f"job {job_id} is {rows[0]['status']}, not failed")
    await app.job_manager.retry_job_by_id_async(job_id=job_id, retry_at=dt.datetime.now(dt.UTC))


async def jobs_recover_stalled(app: procrastinate.App, *, seconds_since_heartbeat: float) -> int:
    """Requeue jobs whose worker stopped sending heartbeats (killed mid-run); returns how many."""
    stalled = await app.job_manager.get_stalled_jobs(
        seconds_since_heartbeat=seconds_since_heartbeat
    )
    count = 0
    for job in stalled:
        await app.job_manager.retry_job(job)
        log.warning("job.requeued_after_stalled_worker", job_id=job.id, task=job.task_name)
        count += 1
    return count


async def jobs_pending_count(app: procrastinate.App) -> int:
    rows = await app.connector.execute_query_all_async(
        query="SELECT count(*) AS n FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
    )
    return int(rows[0]["n"])
