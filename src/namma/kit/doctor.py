"""`namma doctor`: check each dependency and say in plain words what is wrong and what to do."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import psycopg
import redis
from pydantic import ValidationError

from namma.config import Settings, SettingsError, get_settings
from namma.kit.db import connect_arguments, libpq_url, redact_url

Echo = Callable[[str], object]

_CONNECT_TIMEOUT_SECONDS = 5


def _explain_postgres(exc: Exception, url: str) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    lowered = text.lower()
    where = redact_url(url)
    if "connection refused" in lowered or "no such file or directory" in lowered:
        return f"no PostgreSQL answers at {where} (connection refused): is the server running?"
    if "password authentication failed" in lowered or "no password supplied" in lowered:
        return f"PostgreSQL at {where} refused the user name or password"
    if "does not exist" in lowered and "database" in lowered:
        return f"the database in {where} does not exist: create it (createdb) or fix the URL"
    if "timeout" in lowered or "timed out" in lowered:
        return f"PostgreSQL at {where} did not answer within {_CONNECT_TIMEOUT_SECONDS} s"
    if "unsupported startup parameter" in lowered:
        return (
            f"{where} is a connection pooler that refuses the connection's settings ({text}): "
            "set NAMMA_DATABASE_POOLER=transaction (and NAMMA_DATABASE_DIRECT_URL), D-218"
        )
    if "could not translate host name" in lowered or "name or service not known" in lowered:
        return f"the host name in {where} cannot be resolved"
    return f"cannot use PostgreSQL at {where}: {text}"


def doctor_run(*, echo: Echo) -> bool:
    """Print one line per check; True when everything is usable."""
    problems = 0

    def good(what: str, detail: str) -> None:
        echo(f"  ok    {what}: {detail}")

    def bad(what: str, detail: str) -> None:
        nonlocal problems
        problems += 1
        echo(f"  FAIL  {what}: {detail}")

    def note(what: str, detail: str) -> None:
        echo(f"  note  {what}: {detail}")

    echo("Namma Finance doctor")
    try:
        settings: Settings = get_settings()
    except (SettingsError, ValidationError) as exc:
        message = (
            "; ".join(str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
            if isinstance(exc, ValidationError)
            else str(exc)
        )
        bad("configuration", message)
        echo("1 problem found.")
        return False
    good("configuration", f"environment {settings.env}")

    embedded = None
    url = settings.database_url
    if url:
        try:
            libpq_url(url)
        except Exception as exc:
            bad("database", f"NAMMA_DATABASE_URL is not a usable PostgreSQL URL ({exc})")
            url = None
    else:
        from namma.kit.embedded import EmbeddedPostgres

        embedded = EmbeddedPostgres(settings.data_dir)
        try:
            url = embedded.start()
            note(
                "database",
                f"NAMMA_DATABASE_URL unset: using the embedded PostgreSQL in {embedded.pgdata}",
            )
        except Exception as exc:
            bad("database", f"the embedded PostgreSQL in {embedded.pgdata} did not start: {exc}")
            url = None

    try:
        if url:
            try:
                # As the server's engine connects (its options, or none behind a pooler).
                with psycopg.connect(
                    libpq_url(url),
                    connect_timeout=_CONNECT_TIMEOUT_SECONDS,
                    **connect_arguments(pooled=settings.behind_transaction_pooler),
                ) as conn:
                    version = conn.execute("SHOW server_version").fetchone()
                good(
                    "database", f"PostgreSQL {version[0] if version else '?'} at {redact_url(url)}"
                )
            except Exception as exc:
                bad("database", _explain_postgres(exc, url))
                url = None
        direct = settings.database_direct_url
        if direct and direct != settings.database_url:
            # Workers and migrations connect here, past the pooler (D-218).
            try:
                with psycopg.connect(
                    libpq_url(direct), connect_timeout=_CONNECT_TIMEOUT_SECONDS
                ) as conn:
                    conn.execute("SELECT 1")
                good("direct database", f"answers at {redact_url(direct)} (workers, migrations)")
            except Exception as exc:
                bad("direct database", _explain_postgres(exc, direct))

        if settings.database_replica_url:
            _check_replica(settings, good, bad, note)

        if url:
            from namma.kit.migrations import migration_state

            state = migration_state(url)
            if state.up_to_date:
                good("migrations", f"at head {', '.join(state.head)}")
            elif not state.current:
                bad("migrations", "the database is empty: run `namma migrate`")
            else:
                bad(
                    "migrations",
                    f"database at {', '.join(state.current)}, code expects "
                    f"{', '.join(state.head)}: run `namma migrate`",
                )
            _check_jobs(url, good, bad, note)
        else:
            note("migrations", "skipped (no database)")
            note("jobs", "skipped (no database)")

        if settings.redis_url:
            try:
                client = redis.Redis.from_url(
                    settings.redis_url, socket_connect_timeout=_CONNECT_TIMEOUT_SECONDS
                )
                client.ping()
                client.close()
                good("redis", f"answers at {redact_url(settings.redis_url)}")
            except Exception as exc:
                bad(
                    "redis",
                    f"no Redis answers at {redact_url(settings.redis_url)} "
                    f"({str(exc).splitlines()[0] if str(exc) else type(exc).__name__}): "
                    "start it, fix NAMMA_REDIS_URL, or unset it to use the in-process fallback",
                )
        else:
            note(
                "redis",
                "NAMMA_REDIS_URL unset: cache and rate limits are per process "
                "(fine for one server)",
            )
    finally:
        if embedded is not None:
            embedded.stop()

    echo("No problems found." if problems == 0 else f"{problems} problem(s) found.")
    return problems == 0


def _check_replica(
    settings: Settings,
    good: Callable[[str, str], None],
    bad: Callable[[str, str], None],
    note: Callable[[str, str], None],
) -> None:
    """The replica answers, is a standby, streams from the primary, and how far behind it is
    (D-219). Above NAMMA_REPLICA_MAX_LAG_SECONDS the application reads the primary instead:
    a note, not a failure."""
    from decimal import Decimal

    from namma.kit.replica import LAG_QUERY

    url = settings.database_replica_url
    assert url is not None
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=_CONNECT_TIMEOUT_SECONDS) as conn:
            row = conn.execute(LAG_QUERY).fetchone()
    except Exception as exc:
        bad("replica", _explain_postgres(exc, url) + "; reads go to the primary meanwhile")
        return
    assert row is not None
    standby, streaming, lag = row
    where = redact_url(url)
    if not standby:
        bad(
            "replica",
            f"{where} is not a standby (pg_is_in_recovery() is false): it was promoted, or the "
            "URL names a primary; reads go to the primary",
        )
        return
    limit = Decimal(str(settings.replica_max_lag_seconds))
    lag_text = "unknown" if lag is None else f"{Decimal(lag).quantize(Decimal('0.001'))} s"
    if not streaming and lag != 0:
        bad(
            "replica",
            f"{where} does not stream from the primary (no WAL receiver; lag {lag_text}): "
            "check primary_conninfo and the primary's pg_hba.conf; reads go to the primary",
        )
        return
    if lag is None or Decimal(lag) > limit:
        note(
            "replica",
            f"lag {lag_text} at {where}, above NAMMA_REPLICA_MAX_LAG_SECONDS={limit}: "
            "dashboards, reports and lists read the primary until it catches up",
        )
        return
    good("replica", f"standby at {where}, lag {lag_text} (limit {limit} s)")


def _check_jobs(
    url: str,
    good: Callable[[str, str], None],
    bad: Callable[[str, str], None],
    note: Callable[[str, str], None],
) -> None:
    async def probe() -> tuple[int, int]:
        async with await psycopg.AsyncConnection.connect(
            libpq_url(url), connect_timeout=_CONNECT_TIMEOUT_SECONDS
        ) as conn:
            failed = await (
                await conn.execute(
                    "SELECT count(*) FROM procrastinate_jobs WHERE status = 'failed'"
                )
            ).fetchone()
            workers = await (
                await conn.execute(
                    "SELECT count(*) FROM procrastinate_workers "
                    "WHERE last_heartbeat > now() - interval '1 minute'"
                )
            ).fetchone()
            return (failed[0] if failed else 0, workers[0] if workers else 0)

    try:
        failed, workers = asyncio.run(probe())
    except psycopg.errors.UndefinedTable:
        bad("jobs", "the job engine's tables are missing: run `namma migrate`")
        return
    except Exception as exc:
        bad("jobs", f"cannot query the job engine: {exc}")
        return
    good("jobs", f"{workers} worker(s) alive")
    if failed:
        note("jobs", f"{failed} failed job(s): see `namma jobs failed`")
