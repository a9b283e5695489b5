"""`namma cob --date YYYY-MM-DD`: run the close of business in this process. Registered by
namma.cli."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from typing import Annotated, Any

import typer

EXIT_REFUSED = 2
EXIT_BUSY = 3


def cob(
    date: Annotated[
        str | None,
        typer.Option(
            "--date", help="Business date to close, YYYY-MM-DD (default: yesterday in India)."
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Run every step again although the date has completed, or although a later "
            "date has (then run the latest date again).",
        ),
    ] = False,
) -> None:
    """Close of business for a date: advances applied, installment statuses, penalties, days
    past due and classes, provisions for loan losses, portfolio snapshots. Resumes a run that
    died halfway; exit 3 if one is running."""
    # Imported here: namma.cli imports this module to register the command.
    from namma.audit.service import AuditActor
    from namma.cli import cli_database_url, cli_settings
    from namma.cob.runner import CobBusyError, CobOutcome, cob_execute
    from namma.kit.cache import cache_from_url
    from namma.kit.clock import today_india
    from namma.kit.db import Database
    from namma.kit.errors import AppError

    if date is None:
        day = today_india() - dt.timedelta(days=1)
    else:
        try:
            day = dt.date.fromisoformat(date)
        except ValueError:
            typer.secho(f"--date: {date!r} is not a date (YYYY-MM-DD)", err=True, fg="red")
            raise typer.Exit(EXIT_REFUSED) from None
    settings = cli_settings()

    def echo_step(name: str, result: dict[str, Any]) -> None:
        typer.echo(f"  {name}: {json.dumps(result, sort_keys=True)}")

    async def run(url: str) -> CobOutcome:
        db = Database.connect(url, pool_size=2)
        cache = cache_from_url(settings.redis_url)
        try:
            return await cob_execute(
                db,
                business_date=day,
                force=force,
                cache=cache,
                actor=AuditActor.system(),
                on_step=echo_step,
            )
        finally:
            await cache.close()
            await db.dispose()

    typer.echo(f"Close of business for {day.isoformat()} …", err=True)
    with cli_database_url(settings) as url:
        try:
            outcome = asyncio.run(run(url))
        except CobBusyError as exc:
            typer.secho(f"Not run: {exc.message}", err=True, fg="red")
            raise typer.Exit(EXIT_BUSY) from None
        except AppError as exc:
            typer.secho(f"Not run: {exc.message}", err=True, fg="red")
            raise typer.Exit(EXIT_REFUSED) from None
    if outcome.already_completed:
        typer.echo(
            f"The close of business for {day.isoformat()} had already completed; nothing to do "
            "(--force runs it again)."
        )
        return
    resumed = f", resumed at step {outcome.resumed_at_step + 1}" if outcome.resumed_at_step else ""
    typer.echo(f"Close of business for {day.isoformat()} completed{resumed}.")
