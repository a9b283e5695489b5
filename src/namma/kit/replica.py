"""Reads from a PostgreSQL streaming replica (hot standby), when ``NAMMA_DATABASE_REPLICA_URL``
is set (D-219).

Only the routes that declare ``ReadSessionDep`` (``namma.kit.deps``) — dashboards, reports, the
lists — may read from the replica; every other route, and everything that writes, keeps the
primary's ``SessionDep``. A read route is answered from the primary instead when:

- the request is not a GET or HEAD (a request that writes reads its own writes where it wrote);
- the person asking wrote something in the last ``NAMMA_REPLICA_STICKY_SECONDS`` (read your
  writes, `namma.kit.recent_writes`: every instance behind the load balancer sees the mark);
- the replica is behind by more than ``NAMMA_REPLICA_MAX_LAG_SECONDS``, does not answer, or is
  not a standby. The lag is measured at most once a second per process (`ReplicaRouter.state`),
  never per request.

A replica session is a session on the standby: PostgreSQL refuses every write there, and its
end refuses a session that asked for commit-time work (an audit entry, a cache invalidation),
so a read route that writes fails loudly in the replica tests instead of losing the write.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import structlog
from fastapi import Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from namma.kit.db import AFTER_COMMIT, BEFORE_COMMIT, BEFORE_COMMIT_LAST, CACHE, Database
from namma.kit.recent_writes import RecentWriters

log = structlog.get_logger(__name__)

# Marks a session opened on the standby (``session.info``): `reads_standby`.
STANDBY = "namma.reads_standby"
# How often a process measures the replica's lag, at most.
LAG_CHECK_SECONDS = 1.0
# A measurement that takes longer counts as no answer (reads go to the primary meanwhile).
MEASURE_TIMEOUT_SECONDS = 2.0
SAFE_METHODS = frozenset({"GET", "HEAD"})

# The replay delay: the age of the last transaction replayed, while WAL received is still
# waiting to be replayed; 0 once everything received is replayed (an idle primary writes no
# transactions, and the age of the last one would grow without anything being behind). With
# no WAL receiver (the stream is broken) the standby cannot know how far behind it is: NULL.
LAG_QUERY = (
    "SELECT pg_is_in_recovery() AS standby, "
    "EXISTS (SELECT 1 FROM pg_stat_wal_receiver) AS streaming, "
    "CASE WHEN NOT pg_is_in_recovery() THEN NULL "
    "WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn() THEN 0 "
    "ELSE GREATEST(0, EXTRACT(EPOCH FROM now() - pg_last_xact_replay_timestamp())) "
    "END AS lag_seconds"
)
LAG_SQL = text(LAG_QUERY)


def reads_standby(session: AsyncSession) -> bool:
    """The session reads a hot standby (whose snapshots must not be kept: `reports.kept`)."""
    return bool(session.info.get(STANDBY))


@dataclass(frozen=True)
class ReplicaState:
    """One measurement of the replica."""

    usable: bool  # reads may go there
    lag_seconds: Decimal | None  # None: unknown (no answer, not streaming)
    problem: str | None  # why it is not usable
    measured_at: float  # time.monotonic()

    def as_check(self, max_lag: float) -> dict[str, Any]:
        """The replica's entry in ``/ready``."""
        check: dict[str, Any] = {
            "ok": self.usable,
            "reads": "replica" if self.usable else "primary",
            "lag_seconds": None if self.lag_seconds is None else str(self.lag_seconds),
            "max_lag_seconds": str(max_lag),
        }
        if self.problem:
            check["error"] = self.problem
        return check


async def replica_measure(db: Database, *, max_lag: float) -> ReplicaState:
    """Ask the replica how far behind it is (one short statement, at most
    ``MEASURE_TIMEOUT_SECONDS``: a replica that does not answer is not waited for)."""
    now = time.monotonic()

    async def ask() -> Any:
        async with db.engine.connect() as conn:
            return (await conn.execute(LAG_SQL)).one()

    try:
        row = await asyncio.wait_for(ask(), MEASURE_TIMEOUT_SECONDS)
    except TimeoutError:
        return ReplicaState(False, None, f"no answer within {MEASURE_TIMEOUT_SECONDS} s", now)
    except Exception as exc:
        return ReplicaState(False, None, f"no answer ({type(exc).__name__})", now)
    if not row.standby:
        # Promoted, or the URL names a primary: reads there would not be a copy of ours.
        return ReplicaState(False, None, "not a standby (pg_is_in_recovery() is false)", now)
    lag = None if row.lag_seconds is None else Decimal(row.lag_seconds).quantize(Decimal("0.001"))
    if not row.streaming and lag != 0:
        return ReplicaState(False, lag, "not streaming from the primary", now)
    if lag is None:
        return ReplicaState(False, None, "lag unknown", now)
    if lag > Decimal(str(max_lag)):
        return ReplicaState(False, lag, f"lag above {max_lag} s", now)
    return ReplicaState(True, lag, None, now)


