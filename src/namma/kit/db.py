"""Database access: URLs, the async engine, the per-request session and its transaction boundary.

Services receive an ``AsyncSession`` and never commit; the request (``db_session``) or the job
(``job_session``) commits once, before anything is reported back.
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Generic, LiteralString, TypeVar

import psycopg
import structlog
from fastapi import Request
from psycopg import sql
from sqlalchemy import Enum, MetaData, Table
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key

log = structlog.get_logger(__name__)

# Constraint names are predictable, so migrations can refer to them and `alembic check` is stable.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table_of(model: type[Base]) -> Table:
    """A model's table, for Core statements on a hot path (the unit of work's bookkeeping costs
    more than a one-row write; see docs/decisions.md)."""
    table = model.__table__
    assert isinstance(table, Table)
    return table


def session_adopt(session: AsyncSession, obj: Base) -> None:
    """Make ``obj``, whose row was just inserted with a Core statement, part of the session as
    if it had been loaded: a column never set is taken as NULL (as inserted), not left to be
    loaded on first use (which an async session cannot do)."""
    for column in table_of(type(obj)).columns:
        if column.key not in obj.__dict__:
            setattr(obj, column.key, None)
    make_transient_to_detached(obj)
    session.add(obj)


M = TypeVar("M", bound=Base)


class RowLoader(Generic[M]):
    """ORM objects of ``model`` from rows sent straight from the driver (`raw_connection`):
    for the few reads every collection makes, where SQLAlchemy's per-statement layer costs more
    than the query. ``columns`` is the model's every column, qualified by ``alias``, to put in
    the SELECT; `adopt` turns such a row into the session's object, as a query would."""

    def __init__(self, model: type[M], alias: str) -> None:
        table = table_of(model)
        self.model = model
        self.keys = tuple(column.key for column in table.columns)
        self.columns = sql.SQL(", ").join(
            sql.Identifier(alias, column.name) for column in table.columns
        )
        # The driver reads PostgreSQL enums as text; the model's attributes hold members.
        self._enums = tuple(
            (i, column.type.enum_class)
            for i, column in enumerate(table.columns)
            if isinstance(column.type, Enum) and column.type.enum_class is not None
        )
        self._primary_key = tuple(i for i, column in enumerate(table.columns) if column.primary_key)

    def adopt(self, session: AsyncSession, row: Sequence[Any]) -> M:
        """The session's object for ``row``: the one it holds, brought up to date with the row
        (the caller flushed first, so nothing pending is overwritten), or a new one joined to
        the session as if loaded."""
        values = list(row)
        for i, enum_class in self._enums:
            if values[i] is not None:
                values[i] = enum_class(values[i])
        key = identity_key(self.model, tuple(values[i] for i in self._primary_key))
        held = session.identity_map.get(key)
        if held is not None:
            for name, value in zip(self.keys, values, strict=True):
                set_committed_value(held, name, value)
            return held
        obj = self.model(**dict(zip(self.keys, values, strict=True)))
        make_transient_to_detached(obj)
        session.add(obj)
        return obj


def sql_values(row: LiteralString, count: int) -> LiteralString:
    """``row, row, …`` (``count`` times): the VALUES list of a multi-row INSERT."""
    return ", ".join([row] * count)


def value_enum(cls: type[enum.Enum], name: str) -> Enum:
    """A PostgreSQL enum type that stores the members' values ("active"), not their names."""
    return Enum(cls, name=name, values_callable=lambda e: [m.value for m in e])


def sqlalchemy_url(url: str) -> str:
    """Any PostgreSQL URL as SQLAlchemy wants it for psycopg 3 (``postgresql+psycopg://``)."""
    parsed = make_url(url)
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise ValueError(f"only PostgreSQL is supported, not {parsed.get_backend_name()!r}")
    return parsed.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)


def libpq_url(url: str) -> str:
    """Any PostgreSQL URL as libpq (psycopg, the job engine) wants it (``postgresql://``)."""
    parsed = make_url(sqlalchemy_url(url))
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


