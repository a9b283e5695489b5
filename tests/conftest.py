"""Shared fixtures: a real PostgreSQL (CI's server, or an embedded one) and Redis when available.

- NAMMA_TEST_DATABASE_URL: a server to create a throw-away database on. Unset: an embedded
  PostgreSQL in a temporary directory.
- NAMMA_TEST_REDIS_URL: a Redis for the Redis-backend tests. Unset: those tests are skipped,
  except in CI (CI=true), where a missing service is an error, never a skip.
- NAMMA_TEST_MIDNIGHT_MARGIN_MINUTES (15): a run starting this close to the Indian midnight waits
  for it first (0: never wait).
"""

from __future__ import annotations

import datetime as dt
import inspect
import os
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import hypothesis
import psycopg
import pytest
from sqlalchemy.engine import make_url

from namma.kit.clock import INDIA
from namma.kit.db import libpq_url
from namma.kit.embedded import EmbeddedPostgres, create_database
from namma.kit.passwords import password_hashing_configure

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _fastapi_signatures_memoized() -> None:
    """FastAPI analyses a route's dependencies when an app first matches a request against it,
    evaluating every string annotation of every endpoint and dependency (``inspect.signature(...,
    eval_str=True)``): ~0.15 s on the first request of each app here. The suite builds an app per
    test from the same functions, whose signatures never change: remember them per function."""
    from fastapi.dependencies import utils

    original = getattr(utils, "_get_signature", None)
    if original is None:  # another FastAPI: nothing to speed up here
        return
    known: dict[object, inspect.Signature] = {}

    def signature(call: Callable[..., Any]) -> inspect.Signature:
        try:
            return known[call]
        except KeyError:
            known[call] = found = original(call)
            return found
        except TypeError:  # an unhashable callable
            return original(call)

    utils._get_signature = signature


_fastapi_signatures_memoized()

# Examples per hypothesis property (tests that name their own count keep it): CI tries the most,
# `dev.py test` enough to catch a slip, `dev.py test --fast` a quick pass. HYPOTHESIS_PROFILE
# chooses another.
hypothesis.settings.register_profile("ci", max_examples=500)
hypothesis.settings.register_profile("dev", max_examples=100)
hypothesis.settings.register_profile("fast", max_examples=25)
hypothesis.settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if IN_CI else "dev"))

# Cheap argon2id, as the ``settings`` fixture selects, from the start: the password hashes that
# test modules make at import time (the identity fixtures' users) verify in a millisecond.
password_hashing_configure(fast=True)


# Test databases on a configured server, dropped when the session ends (see _drop_detached).
_DROP_AT_END: list[str] = []


