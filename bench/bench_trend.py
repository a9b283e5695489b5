"""The dashboards' 12-month trend on a book with a year of history: kept with its snapshot and
brought up to date with the new entries (D-204, ``namma.reports.monthly``) against the
baseline of the same sums read in full, in the same run.

    .venv/bin/python bench/bench_trend.py [--loans 20000] [--weeks 52] [--repeat 20]

1. Creates a migrated database on the server of NAMMA_BENCH_DATABASE_URL (default
   postgresql://postgres@127.0.0.1:5432/test) with ``bench_cob``'s portfolio (``--loans``
   loans, a branch per 5,000), then a year of its ledger: ``--weeks`` weekly collections a loan
   back from today, each an entry of three lines (cash in, principal and interest out) — what
   a dashboard's trend sums on a year-old book. The generated portfolio of the other benchmarks
   has one day of collections, so their dashboards do not show this cost.
2. For one branch (a Manager's dashboard) and for the institution (the Admin's): the full read
   ``--repeat`` times (the baseline), then ``--repeat`` rounds of "three collections posted and
   committed, then the kept read" (only the read timed). Prints p50 and p95 of each and the
   ratio kept ÷ full, and checks the kept sums equal the full read at the end.
The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psycopg
from bench_cob import SERVER, portfolio_generate, with_database
from machine import machine

from namma.kit.cache import MemoryCache
from namma.kit.clock import today_india
from namma.kit.db import Database, libpq_url, transaction
from namma.kit.embedded import create_database, drop_database
from namma.kit.migrations import migrate_upgrade
from namma.reports.monthly import monthly_sums

HISTORY = """
INSERT INTO ledger_accounts (id, code, name, kind, type)
VALUES (md5('interest')::uuid, '4010-BENCH', 'Interest income (bench)', 'interest_income',
        'income')
ON CONFLICT DO NOTHING;
WITH entries AS (
    INSERT INTO journal_entries (entry_date, kind, branch_id, loan_id)
    SELECT CAST(%(today)s AS date) - 7 * w, 'collection', l.branch_id, l.id
      FROM loans l CROSS JOIN generate_series(1, %(weeks)s) w
    RETURNING id, loan_id
)
INSERT INTO journal_lines (entry_id, account_id, debit, credit, loan_id)
SELECT e.id, a.account, a.debit, a.credit, e.loan_id
  FROM entries e
 CROSS JOIN (VALUES (md5('cash')::uuid, 250.00, 0), (md5('portfolio')::uuid, 0, 200.00),
                    (md5('interest')::uuid, 0, 50.00)) AS a (account, debit, credit);
ANALYZE journal_entries;
ANALYZE journal_lines
"""

# Three collections today in the branch (or any), committed: what a few seconds of a day adds.
NEW_ENTRIES = """
WITH picked AS (
    SELECT id, branch_id FROM loans WHERE (%(branch)s::uuid IS NULL OR branch_id = %(branch)s)
     ORDER BY random() LIMIT 3
), entries AS (
    INSERT INTO journal_entries (entry_date, kind, branch_id, loan_id)
    SELECT %(today)s, 'collection', branch_id, id FROM picked
    RETURNING id, loan_id
)
INSERT INTO journal_lines (entry_id, account_id, debit, credit, loan_id)
SELECT e.id, a.account, a.debit, a.credit, e.loan_id
  FROM entries e
 CROSS JOIN (VALUES (md5('cash')::uuid, 250.00, 0), (md5('portfolio')::uuid, 0, 200.00),
                    (md5('interest')::uuid, 0, 50.00)) AS a (account, debit, credit)
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    start = time.perf_counter()
    await fn()
    return (time.perf_counter() - start) * 1000


async def run(url: str, repeat: int) -> None:
    db = Database.connect(url)
    today = today_india()
    async with db.engine.connect() as conn:
        branch = (
            await conn.exec_driver_sql(
                "SELECT branch_id FROM loans GROUP BY branch_id ORDER BY branch_id LIMIT 1"
            )
        ).scalar_one()
    print("| trend of | full p50 / p95 ms | kept + new p50 / p95 ms | kept ÷ full (p50) |")
    print("|---|---:|---:|---:|")
    try:
        for label, branch_id in (("a branch (Manager)", branch), ("the institution (Admin)", None)):

            async def read(cache: MemoryCache | None, branch_id: Any = branch_id) -> Any:
                async with transaction(db) as session:
                    return await monthly_sums(session, cache, branch_id=branch_id, today=today)

            full = [await timed(lambda: read(None)) for _ in range(repeat)]
            cache = MemoryCache()
            await read(cache)  # the day's first read, in full
            kept = []
            with psycopg.connect(libpq_url(url), autocommit=True) as writer:
                for _ in range(repeat):
                    writer.execute(NEW_ENTRIES, {"branch": branch_id, "today": today})
                    kept.append(await timed(lambda c=cache: read(c)))
            assert await read(cache) == await read(None), "the kept sums differ from a full read"
            print(
                f"| {label} | {statistics.median(full):.1f} / {pct(full, 0.95):.1f} | "
                f"{statistics.median(kept):.2f} / {pct(kept, 0.95):.2f} | "
                f"{statistics.median(kept) / statistics.median(full):.3f} |",
                flush=True,
            )
    finally:
        await db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--loans", type=int, default=20_000)
    parser.add_argument("--weeks", type=int, default=52, help="weekly collections a loan, back")
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    name = f"namma_bench_trend_{uuid.uuid4().hex[:8]}"
    create_database(SERVER, name)
    url = with_database(SERVER, name)
    try:
        migrate_upgrade(url)
        start = time.perf_counter()
        portfolio_generate(url, args.loans)
        with psycopg.connect(libpq_url(url), autocommit=True) as conn:
            for statement in HISTORY.split(";"):
                if statement.strip():
                    conn.execute(statement, {"today": today_india(), "weeks": args.weeks})
            entries = conn.execute("SELECT count(*) FROM journal_entries").fetchone()
        print(
            f"# {args.loans:,} loans and {entries[0] if entries else 0:,} journal entries "
            f"generated in {time.perf_counter() - start:.0f} s; {machine()}",
            flush=True,
        )
        asyncio.run(run(url, args.repeat))
    finally:
        drop_database(SERVER, name)


if __name__ == "__main__":
    sys.exit(main())
