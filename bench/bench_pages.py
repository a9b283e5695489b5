"""Every list and dashboard page of the back office, as a Manager and as an Admin, over a
generated portfolio, against each page's main query run directly, in the same run.

    .venv/bin/python bench/bench_pages.py [--loans 100000] [--warm 40] [--cold 8]
        [--keep | --database NAME]

1. Creates its own database on the server of NAMMA_BENCH_DATABASE_URL (default
   postgresql://postgres@127.0.0.1:5432/test, the maintenance database), migrates it and
   generates the close-of-business bench's portfolio (`bench_cob.portfolio_generate`: ``--loans``
   weekly loans of 50 installments over one branch per 5,000 loans, an agent per 400 loans, most
   borrowers up to date and the rest 1 to 30 installments behind, a day's collections), then a
   Manager of the first branch and an Admin. Redis: NAMMA_BENCH_REDIS (default
   redis://127.0.0.1:6379/0).
2. Runs the application in this process (`create_app`, requests through httpx's ASGI transport:
   the same middleware, sessions, scope, queries, cache and templates as `namma serve`, without
   the network hop) and signs each person in with a real session.
3. For each page of the person's navigation (`namma.web.viewer.NAVIGATION`; a page not built
   yet answers 404 and is listed as such): ``--cold`` requests each after emptying the cache,
   then ``--warm`` requests with the cache as the page leaves it. During one cold request it
   records every SQL statement the page sends (count and time); the slowest is the page's main
   query, which is then run ``--warm`` times directly on the same engine with the same
   parameters: the baseline.
4. Prints per page: statements, cold p95, warm p50/p95, the main query's p50/p95 and the ratio
   warm p95 / main query p95, and whether the page meets issue 18's targets (p95 < 300 ms warm,
   < 800 ms cold). Results and the machine go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import logging
import os
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from asgi_lifespan import LifespanManager
from bench_cob import portfolio_generate, with_database
from machine import machine
from sqlalchemy import event, select, text

from namma.app import create_app
from namma.audit.service import AuditActor
from namma.auth.service import session_issue
from namma.config import Settings
from namma.kit.db import transaction
from namma.kit.embedded import create_database, drop_database
from namma.kit.migrations import migrate_upgrade
from namma.models import Role, User
from namma.web.viewer import NAVIGATION

SERVER = os.environ.get("NAMMA_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
REDIS = os.environ.get("NAMMA_BENCH_REDIS", "redis://127.0.0.1:6379/0")
WARM_TARGET_MS = 300.0
COLD_TARGET_MS = 800.0


@dataclass
class Statement:
    sql: str
    parameters: Any
    seconds: float


@dataclass
class PageResult:
    role: str
    path: str
    status: int
    statements: int = 0
    cold: list[float] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    main: list[float] = field(default_factory=list)
    main_sql: str = ""


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


async def people_create(app: Any) -> dict[Role, User]:
    """An Admin, and a Manager of the generated portfolio's first branch (the bench's portfolio
    has agents and customers only); the ones of an earlier run on a kept database, if any."""
    async with transaction(app.state.db) as session:
        earlier = {
            user.role: user
            for user in await session.scalars(
                select(User).where(User.email.in_(("admin@bench.example", "manager@bench.example")))
            )
        }
        if len(earlier) == 2:
            return earlier
        branch_id = (
            await session.execute(text("SELECT id FROM branches WHERE code = 'B00001'"))
        ).scalar_one()
        people = {
            Role.ADMIN: User(
                name="Bench Admin", role=Role.ADMIN, email="admin@bench.example", password_hash="!"
            ),
            Role.MANAGER: User(
                name="Bench Manager",
                role=Role.MANAGER,
                branch_id=branch_id,
                email="manager@bench.example",
                password_hash="!",
            ),
        }
        for user in people.values():
            user.must_change_password = False
            session.add(user)
    return people


async def signed_in_client(app: Any, user: User) -> httpx.AsyncClient:
    async with transaction(app.state.db) as session:
        fresh = await session.get(User, user.id)
        assert fresh is not None
        issued = await session_issue(
            session,
            user=fresh,
            secret_key=app.state.settings.secret_key.get_secret_value(),
            actor=AuditActor(ip="127.0.0.1"),
            method="bench",
        )
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    client = httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=60)
    client.cookies.set("access_token", issued.access_token)
    client.cookies.set("csrf_token", issued.csrf_token)
    return client


async def timed_get(client: httpx.AsyncClient, path: str) -> tuple[int, float]:
    started = time.perf_counter()
    response = await client.get(path)
    return response.status_code, time.perf_counter() - started


@contextlib.contextmanager
def statements_recorded(app: Any) -> Iterator[list[Statement]]:
    """The SQL statements the application sends through its engine while the block runs, each
    with its parameters and time (appended to the list it yields)."""
    engine = app.state.db.engine.sync_engine
    seen: list[Statement] = []
    started: dict[int, float] = {}

    def before(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        started[id(cursor)] = time.perf_counter()

    def after(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        elapsed = time.perf_counter() - started.pop(id(cursor), time.perf_counter())
        seen.append(Statement(statement, parameters, elapsed))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)


async def statements_of(app: Any, client: httpx.AsyncClient, path: str) -> list[Statement]:
    """The SQL statements one request of ``path`` sends, each with its parameters and time."""
    with statements_recorded(app) as seen:
        await client.get(path)
    return seen


async def main_query_times(app: Any, statement: Statement, repeat: int) -> list[float]:
    """The page's slowest statement, sent directly on the application's engine: the baseline."""
    times = []
    async with app.state.db.engine.connect() as conn:
        for _ in range(repeat):
            started = time.perf_counter()
            result = await conn.exec_driver_sql(statement.sql, statement.parameters)
            if result.returns_rows:
                result.fetchall()
            times.append(time.perf_counter() - started)
        await conn.rollback()
    return times


async def page_measure(
    app: Any, client: httpx.AsyncClient, role: str, path: str, warm: int, cold: int
) -> PageResult:
    status, _ = await timed_get(client, path)  # templates compiled, connections open
    result = PageResult(role=role, path=path, status=status)
    if status != 200:
        return result
    for _ in range(cold):
        await app.state.cache.delete_pattern("*")
        status, seconds = await timed_get(client, path)
        assert status == 200, (path, status)
        result.cold.append(seconds)
    await app.state.cache.delete_pattern("*")
    statements = await statements_of(app, client, path)
    result.statements = len(statements)
    for _ in range(warm):
        status, seconds = await timed_get(client, path)
        assert status == 200, (path, status)
        result.warm.append(seconds)
    main = max(statements, key=lambda s: s.seconds)
    result.main_sql = " ".join(main.sql.split())[:90]
    result.main = await main_query_times(app, main, warm)
    return result


async def run(url: str, warm: int, cold: int) -> list[PageResult]:
    settings = Settings(
        env="development",
        database_url=url,
        redis_url=REDIS,
        inprocess_worker=False,
        migrate_on_start=False,
        rate_limit_reads="1000000/minute",
        rate_limit_writes="1000000/minute",
        log_level=os.environ.get("NAMMA_BENCH_LOG_LEVEL", "WARNING"),
    )
    app = create_app(settings)
    results: list[PageResult] = []
    async with LifespanManager(app):
        people = await people_create(app)
        for role in (Role.MANAGER, Role.ADMIN):
            client = await signed_in_client(app, people[role])
            async with client:
                for item in NAVIGATION[role]:
                    result = await page_measure(app, client, role.value, item.href, warm, cold)
                    results.append(result)
                    print(line(result), flush=True)
    return results


def line(r: PageResult) -> str:
    if r.status != 200:
        return f"  {r.role:8} {r.path:24} {'not built' if r.status == 404 else r.status}"
    cold95, warm50, warm95 = p(r.cold, 0.95), p(r.warm, 0.5), p(r.warm, 0.95)
    main50, main95 = p(r.main, 0.5), p(r.main, 0.95)
    ok = warm95 < WARM_TARGET_MS and cold95 < COLD_TARGET_MS
    return (
        f"  {r.role:8} {r.path:24} {r.statements:3} stmts  cold p95 {cold95:7.1f}  "
        f"warm p50 {warm50:6.1f} p95 {warm95:6.1f}  main query p50 {main50:6.1f} "
        f"p95 {main95:6.1f}  ratio {warm95 / max(main95, 0.001):5.1f}  "
        f"{'ok' if ok else 'OVER TARGET'}"
    )


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--warm", type=int, default=40, help="warm requests per page")
    parser.add_argument("--cold", type=int, default=8, help="requests per page, cache emptied")
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    parser.add_argument(
        "--database", help="a database kept by an earlier run (--keep): no generation"
    )
    args = parser.parse_args()
    print(f"{machine()}\nloans {args.loans:,}; {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    name = args.database or f"namma_bench_pages_{uuid.uuid4().hex[:8]}"
    url = with_database(SERVER, name)
    if args.database is None:
        create_database(SERVER, name)
    try:
        started = time.perf_counter()
        migrate_upgrade(url)  # a kept database gets this checkout's migrations
        if args.database is None:
            portfolio_generate(url, args.loans)
            print(f"portfolio generated in {time.perf_counter() - started:.0f} s")
        results = asyncio.run(run(url, args.warm, args.cold))
    finally:
        if args.keep or args.database:
            print(f"database kept: {name}")
        else:
            drop_database(SERVER, name)
    measured = [r for r in results if r.status == 200]
    over = [r for r in measured if not line(r).endswith("ok")]
    print(
        f"{len(measured)} pages measured, {len(results) - len(measured)} not built; "
        f"median warm p95 {statistics.median(p(r.warm, 0.95) for r in measured):.1f} ms; "
        f"{len(over)} over target"
        if measured
        else "no page measured"
    )
    sys.exit(1 if over else 0)


if __name__ == "__main__":
    main()
