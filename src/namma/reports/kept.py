"""Sums over the journal kept with the PostgreSQL snapshot they were read in, and brought up to
date with exactly the entries that snapshot could not see (D-204).

A sum over journal entries (the 12-month trend, a scope's portfolio balance) grows with the
book. Read once in full, it is kept in the cache together with the snapshot of the statement
that read it (``pg_current_snapshot()``, in the same statement); a later read adds only the
entries that snapshot could not see: every journal entry records the transaction that posted it
(``journal_entries.posted_xact``, a column default), and ``pg_visible_in_snapshot`` says whether
the kept read saw it. Exact whatever order transactions commit in — an entry with a lower id
that commits after the kept read is still added, which a watermark on entry ids would miss —
with no lock and nothing in the posting path. Entries are never updated or deleted (a
correction is a new entry), so every figure adds up across reads.

What is kept is for one Indian day (the first read of a day reads in full, which also bounds
how long a figure can go unchecked against a full read) and is replaced by each read, which is
exact for its own snapshot whichever of two concurrent reads writes last. Not used: kept by
another database (its oid), or by this one before it went back in time (a restore: its
snapshot is ahead of today's). A read inside a transaction that has written anything keeps
nothing: its own uncommitted entries would be in the sums while its snapshot calls them in
progress, so they would be added twice.

Never kept on a hot standby (a read replica, D-219): there ``pg_current_snapshot()`` lists no
transaction in progress — the standby keeps the primary's running transactions apart from the
snapshot's list (PostgreSQL 15: its ``xip`` is empty; tests/integration/test_replica.py shows
it) —, so a snapshot taken there claims to have seen entries still being posted, and they would
never be added. But a standby may add to what a *primary* kept (D-222): the primary keeps, with
its snapshot, its WAL insert position at that moment; every transaction that snapshot saw as
committed wrote its commit record before that position. A standby that has replayed past it
(checked before its read, so that the read's own snapshot comes after) sees everything the kept
snapshot saw, and the entries it sees beyond them are exactly those the kept snapshot could not
see — ``pg_visible_in_snapshot`` with the primary's snapshot answers that on the standby as on
the primary. Not yet replayed that far (the replica lags), or kept before this rule (no
position): the standby reads in full. ``kept_sums`` asks the session
(`namma.kit.replica.reads_standby`) and checks ``with_snapshot``'s ``standby``.

Use: ``read(unseen_by)`` runs a statement that sums the entries — restricted with
``entries_unseen_by(unseen_by)`` when it is given — wrapped by ``with_snapshot``, and returns a
``SnapshotRead``; ``kept_sums`` does the rest.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import Select, TextClause, literal_column, select, text, true
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Subquery

from namma.kit.cache import Cache
from namma.kit.replica import primary_cache, reads_standby

# Kept at most a day and a bit: a read on another Indian day reads in full anyway.
KEPT_TTL_SECONDS = 26 * 3600

T = TypeVar("T")


def entries_unseen_by(snapshot: str) -> TextClause:
    """The journal entries the snapshot (``pg_snapshot`` as text) could not see. Transactions
    below its xmin had ended when it was taken: the index on ``posted_xact`` finds the few
    entries at or above it, the visibility test the rest."""
    return text(
        "journal_entries.posted_xact >= "
        "pg_snapshot_xmin(CAST(:unseen_by AS pg_snapshot))::text::bigint "
        "AND NOT pg_visible_in_snapshot("
        "journal_entries.posted_xact::text::xid8, CAST(:unseen_by AS pg_snapshot))"
    ).bindparams(unseen_by=snapshot)


def with_snapshot(sums: Subquery) -> Select[Any]:
    """``snapshot``, ``read_only``, ``standby``, ``database``, ``lsn`` and every column of
    ``sums``, one row per row of ``sums`` (one with NULLs when it has none) — the snapshot of
    this very statement (READ COMMITTED takes one per statement), whether this transaction has
    written anything, whether the server is a hot standby, the database's oid, and on a primary
    its WAL insert position (read after the snapshot was taken: at or past every commit it
    saw)."""
    now = select(
        literal_column("pg_current_snapshot()::text").label("snapshot"),
        literal_column("pg_current_xact_id_if_assigned() IS NULL").label("read_only"),
        literal_column("pg_is_in_recovery()").label("standby"),
        literal_column(
            "CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_insert_lsn()::text END"
        ).label("lsn"),
        literal_column(
            "(SELECT oid FROM pg_database WHERE datname = current_database())::text"
        ).label("database"),
    ).subquery("now")
    return select(
        now.c.snapshot, now.c.read_only, now.c.standby, now.c.database, now.c.lsn, *sums.c
    ).select_from(now.outerjoin(sums, true()))


@dataclasses.dataclass(frozen=True)
class SnapshotRead(Generic[T]):
    """What one statement of ``with_snapshot`` read."""

    snapshot: str  # pg_snapshot as text: "xmin:xmax:xip,…"
    database: str
    read_only: bool
    value: T
    standby: bool = False  # read on a hot standby: never kept
    lsn: str | None = None  # on a primary: its WAL insert position (the module's doc)

    @classmethod
    def of(cls, row: Any, value: T) -> SnapshotRead[T]:
        return cls(
            str(row.snapshot),
            str(row.database),
            bool(row.read_only),
            value,
            bool(row.standby),
            None if row.lsn is None else str(row.lsn),
        )


@dataclasses.dataclass(frozen=True)
class _Kept(Generic[T]):
    snapshot: str
    database: str
    value: T
    lsn: str | None  # None: kept before D-222, not usable on a standby


def _xmax(snapshot: str) -> int:
    return int(snapshot.split(":")[1])


def _kept_valid(kept: Any, today: dt.date, decode: Callable[[Any], T]) -> _Kept[T] | None:
    """What is kept for ``today``, or None: nothing kept, kept for another day, or in a shape
    this version does not read (an earlier version's entry after an upgrade: it is read in full
    and replaced, never an error)."""
    if not isinstance(kept, dict) or kept.get("day") != today.isoformat():
        return None
    try:
        snapshot, database = str(kept["snapshot"]), str(kept["database"])
        _xmax(snapshot)
        lsn = kept.get("lsn")
        return _Kept(snapshot, database, decode(kept["value"]), None if lsn is None else str(lsn))
    except (KeyError, IndexError, TypeError, ValueError, ArithmeticError):
        return None


def _kept_here(kept: _Kept[Any], fresh: SnapshotRead[Any]) -> bool:
    """Whether what is kept was read in the database ``fresh`` read, and not in its future: not
    another database, nor this one restored to an earlier moment (its transaction ids went
    back)."""
    return kept.database == fresh.database and _xmax(kept.snapshot) <= _xmax(fresh.snapshot)


async def _replayed_past(session: AsyncSession, lsn: str) -> bool:
    """Whether this standby has replayed the primary's WAL up to ``lsn`` (asked before the read
    that relies on it: that statement's snapshot is taken afterwards)."""
    replayed = await session.scalar(
        text(
            "SELECT pg_is_in_recovery() AND pg_last_wal_replay_lsn() >= CAST(:lsn AS pg_lsn)"
        ).bindparams(lsn=lsn)
    )
    return bool(replayed)


