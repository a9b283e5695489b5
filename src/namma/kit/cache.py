"""Cache-aside helpers: Redis when ``NAMMA_REDIS_URL`` is set, an in-process store otherwise.

Values are JSON. Money goes in as strings (as the API shows it), never as floats: the encoder
refuses floats so that a Decimal cannot silently become one on the way through the cache.
Pattern invalidation never walks the keyspace on the hot path: Redis keeps, per key family (the
key's first segment: ``dashboard`` of ``dashboard:admin:all:month``), a set of the keys cached in
it, so ``delete_pattern("dashboard:*")`` after every collection reads that set instead of
scanning every key in Redis. A pattern whose family is itself a wildcard falls back to SCAN
(never KEYS, which blocks Redis).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

import redis.asyncio as redis_asyncio
from pydantic import TypeAdapter

from namma.kit.background import background_spawn

KEY_PREFIX = "namma:"
# The set of the keys cached in a family: namma:index:<family> (see the module's docstring).
INDEX_PREFIX = KEY_PREFIX + "index:"


class Cache(Protocol):
    backend: str

    async def get(self, key: str) -> Any | None: ...
    async def get_many(self, keys: Sequence[str]) -> list[Any | None]: ...
    async def exists(self, key: str) -> bool: ...
    async def set(self, key: str, value: Any, ttl: int) -> None: ...
    async def add(self, key: str, value: Any, ttl: int) -> bool: ...
    async def set_if(
        self, guard: str, expected: Any | None, entries: Mapping[str, tuple[Any, int]]
    ) -> bool: ...
    async def delete(self, *keys: str) -> int: ...
    async def delete_pattern(self, pattern: str, *, also: Sequence[str] = ()) -> int: ...
    async def delete_matching(
        self, patterns: Sequence[str], *, also: Sequence[str] = ()
    ) -> int: ...
    async def ping(self) -> bool: ...
    async def close(self) -> None: ...


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    raise TypeError(f"cannot cache a value of type {type(value).__name__}")


def _encode(value: Any) -> str:
    def refuse_float(obj: Any) -> None:
        if isinstance(obj, float):
            raise TypeError("floats are not cached; pass money as Decimal or str")
        if isinstance(obj, dict):
            for item in obj.values():
                refuse_float(item)
        elif isinstance(obj, list | tuple):
            for item in obj:
                refuse_float(item)

    refuse_float(value)
    return json.dumps(value, default=_default, separators=(",", ":"))


# `RedisCache.set_if` in one step: KEYS[1] the guard, ARGV[1] the value it must hold ("": absent);
# then for each further key KEYS[i] its value ARGV[2i-2] and TTL ARGV[2i-1].
_SET_IF = """
local held = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if held then return 0 end
elseif held ~= ARGV[1] then
  return 0
end
for i = 2, #KEYS do
  redis.call('SET', KEYS[i], ARGV[2 * i - 2], 'EX', ARGV[2 * i - 1])
