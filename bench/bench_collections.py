"""Collections per second through `namma serve` (HTTP, PostgreSQL, Redis) against the same SQL
sent straight through the driver, 16 concurrent clients each, in the same run.

    .venv/bin/python bench/bench_collections.py [--count 1600] [--clients 16]
        [--loans-per-agent 16] [--rounds 3] [--workers 1] [--db-pool-size 2]

1. Creates a fresh database on NAMMA_BENCH_SERVER (default postgresql://postgres@127.0.0.1:5432),
   starts `namma serve --demo` on it (Redis at NAMMA_BENCH_REDIS, default
   redis://127.0.0.1:6379/0; rate limits raised; each process's database pool sized for the
   machine, as docs/operations.md advises), and adds ``--clients`` field agents with
   ``--loans-per-agent`` customers each, every customer with one disbursed weekly loan
   (`collections_setup.py`, through the real services; 16 × 16 = 256 loans by default).
2. HTTP: each client logs in as its own agent and posts collections of 1.00 round robin over
   that agent's loans, as an agent on a collection round would (a fresh Idempotency-Key each);
   ``--count`` collections in all per round, from ``--clients`` concurrent connections on
   loopback (a minimal keep-alive HTTP/1.1 client, so that the load generator's own CPU, which
   shares the machine with the server and PostgreSQL, stays small).
3. Baseline: the same number of collections from the same number of psycopg connections, each
   as its agent on its agent's loans, with the statement sequence one `POST /api/collections`
   sends — the server's own SQL where the server holds it as a constant (imported from
   `namma.loans.store.POSTING_STATEMENTS` only), and checked against what the server and
   procrastinate send: the caller (with session revocation and extra permissions), claim the
   idempotency key, lock the loan row (in the agent's scope), the product version, the
   installments, the changed installment's update, then the loan's balances (returning
   updated_at) (ledger account ids are known after the warm-up, as the server remembers them),
   the journal entry
   and its lines, the receipts job, the branch's code, the receipt number with the collection
   and its allocation row in one statement (the branch's sequence row stays locked to the
   commit), the stored answer, the audit chain (advisory lock, last hash, insert), commit.
   Amounts are precomputed (1.00 of interest on the oldest installment that still owes
   interest), so the ledger stays consistent; the baseline does no Python work beyond sending
   them. (The baseline numbers its receipts in a year of their own, 2099.)
4. ``--rounds`` times (HTTP, then baseline), then prints each round, the median and spread, the
   error count, and runs `namma ledger check`. Target: HTTP ≥ 0.5 × baseline, p99 ≤ 5 × p50,
   zero errors, check ok.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import date
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace

import httpx
import psycopg
from collections_setup import bench_agents_create
from machine import machine
from psycopg.types.json import Jsonb
from sqlalchemy.engine import make_url

from namma.demo import DEMO_PASSWORD
from namma.kit.db import libpq_url
from namma.kit.embedded import create_database, drop_database
from namma.loans.store import LOAN_COLUMNS, POSTING_STATEMENTS
from namma.models import Role

SERVER = os.environ.get("NAMMA_BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("NAMMA_BENCH_REDIS", "redis://127.0.0.1:6379/0")
AMOUNT = Decimal("1.00")
SERVE = [sys.executable, "-m", "namma", "serve", "--demo", "--no-job-worker"]

Worker = tuple[str, str, list[str]]  # (access token, agent id, the agent's loan ids)
Result = tuple[list[float], float, int]  # latencies, elapsed, errors


def start_server(
    url: str,
    workdir: Path,
    workers: int,
    pool_size: int,
    *,
    serve: list[str] = SERVE,
    extra_env: dict[str, str] | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAMMA_")}
    env.update(
        NAMMA_DATABASE_URL=url,
        NAMMA_REDIS_URL=REDIS,
        NAMMA_LOGIN_RATE_LIMIT="1000/minute",
        NAMMA_RATE_LIMIT_READS="1000000/minute",
        NAMMA_RATE_LIMIT_WRITES="1000000/minute",
        NAMMA_RATE_LIMIT_MONEY="1000000/minute",
        NAMMA_LOG_LEVEL=os.environ.get("NAMMA_BENCH_LOG_LEVEL", "WARNING"),
        NAMMA_DB_POOL_SIZE=str(pool_size),
        **(extra_env or {}),
    )
    log = (workdir / "server.log").open("w")
    process = subprocess.Popen(
        [*serve, "--port", str(port), "--workers", str(workers)],
        env=env,
        cwd=workdir,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit((workdir / "server.log").read_text())
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                return process, base
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    raise SystemExit("server not ready")


def server_cpu_seconds(group: int) -> float:
    """CPU time (user + system) of the server's processes (its session: the server and its
    workers), from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) == group:  # the session (the server was started in a new one)
            total += int(fields[11]) + int(fields[12])
    return total / tick


