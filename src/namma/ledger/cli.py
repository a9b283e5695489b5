"""`namma ledger …`: operator commands for the general ledger. Registered by namma.cli."""

from __future__ import annotations

import asyncio

import typer

ledger_app = typer.Typer(help="Check the general ledger.", no_args_is_help=True)


@ledger_app.callback()
def ledger_callback() -> None:
    """Check the general ledger."""
    # A callback keeps `check` a sub-command even while it is the only one.


@ledger_app.command("check")
def ledger_check_command() -> None:
    """Verify that every journal entry balances, that all debits equal all credits, that each
    disbursed loan's outstanding principal equals its loan-portfolio balance, that capital and
    borrowings agree with their records, and that each loan's advance held, provision held and
    interest receivable (accrual basis: accrued − settled − reversed) equal their ledger
    balances."""
    # Imported here: namma.cli imports this module to register the sub-app.
    from namma.cli import cli_database_url, cli_settings
    from namma.kit.db import Database
    from namma.ledger.queries import LedgerCheckResult, ledger_check

    settings = cli_settings()

    async def run(url: str) -> LedgerCheckResult:
        db = Database.connect(url, pool_size=1)
        try:
            async with db.sessionmaker() as session:
                # One snapshot for every query of the check.
                await session.connection(execution_options={"isolation_level": "REPEATABLE READ"})
                return await ledger_check(session)
        finally:
            await db.dispose()

    with cli_database_url(settings, existing_only=True) as url:
        result = asyncio.run(run(url))
    if result.ok:
        typer.echo(
            f"Ledger OK: {result.entries} entries, debits = credits = "
            f"{result.total_debit:.2f}, {result.loans_reconciled} loans reconciled, "
            f"provision for loan losses {result.provision_balance:.2f}"
        )
        return
    problems = result.problems()
    typer.secho(f"Ledger BROKEN: {len(problems)} problem(s)", err=True, fg="red")
    for problem in problems:
        typer.secho(f"- {problem}", err=True)
    raise typer.Exit(1)
