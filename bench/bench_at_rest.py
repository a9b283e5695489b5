"""Single requests at rest (issue 20's acceptance): one request at a time, warm, against a real
`namma serve` over HTTP, per request class, each next to a baseline measured in the same run.

    .venv/bin/python bench/bench_at_rest.py [--loans 20000] [--requests 200] [--warm-up 20]
        [--workers 2] [--profile] [--database NAME]

1. Generates the day-load bench's portfolio in a database of its own and starts the same
   deployment (`load_day.portfolio_prepare`, `load_day.deployment_start`: `namma serve
   --workers N` plus one `namma worker`, Redis at NAMMA_BENCH_REDIS), and signs people in
   (`load_day.people_sign_in`).
2. The classes, as the day mix sends them (`load_day.request_for`), from one person each (the
   first agent, the first manager): loan list (a manager's `/api/loans?limit=20`), loan,
   schedule, collection (POST 1.00, a fresh Idempotency-Key each), dashboard (the manager's),
   sheet (the agent's collection sheet for today). ``--warm-up`` requests of every class, then
   ``--requests`` of each class one after the other on one keep-alive connection: p50/p95.
3. Baselines, in the same run: for a read, its main SQL statement (the slowest one the request
   sends through the engine, recorded in this process by the application itself, as
   `bench_pages` does) re-run directly on the same parameters; for a collection, the statement
   sequence one `POST /api/collections` sends, straight through the driver
   (`bench_collections.collection_baseline`) on the agent's loans. Printed: p50/p95 of both
   and the ratio p50 / baseline p50.
4. ``--profile``: cProfile over ``--requests`` loan lists, loans and collections sent to the
   application in this process (httpx's ASGI transport): the top functions by own time and
   the application's by cumulative time.

Results, the machine and the load average go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import io
import logging
import os
import pstats
import random
import subprocess
import time
import uuid
from typing import Any

import httpx
import psycopg
from asgi_lifespan import LifespanManager
from bench_cob import with_database
from bench_collections import AMOUNT, REDIS, collection_baseline, server_cpu_seconds
from bench_pages import Statement, main_query_times, p, statements_recorded
from load_day import (
    BENCH_SECRET_KEY,
    MIX,
    SERVER,
    Connections,
    People,
    deployment_start,
    people_sign_in,
    portfolio_prepare,
    process_stop,
    request_for,
)
from machine import machine

from namma.app import create_app
from namma.config import Settings
from namma.kit.db import libpq_url
from namma.kit.embedded import create_database, drop_database
from namma.kit.migrations import migrate_upgrade

CLASSES = ("loan list", "loan", "schedule", "collection", "dashboard", "sheet")


def one_each(people: People) -> People:
    """The first agent and the first manager (and no customer): every class from one person."""
    return People(people.agents[:1], people.managers[:1], [])


async def http_measure(
    base: str, people: People, warm_up: int, requests: int, sheets: int, server: int
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Each class's latencies, requests one at a time on one keep-alive connection (``sheets``
    of the collection sheet, which takes far longer than the others), and the CPU seconds of
    the server's processes (session ``server``) per measured request."""
    rng = random.Random(20)
    connections = Connections(base)
    latencies: dict[str, list[float]] = {kind: [] for kind in CLASSES}
    cpu: dict[str, float] = {}
    try:
        for kind in CLASSES:
            cpu_before = 0.0
            for n in range(warm_up + requests):
                if n == warm_up:
                    cpu_before = server_cpu_seconds(server)
                if kind == "sheet" and n >= warm_up + sheets:
                    break
                method, path, body, headers = request_for(kind, people, rng, MIX)
                started = time.perf_counter()
                status, data = await connections.send(method, path, body, headers)
                elapsed = time.perf_counter() - started
                if status >= 400:
                    raise SystemExit(f"{kind}: {method} {path} answered {status} {data[:200]!r}")
                if n >= warm_up:
                    latencies[kind].append(elapsed)
            cpu[kind] = (server_cpu_seconds(server) - cpu_before) / len(latencies[kind])
    finally:
        await connections.close()
    return latencies, cpu


def with_content_type(
    request: tuple[str, str, bytes | None, dict[str, str]],
) -> tuple[str, str, bytes | None, dict[str, str]]:
    """The request with the JSON content type `load_day.HttpConnection` adds to a body."""
    method, path, body, headers = request
    if body is not None:
        headers = {**headers, "Content-Type": "application/json"}
    return method, path, body, headers


