"""The `namma` command."""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from namma import __version__
from namma.audit.cli import audit_app
from namma.cli_schedule import schedule
from namma.cob.cli import cob
from namma.config import Settings, SettingsError, get_settings
from namma.ledger.cli import ledger_app

app = typer.Typer(
    name="namma",
    help="Namma Finance: loan management for microfinance institutions.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
jobs_app = typer.Typer(help="Inspect and retry background jobs.", no_args_is_help=True)
app.add_typer(jobs_app, name="jobs")
app.add_typer(audit_app, name="audit")
app.add_typer(ledger_app, name="ledger")


def cli_settings() -> Settings:
    """The settings, or a plain-words exit when the configuration is unusable."""
    get_settings.cache_clear()
    try:
        return get_settings()
    except (SettingsError, ValidationError) as exc:
        typer.secho(f"Configuration error: {_first_line(exc)}", err=True, fg="red")
        raise typer.Exit(2) from None


def _first_line(exc: BaseException) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(
            f"NAMMA_{'_'.join(str(p) for p in e['loc']).upper()}: {e['msg']}"
            if e["loc"]
            else str(e["msg"]).removeprefix("Value error, ")
            for e in exc.errors()
        )
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0]


def _exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit, so `finally` blocks (stopping the embedded database) run,
    and stop the same way on SIGHUP (the terminal that ran `dev.py run` was closed).

    The HTTP server handles SIGTERM gracefully and then re-raises it for the previous handler;
    with the default handler the process would die before cleaning up.
    """

    def handler(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)
    if hasattr(signal, "SIGHUP"):  # not on Windows
        signal.signal(signal.SIGHUP, _hung_up)


def _hung_up(signum: int, frame: object) -> None:
    """The terminal went away. Nobody reads our output any more (writing to a hung-up terminal
    fails), so it goes to /dev/null; then stop exactly as on SIGTERM: the server's graceful
    shutdown, then the embedded PostgreSQL. (With `--workers N` uvicorn's supervisor takes
    SIGHUP to mean "restart the workers"; `dev.py run` uses one.)"""
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        try:
            hung = os.isatty(fd)
        except OSError:
            hung = True
        if hung:
            os.dup2(devnull, fd)
    os.close(devnull)
    os.kill(os.getpid(), signal.SIGTERM)


LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")


def plain_http_warning(host: str, settings: Settings) -> str | None:
    """Why sign-in will fail for browsers on other machines, or None. Session cookies are
    `Secure` outside localhost (namma.kit.security_headers), so over plain HTTP on a
    non-loopback address browsers drop them. Production is assumed to sit behind a TLS proxy."""
    loopback = host in LOOPBACK_HOSTS or host.startswith("127.")
    if loopback or settings.serves_tls or settings.env == "production":
        return None
    return (
        f"Warning: listening on {host} over plain HTTP. Browsers on other machines will refuse "
        "the session cookies (they are Secure away from localhost), so signing in will fail "
        "there. Use TLS (NAMMA_TLS_CERTFILE and NAMMA_TLS_KEYFILE, or a TLS proxy with "
        "NAMMA_ENV=production), or open the application as http://localhost on this machine."
    )


def processes_warning(processes: int, settings: Settings) -> str | None:
    """Why several server processes without Redis serve stale data, or None."""
    if processes == 1 or settings.redis_url:
        return None
    return (
        f"Warning: {processes} server processes without NAMMA_REDIS_URL: each keeps its own "
        "cache and rate limits, so one process may answer from data another has changed. "
        "Set NAMMA_REDIS_URL, or run one process."
    )


def _checkout_data_dir() -> Path | None:
    """``var/`` of the source checkout this package runs from (``dev.py run``'s data), if any."""
    root = Path(__file__).resolve().parents[2]
    return root / "var" if (root / "pyproject.toml").is_file() else None


def _existing_data_dir(settings: Settings) -> Path:
    """The embedded database to inspect: the configured one if it exists, else (with the
    default NAMMA_DATA_DIR) the project's, found from here upwards or in the source checkout.
    Never a new, empty one: say plainly what is missing instead."""
    from namma.kit.embedded import EmbeddedPostgres, embedded_data_dir_find

    if EmbeddedPostgres(settings.data_dir).exists:
        return settings.data_dir
    if "data_dir" not in settings.model_fields_set:
        found = embedded_data_dir_find(Path.cwd(), also=_checkout_data_dir())
        if found is not None:
            typer.echo(f"Using the project's database in {found}.", err=True)
            return found
    where = EmbeddedPostgres(settings.data_dir).pgdata
    typer.secho(
        f"No database found: there is no embedded PostgreSQL in {where}. Run this command in "
        "the folder where you run `namma serve` (or `python3 dev.py run`), set NAMMA_DATA_DIR "
        "to that folder's var/, or set NAMMA_DATABASE_URL to your PostgreSQL server.",
        err=True,
        fg="red",
    )
    raise typer.Exit(2)


@contextlib.contextmanager
def cli_database_url(settings: Settings, *, existing_only: bool = False) -> Iterator[str]:
    """The configured database URL, or the embedded server's (started here, stopped on exit;
    or attached to, when another process runs it). ``existing_only``: for commands that read
    (checks, listings): never create a database, and refuse one without our tables.

    Configured: the direct URL when there is one (NAMMA_DATABASE_DIRECT_URL), not the pooler's:
    a command holds its connection as long as it runs (the worker LISTENs, migrations and the
    close of business take session advisory locks)."""
    direct = settings.session_database_url
    if direct:
        if existing_only:
            _require_schema(direct)
        yield direct
        return
    from namma.kit.embedded import EmbeddedPostgres

    data_dir = _existing_data_dir(settings) if existing_only else settings.data_dir
    embedded = EmbeddedPostgres(data_dir)
    if embedded.started_elsewhere():
        typer.echo(f"Using the embedded PostgreSQL running in {embedded.pgdata}.", err=True)
    else:
        typer.echo(f"Starting the embedded PostgreSQL in {embedded.pgdata} …", err=True)
    try:
        url = embedded.start()
    except Exception as exc:
        typer.secho(
            f"Could not start the embedded PostgreSQL in {embedded.pgdata}: {_first_line(exc)}",
            err=True,
            fg="red",
        )
        raise typer.Exit(1) from None
    try:
        if existing_only:
            _require_schema(url)
        yield url
    finally:
        embedded.stop()


def _require_schema(url: str) -> None:
    """Exit with plain words unless the database answers and carries our current schema."""
    from namma.kit.migrations import migration_state

    try:
        state = migration_state(url)
    except Exception as exc:
        typer.secho(f"Could not read the database: {_first_line(exc)}", err=True, fg="red")
        raise typer.Exit(1) from None
    if not state.current:
        typer.secho(
            "The database has no Namma Finance tables (it was never migrated): run "
            "`namma migrate`, or start `namma serve` once.",
            err=True,
            fg="red",
        )
        raise typer.Exit(2)
    if not state.up_to_date:
        typer.secho(
            f"The database is at revision {', '.join(state.current)}; this version needs "
            f"{', '.join(state.head)}: run `namma migrate`.",
            err=True,
            fg="red",
        )
        raise typer.Exit(2)


@app.callback(invoke_without_command=True)
def main(
    version: Annotated[bool, typer.Option("--version", help="Print the version and exit.")] = False,
) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


@app.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to listen on (default: NAMMA_HOST or 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Port to listen on (default: NAMMA_PORT or 8000).")
    ] = None,
    demo: Annotated[
        bool, typer.Option("--demo", help="Load the demo data (idempotent) before serving.")
    ] = False,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="HTTP server processes (default: NAMMA_SERVER_PROCESSES; unset, one per CPU "
            "core (at most 4) with NAMMA_DATABASE_URL and NAMMA_REDIS_URL set, else 1).",
        ),
    ] = None,
    job_worker: Annotated[
        bool | None,
        typer.Option(
            "--job-worker/--no-job-worker",
            help="Run a job worker inside the server (default: yes on the embedded database, "
            "no with NAMMA_DATABASE_URL; then run `namma worker`).",
        ),
    ] = None,
) -> None:
    """Run the HTTP server (and, by default on the embedded database, a job worker)."""
    import uvicorn

    settings = cli_settings()
    inprocess_worker = settings.runs_inprocess_worker if job_worker is None else job_worker
    _exit_on_sigterm()
    with cli_database_url(settings) as url:
        from namma.kit.migrations import migrate_upgrade

        try:
            # NAMMA_MIGRATE_ON_START=false: `namma migrate` ran before (several instances
            # behind a balancer, a deployment's own step; docs/operations.md).
            if settings.migrate_on_start:
                migrate_upgrade(url)
        except Exception as exc:
            typer.secho(f"Could not migrate the database: {_first_line(exc)}", err=True, fg="red")
            raise typer.Exit(1) from None
        if demo or settings.demo:
            # Once, here, rather than racing in each of several server processes.
            asyncio.run(_demo_load(url))
        # The server processes read their settings from the environment; they serve through
        # NAMMA_DATABASE_URL (a pooler's, perhaps), not the direct URL used above.
        os.environ["NAMMA_DATABASE_URL"] = settings.database_url or url
        os.environ["NAMMA_INPROCESS_WORKER"] = "true" if inprocess_worker else "false"
        os.environ["NAMMA_MIGRATE_ON_START"] = "false"
        os.environ["NAMMA_DEMO"] = "false"
        get_settings.cache_clear()
        bind_host = host or settings.host
        bind_port = port or settings.port
        scheme = "https" if settings.serves_tls else "http"
        typer.echo(f"Namma Finance {__version__} on {scheme}://{bind_host}:{bind_port}", err=True)
        processes = workers or settings.server_processes_default
        typer.echo(
            f"{processes} server process{'es' if processes > 1 else ''}, "
            f"{settings.server_concurrency} requests at once each at most",
            err=True,
        )
        for warning in (
            plain_http_warning(bind_host, settings),
            processes_warning(processes, settings),
        ):
            if warning:
                typer.secho(warning, err=True, fg="yellow")
        uvicorn.run(
            "namma.app:create_app",
            factory=True,
            host=bind_host,
            port=bind_port,
            workers=processes,
            log_config=None,
            proxy_headers=False,
            ssl_certfile=settings.tls_certfile,
            ssl_keyfile=settings.tls_keyfile,
        )


