"""Cache-aside helpers and the rate limiter, on the in-process store and on a real Redis."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
import redis.asyncio as redis_asyncio

from namma.kit.background import background_settle
from namma.kit.cache import (
    COPY_PREFIX,
    INDEX_PREFIX,
    KEY_PREFIX,
    REFRESHING_PREFIX,
    Cache,
    MemoryCache,
    RedisCache,
    cache_get_or_load,
    cache_get_or_refresh,
)
from namma.kit.ratelimit import RateLimiter


@pytest.fixture(params=["memory", "redis"])
async def cache(request: pytest.FixtureRequest) -> AsyncIterator[Cache]:
    if request.param == "memory":
        yield MemoryCache()
        return
    url = request.getfixturevalue("redis_url")
    backend = RedisCache.from_url(url)
    yield backend
    await backend.close()


@pytest.fixture(params=["memory", "redis"])
async def limiter(request: pytest.FixtureRequest) -> RateLimiter:
    if request.param == "memory":
        return RateLimiter.from_url(None)
    return RateLimiter.from_url(request.getfixturevalue("redis_url"))


def _ns() -> str:
    # Keys unique to one test, so runs against a shared Redis never see each other.
    return f"t{uuid.uuid4().hex[:8]}"


async def test_set_get_delete(cache: Cache) -> None:
    ns = _ns()
    assert await cache.get(f"{ns}:loan:1") is None
    await cache.set(f"{ns}:loan:1", {"outstanding": Decimal("8884.88"), "status": "active"}, 60)
    # Money comes back as the exact string, never a float.
    assert await cache.get(f"{ns}:loan:1") == {"outstanding": "8884.88", "status": "active"}
    assert await cache.delete(f"{ns}:loan:1", f"{ns}:loan:missing") == 1
    assert await cache.get(f"{ns}:loan:1") is None


async def test_add_sets_only_an_absent_key_until_it_expires(cache: Cache) -> None:
    """The mark of a kept answer's refresh (D-221): one caller wins, on every instance."""
    ns = _ns()
    assert await cache.add(f"{ns}:refreshing", 1, 1) is True
    assert await cache.add(f"{ns}:refreshing", 2, 1) is False
    assert await cache.get(f"{ns}:refreshing") == 1
    await asyncio.sleep(1.2)
    assert await cache.add(f"{ns}:refreshing", 3, 60) is True
    assert await cache.get(f"{ns}:refreshing") == 3


async def test_set_if_sets_its_entries_only_while_the_guard_holds_the_value(cache: Cache) -> None:
    """The kept sheet's patch (D-223): its new version and sheet together, or nothing."""
    ns = _ns()
    guard, other = f"{ns}:version", f"{ns}:sheet"
    entries = {guard: ("v2", 60), other: ({"version": "v2", "lines": ["a"]}, 60)}
    assert await cache.set_if(guard, "v1", entries) is False  # absent, not "v1"
    assert await cache.get(other) is None and not await cache.exists(other)
    assert await cache.set_if(guard, None, entries) is True  # absent, as expected
    assert await cache.get(guard) == "v2" and await cache.exists(guard)
    assert await cache.get(other) == {"version": "v2", "lines": ["a"]}
    # Another writer read "v2" too: only the first of them sets anything.
    first = {guard: ("v3", 60), other: ({"version": "v3"}, 60)}
    second = {guard: ("v4", 60), other: ({"version": "v4"}, 60)}
    assert await cache.set_if(guard, "v2", first) is True
    assert await cache.set_if(guard, "v2", second) is False
    assert (await cache.get(guard), await cache.get(other)) == ("v3", {"version": "v3"})
    # Each entry with its own TTL.
    assert await cache.set_if(guard, "v3", {guard: ("v5", 60), other: ("short", 1)}) is True
    await asyncio.sleep(1.2)
    assert (await cache.get(guard), await cache.get(other)) == ("v5", None)


async def test_set_if_through_the_replicas_cache_keeps_to_its_own_entries() -> None:
    from namma.kit.replica import ReplicaCache

    shared = MemoryCache()
    replica = ReplicaCache(shared)
    await shared.set("version", "primary", 60)
    assert await replica.set_if("version", "primary", {"version": ("r2", 60)}) is False
    assert await replica.set_if("version", None, {"version": ("r2", 60)}) is True
    assert (await shared.get("version"), await replica.get("version")) == ("primary", "r2")