def in_process_app(url: str, key: str) -> Any:
    """The application in this process, on the bench's database and Redis, with the server's
    signing key (the people's tokens are good here too)."""
    settings = Settings(
        env="development",
        database_url=url,
        redis_url=REDIS,
        secret_key=key,
        inprocess_worker=False,
        migrate_on_start=False,
        rate_limit_reads="1000000/minute",
        rate_limit_writes="1000000/minute",
        rate_limit_money="1000000/minute",
        log_level=os.environ.get("NAMMA_BENCH_LOG_LEVEL", "WARNING"),
    )
    return create_app(settings)


async def statements_sent(
    app: Any, client: httpx.AsyncClient, request: tuple[str, str, bytes | None, dict[str, str]]
) -> list[Statement]:
    """The statements one request sends through the application's engine, each timed."""
    method, path, body, headers = with_content_type(request)
    with statements_recorded(app) as seen:
        response = await client.request(method, path, content=body, headers=headers)
        assert response.status_code < 400, (path, response.status_code, response.text[:200])
    return seen


async def read_baselines(
    app: Any, client: httpx.AsyncClient, people: People, repeat: int
) -> dict[str, tuple[list[float], int, str]]:
    """Each read class's main statement (the slowest it sends), re-run ``repeat`` times: its
    times, the number of statements the request sent through the engine, and the statement."""
    rng = random.Random(21)
    out = {}
    for kind in CLASSES:
        if kind == "collection":
            continue
        request = request_for(kind, people, rng, MIX)
        await statements_sent(app, client, request)  # as warm as the server's
        statements = await statements_sent(app, client, request)
        cold = ""
        if not statements:  # answered from the cache (the dashboard): its statements when cold
            await app.state.cache.delete_pattern("*")
            statements = await statements_sent(app, client, request)
            cold = "(cold) "
        main = max(statements, key=lambda s: s.seconds)
        times = await main_query_times(app, main, repeat)
        out[kind] = (times, len(statements), cold + " ".join(main.sql.split())[:80])
    return out


async def collection_baselines(url: str, people: People, repeat: int) -> list[float]:
    """One collection's statements straight through the driver, ``repeat`` times, as the agent
    on those of the agent's loans with an installment still owing 1.00 of interest (what the
    baseline pays; after the HTTP requests: the agent's cash account exists)."""
    agent = people.agents[0]
    times = []
    async with await psycopg.AsyncConnection.connect(libpq_url(url)) as conn:
        found = await (
            await conn.execute(
                "SELECT (SELECT id FROM ledger_accounts WHERE kind = 'agent_cash' "
                "AND agent_id = %s), (SELECT id FROM ledger_accounts WHERE kind = "
                "'interest_income' AND branch_id IS NULL AND agent_id IS NULL)",
                (agent.user_id,),
            )
        ).fetchone()
        assert found is not None and None not in found, "the HTTP collections come first"
        accounts = (str(found[0]), str(found[1]))
        # Each loan as many times as its installments owe whole rupees of interest.
        owing = await (
            await conn.execute(
                "SELECT loan_id::text, sum(floor(interest_due - interest_paid - interest_waived))"
                " FROM loan_installments WHERE loan_id = ANY(%s)"
                " AND interest_due - interest_paid - interest_waived >= %s GROUP BY loan_id",
                ([uuid.UUID(i) for i in agent.loans], AMOUNT),
            )
        ).fetchall()
        await conn.commit()
        loans = [loan for loan, units in owing for _ in range(int(units))][:repeat]
        assert len(loans) == repeat, "the agent's loans owe too little interest"
        random.Random(23).shuffle(loans)
        for loan in loans:
            started = time.perf_counter()
            await collection_baseline(conn, agent.user_id, loan, accounts)
            times.append(time.perf_counter() - started)
    return times