async def _demo_load(url: str) -> None:
    from namma.demo import demo_load
    from namma.kit.db import Database

    db = Database.connect(url, pool_size=1)
    try:
        await demo_load(db)
    finally:
        await db.dispose()


@app.command()
def worker(
    concurrency: Annotated[
        int | None,
        typer.Option(
            min=1,
            max=64,
            help="Jobs run at once, in this one process (default: NAMMA_WORKER_CONCURRENCY, 2).",
        ),
    ] = None,
    queue: Annotated[
        list[str] | None, typer.Option(help="Only these queues, repeatable (default: all).")
    ] = None,
) -> None:
    """Run a job worker. Start as many as you like, on any hosts that reach the database."""
    settings = cli_settings()
    from namma.jobs import job_app, runtime
    from namma.kit.cache import cache_from_url
    from namma.kit.db import Database
    from namma.kit.jobs import job_app_opened, worker_options
    from namma.kit.logging import logging_configure

    logging_configure(json_lines=settings.logs_as_json, level=settings.log_level)

    async def run(url: str) -> None:
        db = Database.connect(url, pool_size=settings.db_pool_size)
        runtime.db = db
        runtime.cache = cache_from_url(settings.redis_url)
        size = (concurrency or settings.worker_concurrency) + 2
        try:
            async with job_app_opened(job_app, url, max_size=size):
                options = worker_options(
                    concurrency=concurrency or settings.worker_concurrency,
                    poll_interval=settings.job_poll_interval,
                    stalled_worker_seconds=settings.stalled_worker_seconds,
                )
                if queue:
                    options["queues"] = queue
                await job_app.run_worker_async(**options)
        finally:
            await db.dispose()

    with cli_database_url(settings) as url:
        asyncio.run(run(url))