end
return 1
"""


class RedisCache:
    backend = "redis"

    def __init__(self, client: redis_asyncio.Redis) -> None:
        self._redis = client

    @classmethod
    def from_url(cls, url: str) -> RedisCache:
        return cls(redis_asyncio.Redis.from_url(url, decode_responses=True))

    async def get(self, key: str) -> Any | None:
        raw = await self._redis.get(KEY_PREFIX + key)
        return None if raw is None else json.loads(raw)

    async def get_many(self, keys: Sequence[str]) -> list[Any | None]:
        """``get`` of each key, in one round trip (``MGET``)."""
        if not keys:
            return []
        raws = await self._redis.mget([KEY_PREFIX + key for key in keys])
        return [None if raw is None else json.loads(raw) for raw in raws]

    async def exists(self, key: str) -> bool:
        """Whether ``key`` is cached, without reading its value."""
        return bool(await self._redis.exists(KEY_PREFIX + key))

    async def set(self, key: str, value: Any, ttl: int) -> None:
        index = INDEX_PREFIX + key.split(":", 1)[0]
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(KEY_PREFIX + key, _encode(value), ex=ttl)
            pipe.sadd(index, key)
            # The index outlives every key in it, and goes once they all have.
            pipe.expire(index, ttl, nx=True)
            pipe.expire(index, ttl, gt=True)
            await pipe.execute()

    async def add(self, key: str, value: Any, ttl: int) -> bool:
        """Set ``key`` only if it is absent (``SET NX EX``): whether it was set. A mark between
        instances ("one of us refreshes this"), not a cached value: not in its family's index."""
        return bool(await self._redis.set(KEY_PREFIX + key, _encode(value), ex=ttl, nx=True))

    async def set_if(
        self, guard: str, expected: Any | None, entries: Mapping[str, tuple[Any, int]]
    ) -> bool:
        """Set each of ``entries`` (key: (value, TTL)) only if ``guard`` holds ``expected``
        (None: absent) at that moment — one atomic step (a Lua script), so that two writers
        that read the same ``guard`` cannot both set it: whether they were set. The keys are
        not put in their family's index (see `add`)."""
        keys = [KEY_PREFIX + guard, *(KEY_PREFIX + key for key in entries)]
        args: list[str | int] = ["" if expected is None else _encode(expected)]
        for value, ttl in entries.values():
            args += (_encode(value), ttl)
        return bool(await self._redis.eval(_SET_IF, len(keys), *keys, *args))

    async def delete(self, *keys: str) -> int:
        if not keys:
            return 0
        return int(await self._redis.delete(*(KEY_PREFIX + k for k in keys)))

    async def delete_pattern(self, pattern: str, *, also: Sequence[str] = ()) -> int:
        """Delete the keys matching ``pattern`` and the keys ``also`` (with the family's index,
        in the same round trip: every collection invalidates its loan and the dashboards)."""
        return await self.delete_matching((pattern,), also=also)

    async def delete_matching(self, patterns: Sequence[str], *, also: Sequence[str] = ()) -> int:
        """Delete the keys matching any of ``patterns`` and the keys ``also``. Patterns of one
        family (``dashboard:<branch>:*`` and ``dashboard:all:*``: a write's dashboards) cost two
        round trips together, whatever their number."""
        families = {p.partition(":")[0] for p in patterns}
        indexed = all(":" in p for p in patterns) and not any(
            c in family for family in families for c in "*?[\\"
        )
        if indexed and len(families) == 1:
            return await self._delete_indexed(INDEX_PREFIX + families.pop(), patterns, also)
        deleted = await self.delete(*also)
        for pattern in patterns:
            deleted += await self._delete_scanned(pattern)
        return deleted

    async def _delete_scanned(self, pattern: str) -> int:
        deleted = 0
        batch: list[str] = []
        async for key in self._redis.scan_iter(match=KEY_PREFIX + pattern, count=500):
            batch.append(key)
            if len(batch) >= 500:
                deleted += int(await self._redis.unlink(*batch))
                batch.clear()
        if batch:
            deleted += int(await self._redis.unlink(*batch))
        return deleted

    async def _delete_indexed(
        self, index: str, patterns: Sequence[str], also: Sequence[str]
    ) -> int:
        async with self._redis.pipeline(transaction=False) as pipe:
            if also:
                pipe.unlink(*(KEY_PREFIX + key for key in also))
            pipe.smembers(index)
            *unlinked, members = await pipe.execute()
        deleted = int(unlinked[0]) if unlinked else 0
        # The client decodes responses: members are str.
        matching = [
            str(key)
            for key in members
            if any(fnmatch.fnmatchcase(str(key), pattern) for pattern in patterns)
        ]
        if not matching:
            return deleted
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.unlink(*(KEY_PREFIX + key for key in matching))
            pipe.srem(index, *matching)
            unlinked_matching, _ = await pipe.execute()
        return deleted + int(unlinked_matching)

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def close(self) -> None:
        await self._redis.aclose()


class MemoryCache:
    """A per-process cache for a single instance without Redis; entries expire like Redis keys."""

    backend = "memory"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: dict[str, tuple[float, str]] = {}
        self._clock = clock

    async def get(self, key: str) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires_at, raw = entry
        if expires_at <= self._clock():
            del self._entries[key]
            return None
        return json.loads(raw)

    async def get_many(self, keys: Sequence[str]) -> list[Any | None]:
        return [await self.get(key) for key in keys]

    async def exists(self, key: str) -> bool:
        return await self.get(key) is not None

    async def set(self, key: str, value: Any, ttl: int) -> None:
        self._entries[key] = (self._clock() + ttl, _encode(value))

    async def add(self, key: str, value: Any, ttl: int) -> bool:
        if await self.get(key) is not None:
            return False
        await self.set(key, value, ttl)
        return True

    async def set_if(
        self, guard: str, expected: Any | None, entries: Mapping[str, tuple[Any, int]]
    ) -> bool:
        held = await self.get(guard)
        if held != expected:
            return False
        for key, (value, ttl) in entries.items():
            await self.set(key, value, ttl)
        return True

    async def delete(self, *keys: str) -> int:
        return sum(1 for k in keys if self._entries.pop(k, None) is not None)

    async def delete_pattern(self, pattern: str, *, also: Sequence[str] = ()) -> int:
        return await self.delete_matching((pattern,), also=also)

    async def delete_matching(self, patterns: Sequence[str], *, also: Sequence[str] = ()) -> int:
        matching = [k for k in self._entries if any(fnmatch.fnmatchcase(k, p) for p in patterns)]
        for key in matching:
            del self._entries[key]
        return len(matching) + await self.delete(*also)

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        self._entries.clear()


def cache_from_url(redis_url: str | None) -> Cache:
    return RedisCache.from_url(redis_url) if redis_url else MemoryCache()