def summary(name: str, latencies: list[float], elapsed: float) -> dict[str, float]:
    lat = sorted(latencies)
    p50 = statistics.median(lat) * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    rate = len(lat) / elapsed
    print(f"  {name:9} {rate:8.1f} collections/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")
    return {"rate": rate, "p50": p50, "p99": p99}


class HttpConnection:
    """One keep-alive HTTP/1.1 connection: a request, then its whole response (Content-Length;
    the server sends no chunked answers on these routes)."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        return await self.request("POST", path, body, headers)

    async def request(
        self, method: str, path: str, body: bytes | None, headers: dict[str, str]
    ) -> tuple[int, bytes]:
        if self.writer is None:
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        assert self.reader is not None
        head = [f"{method} {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        if body is not None:
            head += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in headers.items()]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + (body or b""))
        status_line = await self.reader.readline()
        status = int(status_line.split()[1])
        length = 0
        close = False
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
            elif name.lower() == "connection" and value.strip().lower() == "close":
                close = True
        data = await self.reader.readexactly(length)
        if close:
            await self.close()
        return status, data

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            await self.writer.wait_closed()
        self.reader = self.writer = None


async def _drive(
    count: int,
    workers: list[Worker],
    make: Callable[[Worker], Awaitable[Callable[[str], Awaitable[str | None]]]],
) -> Result:
    """Run ``count`` collections from ``len(workers)`` concurrent clients, each round robin over
    its own loans. ``make`` opens a client and returns its "collect on loan" function, which
    answers None or an error text."""
    latencies: list[float] = []
    errors = 0
    issued = 0

    async def client(worker: Worker) -> None:
        nonlocal issued, errors
        collect = await make(worker)
        n = 0
        while issued < count:
            issued += 1
            loan_id = worker[2][n % len(worker[2])]
            n += 1
            t0 = time.perf_counter()
            error = await collect(loan_id)
            latencies.append(time.perf_counter() - t0)
            if error is not None:
                errors += 1
                if errors <= 3:
                    print("  error:", error[:300])
        await collect("")  # close

    t0 = time.perf_counter()
    await asyncio.gather(*(client(w) for w in workers))
    return latencies, time.perf_counter() - t0, errors


async def run_http(base: str, workers: list[Worker], count: int) -> Result:
    url = httpx.URL(base)
    host, port = url.host, url.port
    assert port is not None

    async def make(worker: Worker) -> Callable[[str], Awaitable[str | None]]:
        connection = HttpConnection(host, port)
        auth = f"Bearer {worker[0]}"

        async def collect(loan_id: str) -> str | None:
            if not loan_id:
                await connection.close()
                return None
            body = json.dumps({"loan_id": loan_id, "amount": str(AMOUNT)}).encode()
            headers = {"Authorization": auth, "Idempotency-Key": uuid.uuid4().hex}
            status, data = await connection.post("/api/collections", body, headers)
            return None if status == 201 else f"{status} {data.decode(errors='replace')}"

        return collect

    return await _drive(count, workers, make)


# The server's statements (`namma.loans.store`: one collection's, in order), the loan lock for
# an agent, and where the lock's row has each column.
SQL = POSTING_STATEMENTS
LOAN_LOCK = SQL.loan_lock(Role.AGENT)
LOAN = SimpleNamespace(**LOAN_COLUMNS)


async def collection_baseline(
    conn: psycopg.AsyncConnection, agent_id: str, loan_id: str, accounts: tuple[str, str]
) -> None:
    """One collection's statements, in the order the server sends them (see the docstring);
    where the server's statement is a constant, this is that constant. ``accounts``: the
    agent's cash and the interest income accounts, looked up once (the server remembers account
    ids once a transaction that used them has committed)."""
    key = uuid.uuid4().hex
    async with conn.transaction():
        # Authentication: the caller, session revocation and extra permissions in one query.
        await conn.execute(SQL.principal, (uuid.uuid4(), agent_id))
        await conn.execute(
            SQL.idempotency_claim,
            (agent_id, key, hashlib.sha256(key.encode()).hexdigest()),
        )
        loan = await (await conn.execute(LOAN_LOCK, (loan_id, agent_id))).fetchone()
        assert loan is not None
        await conn.execute(SQL.loan_version, (loan[LOAN.product_version_id],))
        rows = await (await conn.execute(SQL.installments, (loan_id,))).fetchall()
        row = next(r for r in rows if r[4] - r[8] - r[11] >= AMOUNT)
        inst_id, number = row[0], row[1]
        # The changed installment (every column a payment may change), then the loan's balances.
        await conn.execute(
            SQL.installment_update,
            (
                row[7],
                row[8] + AMOUNT,
                row[9],
                row[10],
                row[11],
                row[12],
                row[13],
                "partly_paid",
                None,
                inst_id,
            ),
        )
        await conn.execute(
            SQL.loan_update,
            (
                loan[LOAN.outstanding_principal],
                loan[LOAN.outstanding_interest] - AMOUNT,
                loan[LOAN.outstanding_fees],
                loan[LOAN.outstanding_penalties],
                loan[LOAN.next_due_on],
                loan[LOAN.days_past_due],
                loan[LOAN.overdue_amount],
                date.today(),
                loan[LOAN.total_collected] + AMOUNT,
                loan_id,
            ),
        )
        cid = uuid.uuid4()
        entry = await (
            await conn.execute(
                SQL.journal_entry,
                (
                    date.today(),
                    "collection",
                    f"Collection on {loan[LOAN.loan_number]}",
                    loan[LOAN.branch_id],
                    loan_id,
                    agent_id,
                    None,
                ),
            )
        ).fetchone()
        assert entry is not None
        await conn.execute(
            SQL.journal_lines + ", ".join([SQL.journal_line_row] * 2),
            (entry[0], accounts[0], AMOUNT, 0, loan_id, entry[0], accounts[1], 0, AMOUNT, loan_id),
        )
        # The receipt's job (message and PDF), before the number.
        await _job_defer(conn, "collections:receipts_send", {"balances": {str(cid): "0.00"}})
        branch_id = loan[LOAN.branch_id]
        code = await (await conn.execute(SQL.branch_code, (branch_id,))).fetchone()
        assert code is not None
        # The receipt number, the collection and its allocation row in one statement; the
        # branch's sequence row stays locked from here to the commit.
        numbered = await (
            await conn.execute(
                SQL.collection_numbered(1),
                (
                    loan[LOAN.branch_id],
                    "receipt",
                    2099,
                    cid,
                    f"{code[0]}-B-2099-",
                    loan_id,
                    loan[LOAN.branch_id],
                    agent_id,
                    AMOUNT,
                    0,
                    AMOUNT,
                    0,
                    0,
                    0,
                    0,  # advance
                    0,  # prepaid principal
                    date.today(),
                    "cash",
                    None,
                    None,
                    None,
                    False,
                    "posted",
                    entry[0],
                    cid,
                    number,
                    inst_id,
                    0,
                    AMOUNT,
                    0,
                    0,
                    0,
                    0,
                    0,
                ),
            )
        ).fetchone()
        assert numbered is not None
        # The stored answer.
        after = {"receipt_number": numbered[0], "amount": str(AMOUNT)}
        await conn.execute(SQL.idempotency_answer, (201, json.dumps(after), agent_id, key))
        # The audit entry, appended to the chain last (as the server does at its commit).
        await conn.execute(SQL.audit_lock, (SQL.audit_lock_key,))
        last = await (await conn.execute(SQL.audit_last)).fetchone()
        assert last is not None
        await conn.execute(
            SQL.audit_insert + SQL.audit_row + " RETURNING id",
            (
                last[0],
                agent_id,
                "agent",
                "collection.recorded",
                "collection",
                str(cid),
                None,
                Jsonb(after),
                "127.0.0.1",
                "bench",
                None,
                last[1],
                hashlib.sha256(f"{last[1]}{after}".encode()).hexdigest(),
            ),
        )


async def _job_defer(conn: psycopg.AsyncConnection, task: str, args: dict[str, object]) -> int:
    """A job as procrastinate enqueues one (its `defer_jobs` statement)."""
    row = await (
        await conn.execute(
            "SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW('default', %s, 0, NULL, NULL, "
            "%s::jsonb, NULL)::procrastinate_job_to_defer_v1])) AS id",
            (task, json.dumps(args)),
        )
    ).fetchone()
    assert row is not None
    return int(row[0])


async def run_baseline(url: str, workers: list[Worker], count: int) -> Result:
    conninfo = libpq_url(url)

    async def make(worker: Worker) -> Callable[[str], Awaitable[str | None]]:
        conn = await psycopg.AsyncConnection.connect(conninfo)
        agent_id = worker[1]
        async with conn.transaction():  # committed: each collection is a transaction of its own
            found = await (
                await conn.execute(
                    "SELECT (SELECT id FROM ledger_accounts WHERE kind = 'agent_cash' "
                    "AND agent_id = %s), (SELECT id FROM ledger_accounts WHERE kind = "
                    "'interest_income' AND branch_id IS NULL AND agent_id IS NULL)",
                    (agent_id,),
                )
            ).fetchone()
        assert found is not None and None not in found, "warm-up posts before the baseline"
        accounts = (str(found[0]), str(found[1]))

        async def collect(loan_id: str) -> str | None:
            if not loan_id:
                await conn.close()
                return None
            try:
                await collection_baseline(conn, agent_id, loan_id, accounts)
            except Exception as exc:  # counted and shown, never hidden
                return repr(exc)
            return None

        return collect

    return await _drive(count, workers, make)


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--count", type=int, default=1600, help="collections per round, each way")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients (= agents)")
    parser.add_argument("--loans-per-agent", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1, help="server processes")
    parser.add_argument(
        "--db-pool-size",
        type=int,
        default=2,
        help="NAMMA_DB_POOL_SIZE of each server process (docs/operations.md)",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards")
    args = parser.parse_args()
    print(machine())
    name = f"namma_bench_{uuid.uuid4().hex[:8]}"
    create_database(SERVER, name)
    url = make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    workdir = Path(tempfile.mkdtemp(prefix="namma-bench-"))
    process, base = start_server(url, workdir, args.workers, args.db_pool_size)
    ratios, tails, http_errors, baseline_errors = [], [], 0, 0
    try:
        t0 = time.perf_counter()
        agents = asyncio.run(
            bench_agents_create(url, agents=args.clients, loans_per_agent=args.loans_per_agent)
        )
        print(
            f"{len(agents)} agents × {args.loans_per_agent} disbursed loans "
            f"({sum(len(a.loan_ids) for a in agents)} loans) set up in "
            f"{time.perf_counter() - t0:.1f} s; {args.count} collections per round each way, "
            f"{args.clients} clients, {args.workers} server worker(s), {args.rounds} rounds"
        )
        workers: list[Worker] = []
        for agent in agents:
            login = httpx.post(
                f"{base}/api/auth/login",
                json={"login": agent.email, "password": DEMO_PASSWORD, "token_delivery": "body"},
            ).json()
            token = login["access_token"]
            me = httpx.get(
                f"{base}/api/auth/me", headers={"Authorization": f"Bearer {token}"}
            ).json()
            workers.append((token, me["user"]["id"], agent.loan_ids))
        # Warm-up (connections, caches, first-use ledger accounts), not measured.
        asyncio.run(run_http(base, workers, 4 * len(workers)))
        asyncio.run(run_baseline(url, workers, 4 * len(workers)))
        for r in range(1, args.rounds + 1):
            print(f"round {r}  (load average {os.getloadavg()[0]:.2f})")
            cpu_before = server_cpu_seconds(process.pid)
            lat_h, el_h, err_h = asyncio.run(run_http(base, workers, args.count))
            cpu_ms = (server_cpu_seconds(process.pid) - cpu_before) * 1000 / args.count
            lat_b, el_b, err_b = asyncio.run(run_baseline(url, workers, args.count))
            http = summary("HTTP", lat_h, el_h)
            baseline = summary("baseline", lat_b, el_b)
            ratios.append(http["rate"] / baseline["rate"])
            tails.append(http["p99"] / http["p50"])
            http_errors += err_h
            baseline_errors += err_b
            print(
                f"  ratio HTTP/baseline {ratios[-1]:.2f}; HTTP p99/p50 {tails[-1]:.2f}; "
                f"errors HTTP {err_h}, baseline {err_b}; server CPU {cpu_ms:.1f} ms/collection"
            )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
    if ratios:
        print(
            f"ratio HTTP/baseline {_spread(ratios)} (target ≥ 0.5); "
            f"HTTP p99/p50 {_spread(tails)} (target ≤ 5); "
            f"errors HTTP {http_errors}, baseline {baseline_errors} (target 0)"
        )
    check = subprocess.run(
        [sys.executable, "-m", "namma", "ledger", "check"],
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("NAMMA_")},
            "NAMMA_DATABASE_URL": url,
        },
        capture_output=True,
        text=True,
    )
    print(f"namma ledger check: exit {check.returncode}")
    print(check.stdout.strip()[-600:])
    if not args.keep:
        drop_database(SERVER, name)


if __name__ == "__main__":
    main()
