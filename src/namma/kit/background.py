"""Work a request starts and does not wait for: a kept answer's refresh
(`namma.kit.cache.cache_get_or_refresh`). Only reads that rebuild something cached belong here —
never a write or money: a task dies with its process (a deploy, a crash), and what it was
rebuilding is simply built by the next request. Durable work is a job (`namma.jobs`).

The process holds each task until it ends (``asyncio`` keeps only a weak reference), logs its
failure, and waits for the running ones when the application stops (`background_settle`), so
that none is cut off in the middle of a statement when the database pool closes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import structlog

log = structlog.get_logger(__name__)

_running: set[asyncio.Task[Any]] = set()


def background_spawn(work: Coroutine[Any, Any, Any], *, name: str) -> None:
    """Run ``work`` beside the request that asked for it."""
    task = asyncio.create_task(work, name=name)
    _running.add(task)
    task.add_done_callback(_ended)


def _ended(task: asyncio.Task[Any]) -> None:
    _running.discard(task)
    if task.cancelled():
        return
    error = task.exception()
    if error is not None:
        log.error("background.failed", task=task.get_name(), exc_info=error)


async def background_settle(grace_seconds: float = 10.0) -> int:
    """Wait up to ``grace_seconds`` for the running tasks of this event loop; cancel those
    still running then. How many there were."""
    loop = asyncio.get_running_loop()
    mine = [t for t in _running if t.get_loop() is loop and not t.done()]
    if not mine:
        return 0
    _, pending = await asyncio.wait(mine, timeout=grace_seconds)
    for task in pending:
        task.cancel()
    if pending:
        await asyncio.wait(pending)
    return len(mine)
