"""Jobs: transactional enqueue, retry timings, the dead-letter list, recovery of killed jobs."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import itertools
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio.to_thread
import psycopg
import pytest
from fastapi import FastAPI

from namma.jobs import job_app
from namma.kit.db import libpq_url, transaction
from namma.kit.deps import SessionDep
from namma.kit.jobs import (
    RETRY_POLICY,
    PermanentJobError,
    job_defer,
    job_retry,
    jobs_failed,
    jobs_recover_stalled,
    worker_options,
)
from tests.integration.job_tasks import PROBE_TABLE_SQL

REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def probe(clean_database: str):  # type: ignore[no-untyped-def]
    with psycopg.connect(libpq_url(clean_database), autocommit=True) as conn:
        conn.execute(PROBE_TABLE_SQL)
    yield clean_database
    with psycopg.connect(libpq_url(clean_database), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS job_probe")


def _query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(url)) as conn:
        return list(conn.execute(sql, params))


def _jobs(url: str, task: str) -> list[tuple[Any, ...]]:
    return _query(
        url,
        "SELECT id, status, attempts FROM procrastinate_jobs WHERE task_name = %s ORDER BY id",
        task,
    )


async def namma_command(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the `namma` command as an operator would, in its own process."""
    env = {**os.environ, "NAMMA_DATABASE_URL": database_url, "NAMMA_ENV": "test"}
    return await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-m", "namma", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    )