async def kept_sums(
    session: AsyncSession,
    cache: Cache | None,
    key: str,
    *,
    today: dt.date,
    read: Callable[[str | None], Awaitable[SnapshotRead[T]]],
    add: Callable[[T, T], T],
    encode: Callable[[T], Any],
    decode: Callable[[Any], T],
) -> T:
    """The sums ``read(None)`` reads in full, from what ``key`` keeps plus ``read(snapshot)``
    (the entries the kept snapshot could not see), kept again. Without ``cache``: in full. On a
    session that reads a hot standby: what a primary kept plus what the standby sees beyond it,
    once it has replayed that far, else in full; kept never (the module's doc)."""
    if reads_standby(session):
        return await _standby_sums(
            session, cache, key, today=today, read=read, add=add, decode=decode
        )
    kept = _kept_valid(await cache.get(key) if cache is not None else None, today, decode)
    fresh = await read(kept.snapshot if kept is not None else None)
    value = fresh.value
    if fresh.standby:
        # The statement itself says it ran on a standby (a session not marked as reading one):
        # its snapshot is neither added to what a primary kept nor kept (module doc).
        return (await read(None)).value if kept is not None else value
    if kept is not None:
        if not _kept_here(kept, fresh):
            fresh = await read(None)
            value = fresh.value
        else:
            value = add(kept.value, fresh.value)
    if cache is not None and fresh.read_only:
        await cache.set(
            key,
            {
                "day": today.isoformat(),
                "snapshot": fresh.snapshot,
                "database": fresh.database,
                "lsn": fresh.lsn,
                "value": encode(value),
            },
            KEPT_TTL_SECONDS,
        )
    return value


async def _standby_sums(
    session: AsyncSession,
    cache: Cache | None,
    key: str,
    *,
    today: dt.date,
    read: Callable[[str | None], Awaitable[SnapshotRead[T]]],
    add: Callable[[T, T], T],
    decode: Callable[[Any], T],
) -> T:
    # What a primary kept is under the key the primary's readers use, not the replica's own.
    shared = primary_cache(cache) if cache is not None else None
    kept = _kept_valid(await shared.get(key) if shared is not None else None, today, decode)
    if kept is None or kept.lsn is None or not await _replayed_past(session, kept.lsn):
        return (await read(None)).value
    fresh = await read(kept.snapshot)
    if not _kept_here(kept, fresh):
        return (await read(None)).value
    return add(kept.value, fresh.value)
