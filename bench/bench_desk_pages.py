"""The back office's dashboard and report pages over a generated portfolio, each next to a
baseline of the same page's main query *function* run directly, in the same process and run
(`bench_pages.py` measures every page of the navigation against its slowest SQL statement).

    .venv/bin/python bench/bench_desk_pages.py [--loans 100000] [--repeat 20]

1. Creates a migrated database on the server of NAMMA_BENCH_DATABASE_URL (default
   postgresql://postgres@127.0.0.1:5432/test, the maintenance database) and fills it with
   ``bench_cob``'s set-based portfolio (``--loans`` loans of 50 weekly installments over
   branches and agents, collections on the business date); adds an Admin and a Manager of the
   first branch (`bench_pages.people_create`). The database is dropped at the end.
2. Starts the application in-process (``create_app``, httpx's ASGI transport: no network) and
   signs both in (a real session, as the sign-in form makes).
3. For every page and role: ``--repeat`` requests with a warm cache (the dashboards' 30 s
   cache kept) and ``--repeat`` cold (the dashboard cache emptied before each request), and
   the baseline: the page's main query called directly (``dashboard_build``, the report's
   function, ``audit_list``, ``cob_runs_read``). Prints p50 and p95 of each and the ratio of
   the page's cold p95 to the baseline's p95. Targets (issue 18): p95 < 300 ms warm and
   < 800 ms cold at 100,000 loans.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from bench_cob import SERVER, portfolio_generate, with_database
from bench_pages import people_create, signed_in_client
from machine import machine

from namma.audit.queries import audit_list
from namma.auth.deps import Principal
from namma.auth.permissions import permissions_for
from namma.cob.endpoints import cob_runs_read
from namma.kit.clock import today_india
from namma.kit.db import transaction
from namma.kit.embedded import create_database, drop_database
from namma.kit.migrations import migrate_upgrade
from namma.models import Role, User
from namma.reports import queries
from namma.reports.base import ReportFilters
from namma.reports.dashboard import DashboardPeriod, dashboard_build


def principal_of(user: User) -> Principal:
    return Principal(
        user_id=user.id,
        role=user.role,
        branch_id=user.branch_id,
        permissions=permissions_for(user.role),
        session_id=uuid.uuid4(),
        via_cookie=False,
        must_change_password=False,
        ip="127.0.0.1",
        user_agent="bench",
        request_id=None,
    )


def p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def timed(fn: Callable[[], Awaitable[Any]], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        await fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


async def run(url: str, repeat: int, tmp: Path) -> list[tuple[str, ...]]:
    from asgi_lifespan import LifespanManager

    from namma.app import create_app
    from namma.config import Settings

    settings = Settings(
        env="test",
        database_url=url,
        data_dir=tmp,
        inprocess_worker=False,
        migrate_on_start=False,
        rate_limit_reads="100000/minute",
        insecure_fast_password_hashing=True,
    )
    app = create_app(settings)
    rows: list[tuple[str, ...]] = []
    async with LifespanManager(app):
        db = app.state.db
        # The same people and signed-in clients as bench_pages.py: an Admin, and a Manager of
        # the first generated branch.
        people = await people_create(app)
        branch_id = people[Role.MANAGER].branch_id
        clients = {role.value: await signed_in_client(app, u) for role, u in people.items()}
        principals = {role.value: principal_of(u) for role, u in people.items()}
        today = today_india()
        month = today.replace(day=1)

        def report(name: str, role: str) -> Callable[[], Awaitable[Any]]:
            functions = {
                "portfolio-summary": queries.portfolio_summary,
                "par": queries.par_report,
                "agent-performance": queries.agent_performance,
                "overdue": queries.overdue_list,
                "collections": queries.collection_register,
            }
            fn = functions[name]
            branch = None if role == "admin" else branch_id

            async def call() -> Any:
                async with transaction(db) as session:
                    return await fn(session, ReportFilters(month, today, branch))

            return call

        def dashboard(role: str) -> Callable[[], Awaitable[Any]]:
            async def call() -> Any:
                async with transaction(db) as session:
                    return await dashboard_build(session, principals[role], DashboardPeriod.MONTH)

            return call

        def audit(role: str) -> Callable[[], Awaitable[Any]]:
            async def call() -> Any:
                async with transaction(db) as session:
                    return await audit_list(
                        session, branch_id=None if role == "admin" else branch_id, limit=50
                    )

            return call

        async def cob() -> Any:
            async with transaction(db) as session:
                return await cob_runs_read(session, limit=30)

        pages: list[tuple[str, str, Callable[[], Awaitable[Any]]]] = [
            ("/admin", "admin", dashboard("admin")),
            ("/manager", "manager", dashboard("manager")),
            ("/office/cob", "admin", cob),
            ("/office/audit", "admin", audit("admin")),
            ("/office/jobs", "admin", cob),
        ]
        for name in ("portfolio-summary", "par", "agent-performance", "overdue", "collections"):
            for role in ("admin", "manager"):
                pages.append((f"/office/reports/{name}", role, report(name, role)))

        for path, role, baseline in pages:
            client = clients[role]

            async def get(path: str = path, client: httpx.AsyncClient = client) -> None:
                response = await client.get(path)
                assert response.status_code == 200, (path, response.status_code)

            async def cold(get: Callable[[], Awaitable[None]] = get) -> None:
                await app.state.cache.delete_pattern("dashboard:*")
                await get()

            await get()  # the first request: templates compiled, pools filled
            warm_ms = await timed(get, repeat)
            cold_ms = await timed(cold, repeat)
            base_ms = await timed(baseline, repeat)
            rows.append(
                (
                    f"{path} ({role})",
                    f"{statistics.median(warm_ms):.0f}",
                    f"{p(warm_ms, 0.95):.0f}",
                    f"{p(cold_ms, 0.95):.0f}",
                    f"{p(base_ms, 0.95):.0f}",
                    f"{p(cold_ms, 0.95) / max(p(base_ms, 0.95), 0.001):.2f}",
                )
            )
            print(" | ".join(rows[-1]), flush=True)
        for client in clients.values():
            await client.aclose()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loans", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    name = f"namma_bench_pages_{uuid.uuid4().hex[:8]}"
    create_database(SERVER, name)
    url = with_database(SERVER, name)
    try:
        migrate_upgrade(url)
        start = time.perf_counter()
        portfolio_generate(url, args.loans)
        print(
            f"# {args.loans} loans generated in {time.perf_counter() - start:.0f} s; {machine()}",
            flush=True,
        )
        print("page (role) | warm p50 ms | warm p95 ms | cold p95 ms | baseline p95 ms | cold/base")
        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / name
        tmp.mkdir(parents=True, exist_ok=True)
        asyncio.run(run(url, args.repeat, tmp))
    finally:
        drop_database(SERVER, name)


if __name__ == "__main__":
    sys.exit(main())