@pytest.mark.redis
async def test_a_kept_answer_is_refreshed_once_whichever_instance_asks(
    request: pytest.FixtureRequest,
) -> None:
    """Two processes' caches on one Redis: a dropped answer's kept copy is answered by both,
    and only one of them builds the new one (``cache_get_or_refresh``, D-221)."""
    url = request.getfixturevalue("redis_url")
    first, second = RedisCache.from_url(url), RedisCache.from_url(url)
    key = f"{_ns()}:dashboard:b:manager:b:month"
    builds: list[str] = []

    def builder(who: str) -> Any:
        async def build() -> dict[str, str]:
            builds.append(who)
            return {"figures": str(len(builds))}

        return build

    try:
        for instance, name in ((first, "first"), (second, "second")):
            answer = await cache_get_or_refresh(
                instance, key, ttl=30, keep=600, load=builder(name), refresh=builder(name)
            )
            if name == "first":
                assert answer.stale is False and builds == ["first"]
                await first.delete(key)  # a write drops it
            else:
                assert answer.stale is True and answer.value == {"figures": "1"}
        again = await cache_get_or_refresh(
            first, key, ttl=30, keep=600, load=builder("first"), refresh=builder("first")
        )
        assert again.stale is True
        await background_settle()
        assert builds == ["first", "second"]  # one refresh, by the instance that marked it
        latest = await cache_get_or_refresh(
            first, key, ttl=30, keep=600, load=builder("first"), refresh=builder("first")
        )
        assert latest.stale is False and latest.value == {"figures": "2"}
    finally:
        await first.delete(key, COPY_PREFIX + key, REFRESHING_PREFIX + key)
        await first.close()
        await second.close()


async def test_entries_expire_after_their_ttl(cache: Cache) -> None:
    ns = _ns()
    await cache.set(f"{ns}:short", "x", 1)
    assert await cache.get(f"{ns}:short") == "x"
    await asyncio.sleep(1.2)
    assert await cache.get(f"{ns}:short") is None


async def test_pattern_invalidation_deletes_only_matching_keys(cache: Cache) -> None:
    ns = _ns()
    for i in range(1200):  # more than one SCAN batch
        await cache.set(f"{ns}:loans:customer:7:{i}", i, 60)
    await cache.set(f"{ns}:loans:customer:8:0", "keep", 60)
    await cache.set(f"{ns}:dashboard:1", "keep", 60)

    assert await cache.delete_pattern(f"{ns}:loans:customer:7:*") == 1200
    assert await cache.get(f"{ns}:loans:customer:7:5") is None
    assert await cache.get(f"{ns}:loans:customer:8:0") == "keep"
    assert await cache.get(f"{ns}:dashboard:1") == "keep"


async def test_pattern_invalidation_deletes_the_keys_named_with_it(cache: Cache) -> None:
    ns = _ns()
    await cache.set(f"{ns}:dashboard:1", 1, 60)
    await cache.set(f"{ns}:dashboard:2", 2, 60)
    await cache.set(f"{ns}-loan:1", "loan", 60)
    await cache.set(f"{ns}-customer:1", "customer", 60)
    await cache.set(f"{ns}-loan:2", "keep", 60)

    deleted = await cache.delete_pattern(
        f"{ns}:dashboard:*", also=(f"{ns}-loan:1", f"{ns}-customer:1", f"{ns}-loan:3")
    )
    assert deleted == 4  # two dashboards, the loan and the customer (loan 3 was not cached)
    for gone in (f"{ns}:dashboard:1", f"{ns}:dashboard:2", f"{ns}-loan:1", f"{ns}-customer:1"):
        assert await cache.get(gone) is None
    assert await cache.get(f"{ns}-loan:2") == "keep"
    # Nothing matching the pattern: the keys named still go.
    await cache.set(f"{ns}-loan:1", "again", 60)
    assert await cache.delete_pattern(f"{ns}:dashboard:*", also=(f"{ns}-loan:1",)) == 1
    assert await cache.get(f"{ns}-loan:1") is None


async def test_floats_are_refused(cache: Cache) -> None:
    with pytest.raises(TypeError, match="floats are not cached"):
        await cache.set(f"{_ns()}:bad", {"amount": 0.1}, 60)


async def test_cache_aside_loads_once_then_serves_the_cached_value(cache: Cache) -> None:
    ns = _ns()
    calls = 0

    async def load() -> dict[str, Decimal]:
        nonlocal calls
        calls += 1
        return {"total": Decimal("106618.53")}

    first = await cache_get_or_load(cache, f"{ns}:stats", ttl=30, load=load)
    second = await cache_get_or_load(cache, f"{ns}:stats", ttl=30, load=load)
    assert first == second == {"total": "106618.53"}
    assert calls == 1


