"""`cache_get_or_refresh` (D-221): the entry, else the kept copy answered at once while one
refresh is built in the background, else a build now — on the in-process cache, with a clock
the test moves. (The same calls on Redis: tests/integration/test_cache_ratelimit.py.)"""

from __future__ import annotations

import asyncio
from typing import Any

from namma.kit.background import background_settle
from namma.kit.cache import (
    COPY_PREFIX,
    REFRESHING_PREFIX,
    Answer,
    MemoryCache,
    cache_get_or_refresh,
)

KEY = "dashboard:b1:manager:b1:month"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


class Builds:
    """Counts the builds made now (``load``) and in the background (``refresh``)."""

    def __init__(self) -> None:
        self.version = 1
        self.loads = 0
        self.refreshes = 0
        self.refresh_started = asyncio.Event()
        self.refresh_may_end = asyncio.Event()
        self.refresh_may_end.set()

    async def load(self) -> dict[str, Any]:
        self.loads += 1
        return {"as_of": "2026-12-07", "figures": self.version}

    async def refresh(self) -> dict[str, Any]:
        self.refreshes += 1
        self.refresh_started.set()
        await self.refresh_may_end.wait()
        return {"as_of": "2026-12-07", "figures": self.version}


async def _get(
    cache: MemoryCache,
    builds: Builds,
    clock: Clock,
    *,
    fresh: bool = False,
    refresh: Any = None,
    **options: Any,
) -> Answer:
    return await cache_get_or_refresh(
        cache,
        KEY,
        ttl=30,
        keep=600,
        load=builds.load,
        refresh=refresh or builds.refresh,
        shape="v1",
        fresh=fresh,
        clock=clock,
        **options,
    )


async def test_an_entry_is_answered_until_a_write_drops_it_then_the_kept_copy() -> None:
    clock, builds = Clock(), Builds()
    cache = MemoryCache(clock=clock)
    first = await _get(cache, builds, clock)
    assert first == Answer({"as_of": "2026-12-07", "figures": 1}, clock.now, stale=False)
    assert builds.loads == 1
    clock.now += 5
    again = await _get(cache, builds, clock)
    assert again == first and builds.loads == 1  # the entry: no build

    # A write drops the entry (the caller's invalidation); the figures move to version 2.
    await cache.delete(KEY)
    builds.version = 2
    clock.now += 5
    kept = await _get(cache, builds, clock)
    # The last answer built, at once, marked stale with the time of its figures.
    assert kept == Answer(first.value, first.built_at, stale=True)
    assert builds.loads == 1
    # One refresh in the background, whoever else asks meanwhile.
    for _ in range(3):
        assert (await _get(cache, builds, clock)).stale is True
    assert await background_settle() == 1
    assert builds.refreshes == 1
    refreshed = await _get(cache, builds, clock)
    assert refreshed == Answer({"as_of": "2026-12-07", "figures": 2}, clock.now, stale=False)
    assert (await cache.get(COPY_PREFIX + KEY))["value"] == refreshed.value


async def test_a_refresh_at_most_every_few_seconds_and_a_writer_gets_a_build_now() -> None:
    clock, builds = Clock(), Builds()
    cache = MemoryCache(clock=clock)
    await _get(cache, builds, clock)
    await cache.delete(KEY)
    assert (await _get(cache, builds, clock, refresh_every=10)).stale is True
    await background_settle()
    # Dropped again at once: the copy is answered, but no second refresh within 10 s.
    await cache.delete(KEY)
    assert (await _get(cache, builds, clock, refresh_every=10)).stale is True
    assert await background_settle() == 0 and builds.refreshes == 1
    clock.now += 11
    assert (await _get(cache, builds, clock, refresh_every=10)).stale is True
    assert await background_settle() == 1 and builds.refreshes == 2

    # The person who wrote must see their write: built now, not the copy.
    await cache.delete(KEY)
    builds.version = 3
    mine = await _get(cache, builds, clock, fresh=True)
    assert mine.stale is False and mine.value["figures"] == 3 and builds.loads == 2


async def test_no_copy_older_than_its_keep_or_unusable_or_of_another_shape() -> None:
    clock, builds = Clock(), Builds()
    cache = MemoryCache(clock=clock)
    await _get(cache, builds, clock)
    await cache.delete(KEY)
    clock.now += 601  # the copy has expired
    assert (await _get(cache, builds, clock)).stale is False and builds.loads == 2

    await cache.delete(KEY)
    # Built on another day: never answered (the dashboards' ``as_of``).
    answer = await _get(cache, builds, clock, usable=lambda value: value["as_of"] == "2026-12-08")
    assert answer.stale is False and builds.loads == 3

    # A copy stored by code of another answer shape (before an upgrade) is not answered either.
    await cache.delete(KEY)
    copy = await cache.get(COPY_PREFIX + KEY)
    await cache.set(COPY_PREFIX + KEY, {**copy, "shape": "v0"}, 600)
    assert (await _get(cache, builds, clock)).stale is False and builds.loads == 4
    assert await background_settle() == 0 and builds.refreshes == 0


async def test_a_failed_refresh_stores_nothing_and_a_later_request_tries_again() -> None:
    clock, builds = Clock(), Builds()
    cache = MemoryCache(clock=clock)
    await _get(cache, builds, clock)
    await cache.delete(KEY)

    async def failing() -> dict[str, Any]:
        raise RuntimeError("the database went away")

    answer = await _get(cache, builds, clock, refresh=failing)
    assert answer.stale is True
    assert await background_settle() == 1  # ended (its failure logged), not raised here
    assert await cache.get(KEY) is None  # nothing stored
    # The mark of the refresh lapses; then a request starts another.
    await cache.delete(REFRESHING_PREFIX + KEY)
    assert (await _get(cache, builds, clock)).stale is True
    await background_settle()
    assert (await _get(cache, builds, clock)).stale is False


async def test_the_application_stopping_waits_for_a_refresh_then_cancels_it() -> None:
    clock, builds = Clock(), Builds()
    cache = MemoryCache(clock=clock)
    await _get(cache, builds, clock)
    await cache.delete(KEY)
    builds.refresh_may_end.clear()  # a refresh that does not end by itself
    assert (await _get(cache, builds, clock)).stale is True
    await builds.refresh_started.wait()
    assert await background_settle(0.05) == 1  # waited, then cancelled
    assert await cache.get(KEY) is None
