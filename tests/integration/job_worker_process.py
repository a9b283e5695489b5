"""A worker process for the job tests: `python -m tests.integration.job_worker_process URL`."""

from __future__ import annotations

import asyncio
import sys

import tests.integration.job_tasks  # noqa: F401  (registers the test tasks)
from namma.jobs import job_app, runtime
from namma.kit.db import Database
from namma.kit.jobs import job_app_opened, worker_options


async def main(url: str) -> None:
    runtime.db = Database.connect(url, pool_size=2)
    async with job_app_opened(job_app, url, max_size=4):
        await job_app.run_worker_async(
            **worker_options(
                concurrency=2, poll_interval=0.2, stalled_worker_seconds=3, name="killable"
            )
        )


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