async def test_redis_pattern_delete_reads_the_family_index_or_scans_never_keys(
    redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # KEYS blocks Redis on a large keyspace; the implementation must never send it. A pattern
    # within a key family reads that family's index; any other pattern scans.
    sent: list[str] = []
    client = redis_asyncio.Redis.from_url(redis_url, decode_responses=True)
    original = client.execute_command

    async def spy(*args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(str(args[0]).upper())
        return await original(*args, **kwargs)

    client.execute_command = spy  # type: ignore[method-assign]
    queue = redis_asyncio.client.Pipeline.pipeline_execute_command

    def queued(pipe, *args, **kwargs):  # type: ignore[no-untyped-def]
        sent.append(str(args[0]).upper())  # a command sent in a pipeline
        return queue(pipe, *args, **kwargs)

    monkeypatch.setattr(redis_asyncio.client.Pipeline, "pipeline_execute_command", queued)
    backend = RedisCache(client)
    ns = _ns()
    await backend.set(f"{ns}:a", 1, 60)
    await backend.set(f"{ns}:b", 2, 60)
    sent.clear()
    assert await backend.delete_pattern(f"{ns}:a*") == 1
    assert "SMEMBERS" in sent and "SCAN" not in sent and "KEYS" not in sent
    assert await client.exists(KEY_PREFIX + f"{ns}:a") == 0
    assert await backend.get(f"{ns}:b") == 2
    assert await client.smembers(INDEX_PREFIX + ns) == {f"{ns}:b"}
    assert 0 < await client.ttl(INDEX_PREFIX + ns) <= 60

    sent.clear()
    assert await backend.delete_pattern(f"{ns[:-1]}*:b") == 1  # the family is a wildcard
    assert "SCAN" in sent and "KEYS" not in sent
    assert await client.exists(KEY_PREFIX + f"{ns}:b") == 0
    await backend.close()


async def test_rate_limit_allows_the_limit_then_refuses_with_retry_after(
    limiter: RateLimiter,
) -> None:
    who = _ns()
    results = [await limiter.hit("5/5minutes", "login", who) for _ in range(6)]
    assert [r.allowed for r in results] == [True] * 5 + [False]
    assert [r.remaining for r in results[:5]] == [4, 3, 2, 1, 0]
    refused = results[-1]
    assert refused.limit == 5
    assert 1 <= refused.retry_after_seconds <= 300
    # Another client is counted separately.
    assert (await limiter.hit("5/5minutes", "login", _ns())).allowed


async def test_rate_limit_window_moves(limiter: RateLimiter) -> None:
    who = _ns()
    assert (await limiter.hit("2/2second", "api", who)).allowed
    assert (await limiter.hit("2/2second", "api", who)).allowed
    assert not (await limiter.hit("2/2second", "api", who)).allowed
    await asyncio.sleep(2.1)
    assert (await limiter.hit("2/2second", "api", who)).allowed


async def test_rate_limit_reset_and_ping(limiter: RateLimiter) -> None:
    who = _ns()
    for _ in range(3):
        await limiter.hit("3/minute", "x", who)
    assert not (await limiter.hit("3/minute", "x", who)).allowed
    await limiter.reset("3/minute", "x", who)
    assert (await limiter.hit("3/minute", "x", who)).allowed
    assert await limiter.ping()


async def test_redis_limits_are_shared_between_instances(redis_url: str) -> None:
    # Two servers behind one Redis share one count; in-process stores could not.
    first, second = RateLimiter.from_url(redis_url), RateLimiter.from_url(redis_url)
    assert first.backend == second.backend == "redis"
    who = _ns()
    assert (await first.hit("2/minute", "shared", who)).allowed
    assert (await second.hit("2/minute", "shared", who)).allowed
    assert not (await first.hit("2/minute", "shared", who)).allowed


async def test_peek_counts_nothing(limiter: RateLimiter) -> None:
    who = _ns()
    for _ in range(5):
        assert (await limiter.peek("2/minute", "failures", who)).allowed
    await limiter.hit("2/minute", "failures", who)
    await limiter.hit("2/minute", "failures", who)
    refused = await limiter.peek("2/minute", "failures", who)
    assert not refused.allowed and 1 <= refused.retry_after_seconds <= 60


async def test_backoff_doubles_after_the_free_failures_and_clears(limiter: RateLimiter) -> None:
    who = _ns()
    waits = [await limiter.backoff_failure("b", who, free=2, max_delay=4) for _ in range(5)]
    assert waits == [0, 1, 2, 4, 4]  # capped at max_delay
    assert 1 <= await limiter.backoff_wait("b", who) <= 4
    assert await limiter.backoff_wait("b", _ns()) == 0  # another key is free
    await limiter.backoff_clear("b", who)
    assert await limiter.backoff_wait("b", who) == 0
    assert await limiter.backoff_failure("b", who, free=2, max_delay=4) == 0


async def test_backoff_wait_ends(limiter: RateLimiter) -> None:
    who = _ns()
    assert await limiter.backoff_failure("b", who, free=1, max_delay=60) == 1
    assert await limiter.backoff_wait("b", who) == 1
    await asyncio.sleep(1.2)
    assert await limiter.backoff_wait("b", who) == 0