class ReplicaRouter:
    """The process's replica: its engine, its last measured lag, and who wrote recently."""

    def __init__(
        self,
        db: Database,
        *,
        max_lag_seconds: float,
        writers: RecentWriters,
    ) -> None:
        self.db = db
        self.max_lag_seconds = max_lag_seconds
        # Who wrote in the last seconds: their reads stay on the primary.
        self.writers = writers
        self._state: ReplicaState | None = None
        self._lock = asyncio.Lock()

    async def state(self) -> ReplicaState:
        """The last measurement, measured again when older than ``LAG_CHECK_SECONDS``: one
        request measures; those arriving meanwhile use the previous measurement (the first
        ones of the process wait for the first)."""
        held = self._state
        if held is not None and (
            time.monotonic() - held.measured_at < LAG_CHECK_SECONDS or self._lock.locked()
        ):
            return held
        async with self._lock:
            held = self._state
            if held is None or time.monotonic() - held.measured_at >= LAG_CHECK_SECONDS:
                fresh = await replica_measure(self.db, max_lag=self.max_lag_seconds)
                if held is None or fresh.usable != held.usable:
                    log.info(
                        "replica.reads_to_replica" if fresh.usable else "replica.reads_to_primary",
                        lag_seconds=None if fresh.lag_seconds is None else str(fresh.lag_seconds),
                        problem=fresh.problem,
                    )
                self._state = held = fresh
            return held

    async def serves(self, request: Request) -> bool:
        """Whether this request's read routes read from the replica."""
        if request.method not in SAFE_METHODS:
            return False
        if await self.writers.asked_by_recent_writer(request):
            return False
        return (await self.state()).usable

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session on the standby for one request; nothing to commit there."""
        async with self.db.sessionmaker() as session:
            session.info[STANDBY] = True
            if self.db.cache is not None:
                # The process's cache, for what a primary kept (`reports/kept.py`); nothing is
                # invalidated through it from here (no commit).
                session.info[CACHE] = self.db.cache
            try:
                yield session
                hooks = (BEFORE_COMMIT, BEFORE_COMMIT_LAST, AFTER_COMMIT)
                if any(session.info.get(k) for k in hooks):
                    raise RuntimeError(
                        "a read route asked for a write at commit on the replica's session: "
                        "give it SessionDep, not ReadSessionDep"
                    )
            finally:
                await session.rollback()


class ReplicaCache:
    """The shared cache as seen by a request reading the replica: its own entries carry a
    ``:replica`` suffix. An answer computed from the replica may miss a write committed a
    moment ago (the lag); kept apart, it is never served to someone reading the primary — the
    writer in their sticky window above all. Invalidation patterns (``dashboard:<branch>:*``)
    match both kinds, so a write drops them together."""

    SUFFIX = ":replica"

    def __init__(self, cache: Any) -> None:
        self._cache = cache
        self.backend = cache.backend

    async def get(self, key: str) -> Any | None:
        return await self._cache.get(key + self.SUFFIX)

    async def get_many(self, keys: Sequence[str]) -> list[Any | None]:
        return list(await self._cache.get_many([key + self.SUFFIX for key in keys]))

    async def exists(self, key: str) -> bool:
        return bool(await self._cache.exists(key + self.SUFFIX))

    async def set(self, key: str, value: Any, ttl: int) -> None:
        await self._cache.set(key + self.SUFFIX, value, ttl)

    async def add(self, key: str, value: Any, ttl: int) -> bool:
        return bool(await self._cache.add(key + self.SUFFIX, value, ttl))

    async def set_if(
        self, guard: str, expected: Any | None, entries: Mapping[str, tuple[Any, int]]
    ) -> bool:
        suffixed = {key + self.SUFFIX: entry for key, entry in entries.items()}
        return bool(await self._cache.set_if(guard + self.SUFFIX, expected, suffixed))

    async def delete(self, *keys: str) -> int:
        return int(await self._cache.delete(*keys, *(k + self.SUFFIX for k in keys)))

    async def delete_pattern(self, pattern: str, *, also: Sequence[str] = ()) -> int:
        return await self.delete_matching((pattern,), also=also)

    async def delete_matching(self, patterns: Sequence[str], *, also: Sequence[str] = ()) -> int:
        return int(
            await self._cache.delete_matching(
                patterns, also=(*also, *(k + self.SUFFIX for k in also))
            )
        )

    async def ping(self) -> bool:
        return bool(await self._cache.ping())

    async def close(self) -> None:  # the process's cache is closed by its owner
        return None

    @property
    def primary(self) -> Any:
        """The cache as the primary's readers see it."""
        return self._cache


def primary_cache(cache: Any) -> Any:
    """The shared cache under the keys the primary's readers use: what was read on the primary
    and may be combined with a standby's read (the reports' kept sums, D-222)."""
    return cache.primary if isinstance(cache, ReplicaCache) else cache


@asynccontextmanager
async def read_session_like(session: AsyncSession) -> AsyncIterator[AsyncSession]:
    """A new session reading the same database as ``session`` (the primary or the standby), for
    a read that outlives ``session``'s request (a kept answer's refresh in the background).
    It only reads: rolled back at its end."""
    async with AsyncSession(bind=session.bind, expire_on_commit=False) as other:
        for kept in (STANDBY, CACHE):
            if kept in session.info:
                other.info[kept] = session.info[kept]
        try:
            yield other
        finally:
            await other.rollback()


def replica_router(request: Request) -> ReplicaRouter | None:
    router: ReplicaRouter | None = getattr(request.app.state, "replica", None)
    return router