def _drop_detached(server_url: str, names: list[str]) -> None:
    """Drop ``names`` from a process of their own that the session does not wait for.

    Every DROP DATABASE forces a checkpoint of the whole server (3-25 s measured on the shared
    development server); nothing needs the databases gone before the next run starts."""
    script = (
        "import sys, psycopg\n"
        "with psycopg.connect(sys.argv[1], autocommit=True) as conn:\n"
        "    for name in sys.argv[2:]:\n"
        "        conn.execute(f'DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)')\n"
    )
    subprocess.Popen(
        [sys.executable, "-c", script, server_url, *names],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


# A run that crosses the Indian midnight would see "today" change under it: a portfolio built on one
# day, read as the next (dates kept at import, the server's default periods, PostgreSQL's clock).
# A run that would start within this margin of midnight waits until the day has turned.
MIDNIGHT_MARGIN = dt.timedelta(
    minutes=int(os.environ.get("NAMMA_TEST_MIDNIGHT_MARGIN_MINUTES", "15"))
)


def seconds_until_clear_of_midnight(now: dt.datetime, margin: dt.timedelta) -> float:
    """Seconds to wait at ``now`` (aware) so that the next ``margin`` holds no Indian midnight."""
    local = now.astimezone(INDIA)
    midnight = dt.datetime.combine(local.date() + dt.timedelta(days=1), dt.time(), INDIA)
    left = midnight - local
    return left.total_seconds() + 5 if left < margin else 0.0


def pytest_configure(config: pytest.Config) -> None:
    if hasattr(config, "workerinput"):  # an xdist worker: its controller has already waited
        return
    wait = seconds_until_clear_of_midnight(dt.datetime.now(dt.UTC), MIDNIGHT_MARGIN)
    if wait:
        print(f"\nThe Indian day turns in {wait - 5:.0f} s: waiting for it before the run starts.")
        time.sleep(wait)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``--dist loadgroup``, as ``dev.py test`` runs it) the tests that share
    a module-scoped fixture (a server, a built portfolio) go to one worker, which builds it once;
    every other test goes to whichever worker is free."""
    if not config.pluginmanager.hasplugin("xdist"):
        return
    for item in items:
        info = getattr(item, "_fixtureinfo", None)
        definitions = info.name2fixturedefs.values() if info is not None else ()
        if any(defs and defs[-1].scope in ("module", "package") for defs in definitions):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


def drop_at_session_end(name: str) -> None:
    """Drop the database ``name`` (made on ``postgres_server_url``) once the session is over,
    without making the session wait for it."""
    _DROP_AT_END.append(name)


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database."""
    url = os.environ.get("NAMMA_TEST_DATABASE_URL")
    if url:
        yield libpq_url(url)
        if _DROP_AT_END:
            _drop_detached(libpq_url(url), _DROP_AT_END)
        return
    if IN_CI:
        pytest.fail("CI must set NAMMA_TEST_DATABASE_URL: tests never fall back in CI")
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("embedded-pg"))
    embedded.start(database="postgres")
    assert embedded._server is not None
    yield str(embedded._server.get_uri())
    embedded.stop()  # its databases go with its temporary directory


def _with_database(server_url: str, database: str) -> str:
    return make_url(server_url).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, migrated database for this test session (each xdist worker has its own),
    dropped when the session ends."""
    from namma.kit.migrations import migrate_upgrade

    name = f"namma_test_{uuid.uuid4().hex[:10]}"
    create_database(postgres_server_url, name)
    url = _with_database(postgres_server_url, name)
    migrate_upgrade(url)
    yield url
    _maintenance_close(url)
    drop_at_session_end(name)


@pytest.fixture
def empty_database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh database with no migrations applied, dropped when the session ends."""
    name = f"namma_test_{uuid.uuid4().hex[:10]}"
    create_database(postgres_server_url, name)
    yield _with_database(postgres_server_url, name)
    drop_at_session_end(name)


@pytest.fixture
def redis_url() -> str:
    """The test Redis; each xdist worker gets a database of its own (base + worker number), so
    that one worker's pattern deletes and rate-limit windows never meet another's."""
    url = os.environ.get("NAMMA_TEST_REDIS_URL")
    if url:
        return _per_worker_redis(url)
    if IN_CI:
        pytest.fail("CI must set NAMMA_TEST_REDIS_URL: Redis tests are never skipped in CI")
    pytest.skip("NAMMA_TEST_REDIS_URL not set (Redis tests run in CI)")


def _per_worker_redis(url: str) -> str:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # gw0, gw1, … under pytest-xdist
    if not worker.startswith("gw"):
        return url
    parts = urlsplit(url)
    base = int(parts.path.strip("/") or 0)
    return urlunsplit(parts._replace(path=f"/{(base + int(worker[2:])) % 16}"))


# One maintenance connection per database for the whole session: connecting costs more than
# emptying a test's few tables.
_maintenance: dict[str, psycopg.Connection] = {}


def _maintenance_connection(url: str) -> psycopg.Connection:
    conn = _maintenance.get(url)
    if conn is None or conn.closed or conn.broken:
        conn = psycopg.connect(libpq_url(url), autocommit=True)
        _maintenance[url] = conn
    return conn