@app.command()
def migrate(
    revision: Annotated[str, typer.Argument(help="Target revision.")] = "head",
) -> None:
    """Apply database migrations (Alembic upgrade)."""
    settings = cli_settings()
    from namma.kit.migrations import migrate_upgrade, migration_state

    with cli_database_url(settings) as url:
        try:
            migrate_upgrade(url, revision)
            state = migration_state(url)
        except Exception as exc:
            typer.secho(f"Migration failed: {_first_line(exc)}", err=True, fg="red")
            raise typer.Exit(1) from None
    typer.echo(f"Database at revision {', '.join(state.current) or '(none)'}.")


@app.command("create-admin")
def create_admin(
    email: Annotated[str, typer.Option(help="Login email of the new Admin.")],
    name: Annotated[str, typer.Option(help="Full name.")] = "Administrator",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
) -> None:
    """Create an Admin user (for the first login of a new installation)."""
    settings = cli_settings()
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = getpass.getpass("Password (at least 12 characters): ")
        if getpass.getpass("Repeat it: ") != password:
            typer.secho("The passwords differ.", err=True, fg="red")
            raise typer.Exit(2)

    from namma.kit.db import Database, transaction
    from namma.kit.errors import AppError
    from namma.kit.migrations import migrate_upgrade
    from namma.users.service import admin_create

    async def run(url: str) -> None:
        db = Database.connect(url, pool_size=1)
        try:
            async with transaction(db) as session:
                await admin_create(session, name=name, email=email, password=password)
        finally:
            await db.dispose()

    with cli_database_url(settings) as url:
        migrate_upgrade(url)
        try:
            asyncio.run(run(url))
        except AppError as exc:
            typer.secho(f"Not created: {exc.message}", err=True, fg="red")
            raise typer.Exit(2) from None
    typer.echo(f"Admin {email.strip().lower()} created.")