async def profile(app: Any, client: httpx.AsyncClient, people: People, requests: int) -> None:
    """cProfile over ``requests`` requests of the loan list, a loan and a collection, each
    class in this process: the top functions by their own time, and the application's own
    functions (and the framework's request handling) by cumulative time."""
    rng = random.Random(22)
    for kind in ("loan list", "loan", "collection"):
        batch = [
            with_content_type(request_for(kind, people, rng, MIX)) for _ in range(requests + 5)
        ]
        for method, path, body, headers in batch[:5]:  # warm
            await client.request(method, path, content=body, headers=headers)
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.enable()
        for method, path, body, headers in batch[5:]:
            response = await client.request(method, path, content=body, headers=headers)
            assert response.status_code < 400, response.text[:200]
        profiler.disable()
        each = (time.perf_counter() - started) / requests * 1000
        print(f"\n--- profile: {kind}, {each:.2f} ms a request in-process (under cProfile)")
        for order, restriction, count in (
            ("tottime", "", 20),
            ("cumulative", "namma/|fastapi/routing|sqlalchemy/ext/asyncio/session", 30),
        ):
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(restriction, count)
            lines = out.getvalue().splitlines()
            start = next(i for i, line in enumerate(lines) if "ncalls" in line)
            print("\n".join(lines[start : start + count + 1]))


async def in_process(url: str, key: str, people: People, requests: int, profiling: bool) -> Any:
    app = in_process_app(url, key)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            reads = await read_baselines(app, client, people, requests)
            if profiling:
                await profile(app, client, people, requests)
    return reads


def main() -> None:
    logging.getLogger("httpx").setLevel(logging.WARNING)
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=20_000)
    parser.add_argument("--requests", type=int, default=200, help="measured per class")
    parser.add_argument("--warm-up", type=int, default=20, help="per class, not measured")
    parser.add_argument("--sheets", type=int, default=40, help="sheets measured")
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--db-pool-size", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="cProfile, in this process")
    parser.add_argument(
        "--database", help="a database kept by `load_day.py --keep`: no generation, kept"
    )
    args = parser.parse_args()
    generated = f"loans {args.loans:,}" if args.database is None else f"database {args.database}"
    print(f"{machine()}\n{generated}; {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC")
    name = args.database or f"namma_bench_rest_{uuid.uuid4().hex[:8]}"
    if args.database is None:
        create_database(SERVER, name)
    url, key = with_database(SERVER, name), BENCH_SECRET_KEY
    processes: list[subprocess.Popen[bytes]] = []
    try:
        if args.database is None:
            portfolio_prepare(url, args.loans)
        else:
            migrate_upgrade(url)  # a kept database gets this checkout's migrations
        base = deployment_start(url, key, args.workers, args.db_pool_size, processes)
        people = one_each(asyncio.run(people_sign_in(url, key, 0)))
        agent = people.agents[0]
        print(
            f"agent with {len(agent.loans)} active loans; server {base}, {args.workers} processes"
        )
        latencies, cpu = asyncio.run(
            http_measure(base, people, args.warm_up, args.requests, args.sheets, processes[0].pid)
        )
        for kind in CLASSES:
            print(
                f"  {kind:11} HTTP p50 {p(latencies[kind], 0.5):8.2f}  "
                f"p95 {p(latencies[kind], 0.95):8.2f} ms  server CPU {cpu[kind] * 1000:7.2f} ms",
                flush=True,
            )
        collection = asyncio.run(collection_baselines(url, people, args.requests))
        reads = asyncio.run(in_process(url, key, people, args.requests, args.profile))
    finally:
        for process in processes:
            process_stop(process)
        if args.database is None:
            drop_database(SERVER, name)

    print(f"\nload average at the end {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(
        f"{'class':11} {'p50 ms':>7} {'p95 ms':>7}  {'server CPU ms':>13}   "
        f"{'baseline p50':>12} {'p95':>6}  {'ratio p50':>9}  statements  baseline"
    )
    for kind in CLASSES:
        if kind == "collection":
            base_times, count, what = collection, 0, "a collection's statements via the driver"
        else:
            base_times, count, what = reads[kind]
        http = latencies[kind]
        print(
            f"{kind:11} {p(http, 0.5):7.2f} {p(http, 0.95):7.2f}  {cpu[kind] * 1000:13.2f}   "
            f"{p(base_times, 0.5):12.2f} "
            f"{p(base_times, 0.95):6.2f}  {p(http, 0.5) / max(p(base_times, 0.5), 0.001):9.1f}  "
            f"{count or '-':>10}  {what}"
        )


if __name__ == "__main__":
    main()