def _maintenance_close(url: str) -> None:
    conn = _maintenance.pop(url, None)
    if conn is not None:
        conn.close()


def truncate_all(url: str) -> None:
    """Empty every table but the migration marker and restart their identity sequences.

    Only the tables that hold rows are touched (one query finds them; a test writes a handful of
    the ~35 tables). They are emptied with DELETE: a TRUNCATE creates new files for the table
    and each index and costs ~30 ms a table, a DELETE of a test's few rows well under one.
    As a superuser (CI, the embedded server) the DELETEs run with
    ``session_replication_role = replica`` in one transaction: foreign keys and the append-only
    guards (audit log, ledger) do not fire, and no other session ever sees them off. Otherwise
    the non-empty tables are TRUNCATEd with their TRUNCATE guards lifted in the transaction.
    """
    conn = _maintenance_connection(url)
    with conn.transaction():
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT quote_ident(tablename) FROM pg_tables "
                "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
        ]
        if not tables:
            return
        probe = " UNION ALL ".join(
            f"SELECT {i} WHERE EXISTS (SELECT FROM {table})" for i, table in enumerate(tables)
        )
        dirty = [tables[row[0]] for row in conn.execute(probe)]
        if not dirty:
            return
        superuser = conn.execute("SELECT current_setting('is_superuser') = 'on'").fetchone()
        if superuser and superuser[0]:
            conn.execute("SET LOCAL session_replication_role = replica")
            for table in dirty:
                conn.execute(f"DELETE FROM {table}")
            sequences = conn.execute(
                "SELECT seq.seqrelid::regclass::text, seq.seqstart FROM pg_depend d "
                "JOIN pg_sequence seq ON seq.seqrelid = d.objid "
                "WHERE d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') "
                "AND d.refobjid = ANY(%s::regclass[])",
                (dirty,),
            ).fetchall()
            for sequence, start in sequences:
                conn.execute("SELECT setval(%s::regclass, %s, false)", (sequence, start))
            return
        guards = list(
            conn.execute(
                "SELECT quote_ident(c.relname), quote_ident(t.tgname), t.tgenabled "
                "FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = 'public' AND NOT t.tgisinternal AND t.tgenabled <> 'D' "
                "AND t.tgtype & 32 <> 0"  # 32: fires on TRUNCATE
            )
        )
        for table, trigger, _ in guards:
            conn.execute(f"ALTER TABLE {table} DISABLE TRIGGER {trigger}")
        conn.execute(f"TRUNCATE {', '.join(dirty)} RESTART IDENTITY CASCADE")
        for table, trigger, enabled in guards:
            mode = {"A": "ALWAYS ", "R": "REPLICA "}.get(enabled, "")
            conn.execute(f"ALTER TABLE {table} ENABLE {mode}TRIGGER {trigger}")


@pytest.fixture
def clean_database(database_url: str) -> Iterator[str]:
    truncate_all(database_url)
    yield database_url
    truncate_all(database_url)


@pytest.fixture
def settings(clean_database: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    from namma.config import Settings

    return Settings(
        env="test",
        database_url=clean_database,
        data_dir=tmp_path / "var",
        inprocess_worker=False,
        migrate_on_start=False,
        job_poll_interval=0.2,
        # Tests log in often from one address; the limit itself is tested with the default.
        login_rate_limit="200/minute",
        # The standard parameters are tested in tests/integration/test_password_hashing.py.
        insecure_fast_password_hashing=True,
    )


@pytest.fixture
async def app(settings):  # type: ignore[no-untyped-def]
    from asgi_lifespan import LifespanManager

    from namma.app import create_app

    application = create_app(settings)
    async with LifespanManager(application):
        yield application


@pytest.fixture
async def client(app) -> AsyncIterator:  # type: ignore[no-untyped-def]
    import httpx

    # As a real server would: an unhandled error is a 500 response, not an exception here.
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as http:
        yield http