@app.command()
def doctor() -> None:
    """Check configuration, database, migrations, Redis and the job engine; say what is wrong."""
    from namma.kit.doctor import doctor_run

    get_settings.cache_clear()
    ok = doctor_run(echo=typer.echo)
    raise typer.Exit(0 if ok else 1)


@jobs_app.command("failed")
def jobs_failed_command(
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Show at most this many.")] = 50,
) -> None:
    """List jobs that failed after all their retries (the dead-letter list)."""
    settings = cli_settings()
    from namma.jobs import job_app
    from namma.kit.jobs import job_app_opened, jobs_failed

    async def run(url: str) -> None:
        async with job_app_opened(job_app, url, max_size=2):
            failed = await jobs_failed(job_app, limit=limit)
        if not failed:
            typer.echo("No failed jobs.")
            return
        typer.echo(f"{'ID':>8}  {'TASK':<32} {'TRIES':>5}  {'FAILED AT':<25} ARGS")
        for job in failed:
            args = {k: v for k, v in job.task_kwargs.items() if k != "request_id"}
            when = job.failed_at.isoformat(timespec="seconds") if job.failed_at else "-"
            typer.echo(f"{job.id:>8}  {job.task_name:<32} {job.attempts:>5}  {when:<25} {args}")

    with cli_database_url(settings, existing_only=True) as url:
        asyncio.run(run(url))


@jobs_app.command("retry")
def jobs_retry_command(
    job_id: Annotated[int, typer.Argument(help="Id of a failed job (see `namma jobs failed`).")],
) -> None:
    """Put a failed job back in the queue to run now."""
    settings = cli_settings()
    from namma.jobs import job_app
    from namma.kit.jobs import JobNotFailedError, job_app_opened, job_retry

    async def run(url: str) -> None:
        async with job_app_opened(job_app, url, max_size=2):
            await job_retry(job_app, job_id)

    with cli_database_url(settings, existing_only=True) as url:
        try:
            asyncio.run(run(url))
        except JobNotFailedError as exc:
            typer.secho(f"Not retried: {exc}", err=True, fg="red")
            raise typer.Exit(2) from None
    typer.echo(f"Job {job_id} queued again.")


app.command("schedule")(schedule)
app.command("cob")(cob)
