"""FastAPI dependencies shared by every domain."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from namma.kit.cache import Cache
from namma.kit.db import db_session
from namma.kit.idempotency import Idempotency, IdempotencyKeyHeader, route_of
from namma.kit.ratelimit import RateLimiter

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


async def _idempotency(
    request: Request, session: SessionDep, key: IdempotencyKeyHeader = None
) -> Idempotency:
    return Idempotency(session, route_of(request), key)


# Every money route: the ``Idempotency-Key`` header, and `Idempotency.run` to answer a retry
# with the first response (`namma.kit.idempotency`).
IdempotencyDep = Annotated[Idempotency, Depends(_idempotency)]