def redact_url(url: str) -> str:
    """The URL with its password hidden, for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable database URL>"


# PostgreSQL's JIT compiles a plan when its estimated cost is high: a report's aggregate over
# many rows spent 100-340 ms compiling to save less than it cost (bench/bench_pages.py); our
# statements are short-lived, so it stays off. A random page read is priced as on SSD, where the
# working set lives in memory anyway (the default 4 is a spinning disk's): a branch's dashboard
# then reads its loans by index instead of hashing the whole table, a quarter faster at 100,000
# loans (D-177). work_mem: D-179.
SESSION_OPTIONS = "-c jit=off -c random_page_cost=1.1 -c work_mem=16MB"


def connect_arguments(*, pooled: bool) -> dict[str, Any]:
    """psycopg's connection arguments for the application's connections.

    Direct: the planner settings above, sent at connect. Through a transaction pooler
    (pgBouncer, D-218): neither of the two things that outlive a transaction — pgBouncer 1.18
    refuses the ``options`` startup parameter (the pooler sets these on its own server
    connections: deploy/pgbouncer), and a server-side prepared statement made on one server
    connection is missing on (or collides with another client's on) the next one, so psycopg
    must not prepare (``prepare_threshold=None``).
    """
    if pooled:
        return {"prepare_threshold": None}
    return {"options": SESSION_OPTIONS}


@dataclass
class Database:
    """The application's engine and session factory."""

    url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # The process's cache (set at start-up), handed to every transaction's session so that a
    # command invalidates what it changed after its commit (`transaction_cache`).
    cache: Any = None

    @classmethod
    def connect(
        cls,
        url: str,
        *,
        pool_size: int = 10,
        connect_timeout: int | None = None,
        pooled: bool = False,
    ) -> Database:
        """``pooled``: ``url`` reaches PostgreSQL through a pooler in transaction mode
        (pgBouncer), see `connect_arguments`."""
        engine = create_async_engine(
            sqlalchemy_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            connect_args={
                **connect_arguments(pooled=pooled),
                # A server that may be away (the read replica): fail a connection in time.
                **({"connect_timeout": connect_timeout} if connect_timeout else {}),
            },
        )
        return cls(
            url=url,
            engine=engine,
            sessionmaker=async_sessionmaker(engine, expire_on_commit=False, autoflush=True),
        )

    async def dispose(self) -> None:
        await self.engine.dispose()


AFTER_COMMIT = "namma.after_commit"
CACHE = "namma.cache"


def transaction_cache(session: AsyncSession) -> Any:
    """The cache of the process running this transaction (``namma.kit.cache.Cache``), or None
    where there is none (a command-line tool, a bare test session): nothing is cached there."""
    return session.info.get(CACHE)


BEFORE_COMMIT = "namma.before_commit"


BEFORE_COMMIT_LAST = "namma.before_commit_last"


def before_commit(
    session: AsyncSession,
    key: str,
    callback: Callable[[AsyncSession], Awaitable[object]],
    *,
    last: bool = False,
) -> None:
    """Run ``callback(session)`` once (per ``key``), as the last step of the session's
    transaction, just before it commits; those registered with ``last`` after all the others.

    For writes that take a lock every other writer waits for (the audit chain's append, with
    ``last``): done last, the lock is held only for the commit itself, whatever the command
    did after asking for the write — and whatever other callbacks read before the commit.
    """
    slot = BEFORE_COMMIT_LAST if last else BEFORE_COMMIT
    session.info.setdefault(slot, {}).setdefault(key, callback)


async def _run_before_commit(session: AsyncSession) -> None:
    for slot in (BEFORE_COMMIT, BEFORE_COMMIT_LAST):
        # A callback may ask for another (of the later slot): read the slot only when its turn
        # comes.
        for callback in session.info.pop(slot, {}).values():
            await callback(session)


def after_commit(session: AsyncSession, callback: Callable[[], Awaitable[object]]) -> None:
    """Run ``callback`` once the session's transaction has committed (never if it rolls back).

    For side effects that must not run before the data is visible to others, such as cache
    invalidation: invalidating before the commit would let a concurrent reader cache the old
    rows again.
    """
    session.info.setdefault(AFTER_COMMIT, []).append(callback)


async def _run_after_commit(session: AsyncSession) -> None:
    for callback in session.info.pop(AFTER_COMMIT, []):
        try:
            await callback()
        except Exception:
            # The transaction is committed; a failed follow-up (Redis down) must not turn the
            # answer into an error. Cached entries expire by their TTL anyway.
            log.exception("after_commit.failed")


@asynccontextmanager
async def transaction(db: Database) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit if the block succeeds, roll back on any error."""
    async with db.sessionmaker() as session:
        if db.cache is not None:
            session.info[CACHE] = db.cache
        try:
            yield session
            await _run_before_commit(session)
            await session.commit()
        except BaseException:
            session.info.pop(BEFORE_COMMIT, None)
            session.info.pop(BEFORE_COMMIT_LAST, None)
            session.info.pop(AFTER_COMMIT, None)
            await session.rollback()
            raise
        await _run_after_commit(session)


async def db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """FastAPI dependency: the request's session, committed before the response is sent.

    Use it as ``Depends(db_session, scope="function")``: with the default scope FastAPI runs a
    yield dependency's teardown after the response has gone out, so a failed commit would still
    answer 200. ``SessionDep`` in ``namma.kit.deps`` does this for you.
    """
    database: Database = request.app.state.db
    async with transaction(database) as session:
        yield session


async def raw_connection(session: AsyncSession) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under the session's current transaction.

    Used to enqueue jobs in the same transaction as the business rows, and for the statements
    every collection sends: SQLAlchemy's per-statement layer costs about 0.2 ms of CPU more than
    the driver's own (docs/benchmarks.md), more than most of those statements cost the
    database. A statement sent here does not autoflush (flush first if the session may hold
    changes it must see), and its errors are psycopg's (``psycopg.errors``), not SQLAlchemy's.
    """
    transaction = session.sync_session.get_transaction()
    held = session.info.get(_DRIVER)
    if held is not None and transaction is not None and held[0] is transaction:
        return held[1]  # type: ignore[no-any-return]
    connection = await session.connection()
    raw = await connection.get_raw_connection()
    driver = raw.driver_connection
    if not isinstance(driver, psycopg.AsyncConnection):
        raise TypeError(f"expected a psycopg AsyncConnection, got {type(driver).__name__}")
    # Remembered for the rest of this transaction (a savepoint keeps the same connection; the
    # next transaction may get another one from the pool).
    session.info[_DRIVER] = (session.sync_session.get_transaction(), driver)
    return driver


_DRIVER = "namma.driver_connection"
