"""FastAPI dependencies shared by every domain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from namma.kit.cache import Cache
from namma.kit.db import db_session
from namma.kit.idempotency import Idempotency, IdempotencyKeyHeader, route_of
from namma.kit.ratelimit import RateLimiter
from namma.kit.recent_writes import recent_writers
from namma.kit.replica import ReplicaCache, replica_router

# scope="function": the session is committed (or rolled back) before the response is sent, so a
# failed commit becomes an error response instead of a 200 for work that was never saved.
SessionDep = Annotated[AsyncSession, Depends(db_session, scope="function")]


def _cache(request: Request) -> Cache:
    cache: Cache = request.app.state.cache
    return cache


def _rate_limiter(request: Request) -> RateLimiter:
    limiter: RateLimiter = request.app.state.rate_limiter
    return limiter


CacheDep = Annotated[Cache, Depends(_cache)]
RateLimiterDep = Annotated[RateLimiter, Depends(_rate_limiter)]


async def _reads_replica(request: Request) -> bool:
    """Whether this request's read routes read the replica (decided once per request: FastAPI
    caches a dependency's value within the request). Never without NAMMA_DATABASE_REPLICA_URL."""
    router = replica_router(request)
    return router is not None and await router.serves(request)


async def _read_session(
    request: Request,
    primary: SessionDep,
    replica: Annotated[bool, Depends(_reads_replica)],
) -> AsyncIterator[AsyncSession]:
    router = replica_router(request)
    if not replica or router is None:
        # The request's own session on the primary (the one authentication used).
        yield primary
        return
    async with router.session() as session:
        yield session


async def _read_cache(request: Request, replica: Annotated[bool, Depends(_reads_replica)]) -> Cache:
    cache: Cache = request.app.state.cache
    return ReplicaCache(cache) if replica else cache


# The session of a route that only reads — dashboards, reports, lists (D-219): the replica's
# when one is configured, healthy and the person has not written in the last seconds; else the
# primary's ``SessionDep``. Such a route must never write (the standby refuses it), and uses
# ``ReadCacheDep`` for what it caches from what it read.
ReadSessionDep = Annotated[AsyncSession, Depends(_read_session, scope="function")]
ReadCacheDep = Annotated[Cache, Depends(_read_cache)]


async def _asked_by_recent_writer(request: Request) -> bool:
    writers = recent_writers(request)
    return writers is not None and await writers.asked_by_recent_writer(request)


# Whether the person asking wrote something in the last seconds: they are answered with a
# dashboard built now, never a kept copy that may not show their write (D-221).
AskedByRecentWriterDep = Annotated[bool, Depends(_asked_by_recent_writer)]


async def _idempotency(
    request: Request, session: SessionDep, key: IdempotencyKeyHeader = None
) -> Idempotency:
    return Idempotency(session, route_of(request), key)


# Every money route: the ``Idempotency-Key`` header, and `Idempotency.run` to answer a retry
# with the first response (`namma.kit.idempotency`).
IdempotencyDep = Annotated[Idempotency, Depends(_idempotency)]