@contextlib.asynccontextmanager
async def running_worker(*, poll: float = 0.2):  # type: ignore[no-untyped-def]
    task = asyncio.create_task(
        job_app.run_worker_async(
            **worker_options(
                concurrency=2,
                poll_interval=poll,
                stalled_worker_seconds=30,
                name="test-worker",
                install_signal_handlers=False,
            )
        )
    )
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def _wait_for(predicate, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await anyio.to_thread.run_sync(predicate):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def _add_enqueue_routes(app: FastAPI) -> None:
    async def enqueue_and_succeed(session: SessionDep) -> dict[str, int]:
        job_id = await job_defer(session, job_app, "test:record", key="committed")
        return {"job_id": job_id}

    async def enqueue_and_fail(session: SessionDep) -> dict[str, int]:
        await job_defer(session, job_app, "test:record", key="rolled-back")
        raise RuntimeError("the request fails after enqueueing")

    app.add_api_route("/_test/enqueue-ok", enqueue_and_succeed, methods=["POST"])
    app.add_api_route("/_test/enqueue-fail", enqueue_and_fail, methods=["POST"])


async def test_enqueue_is_part_of_the_request_transaction(app, client, probe):  # type: ignore[no-untyped-def]
    _add_enqueue_routes(app)

    failed = await client.post("/_test/enqueue-fail")
    assert failed.status_code == 500
    assert _jobs(probe, "test:record") == [], "a rolled-back request must leave no job"

    ok = await client.post("/_test/enqueue-ok", headers={"X-Request-ID": "req-abc-123"})
    assert ok.status_code == 200
    jobs = _jobs(probe, "test:record")
    assert [(j[0], j[1]) for j in jobs] == [(ok.json()["job_id"], "todo")]
    # The enqueuing request's id travels with the job ...
    args = _query(probe, "SELECT args FROM procrastinate_jobs WHERE id = %s", jobs[0][0])[0][0]
    assert args == {"key": "committed", "request_id": "req-abc-123"}

    # ... and a worker runs it with that id bound to its log context.
    async with running_worker():
        await _wait_for(
            lambda: (
                _query(probe, "SELECT count(*) FROM job_probe WHERE key = 'committed'")[0][0] == 1
            ),
            10,
            "the job to run",
        )
    assert _query(probe, "SELECT request_id FROM job_probe")[0][0] == "req-abc-123"
    assert _query(probe, "SELECT count(*) FROM job_probe WHERE key = 'rolled-back'")[0][0] == 0


def test_retry_policy_is_one_run_plus_three_exponential_retries() -> None:
    assert RETRY_POLICY.max_attempts == 3
    assert RETRY_POLICY.exponential_wait == 2


def test_a_permanent_failure_is_never_retried() -> None:
    from procrastinate.jobs import Job

    first_run = Job(id=1, queue="default", lock=None, queueing_lock=None, task_name="t", attempts=0)
    retried = RETRY_POLICY.get_retry_decision(exception=RuntimeError("down"), job=first_run)
    assert retried is not None and retried.retry_at is not None
    wait = retried.retry_at - dt.datetime.now(dt.UTC)
    assert dt.timedelta(seconds=1) < wait <= dt.timedelta(seconds=2)
    assert (
        RETRY_POLICY.get_retry_decision(exception=PermanentJobError("gone"), job=first_run) is None
    )


@pytest.mark.slow
async def test_failing_job_retries_at_2_4_8_seconds_then_is_kept_as_failed(app, probe):  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        job_id = await job_defer(session, job_app, "test:always_fails", key="doomed")

    def runs() -> list[float]:
        rows = _query(
            probe,
            "SELECT extract(epoch FROM ran_at) FROM job_probe WHERE key = 'doomed' ORDER BY id",
        )
        return [float(r[0]) for r in rows]

    def status() -> str:
        return str(
            _query(probe, "SELECT status FROM procrastinate_jobs WHERE id = %s", job_id)[0][0]
        )

    async with running_worker(poll=0.2):
        await _wait_for(lambda: status() == "failed", 30, "the job to use up its retries")
        await asyncio.sleep(1.0)  # no fifth run may follow
        times = runs()
        assert len(times) == 4, f"expected 1 run + 3 retries, saw {len(times)} runs"
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        for gap, expected in zip(gaps, (2, 4, 8), strict=True):
            # A retry is due `expected` seconds after the failure and found by the next poll.
            assert expected - 0.05 <= gap <= expected + 1.0, f"retry gaps {gaps}"

        # The dead-letter list shows it ...
        failed = await jobs_failed(job_app)
        assert [(f.id, f.task_name) for f in failed] == [(job_id, "test:always_fails")]
        assert failed[0].task_kwargs["key"] == "doomed"
        assert failed[0].failed_at is not None

        # ... `namma jobs failed` prints it ...
        listed = await namma_command(probe, "jobs", "failed")
        assert listed.returncode == 0, listed.stderr
        assert str(job_id) in listed.stdout and "test:always_fails" in listed.stdout

        # ... and `namma jobs retry` puts it back: it runs once more.
        retried = await namma_command(probe, "jobs", "retry", str(job_id))
        assert retried.returncode == 0, retried.stderr
        assert f"Job {job_id} queued again." in retried.stdout
        await _wait_for(lambda: len(runs()) == 5, 10, "the retried job to run again")
        await _wait_for(lambda: status() == "failed", 10, "the retried job to fail again")


async def test_retrying_a_job_that_has_not_failed_is_refused(app, probe):  # type: ignore[no-untyped-def]
    from namma.kit.jobs import JobNotFailedError

    async with transaction(app.state.db) as session:
        job_id = await job_defer(session, job_app, "test:record", key="fine")
    with pytest.raises(JobNotFailedError, match="is todo, not failed"):
        await job_retry(job_app, job_id)
    with pytest.raises(JobNotFailedError, match="no job with id"):
        await job_retry(job_app, 999_999)
    result = await namma_command(probe, "jobs", "retry", "999999")
    assert result.returncode == 2
    assert "Not retried: no job with id 999999" in result.stderr


@pytest.mark.slow
async def test_job_killed_mid_run_is_run_again(app, probe):  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        job_id = await job_defer(session, job_app, "test:slow_once", key="killed")

    worker = subprocess.Popen(  # noqa: ASYNC220
        [sys.executable, "-m", "tests.integration.job_worker_process", probe],
        cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        await _wait_for(
            lambda: _query(probe, "SELECT count(*) FROM job_probe WHERE key = 'killed'")[0][0] == 1,
            30,
            "the worker process to start the job",
        )
        assert _jobs(probe, "test:slow_once")[0][1] == "doing"
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(10)

    # Nothing finishes the job by itself: it is stuck in `doing` under a dead worker.
    await asyncio.sleep(3.5)
    assert _jobs(probe, "test:slow_once")[0][1] == "doing"

    # The stalled-job recovery (a periodic system task, every minute) requeues it — and any
    # periodic job (a COB tick) the killed worker had also started, since it died under them too.
    doing = _query(probe, "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'")[0][0]
    assert await jobs_recover_stalled(job_app, seconds_since_heartbeat=2) == doing
    assert _jobs(probe, "test:slow_once")[0][1] == "todo"
    # ... and a live worker runs it to the end.
    async with running_worker():
        await _wait_for(
            lambda: _query(probe, "SELECT count(*) FROM job_probe WHERE key = 'killed'")[0][0] == 2,
            10,
            "the job to run again",
        )
        await _wait_for(lambda: _jobs(probe, "test:slow_once") == [], 10, "the job to succeed")
    assert job_id is not None


def test_stalled_job_recovery_is_a_periodic_task() -> None:
    periodic = {p.task.name: p.cron for p in job_app.periodic_registry.periodic_tasks.values()}
    assert periodic.get("system:recover_stalled") == "* * * * *"
