"""Collections per second through `namma serve` (HTTP, PostgreSQL, Redis) against the same SQL
sent straight through the driver, 16 concurrent clients each, in the same run.

    .venv/bin/python bench/bench_collections.py [--count 1500] [--clients 16] [--workers 1]

1. Creates a fresh database on NAMMA_BENCH_SERVER (default postgresql://postgres@127.0.0.1:5432),
   starts `namma serve --demo` on it (Redis at NAMMA_BENCH_REDIS, default
   redis://127.0.0.1:6379/0; rate limits raised), logs in as the demo agent.
2. HTTP: ``--count`` collections of 1.00 on the agent's active loans, round robin, from
   ``--clients`` concurrent httpx clients (loopback), each with its own Idempotency-Key.
3. Baseline: the same number of collections with psycopg directly, the statement sequence of
   one collection (docs/collections.md "The flow"): claim the idempotency key, lock the loan
   row (joined to its customer), read the product version and the installments, update the
   installment and the loan, take the receipt number, resolve the two ledger accounts, insert
   the journal entry and its two lines, the collection and its allocation row, append to the
   audit chain (advisory lock, last hash, insert), store the answer on the idempotency row,
   commit. The amounts are precomputed (1.00 of interest on the oldest installment that still
   owes interest), so the ledger stays consistent.
4. Prints collections/s, p50/p99 latency for both, the ratio, the error count, and runs
   `namma ledger check`. Target: HTTP ≥ 0.5 × baseline, p99 ≤ 5 × p50, zero errors, check ok.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
import psycopg
from sqlalchemy.engine import make_url

from namma.demo import DEMO_PASSWORD
from namma.kit.db import libpq_url
from namma.kit.embedded import create_database, drop_database

SERVER = os.environ.get("NAMMA_BENCH_SERVER", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("NAMMA_BENCH_REDIS", "redis://127.0.0.1:6379/0")
AMOUNT = Decimal("1.00")
SERVE = [sys.executable, "-m", "namma", "serve", "--demo", "--no-job-worker"]


def machine() -> str:
    model = "?"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"nproc={os.cpu_count()}, CPU {model!r}, Python {platform.python_version()}"


def start_server(url: str, workdir: Path, workers: int) -> tuple[subprocess.Popen[bytes], str]:
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
        NAMMA_LOG_LEVEL="WARNING",
    )
    log = (workdir / "server.log").open("w")
    process = subprocess.Popen(
        [*SERVE, "--port", str(port), "--workers", str(workers)],
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


def summary(name: str, latencies: list[float], elapsed: float) -> dict[str, float]:
    lat = sorted(latencies)
    p50 = statistics.median(lat) * 1000
    p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    rate = len(lat) / elapsed
    print(f"{name:9} {rate:8.1f} collections/s   p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")
    return {"rate": rate, "p50": p50, "p99": p99}


async def run_http(
    base: str, token: str, loans: list[str], count: int, clients: int
) -> tuple[list[float], float, int]:
    latencies: list[float] = []
    errors = 0
    next_n = 0

    async def worker() -> None:
        nonlocal next_n, errors
        async with httpx.AsyncClient(base_url=base, timeout=60) as http:
            while next_n < count:
                n = next_n
                next_n += 1
                body = {"loan_id": loans[n % len(loans)], "amount": str(AMOUNT)}
                headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": uuid.uuid4().hex}
                t0 = time.perf_counter()
                response = await http.post("/api/collections", json=body, headers=headers)
                latencies.append(time.perf_counter() - t0)
                if response.status_code != 201:
                    errors += 1
                    if errors <= 3:
                        print("error:", response.status_code, response.text[:300])

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, time.perf_counter() - t0, errors


async def run_baseline(
    url: str, agent_id: str, loans: list[str], count: int, clients: int
) -> tuple[list[float], float, int]:
    """The statement sequence of one collection, straight through psycopg (see the docstring)."""
    latencies: list[float] = []
    errors = 0
    next_n = 0
    conninfo = libpq_url(url)

    async def one(conn: psycopg.AsyncConnection, loan_id: str, n: int) -> None:
        key = f"baseline-{uuid.uuid4().hex}"
        async with conn.transaction():
            await conn.execute(
                "INSERT INTO idempotency_keys (user_id, key, fingerprint, created_at) "
                "VALUES (%s, %s, %s, now()) ON CONFLICT DO NOTHING RETURNING key",
                (agent_id, key, hashlib.sha256(key.encode()).hexdigest()),
            )
            loan = await (
                await conn.execute(
                    "SELECT l.id, l.branch_id, l.product_version_id, l.loan_number "
                    "FROM loans l JOIN customers c ON c.id = l.customer_id "
                    "WHERE l.id = %s FOR UPDATE OF l",
                    (loan_id,),
                )
            ).fetchone()
            assert loan is not None
            await conn.execute("SELECT * FROM loan_product_versions WHERE id = %s", (loan[2],))
            rows = await (
                await conn.execute(
                    "SELECT id, number, interest_due - interest_paid - interest_waived "
                    "FROM loan_installments WHERE loan_id = %s ORDER BY number",
                    (loan_id,),
                )
            ).fetchall()
            inst_id, number, _ = next(r for r in rows if r[2] >= AMOUNT)
            await conn.execute(
                "UPDATE loan_installments SET interest_paid = interest_paid + %s, "
                "status = 'partly_paid' WHERE id = %s",
                (AMOUNT, inst_id),
            )
            await conn.execute(
                "UPDATE loans SET total_collected = total_collected + %s, "
                "outstanding_interest = outstanding_interest - %s WHERE id = %s",
                (AMOUNT, AMOUNT, loan_id),
            )
            code = await (
                await conn.execute("SELECT code FROM branches WHERE id = %s", (loan[1],))
            ).fetchone()
            seq = await (
                await conn.execute(
                    "INSERT INTO number_sequences (branch_id, kind, year, last_value) "
                    "VALUES (%s, 'receipt', 2099, 1) ON CONFLICT (branch_id, kind, year) "
                    "DO UPDATE SET last_value = number_sequences.last_value + 1 "
                    "RETURNING last_value",
                    (loan[1],),
                )
            ).fetchone()
            receipt = f"{code[0]}-B-2099-{seq[0]:06d}"
            accounts = dict(
                await (
                    await conn.execute(
                        "SELECT kind, id FROM ledger_accounts WHERE (kind = 'agent_cash' "
                        "AND agent_id = %s) OR (kind = 'interest_income')",
                        (agent_id,),
                    )
                ).fetchall()
            )
            entry = await (
                await conn.execute(
                    "INSERT INTO journal_entries (entry_date, kind, memo, branch_id, loan_id, "
                    "created_by_id) VALUES (current_date, 'collection', %s, %s, %s, %s) "
                    "RETURNING id",
                    (f"Collection {receipt}", loan[1], loan_id, agent_id),
                )
            ).fetchone()
            await conn.execute(
                "INSERT INTO journal_lines (entry_id, account_id, debit, credit, loan_id) "
                "VALUES (%s, %s, %s, 0, %s), (%s, %s, 0, %s, %s)",
                (
                    entry[0],
                    accounts["agent_cash"],
                    AMOUNT,
                    loan_id,
                    entry[0],
                    accounts["interest_income"],
                    AMOUNT,
                    loan_id,
                ),
            )
            cid = uuid.uuid4()
            await conn.execute(
                "INSERT INTO collections (id, receipt_number, loan_id, branch_id, "
                "collected_by_id, amount, principal, interest, fee, penalty, collected_on, "
                "method, preclosure, status, journal_entry_id, created_at) VALUES "
                "(%s, %s, %s, %s, %s, %s, 0, %s, 0, 0, current_date, 'cash', false, "
                "'posted', %s, now())",
                (cid, receipt, loan_id, loan[1], agent_id, AMOUNT, AMOUNT, entry[0]),
            )
            await conn.execute(
                "INSERT INTO collection_allocations (collection_id, installment_number, "
                "installment_id, principal, interest, fee, penalty, interest_waived, "
                "fee_waived, penalty_waived) VALUES (%s, %s, %s, 0, %s, 0, 0, 0, 0, 0)",
                (cid, number, inst_id, AMOUNT),
            )
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (AUDIT_LOCK,))
            last = await (
                await conn.execute(
                    "SELECT clock_timestamp(), (SELECT hash FROM audit_log ORDER BY id DESC "
                    "LIMIT 1)"
                )
            ).fetchone()
            after = json.dumps({"receipt_number": receipt, "amount": str(AMOUNT)})
            await conn.execute(
                "INSERT INTO audit_log (at, actor_id, actor_role, action, entity_type, "
                "entity_id, after, prev_hash, hash) VALUES "
                "(%s, %s, 'agent', 'collection.recorded', 'collection', %s, %s, %s, %s)",
                (
                    last[0],
                    agent_id,
                    str(cid),
                    after,
                    last[1],
                    hashlib.sha256(f"{last[1]}{after}".encode()).hexdigest(),
                ),
            )
            await conn.execute(
                "UPDATE idempotency_keys SET response_status = 201, response_body = %s "
                "WHERE user_id = %s AND key = %s",
                (after, agent_id, key),
            )

    async def worker() -> None:
        nonlocal next_n, errors
        async with await psycopg.AsyncConnection.connect(conninfo) as conn:
            while next_n < count:
                n = next_n
                next_n += 1
                t0 = time.perf_counter()
                try:
                    await one(conn, loans[n % len(loans)], n)
                except Exception as exc:  # counted and shown, never hidden
                    errors += 1
                    if errors <= 3:
                        print("baseline error:", repr(exc)[:300])
                latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    return latencies, time.perf_counter() - t0, errors


AUDIT_LOCK = 0


def main() -> None:
    global AUDIT_LOCK
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1500)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards")
    args = parser.parse_args()
    from namma.audit.service import AUDIT_CHAIN_LOCK_KEY

    AUDIT_LOCK = AUDIT_CHAIN_LOCK_KEY
    print(machine())
    name = f"namma_bench_{uuid.uuid4().hex[:8]}"
    create_database(SERVER, name)
    url = make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    workdir = Path(tempfile.mkdtemp(prefix="namma-bench-"))
    process, base = start_server(url, workdir, args.workers)
    try:
        login = httpx.post(
            f"{base}/api/auth/login",
            json={
                "login": "agent1@example.com",
                "password": DEMO_PASSWORD,
                "token_delivery": "body",
            },
        ).json()
        token = login["access_token"]
        headers = {"Authorization": f"Bearer {token}"}
        me = httpx.get(f"{base}/api/auth/me", headers=headers).json()
        agent_id = me.get("id") or me["user"]["id"]
        loans = [
            loan["id"]
            for loan in httpx.get(f"{base}/api/loans", headers=headers).json()["loans"]
            if loan["status"] == "active"
        ]
        print(
            f"{len(loans)} active loans, {args.count} collections each way, "
            f"{args.clients} clients, {args.workers} server worker(s)"
        )
        # Warm-up (connections, caches), not measured.
        asyncio.run(run_http(base, token, loans, 32, 4))
        lat_h, el_h, err_h = asyncio.run(run_http(base, token, loans, args.count, args.clients))
        lat_b, el_b, err_b = asyncio.run(
            run_baseline(url, agent_id, loans, args.count, args.clients)
        )
        http = summary("HTTP", lat_h, el_h)
        base_ = summary("baseline", lat_b, el_b)
        print(
            f"ratio HTTP/baseline {http['rate'] / base_['rate']:.2f} (target ≥ 0.5); "
            f"HTTP p99/p50 {http['p99'] / http['p50']:.2f} (target ≤ 5); "
            f"errors HTTP {err_h}, baseline {err_b}"
        )
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
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
