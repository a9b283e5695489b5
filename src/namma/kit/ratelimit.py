"""Rate limiting with the ``limits`` library: Redis-backed when configured, in-process otherwise.

A moving window: "5 per 5 minutes" means at most 5 hits in any 300-second span, so a burst at
the edge of a fixed window cannot double the allowance.

A back-off (``backoff_*``): after ``free`` consecutive failures of one key, each further failure
makes the key wait 1 s, 2 s, 4 s … (at most ``max_delay``) before its next attempt; a success
clears it. Built on the storage's counters (an increment that sets an expiry when it creates
the key), so it works the same in-process and in Redis, shared by every server process.
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

    async def peek(self, rule: str | RateLimitItem, *identifiers: str) -> RateLimitResult:
        """Would one more hit be allowed? Counts nothing (for limits on failures only: peek
        before the attempt, ``hit`` after it failed)."""
        item = parse(rule) if isinstance(rule, str) else rule
        if await self._strategy.test(item, *identifiers):
            return RateLimitResult(
                allowed=True, limit=item.amount, remaining=None, retry_after_seconds=0
            )
        stats = await self._strategy.get_window_stats(item, *identifiers)
        return RateLimitResult(
            allowed=False,
            limit=item.amount,
            remaining=0,
            retry_after_seconds=max(1, math.ceil(stats.reset_time - time.time())),
        )

    async def backoff_wait(self, *identifiers: str) -> int:
        """Seconds the key must still wait before its next attempt (0: go ahead)."""
        until = _backoff_key("until", identifiers)
        if not await self._storage.get(until):
            return 0
        return max(1, math.ceil(await self._storage.get_expiry(until) - time.time()))

    async def backoff_failure(
        self, *identifiers: str, free: int, max_delay: int, forget_after: int = 86_400
    ) -> int:
        """Count a failure; returns the wait it imposes now (0 while within ``free``).
        The count is forgotten ``forget_after`` seconds after the first failure."""
        count = await self._storage.incr(_backoff_key("count", identifiers), forget_after)
        if count < free:
            return 0
        delay = int(min(2 ** min(count - free, 30), max_delay))
        # Attempts are refused while this key exists. A failure counted while it still exists
        # (a caller that counts refused attempts too) restarts it with the longer delay.
        until = _backoff_key("until", identifiers)
        await self._storage.clear(until)
        await self._storage.incr(until, delay)
        return delay

    async def backoff_clear(self, *identifiers: str) -> None:
        for part in ("count", "until"):
            await self._storage.clear(_backoff_key(part, identifiers))

    async def reset(self, rule: str | RateLimitItem, *identifiers: str) -> None:
        item = parse(rule) if isinstance(rule, str) else rule
        await self._strategy.clear(item, *identifiers)

    async def ping(self) -> bool:
        return bool(await self._storage.check())


def _backoff_key(part: str, identifiers: tuple[str, ...]) -> str:
    return "/".join(("namma-backoff", part, *identifiers))
