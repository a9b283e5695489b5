"""A day's load, open loop: requests arrive at a set rate whatever the server's speed (as people
do), in the mix of an MFI's day, against any URL; the highest rate that keeps p99 ≤ 250 ms with no
errors.

    .venv/bin/python bench/load_day.py [--loans 100000] [--rates 10,20,35,50,75,100]
        [--seconds 60] [--workers 2] [--url URL --database-url URL --secret-key KEY]
        [--keep | --database NAME] [--pages] [--warm-up SECONDS]

1. Without ``--url``: creates a database on NAMMA_BENCH_DATABASE_URL's server (default
   postgresql://postgres@127.0.0.1:5432/test), migrates it, generates the close-of-business
   bench's portfolio (`bench_cob.portfolio_generate`: ``--loans`` weekly loans and customers, a
   branch per 5,000 loans, an agent per 400), adds a Manager per branch and a sign-in for one
   customer in 20, and starts `namma serve --workers N` plus one `namma worker` on it (Redis at
   NAMMA_BENCH_REDIS, rate limits raised). With ``--url`` it drives a running deployment (the
   scale-out's nginx) whose database is ``--database-url`` and whose signing key is
   ``--secret-key``; the portfolio must be there already.
   Then the morning's state: without last night's close for every loan (a generated
   portfolio, or a kept one closed for a later date), the close for yesterday runs first
   (``business_morning``); the worker's scheduled close is off during the run.
2. People sign in by sessions issued through `namma.auth.service.session_issue` (the server's
   own code; password hashing is measured by the login bench, not here).
3. The mix (issue 20): 80 % agents — their collection sheet, a loan, its schedule, a collection
   (1.00 on one of their loans, a fresh Idempotency-Key) in the ratio 2:2:2:2; 10 % managers — the
   dashboard and the loan list; 5 % customers — their dashboard; 5 % a report (PAR, JSON). Each
   arrival is a request at its scheduled time (Poisson arrivals at the offered rate), sent on an
   idle keep-alive connection or a new one (``--pages``: half of the reads to the web pages
   the same people use instead, ``MIX_WITH_PAGES``); its latency counts from the scheduled
   time, so a server that falls behind shows it. A request not answered in 5 s is a failure.
4. With ``--warm-up``, first and not counted: each person's first opening of the app (every
   agent's sheet, every Manager's dashboard, every customer's home; and their pages with
   ``--pages``), four at a time, then that many seconds of the mix at the first rate — what a
   run that starts cold pays at its first rate (the morning's first builds). Then for each
   rate, ``--seconds`` long: offered, completed, failed, p50/p95/p99 overall and per class,
   and CPU seconds per request of the server, the worker and PostgreSQL (all postgres
   processes of the machine: run it on a quiet one). Then `namma ledger check` on the
   database.

Results and the machine go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
from bench_cob import portfolio_generate, with_database
from bench_collections import REDIS, HttpConnection, server_cpu_seconds, start_server
from machine import machine
from sqlalchemy import text

from namma.audit.service import AuditActor
from namma.auth.service import session_issue
from namma.kit.clock import today_india
from namma.kit.db import Database, libpq_url, transaction
from namma.kit.embedded import create_database, drop_database
from namma.kit.migrations import migrate_upgrade
from namma.models import User

SERVER = os.environ.get("NAMMA_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
P99_TARGET_MS = 250.0
TIMEOUT_SECONDS = 5.0
KEEP_ALIVE_REUSE_SECONDS = 4.0  # under the server's 5 s keep-alive
BENCH_SECRET_KEY = "load-day-bench-signing-key-" + "x" * 32  # a bench database only

# class → (share of arrivals, who sends it)
MIX: dict[str, tuple[float, str]] = {
    "sheet": (0.20, "agent"),
    "loan": (0.20, "agent"),
    "schedule": (0.20, "agent"),
    "collection": (0.20, "agent"),
    "dashboard": (0.05, "manager"),
    "loan list": (0.05, "manager"),
    "customer": (0.05, "customer"),
    "report": (0.05, "manager"),
}
# ``--pages`` (issue 21, point 4): half of each person's reads go to the pages they use instead
# of the API — the agent's sheet and loan pages, the Manager's dashboard and loan list pages,
# the customer's home page; collections, schedules and reports stay API requests (the agent's
# phone posts its payments to the API, D-170).
MIX_WITH_PAGES: dict[str, tuple[float, str]] = {
    "sheet": (0.10, "agent"),
    "sheet page": (0.10, "agent"),
    "loan": (0.10, "agent"),
    "loan page": (0.10, "agent"),
    "schedule": (0.20, "agent"),
    "collection": (0.20, "agent"),
    "dashboard": (0.025, "manager"),
    "dashboard page": (0.025, "manager"),
    "loan list": (0.025, "manager"),
    "loan list page": (0.025, "manager"),
    "customer page": (0.05, "customer"),
    "report": (0.05, "manager"),
}
PAGES = {
    "sheet page": "/agent/sheet",
    "dashboard page": "/manager",
    "loan list page": "/office/loans",
    "customer page": "/customer",
}


@dataclass
class Person:
    token: str
    user_id: str = ""
    loans: list[str] = field(default_factory=list)  # an agent's active loans


@dataclass
class People:
    agents: list[Person]
    managers: list[Person]
    customers: list[Person]


@dataclass
class RateResult:
    rate: float
    offered: int = 0
    completed: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    cpu: dict[str, float] = field(default_factory=dict)

    def all_latencies(self) -> list[float]:
        return [x for values in self.latencies.values() for x in values]

    @property
    def passed(self) -> bool:
        return self.failed == 0 and percentile(self.all_latencies(), 0.99) <= P99_TARGET_MS


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000


# --- the people ----------------------------------------------------------------------------------


def people_add(url: str) -> None:
    """A Manager per branch and a sign-in for one customer in 20 (the generated portfolio has
    agents and customers only)."""
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(
            "INSERT INTO users (id, name, role, branch_id, email, password_hash, is_active,"
            " must_change_password)"
            " SELECT gen_random_uuid(), 'Manager ' || code, 'manager', id,"
            " 'manager.' || lower(code) || '@bench.example', '!', true, false"
            " FROM branches WHERE code LIKE 'B%'"
        )
        conn.execute(
            "WITH picked AS (SELECT id, name, branch_id, gen_random_uuid() AS user_id"
            "   FROM customers WHERE hashtext(id::text) % 20 = 0),"
            " made AS (INSERT INTO users (id, name, role, branch_id, email, password_hash,"
            "   is_active, must_change_password)"
            "   SELECT user_id, name, 'customer', branch_id, 'c.' || id || '@bench.example', '!',"
            "   true, false FROM picked)"
            " UPDATE customers c SET user_id = p.user_id FROM picked p WHERE c.id = p.id"
        )
        conn.commit()


def ledger_open(url: str) -> None:
    """The generated portfolio's opening balances: per loan, Dr the loan portfolio (tagged with
    the loan) and Cr the bench's cash, so that the portfolio balance equals each loan's
    outstanding principal and `namma ledger check` holds before and after the run."""
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(
            "WITH gap AS ("
            "  SELECT l.id AS loan_id, l.branch_id,"
            "         l.outstanding_principal - coalesce(sum(jl.debit - jl.credit), 0) AS amount"
            "    FROM loans l"
            "    LEFT JOIN journal_lines jl ON jl.loan_id = l.id"
            "     AND jl.account_id = md5('portfolio')::uuid"
            "   WHERE l.disbursed_on IS NOT NULL"
            "   GROUP BY l.id"
            "  HAVING l.outstanding_principal - coalesce(sum(jl.debit - jl.credit), 0) <> 0),"
            " entries AS ("
            "  INSERT INTO journal_entries (entry_date, kind, branch_id, loan_id, memo)"
            "  SELECT current_date - 421, 'opening_balance', branch_id, loan_id,"
            "         'Opening balance (bench)' FROM gap"
            "  RETURNING id, loan_id)"
            " INSERT INTO journal_lines (entry_id, account_id, debit, credit, loan_id)"
            " SELECT e.id, a.account, a.debit, a.credit, a.loan_id"
            "   FROM entries e JOIN gap g ON g.loan_id = e.loan_id"
            "  CROSS JOIN LATERAL (VALUES"
            "    (md5('portfolio')::uuid, greatest(g.amount, 0), greatest(-g.amount, 0),"
            "     e.loan_id),"
            "    (md5('cash')::uuid, greatest(-g.amount, 0), greatest(g.amount, 0), NULL::uuid)"
            "  ) AS a (account, debit, credit, loan_id)"
        )
        conn.commit()


async def people_sign_in(url: str, secret_key: str, limit: int) -> People:
    """Sessions for every agent with loans, every manager, and up to ``limit`` customers."""
    db = Database.connect(url, pool_size=2)
    try:
        async with transaction(db) as session:
            rows = (
                await session.execute(
                    text(
                        "SELECT u.id, u.role::text,"
                        " array_remove(array_agg(l.id::text), NULL) AS loans"
                        " FROM users u"
                        " LEFT JOIN agent_assignments a ON a.agent_id = u.id AND u.role = 'agent'"
                        " LEFT JOIN loans l ON l.customer_id = a.customer_id"
                        "  AND l.status = 'active' AND l.outstanding_principal > 0"
                        " WHERE u.email LIKE '%@bench.example' AND u.is_active"
                        " GROUP BY u.id, u.role"
                    )
                )
            ).all()
        people = People([], [], [])
        async with transaction(db) as session:
            for user_id, role, loans in rows:
                if role not in ("agent", "manager", "customer"):
                    continue  # an Admin another bench added to a kept database
                if role == "agent" and not loans:
                    continue
                if role == "customer" and len(people.customers) >= limit:
                    continue
                user = await session.get(User, user_id)
                assert user is not None
                issued = await session_issue(
                    session,
                    user=user,
                    secret_key=secret_key,
                    actor=AuditActor(ip="127.0.0.1"),
                    method="bench",
                )
                person = Person(issued.access_token, str(user_id), list(loans))
                {"agent": people.agents, "manager": people.managers, "customer": people.customers}[
                    role
                ].append(person)
        return people
    finally:
        await db.dispose()


# --- the requests ------------------------------------------------------------------------------


def request_for(
    kind: str, people: People, rng: random.Random, mix: dict[str, tuple[float, str]]
) -> tuple[str, str, bytes | None, dict[str, str]]:
    """(method, path, body, headers) of one arrival of ``kind``; a page is asked for with the
    same bearer token (the pages take it as the API does)."""
    _, who = mix[kind]
    pool = {"agent": people.agents, "manager": people.managers, "customer": people.customers}[who]
    person = rng.choice(pool)
    headers = {"Authorization": f"Bearer {person.token}"}
    if kind in PAGES:
        return "GET", PAGES[kind], None, headers
    if kind == "loan page":
        return "GET", f"/agent/loans/{rng.choice(person.loans)}", None, headers
    if kind == "sheet":
        return "GET", f"/api/collection-sheet?date={today_india().isoformat()}", None, headers
    if kind == "loan":
        return "GET", f"/api/loans/{rng.choice(person.loans)}", None, headers
    if kind == "schedule":
        return "GET", f"/api/loans/{rng.choice(person.loans)}/schedule", None, headers
    if kind == "collection":
        body = json.dumps({"loan_id": rng.choice(person.loans), "amount": "1.00"}).encode()
        return "POST", "/api/collections", body, {**headers, "Idempotency-Key": str(uuid.uuid4())}
    if kind == "dashboard":
        return "GET", "/api/dashboard?period=month", None, headers
    if kind == "loan list":
        return "GET", "/api/loans?limit=20", None, headers
    if kind == "customer":
        return "GET", "/api/dashboard", None, headers
    return "GET", "/api/reports/par?format=json", None, headers


class Connections:
    """Idle keep-alive connections to the target, reused; a new one when none is idle."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        # (connection, when it went idle): the server closes a connection idle for 5 s
        # (uvicorn's keep-alive), so one idle longer is not reused — as HTTP clients do.
        self.idle: list[tuple[HttpConnection, float]] = []

    async def send(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        now = time.monotonic()
        connection = None
        while self.idle:
            candidate, since = self.idle.pop()
            if now - since < KEEP_ALIVE_REUSE_SECONDS:
                connection = candidate
                break
            await candidate.close()
        reused = connection is not None
        if connection is None:
            connection = HttpConnection(self.host, self.port)
        try:
            answer = await connection.request(method, path, body, headers)
        except (IndexError, ConnectionError, asyncio.IncompleteReadError):
            await connection.close()
            if not reused:
                raise
            # The server closed the idle connection before reading the request (no status
            # line): sent again on a new one, as HTTP clients do with a stale keep-alive
            # connection (a collection carries its idempotency key anyway).
            connection = HttpConnection(self.host, self.port)
            try:
                answer = await connection.request(method, path, body, headers)
            except BaseException:
                await connection.close()
                raise
        except BaseException:
            await connection.close()
            raise
        self.idle.append((connection, time.monotonic()))
        return answer

    async def close(self) -> None:
        for connection, _ in self.idle:
            await connection.close()


async def prime(base: str, people: People, mix: dict[str, tuple[float, str]]) -> int:
    """The morning's first opening of the app, four people at a time: each agent's sheet (and
    sheet page, with ``--pages``), each Manager's dashboard (and page), each customer's own
    dashboard (or page) — what a day's first minute would otherwise build while measured. How
    many requests."""
    today = today_india().isoformat()
    asks: list[tuple[str, str]] = []
    for person in people.agents:
        asks.append((f"/api/collection-sheet?date={today}", person.token))
        if "sheet page" in mix:
            asks.append(("/agent/sheet", person.token))
    for person in people.managers:
        asks.append(("/api/dashboard?period=month", person.token))
        if "dashboard page" in mix:
            asks.append(("/manager", person.token))
    for person in people.customers:
        asks.append(("/customer" if "customer page" in mix else "/api/dashboard", person.token))
    connections = Connections(base)
    queue = list(reversed(asks))

    async def asker() -> None:
        while queue:
            path, token = queue.pop()
            await connections.send("GET", path, None, {"Authorization": f"Bearer {token}"})

    await asyncio.gather(*(asker() for _ in range(4)))
    await connections.close()
    return len(asks)


async def drive(
    base: str,
    people: People,
    rate: float,
    seconds: float,
    seed: int,
    mix: dict[str, tuple[float, str]],
) -> RateResult:
    rng = random.Random(seed)
    kinds = list(mix)
    weights = [mix[k][0] for k in kinds]
    result = RateResult(rate)
    connections = Connections(base)
    tasks: list[asyncio.Task[None]] = []
    loop = asyncio.get_running_loop()
    start = loop.time() + 0.5
    at = 0.0

    async def one(kind: str, scheduled: float) -> None:
        method, path, body, headers = request_for(kind, people, rng, mix)
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        try:
            status, data = await asyncio.wait_for(
                connections.send(method, path, body, headers), TIMEOUT_SECONDS
            )
        except (TimeoutError, OSError, ValueError, IndexError) as exc:
            result.failed += 1
            result.errors[f"{kind}: {type(exc).__name__}"] += 1
            return
        if status >= 300:  # a page redirecting to the sign-in is not an answer either
            result.failed += 1
            result.errors[f"{kind}: {status} {data[:80]!r}"] += 1
            return
        result.completed += 1
        result.latencies[kind].append(loop.time() - scheduled)

    while at < seconds:
        at += rng.expovariate(rate)
        kind = rng.choices(kinds, weights)[0]
        tasks.append(asyncio.create_task(one(kind, start + at)))
        result.offered += 1
    await asyncio.gather(*tasks)
    await connections.close()
    return result


def postgres_cpu_seconds() -> float:
    """CPU (user + system) of every postgres process on the machine, from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                comm, rest = f.read().split(") ", 1)
        except OSError:
            continue
        if comm.endswith("(postgres"):
            fields = rest.split()
            total += int(fields[11]) + int(fields[12])
    return total / tick


def report(result: RateResult, mix: dict[str, tuple[float, str]]) -> None:
    every = result.all_latencies()
    print(
        f"  {result.rate:6.1f}/s offered {result.offered:6}  completed {result.completed:6}  "
        f"failed {result.failed:5}  p50 {percentile(every, 0.5):7.1f}  "
        f"p95 {percentile(every, 0.95):7.1f}  p99 {percentile(every, 0.99):7.1f} ms  "
        f"{'PASS' if result.passed else 'fail'}"
    )
    for kind in mix:
        values = result.latencies.get(kind, [])
        print(
            f"      {kind:14} n {len(values):6}  p50 {percentile(values, 0.5):7.1f}  "
            f"p99 {percentile(values, 0.99):7.1f} ms"
        )
    if result.cpu and result.completed:
        per = {k: v / result.completed * 1000 for k, v in result.cpu.items()}
        print("      CPU ms per request: " + ", ".join(f"{k} {v:.1f}" for k, v in per.items()))
    for error, count in sorted(result.errors.items(), key=lambda e: -e[1])[:5]:
        print(f"      {count:5} × {error}")


def portfolio_prepare(url: str, loans: int) -> None:
    """Migrate the new database at ``url`` and generate the portfolio, its managers, customers'
    sign-ins and opening balances (step 1 of the docstring)."""
    started = time.perf_counter()
    migrate_upgrade(url)
    portfolio_generate(url, loans)
    people_add(url)
    ledger_open(url)
    print(f"portfolio generated in {time.perf_counter() - started:.0f} s")


def deployment_start(
    url: str, key: str, workers: int, pool_size: int, processes: list[subprocess.Popen[bytes]]
) -> str:
    """`namma serve --workers N` and one `namma worker` on ``url`` (appended to ``processes``,
    the server first, so that the caller stops them even if this fails half way); the server's
    address."""
    workdir = Path(tempfile.mkdtemp(prefix="namma-day-"))
    server, base = start_server(
        url,
        workdir,
        workers,
        pool_size,
        serve=[sys.executable, "-m", "namma", "serve", "--no-job-worker"],
        extra_env={"NAMMA_SECRET_KEY": key},
    )
    processes.append(server)
    worker_env = {k: v for k, v in os.environ.items() if not k.startswith("NAMMA_")}
    # No scheduled close of business in the middle of a measurement (it runs at 20:00 India
    # time): it would compete for the cores, and move the loans to the evening's state.
    worker_env.update(
        NAMMA_DATABASE_URL=url, NAMMA_SECRET_KEY=key, NAMMA_REDIS_URL=REDIS, NAMMA_COB_HOUR="-1"
    )
    worker = subprocess.Popen(
        [sys.executable, "-m", "namma", "worker"],
        env=worker_env,
        cwd=workdir,
        stdout=(workdir / "worker.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    processes.append(worker)
    return base


def process_stop(process: subprocess.Popen[bytes], grace: float = 15.0) -> None:
    """Stop a process started in a session of its own (the server with its workers): SIGTERM,
    then, after ``grace`` seconds, SIGKILL to what is left of its group — a server's workers
    still answering an overload's backlog outlive their parent (seen: minutes after a run)."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=grace)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)  # anyone left in the group?
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)


