"""Read replica routing (D-219) against a real streaming replica: a primary and a hot standby
started for this module (``tests/streaming_pair.py``).

Which server answered is shown by a row that only one side has: with replay paused on the
standby (``pg_wal_replay_pause()``), a row committed on the primary is on the primary only.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from asgi_lifespan import LifespanManager

from namma.kit.db import transaction
from namma.kit.embedded import create_database
from namma.models import Customer, Role, User
from tests.conftest import IN_CI, truncate_all
from tests.integration.conftest import World, bearer_for, world  # noqa: F401
from tests.streaming_pair import StreamingPair, pg_bin

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pair() -> Iterator[StreamingPair]:
    bin_dir = pg_bin()
    if bin_dir is None:
        if IN_CI:
            pytest.fail("CI needs PostgreSQL's server binaries (postgresql-15) for the replica")
        pytest.skip("no PostgreSQL server binaries (postgresql-15) to start a streaming replica")
    from namma.kit.migrations import migrate_upgrade

    started = StreamingPair(bin_dir).start()
    try:
        create_database(started.url(), "namma")
        migrate_upgrade(started.url(database="namma"))
        started.caught_up()
        yield started
    finally:
        started.stop()


def _sql(url: str, statement: str) -> Any:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(statement).fetchone()
        return row[0] if row else None


@pytest.fixture
def replica(pair: StreamingPair) -> Iterator[StreamingPair]:
    """The pair with empty tables, the standby replaying and caught up; replay resumed after."""
    _sql(pair.url(standby=True), "SELECT pg_wal_replay_resume()")
    truncate_all(pair.url(database="namma"))
    pair.caught_up()
    yield pair
    _sql(pair.url(standby=True), "SELECT pg_wal_replay_resume()")


def _settings(pair: StreamingPair, tmp_path: Path, **overrides: Any) -> Any:
    from namma.config import Settings

    values: dict[str, Any] = {
        "env": "test",
        "database_url": pair.url(database="namma"),
        "database_replica_url": pair.url(standby=True, database="namma"),
        "data_dir": tmp_path / "var",
        "inprocess_worker": False,
        "migrate_on_start": False,
        "insecure_fast_password_hashing": True,
        "replica_max_lag_seconds": 60.0,
        "replica_sticky_seconds": 2,
    }
    return Settings(**(values | overrides))


@contextlib.asynccontextmanager
async def _served(settings: Any) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    from namma.app import create_app

    application = create_app(settings)
    async with LifespanManager(application):
        transport = httpx.ASGITransport(app=application, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
            yield application, http


@pytest.fixture
def overrides() -> dict[str, Any]:
    """Settings of the test's application other than `_settings`' (a test parametrizes it)."""
    return {}


@pytest.fixture
async def app(
    replica: StreamingPair, tmp_path: Path, overrides: dict[str, Any]
) -> AsyncIterator[Any]:
    """The application on the pair (the identity fixtures' ``world`` builds on it)."""
    async with _served(_settings(replica, tmp_path, **overrides)) as (application, http):
        application.state.http = http
        yield application


def _pause(pair: StreamingPair) -> None:
    pair.caught_up()
    _sql(pair.url(standby=True), "SELECT pg_wal_replay_pause()")
    deadline = time.monotonic() + 10
    while _sql(pair.url(standby=True), "SELECT pg_get_wal_replay_pause_state()") != "paused":
        assert time.monotonic() < deadline, "replay did not pause"
        time.sleep(0.02)


async def _customer_on_primary(app: Any, world: World, name: str) -> uuid.UUID:
    """A customer committed straight on the primary (no request: nobody's write window)."""
    async with transaction(app.state.db) as session:
        customer = Customer(
            branch_id=world.branch_a.id, name=name, phone="9100009999", village="Hosur"
        )
        session.add(customer)
        await session.flush()
        return customer.id


async def _listed(http: httpx.AsyncClient, headers: dict[str, str], name: str) -> bool:
    answer = await http.get("/api/customers", headers=headers, params={"limit": 100})
    assert answer.status_code == 200, answer.text
    return name in {c["name"] for c in answer.json()["customers"]}


async def test_lists_read_the_replica_and_other_reads_the_primary(
    replica: StreamingPair,
    app: Any,
    world: World,
) -> None:
    http: httpx.AsyncClient = app.state.http
    admin = await bearer_for(app, world.admin)
    _pause(replica)
    customer_id = await _customer_on_primary(app, world, "Only On Primary")

    # The list reads the standby, which has not replayed the customer …
    assert not await _listed(http, admin, "Only On Primary")
    # … the customer's own page is not a list: it reads the primary, which has it.
    detail = await http.get(f"/api/customers/{customer_id}", headers=admin)
    assert detail.status_code == 200, detail.text
    # The pages' list too; the loan list and the collections list answer from there as well.
    page = await http.get("/office/customers", headers=admin)
    assert page.status_code == 200
    assert "Only On Primary" not in page.text
    for path in ("/api/loans", "/api/collections", "/office/loans", "/office/collections"):
        assert (await http.get(path, headers=admin)).status_code == 200, path

    # Replayed, the list has it.
    _sql(replica.url(standby=True), "SELECT pg_wal_replay_resume()")
    replica.caught_up()
    assert await _listed(http, admin, "Only On Primary")


async def test_a_write_reads_its_own_writes_then_the_replica_again(
    replica: StreamingPair,
    app: Any,
    world: World,
) -> None:
    http: httpx.AsyncClient = app.state.http
    admin = await bearer_for(app, world.admin)
    manager = await bearer_for(app, world.manager_a)
    _pause(replica)
    await _customer_on_primary(app, world, "Written Meanwhile")
    assert not await _listed(http, admin, "Written Meanwhile")

    # The Admin writes (a branch, through the API): committed, their reads go to the primary
    # for the sticky window — the customer committed before is there too.
    created = await http.post(
        "/api/branches", headers=admin, json={"code": "TMK01", "name": "Tumakuru"}
    )
    assert created.status_code == 201, created.text
    assert await _listed(http, admin, "Written Meanwhile")
    # The branch list page of the dashboard shows the new branch at once.
    dashboard = await http.get("/admin", headers=admin)
    assert dashboard.status_code == 200
    assert "TMK01" in dashboard.text
    # Someone else, who wrote nothing, still reads the replica.
    assert not await _listed(http, manager, "Written Meanwhile")

    # After the window (2 s here) the Admin reads the replica again.
    await asyncio.sleep(2.2)
    assert not await _listed(http, admin, "Written Meanwhile")


async def test_the_write_window_holds_on_every_instance(
    replica: StreamingPair, app: Any, world: World, redis_url: str, tmp_path: Path
) -> None:
    """Two instances behind a load balancer: the write answered by one, the next read by the
    other — the mark is in the shared Redis, so the second reads the primary too."""
    admin = await bearer_for(app, world.admin)
    settings = _settings(replica, tmp_path, redis_url=redis_url)
    async with _served(settings) as (_, one), _served(settings) as (_, other):
        _pause(replica)
        await _customer_on_primary(app, world, "Seen Everywhere")
        assert not await _listed(other, admin, "Seen Everywhere")
        created = await one.post(
            "/api/branches", headers=admin, json={"code": "KLR01", "name": "Kolar"}
        )
        assert created.status_code == 201, created.text
        assert await _listed(other, admin, "Seen Everywhere")


async def test_a_refused_write_keeps_no_window(
    replica: StreamingPair,
    app: Any,
    world: World,
) -> None:
    http: httpx.AsyncClient = app.state.http
    admin = await bearer_for(app, world.admin)
    _pause(replica)
    await _customer_on_primary(app, world, "Not Yet Replayed")
    refused = await http.post("/api/branches", headers=admin, json={"code": "X", "name": ""})
    assert refused.status_code == 422
    assert not await _listed(http, admin, "Not Yet Replayed")


async def test_dashboards_and_reports_read_the_replica(
    replica: StreamingPair,
    app: Any,
    world: World,
) -> None:
    http: httpx.AsyncClient = app.state.http
    admin = await bearer_for(app, world.admin)
    _pause(replica)
    # An agent committed on the primary only: the dashboards count agents, the agents'
    # report lists them.
    async with transaction(app.state.db) as session:
        session.add(
            User(
                name="Primary Only Agent",
                role=Role.AGENT,
                branch_id=world.branch_a.id,
                email="primary.only@example.com",
                phone="9000000099",
                password_hash="x",
            )
        )
    on_primary = await _sql_async(
        replica.url(database="namma"), "SELECT count(*) FROM users WHERE role = 'agent'"
    )

    dashboard = await http.get("/api/dashboard", headers=admin)
    assert dashboard.status_code == 200, dashboard.text
    assert dashboard.json()["people"]["agents"] == on_primary - 1

    report = await http.get("/api/reports/agent-performance", headers=admin)
    assert report.status_code == 200, report.text
    assert "Primary Only Agent" not in report.text
    page = await http.get("/office/reports/agent-performance", headers=admin)
    assert page.status_code == 200
    assert "Primary Only Agent" not in page.text
    # Every report reads there without writing (the standby would refuse a write).
    for name in ("portfolio-summary", "par", "income", "trial-balance", "overdue"):
        answer = await http.get(f"/api/reports/{name}", headers=admin)
        assert answer.status_code == 200, (name, answer.text)
    assert (await http.get("/admin", headers=admin)).status_code == 200

    # The dashboard computed from the replica is cached apart: someone reading the primary
    # (the Admin after a write) never gets it.
    created = await http.post("/api/branches", headers=admin, json={"code": "HSN01", "name": "H"})
    assert created.status_code == 201
    fresh = await http.get("/api/dashboard", headers=admin)
    assert fresh.json()["people"]["agents"] == on_primary


async def _sql_async(url: str, statement: str) -> Any:
    return await asyncio.to_thread(_sql, url, statement)


@pytest.mark.parametrize("overrides", [{"replica_max_lag_seconds": 1.0}])
async def test_lag_above_the_threshold_reads_the_primary(
    replica: StreamingPair,
    app: Any,
    world: World,
) -> None:
    settings, application, http = app.state.settings, app, app.state.http
    world_built = world
    admin = await bearer_for(application, world_built.admin)
    ready = (await http.get("/ready")).json()
    assert ready["checks"]["replica"]["reads"] == "replica"
    assert ready["checks"]["replica"]["lag_seconds"] is not None

    _pause(replica)
    await _customer_on_primary(application, world_built, "Lagging Behind")
    # Within the threshold: the replica, without the customer.
    assert not await _listed(http, admin, "Lagging Behind")
    # Replay paused while the primary writes on: the standby falls behind by more than a
    # second; measured again (at most once a second), reads go to the primary.
    await asyncio.sleep(2.2)
    assert await _listed(http, admin, "Lagging Behind")
    ready = await http.get("/ready")
    assert ready.status_code == 200  # a lagging replica never takes the instance out
    check = ready.json()["checks"]["replica"]
    assert check["reads"] == "primary"
    assert check["ok"] is False
    assert float(check["lag_seconds"]) > 1.0
    assert check["error"] == "lag above 1.0 s"

    doctor = _doctor(settings)
    assert "note  replica: lag" in doctor.stdout, doctor.stdout
    assert "above NAMMA_REPLICA_MAX_LAG_SECONDS=1.0" in doctor.stdout

    # Caught up, reads go back to the replica.
    _sql(replica.url(standby=True), "SELECT pg_wal_replay_resume()")
    replica.caught_up()
    await asyncio.sleep(1.1)
    check = (await http.get("/ready")).json()["checks"]["replica"]
    assert check == {
        "ok": True,
        "reads": "replica",
        "lag_seconds": "0.000",
        "max_lag_seconds": "1.0",
    }
    doctor = _doctor(settings)
    assert "ok    replica: standby at" in doctor.stdout, doctor.stdout
    assert "lag 0.000 s (limit 1.0 s)" in doctor.stdout


def _doctor(settings: Any) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("NAMMA_")}
    env = {
        **clean,
        "NAMMA_DATABASE_URL": settings.database_url,
        "NAMMA_DATABASE_REPLICA_URL": settings.database_replica_url,
        "NAMMA_REPLICA_MAX_LAG_SECONDS": str(settings.replica_max_lag_seconds),
    }
    return subprocess.run(
        [sys.executable, "-m", "namma", "doctor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "overrides", [{"database_replica_url": "postgresql://postgres@127.0.0.1:1/namma"}]
)
async def test_an_unreachable_replica_reads_the_primary(
    app: Any,
    world: World,
) -> None:
    settings, application, http = app.state.settings, app, app.state.http
    world_built = world
    admin = await bearer_for(application, world_built.admin)
    await _customer_on_primary(application, world_built, "Still Served")
    assert await _listed(http, admin, "Still Served")
    ready = await http.get("/ready")
    assert ready.status_code == 200
    check = ready.json()["checks"]["replica"]
    assert check["ok"] is False and check["reads"] == "primary"
    assert check["error"].startswith("no answer")
    doctor = _doctor(settings)
    assert doctor.returncode == 1
    assert "FAIL  replica: no PostgreSQL answers at postgresql://postgres@127.0.0.1:1/namma" in (
        doctor.stdout
    )


def test_the_primary_named_as_replica_is_refused(replica: StreamingPair, tmp_path: Path) -> None:
    settings = _settings(replica, tmp_path, database_replica_url=replica.url(database="namma"))
    doctor = _doctor(settings)
    assert doctor.returncode == 1
    assert "is not a standby (pg_is_in_recovery() is false)" in doctor.stdout


# --- the reports' kept sums on a standby (D-204, D-207, D-219) ------------------------------------


async def _kept_count(session: Any, cache: Any, read: Any) -> int:
    """`kept_sums` of a count under the test's key, for today."""
    from namma.kit.clock import today_india
    from namma.reports.kept import kept_sums

    counted: int = await kept_sums(
        session,
        cache,
        "kept:test",
        today=today_india(),
        read=read,
        add=int.__add__,
        encode=str,
        decode=int,
    )
    return counted


def test_a_standby_snapshot_lists_no_transaction_in_progress(replica: StreamingPair) -> None:
    """Why kept sums are never kept on a standby: PostgreSQL 15's ``pg_current_snapshot()``
    there has an empty in-progress list, so a transaction still open on the primary counts as
    seen by it."""
    primary = replica.url(database="namma")
    with psycopg.connect(primary) as writer:
        xact = writer.execute("SELECT pg_current_xact_id()::text").fetchone()
        assert xact is not None
        # WAL that names the open transaction reaches the standby with the next commit.
        _sql(primary, "SELECT txid_current()")
        seen_on_primary = _sql(
            primary, f"SELECT pg_visible_in_snapshot('{xact[0]}'::xid8, pg_current_snapshot())"
        )
        replica.caught_up()
        seen_on_standby = _sql(
            replica.url(standby=True, database="namma"),
            f"SELECT pg_visible_in_snapshot('{xact[0]}'::xid8, pg_current_snapshot())",
        )
        writer.rollback()
    assert seen_on_primary is False
    if seen_on_standby is False:  # pragma: no cover - a PostgreSQL that lists them
        pytest.skip(
            "this PostgreSQL lists the transactions in progress in a standby's snapshot; the "
            "rule stands anyway: a primary's kept snapshot is not combined with a standby's"
        )
    assert seen_on_standby is True  # wrong for our use: it has not committed


async def test_kept_sums_are_neither_used_nor_kept_on_a_standby(replica: StreamingPair) -> None:
    from sqlalchemy import literal_column, select

    from namma.kit.cache import MemoryCache
    from namma.kit.clock import today_india
    from namma.kit.db import Database
    from namma.kit.replica import STANDBY, reads_standby
    from namma.reports.kept import SnapshotRead, with_snapshot

    standby = Database.connect(replica.url(standby=True, database="namma"), pool_size=1)
    cache = MemoryCache()
    today = today_india()

    async def check(marked: bool) -> None:
        # What a primary kept: a snapshot ahead of anything, a value no full read gives.
        await cache.set(
            "kept:test",
            {"day": today.isoformat(), "snapshot": "1:1:", "database": "0", "value": "999"},
            60,
        )
        async with standby.sessionmaker() as session:
            session.info[STANDBY] = marked
            assert reads_standby(session) is marked
            reads: list[str | None] = []

            async def read(unseen_by: str | None) -> SnapshotRead[int]:
                reads.append(unseen_by)
                sums = select(literal_column("7").label("n")).subquery("sums")
                row = (await session.execute(with_snapshot(sums))).one()
                assert row.standby is True
                return SnapshotRead.of(row, int(row.n))

            def kept() -> Any:
                return _kept_count(session, cache, read)

            value = await kept()
            # The kept read was not added to; the full read answered; nothing was kept.
            assert value == 7
            assert reads == ([None] if marked else ["1:1:", None])
            assert (await cache.get("kept:test"))["value"] == "999"
            await cache.delete("kept:test")
            value = await kept()
            assert value == 7
            assert await cache.get("kept:test") is None

    try:
        # Marked as reading the standby (the session ReadSessionDep gives), and not marked: the
        # statement's own pg_is_in_recovery() still keeps the standby's snapshot out.
        await check(marked=True)
        await check(marked=False)
    finally:
        await standby.dispose()


async def test_a_standby_adds_to_what_a_primary_kept_once_it_has_replayed_past_it(
    replica: StreamingPair,
) -> None:
    """D-222: the reports' kept sums (here: a count of journal entries) read on the standby are
    what the primary kept plus what the standby sees beyond it — once the standby has replayed
    past the primary's WAL position of the kept read; before that, and for an entry kept
    without a position, a full read. The standby never keeps."""
    from sqlalchemy import func, select

    from namma.kit.cache import MemoryCache
    from namma.kit.db import Database
    from namma.kit.replica import STANDBY
    from namma.models import JournalEntry
    from namma.reports.kept import SnapshotRead, entries_unseen_by, with_snapshot

    primary_url = replica.url(database="namma")
    primary = Database.connect(primary_url, pool_size=1)
    standby = Database.connect(replica.url(standby=True, database="namma"), pool_size=1)
    cache = MemoryCache()
    reads: list[str | None] = []

    def post(n: int) -> None:
        """``n`` balanced entries (bank to bank), each in its own transaction."""
        for _ in range(n):
            with psycopg.connect(primary_url) as conn:
                entry = conn.execute(
                    "INSERT INTO journal_entries (entry_date, kind) "
                    "VALUES (current_date, 'test') RETURNING id"
                ).fetchone()
                assert entry is not None
                conn.execute(
                    "INSERT INTO journal_lines (entry_id, account_id, debit, credit) "
                    "SELECT %(e)s, id, 1, 0 FROM ledger_accounts WHERE code = 'TEST-BANK' "
                    "UNION ALL "
                    "SELECT %(e)s, id, 0, 1 FROM ledger_accounts WHERE code = 'TEST-BANK'",
                    {"e": entry[0]},
                )

    _sql(
        primary_url,
        "INSERT INTO ledger_accounts (id, code, name, kind, type) "
        "VALUES (gen_random_uuid(), 'TEST-BANK', 'Test bank', 'bank', 'asset') RETURNING 1",
    )

    async def counted(db: Database, *, on_standby: bool) -> int:
        async with db.sessionmaker() as session:
            session.info[STANDBY] = on_standby

            async def read(unseen_by: str | None) -> SnapshotRead[int]:
                reads.append(unseen_by)
                entries = select(func.count().label("n")).select_from(JournalEntry)
                if unseen_by is not None:
                    entries = entries.where(entries_unseen_by(unseen_by))
                row = (await session.execute(with_snapshot(entries.subquery("e")))).one()
                return SnapshotRead.of(row, int(row.n))

            return await _kept_count(session, cache, read)

    try:
        post(3)
        assert await counted(primary, on_standby=False) == 3
        kept = await cache.get("kept:test")
        assert kept["value"] == "3" and kept["lsn"]  # the primary's position with its snapshot
        post(2)
        replica.caught_up()
        reads.clear()
        assert await counted(standby, on_standby=True) == 5
        assert reads == [kept["snapshot"]]  # only what the kept snapshot could not see
        assert await cache.get("kept:test") == kept  # the standby keeps nothing

        # The standby behind the primary's latest kept read: its own full read.
        _pause(replica)
        post(4)
        assert await counted(primary, on_standby=False) == 9
        later = await cache.get("kept:test")
        reads.clear()
        assert await counted(standby, on_standby=True) == 5  # the 4 are not replayed there
        assert reads == [None]
        _sql(replica.url(standby=True), "SELECT pg_wal_replay_resume()")
        replica.caught_up()
        reads.clear()
        assert await counted(standby, on_standby=True) == 9
        assert reads == [later["snapshot"]]

        # Kept by a version without the position: a full read on the standby.
        await cache.set("kept:test", {k: v for k, v in later.items() if k != "lsn"}, 60)
        reads.clear()
        assert await counted(standby, on_standby=True) == 9
        assert reads == [None]
    finally:
        await primary.dispose()
        await standby.dispose()


async def test_the_worker_keeps_each_scopes_sums_on_the_primary_for_the_replica(
    replica: StreamingPair, app: Any, world: World
) -> None:
    """`reports:keep_sums` (D-222): every branch's and the institution's portfolio balance and
    12-month sums, kept on the primary with its WAL position; a report on the replica then
    reconciles from them, as the primary's would."""
    from namma.reports.monthly import monthly_key
    from namma.reports.tasks import report_sums_keep

    cache = app.state.cache
    async with transaction(app.state.db) as session:
        assert await report_sums_keep(session, cache) == 4  # the institution and 3 branches
    for branch in (None, world.head_office, world.branch_a, world.branch_b):
        scope = "all" if branch is None else str(branch.id)
        portfolio = await cache.get(f"kept:portfolio:{scope}")
        assert portfolio is not None and portfolio["lsn"], scope
        assert (await cache.get(monthly_key(None if branch is None else branch.id)))["lsn"]
    replica.caught_up()
    admin = await bearer_for(app, world.admin)
    http: httpx.AsyncClient = app.state.http
    on_replica = await http.get("/api/reports/par", headers=admin)
    assert on_replica.status_code == 200, on_replica.text
    reconciled = on_replica.json()["reconciliation"]
    assert reconciled and all(r["ok"] and r["difference"] == "0.00" for r in reconciled)