def shape_of(*types: Any) -> str:
    """A short fingerprint of the JSON shape of ``types`` (response models, or any type pydantic
    can describe), for ``cache_get_or_load``'s ``shape``."""
    schemas = [TypeAdapter(t).json_schema() for t in types]
    return hashlib.sha256(json.dumps(schemas, sort_keys=True).encode()).hexdigest()[:12]


async def cache_get_or_load(
    cache: Cache,
    key: str,
    *,
    ttl: int,
    load: Callable[[], Awaitable[Any]],
    shape: str | None = None,
) -> Any:
    """Cache-aside read: the cached value, or ``load()`` stored for ``ttl`` seconds.

    Either way the caller gets the JSON form (Decimals as strings), so a hit and a miss look
    the same. ``shape`` (``shape_of`` the answer's model): stored with the value, and a value
    stored with another shape is a miss — after an upgrade that adds a field to an answer, the
    entries the old code wrote are loaded afresh instead of failing the new model's validation
    (a 500 until they expired).
    """
    cached = await cache.get(key)
    if cached is not None:
        if shape is None:
            return cached
        if isinstance(cached, dict) and cached.get("shape") == shape and "value" in cached:
            return cached["value"]
    encoded = _encode(await load())
    value = json.loads(encoded)
    await cache.set(key, value if shape is None else {"shape": shape, "value": value}, ttl)
    return value


# A kept answer's copy, served while a new one is built (`cache_get_or_refresh`): its own key
# family, so the invalidation patterns of the answers (``dashboard:<branch>:*``) leave it.
COPY_PREFIX = "copy:"
# The mark of a refresh under way or just done ("refreshing:<key>"), shared by every instance.
REFRESHING_PREFIX = "refreshing:"


@dataclass(frozen=True)
class Answer:
    """An answer from `cache_get_or_refresh`."""

    value: Any  # the JSON form, as `cache_get_or_load` gives it
    built_at: float  # when it was built, seconds since the epoch
    stale: bool  # a kept copy: what was written after ``built_at`` may be missing from it


async def cache_get_or_refresh(
    cache: Cache,
    key: str,
    *,
    ttl: int,
    keep: int,
    load: Callable[[], Awaitable[Any]],
    refresh: Callable[[], Awaitable[Any]],
    shape: str | None = None,
    fresh: bool = False,
    usable: Callable[[Any], bool] = lambda value: True,
    refresh_every: int = 10,
    clock: Callable[[], float] = time.time,
) -> Answer:
    """Cache-aside that answers at once with a kept copy while a new answer is built (the idea
    of HTTP's ``stale-while-revalidate``, RFC 5861) — for answers that cost a lot to build and
    may be slightly behind, the dashboards (D-221):

    1. The entry under ``key``, stored for ``ttl`` seconds and deleted by the writes that move
       it (the caller's invalidation), is served as it is: nothing was written since.
    2. Else, unless ``fresh`` (the caller must see their own writes), a copy of the last answer
       built, kept under ``copy:<key>`` for ``keep`` seconds and left by the invalidation, is
       served at once, marked stale; and ``refresh()`` — a build in its own session, since the
       request's ends with its answer — is started in the background to store a new answer,
       at most once every ``refresh_every`` seconds per key, on whichever instance marks it
       first.
    3. Else ``load()`` is built now and stored under both keys.

    ``usable(value)``: whether a stored answer may be served at all (not built on another
    day). ``shape`` as for `cache_get_or_load`."""

    def unpacked(stored: Any) -> tuple[Any, float] | None:
        if not isinstance(stored, dict) or "value" not in stored or "built_at" not in stored:
            return None  # another format (an older release's)
        if stored.get("shape") != shape or not usable(stored["value"]):
            return None
        return stored["value"], int(stored["built_at"]) / 1000

    current = unpacked(await cache.get(key))
    if current is not None:
        return Answer(current[0], current[1], stale=False)
    if not fresh:
        kept = unpacked(await cache.get(COPY_PREFIX + key))
        if kept is not None and clock() - kept[1] <= keep:
            if await cache.add(REFRESHING_PREFIX + key, 1, refresh_every):
                background_spawn(
                    _answer_store(
                        cache, key, refresh, ttl=ttl, keep=keep, shape=shape, clock=clock
                    ),
                    name=f"refresh {key}",
                )
            return Answer(kept[0], kept[1], stale=True)
    return await _answer_store(cache, key, load, ttl=ttl, keep=keep, shape=shape, clock=clock)


async def _answer_store(
    cache: Cache,
    key: str,
    build: Callable[[], Awaitable[Any]],
    *,
    ttl: int,
    keep: int,
    shape: str | None,
    clock: Callable[[], float],
) -> Answer:
    # The time before the build: a write committed during the build may be missing from it.
    built_at = clock()
    value = json.loads(_encode(await build()))
    # Milliseconds: the cache takes no floats.
    stored = {"shape": shape, "value": value, "built_at": round(built_at * 1000)}
    await cache.set(key, stored, ttl)
    await cache.set(COPY_PREFIX + key, stored, keep)
    return Answer(value, built_at, stale=False)