def business_morning(url: str, key: str) -> None:
    """The database as on a working day's morning: last night's close of business has run, so
    every active loan's balances are kept for today (D-205). A generated portfolio has never
    been closed, and a kept one may have been closed for a later date (the scheduled close runs
    at 20:00 India time): then the close for yesterday is run (forced), then VACUUM ANALYZE."""
    today = today_india()
    with psycopg.connect(libpq_url(url), autocommit=True) as connection:
        stale = connection.execute(
            "SELECT count(*) FROM loans WHERE status = 'active' "
            "AND balances_as_of IS DISTINCT FROM %s",
            (today,),
        ).fetchone()
        if stale is None or stale[0] == 0:
            return
        print(f"{stale[0]:,} active loans not kept for today: the close for yesterday runs")
        env = {k: v for k, v in os.environ.items() if not k.startswith("NAMMA_")}
        env.update(NAMMA_DATABASE_URL=url, NAMMA_SECRET_KEY=key)
        yesterday = (today - dt.timedelta(days=1)).isoformat()
        subprocess.run(
            [sys.executable, "-m", "namma", "cob", "--date", yesterday, "--force"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        connection.execute("VACUUM ANALYZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--rates", default="10,20,35,50,75,100")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument(
        "--warm-up",
        type=float,
        default=0,
        help="before measuring, not counted: each person's first opening of the app (the "
        "agent's sheet, the Manager's dashboard, the customer's home), then this many seconds "
        "of the mix at the first rate",
    )
    parser.add_argument("--workers", type=int, default=2, help="server processes")
    parser.add_argument("--db-pool-size", type=int, default=5)
    parser.add_argument("--customers", type=int, default=2000, help="customers signed in")
    parser.add_argument("--url", help="drive a running deployment instead of starting one")
    parser.add_argument("--database-url", help="with --url: its database")
    parser.add_argument("--secret-key", help="with --url: its NAMMA_SECRET_KEY")
    parser.add_argument("--keep", action="store_true", help="keep the generated database")
    parser.add_argument(
        "--database", help="a database kept by an earlier run (--keep): no generation"
    )
    parser.add_argument(
        "--pages",
        action="store_true",
        help="half of the reads to the web pages instead of the API (MIX_WITH_PAGES)",
    )
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    mix = MIX_WITH_PAGES if args.pages else MIX
    print(f"{machine()}\nloans {args.loans:,}, {args.seconds:.0f} s per rate, mix {mix}")

    processes: list[subprocess.Popen[bytes]] = []
    name = None
    if args.url:
        if not (args.database_url and args.secret_key):
            parser.error("--url needs --database-url and --secret-key")
        base, url, key = args.url.rstrip("/"), args.database_url, args.secret_key
    else:
        name = args.database or f"namma_bench_day_{uuid.uuid4().hex[:8]}"
        if args.database is None:
            create_database(SERVER, name)
        url, key = with_database(SERVER, name), BENCH_SECRET_KEY
    try:
        if name is not None:
            if args.database is None:
                portfolio_prepare(url, args.loans)
            else:
                migrate_upgrade(url)  # a kept database gets this checkout's migrations
            business_morning(url, key)
            base = deployment_start(url, key, args.workers, args.db_pool_size, processes)
        people = asyncio.run(people_sign_in(url, key, args.customers))
        print(
            f"{len(people.agents)} agents, {len(people.managers)} managers, "
            f"{len(people.customers)} customers signed in; target {base}"
        )
        if args.warm_up > 0:
            primed = asyncio.run(prime(base, people, mix))
            warm = asyncio.run(drive(base, people, rates[0], args.warm_up, len(rates), mix))
            print(
                f"warm-up: {primed} first openings, then {args.warm_up:.0f} s at "
                f"{rates[0]:g}/s ({warm.completed} requests)"
            )
        best = None
        for seed, rate in enumerate(rates):
            cpu_before = {
                "server": server_cpu_seconds(processes[0].pid) if processes else 0.0,
                "worker": server_cpu_seconds(processes[1].pid) if processes else 0.0,
                "postgres": postgres_cpu_seconds(),
            }
            result = asyncio.run(drive(base, people, rate, args.seconds, seed, mix))
            if processes:
                result.cpu = {
                    "server": server_cpu_seconds(processes[0].pid) - cpu_before["server"],
                    "worker": server_cpu_seconds(processes[1].pid) - cpu_before["worker"],
                }
            result.cpu["postgres"] = postgres_cpu_seconds() - cpu_before["postgres"]
            report(result, mix)
            if result.passed:
                best = rate
        print(f"highest rate with p99 ≤ {P99_TARGET_MS:.0f} ms and no errors: {best}")
        check = subprocess.run(
            [sys.executable, "-m", "namma", "ledger", "check"],
            env={**os.environ, "NAMMA_DATABASE_URL": url},
            capture_output=True,
            text=True,
        )
        print("ledger check:", "ok" if check.returncode == 0 else check.stdout + check.stderr)
    finally:
        for process in processes:
            process_stop(process)
        if name is not None and not (args.keep or args.database):
            drop_database(SERVER, name)
        elif name is not None:
            print(f"database kept: {name}")


if __name__ == "__main__":
    main()
