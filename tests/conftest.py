"""Shared fixtures: a real PostgreSQL (CI's server, or an embedded one) and Redis when available.

- NAMMA_TEST_DATABASE_URL: a server to create a throw-away database on. Unset: an embedded
  PostgreSQL in a temporary directory.
- NAMMA_TEST_REDIS_URL: a Redis for the Redis-backend tests. Unset: those tests are skipped,
  except in CI (CI=true), where a missing service is an error, never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from namma.kit.db import libpq_url
from namma.kit.embedded import EmbeddedPostgres, create_database, drop_database

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


@pytest.fixture(scope="session")
def postgres_server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server's maintenance database."""
    url = os.environ.get("NAMMA_TEST_DATABASE_URL")
    if url:
        yield libpq_url(url)
        return
    if IN_CI:
        pytest.fail("CI must set NAMMA_TEST_DATABASE_URL: tests never fall back in CI")
    embedded = EmbeddedPostgres(tmp_path_factory.mktemp("embedded-pg"))
    embedded.start(database="postgres")
    assert embedded._server is not None
    yield str(embedded._server.get_uri())
    embedded.stop()


def _with_database(server_url: str, database: str) -> str:
    return make_url(server_url).set(database=database).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh, migrated database for this test session, dropped at the end."""
    from namma.kit.migrations import migrate_upgrade

    name = f"namma_test_{uuid.uuid4().hex[:10]}"
    create_database(postgres_server_url, name)
    url = _with_database(postgres_server_url, name)
    migrate_upgrade(url)
    yield url
    drop_database(postgres_server_url, name)


@pytest.fixture
def empty_database_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh database with no migrations applied, dropped after the test."""
    name = f"namma_test_{uuid.uuid4().hex[:10]}"
    create_database(postgres_server_url, name)
    yield _with_database(postgres_server_url, name)
    drop_database(postgres_server_url, name)


@pytest.fixture
def redis_url() -> str:
    url = os.environ.get("NAMMA_TEST_REDIS_URL")
    if url:
        return url
    if IN_CI:
        pytest.fail("CI must set NAMMA_TEST_REDIS_URL: Redis tests are never skipped in CI")
    pytest.skip("NAMMA_TEST_REDIS_URL not set (Redis tests run in CI)")


def truncate_all(url: str) -> None:
    """Empty every table but the migration marker; the schema stays.

    Triggers that refuse TRUNCATE (the append-only audit log) are disabled inside this one
    transaction only: other sessions never see them disabled.
    """
    with psycopg.connect(libpq_url(url)) as conn:  # one transaction, committed on exit
        tables = [
            row[0]
            for row in conn.execute(
                "SELECT quote_ident(tablename) FROM pg_tables "
                "WHERE schemaname = 'public' AND tablename <> 'alembic_version'"
            )
        ]
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
        if tables:
            conn.execute(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE")
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
