"""Rate limiting with the ``limits`` library: Redis-backed when configured, in-process otherwise.

A moving window: "5 per 5 minutes" means at most 5 hits in any 300-second span, so a burst at
the edge of a fixed window cannot double the allowance.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter


@dataclass(frozen=True)
class RateLimitResult:
    allowed: bool
    limit: int
    remaining: int | None  # None when not asked for (``with_remaining=False``) and allowed
    retry_after_seconds: int  # 0 when allowed


class RateLimiter:
    def __init__(self, storage: Storage, *, backend: str) -> None:
        self._storage = storage
        self._strategy = MovingWindowRateLimiter(storage)
        self.backend = backend

    @classmethod
    def from_url(cls, redis_url: str | None) -> RateLimiter:
        if redis_url:
            # limits' own redis extra pins an old redis-py; use the redis-py we already have.
            uri = "async+" + redis_url if not redis_url.startswith("async+") else redis_url
            return cls(RedisStorage(uri, implementation="redispy"), backend="redis")
        return cls(MemoryStorage(), backend="memory")

    async def hit(
        self, rule: str | RateLimitItem, *identifiers: str, with_remaining: bool = True
    ) -> RateLimitResult:
        """Count one request against ``rule`` (e.g. ``"5/5minutes"``) for ``identifiers``.

        ``with_remaining=False`` skips reading the window back (a second round trip to Redis)
        when the request is allowed: what every API request needs is only the verdict."""
        item = parse(rule) if isinstance(rule, str) else rule
        allowed = await self._strategy.hit(item, *identifiers)
        if allowed and not with_remaining:
            return RateLimitResult(
                allowed=True, limit=item.amount, remaining=None, retry_after_seconds=0
            )
        stats = await self._strategy.get_window_stats(item, *identifiers)
        retry_after = 0 if allowed else max(1, math.ceil(stats.reset_time - time.time()))
        return RateLimitResult(
            allowed=allowed,
            limit=item.amount,
            remaining=stats.remaining,
            retry_after_seconds=retry_after,
        )

    async def reset(self, rule: str | RateLimitItem, *identifiers: str) -> None:
        item = parse(rule) if isinstance(rule, str) else rule
        await self._strategy.clear(item, *identifiers)

    async def ping(self) -> bool:
        return bool(await self._storage.check())
