"""The field agent's pages through `namma serve` for an agent with 400 customers (issue 19:
p95 < 300 ms; the sheet's download < 200 KB compressed).

    .venv/bin/python bench/bench_agent_pages.py [--loans 400] [--requests 40]

Creates a fresh database on NAMMA_BENCH_SERVER, starts `namma serve --demo` on it (as
`bench_collections.py` does), adds one agent with ``--loans`` customers, each with a disbursed
weekly loan owing two installments (`collections_setup.py`, through the real services), runs
ANALYZE (what autovacuum does soon after such a load on a running system: without statistics the
planner chooses nested loops over the new rows), signs in as that agent (cookies, as the phone
does) and asks each agent page ``--requests`` times, one after another (a phone asks one page at
a time). The sheet is kept per agent (`collections.sheet.collection_sheet_kept`), so it is also
measured read afresh: "sheet, after a collection" times the page right after a `POST
/api/collections` of 1.00 on one of the agent's loans (the collection itself not timed), which
is what the phone asks after each sync. Prints p50 / p95 / max per page, and the sheet's size
raw and gzip-compressed (level 1 and 6: what a proxy sends).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import os
import signal
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg
from bench_collections import SERVER, start_server
from collections_setup import bench_agents_create
from machine import machine
from sqlalchemy.engine import make_url

from namma.demo import DEMO_PASSWORD
from namma.kit.db import libpq_url
from namma.kit.embedded import create_database, drop_database


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--loans", type=int, default=400)
    parser.add_argument("--requests", type=int, default=40, help="per page")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()
    print(machine())
    name = f"namma_bench_{uuid.uuid4().hex[:8]}"
    create_database(SERVER, name)
    url = make_url(SERVER).set(database=name).render_as_string(hide_password=False)
    workdir = Path(tempfile.mkdtemp(prefix="namma-bench-"))
    process, base = start_server(url, workdir, 1, 2)
    try:
        t0 = time.perf_counter()
        [agent] = asyncio.run(bench_agents_create(url, agents=1, loans_per_agent=args.loans))
        print(f"1 agent × {len(agent.loan_ids)} loans set up in {time.perf_counter() - t0:.1f} s")
        with psycopg.connect(libpq_url(url), autocommit=True) as connection:
            connection.execute("ANALYZE")
        with httpx.Client(base_url=base, timeout=60) as phone:
            signed = phone.post(
                "/api/auth/login", json={"login": agent.email, "password": DEMO_PASSWORD}
            )
            assert signed.status_code == 200, signed.text
            csrf = phone.cookies["csrf_token"]  # a cookie-signed write sends it back as a header
            customers = phone.get("/api/customers", params={"limit": 1}).json()["customers"]
            pages = {
                "dashboard": "/agent",
                "sheet": "/agent/sheet",
                "customers": "/agent/customers",
                "customers search": "/agent/customers?q=Bench",
                "customer": f"/agent/customers/{customers[0]['id']}",
                "loan": f"/agent/loans/{agent.loan_ids[0]}",
                "hand-over": "/agent/handover",
                "API sheet (JSON)": "/api/collection-sheet",
            }
            sheet = phone.get("/agent/sheet")
            assert sheet.status_code == 200
            raw = sheet.content
            api = phone.get("/api/collection-sheet").content
            lines = sheet.text.count('class="card sheet-line"')
            print(
                f"sheet page: {len(raw) / 1024:.0f} KB raw, "
                f"{len(gzip.compress(raw, 1)) / 1024:.0f} KB gzip -1, "
                f"{len(gzip.compress(raw, 6)) / 1024:.0f} KB gzip -6; "
                f"API sheet: {len(api) / 1024:.0f} KB raw, "
                f"{len(gzip.compress(api, 6)) / 1024:.0f} KB gzip -6 "
                f"({lines} lines)"
            )
            print(f"{'page':<26} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
            for label, path in pages.items():
                phone.get(path)  # warm-up
                times = []
                for _ in range(args.requests):
                    start = time.perf_counter()
                    response = phone.get(path)
                    times.append((time.perf_counter() - start) * 1000)
                    assert response.status_code == 200, (path, response.status_code)
                report(label, times)
            for label, path in (
                ("sheet, after a collection", "/agent/sheet"),
                ("API sheet, after a collection", "/api/collection-sheet"),
            ):
                times = []
                for n in range(args.requests):
                    collected = phone.post(
                        "/api/collections",
                        json={"loan_id": agent.loan_ids[n % len(agent.loan_ids)], "amount": "1.00"},
                        headers={"Idempotency-Key": uuid.uuid4().hex, "X-CSRF-Token": csrf},
                    )
                    assert collected.status_code == 201, collected.text
                    start = time.perf_counter()
                    response = phone.get(path)
                    times.append((time.perf_counter() - start) * 1000)
                    assert response.status_code == 200, (path, response.status_code)
                report(label, times)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(30)
        if not args.keep:
            drop_database(SERVER, name)


def report(label: str, times: list[float]) -> None:
    times.sort()
    p95 = times[max(0, round(0.95 * len(times)) - 1)]
    print(f"{label:<26} {statistics.median(times):>8.1f} {p95:>8.1f} {times[-1]:>8.1f}")


if __name__ == "__main__":
    main()
