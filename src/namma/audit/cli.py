"""`namma audit …`: operator commands for the audit log. Registered by namma.cli."""

from __future__ import annotations

import asyncio

import typer

audit_app = typer.Typer(help="Check the tamper-evident audit log.", no_args_is_help=True)


@audit_app.callback()
def audit_callback() -> None:
    """Check the tamper-evident audit log."""
    # A callback keeps `verify` a sub-command even while it is the only one.


@audit_app.command("verify")
def audit_verify_command() -> None:
    """Walk the audit chain and report the first broken entry, or OK with the count."""
    # Imported here: namma.cli imports this module to register the sub-app.
    from namma.audit.service import AuditVerifyResult, audit_verify
    from namma.cli import cli_database_url, cli_settings
    from namma.kit.db import Database

    settings = cli_settings()

    async def run(url: str) -> AuditVerifyResult:
        db = Database.connect(url, pool_size=1)
        try:
            async with db.sessionmaker() as session:
                return await audit_verify(session)
        finally:
            await db.dispose()

    with cli_database_url(settings, existing_only=True) as url:
        result = asyncio.run(run(url))
    if result.ok:
        typer.echo(f"Audit log OK: {result.count} entries")
        if result.last_id is not None:
            typer.echo(f"Newest entry {result.last_id}, hash {result.last_hash}")
        return
    typer.secho(
        f"Audit log BROKEN at entry {result.first_broken_id}: {result.reason}", err=True, fg="red"
    )
    raise typer.Exit(1)
