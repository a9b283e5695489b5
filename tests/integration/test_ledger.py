"""The general ledger against a real PostgreSQL: posting, the database's own refusals, reversals,
the trial balance, statements, `namma ledger check` and the /api/ledger routes."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import httpx
import psycopg
import pytest
from sqlalchemy import func, select
from starlette.routing import NoMatchFound
from typer.testing import CliRunner

from namma.kit.db import Database, libpq_url, transaction
from namma.kit.errors import ConflictError, InvalidInputError, NotFoundError
from namma.ledger.cli import ledger_app
from namma.ledger.queries import (
    account_statement,
    ledger_check,
    loan_ledger_balances,
    trial_balance,
)
from namma.ledger.service import (
    LedgerError,
    Leg,
    journal_post,
    journal_reverse,
    ledger_account,
)
from namma.models import (
    AccountKind,
    AccountType,
    CapitalMethod,
    Investment,
    JournalEntry,
    JournalLine,
    LedgerAccount,
    Loan,
    LoanStatus,
    Role,
    User,
)
from tests.factories import product_version_plain
from tests.integration.conftest import World

D = Decimal
DAY = dt.date(2026, 1, 15)
REPO_ROOT = Path(__file__).resolve().parents[2]

K = AccountKind


def _db(app: Any) -> Database:
    db: Database = app.state.db
    return db


async def _post(app: Any, **kwargs: Any) -> JournalEntry:
    kwargs.setdefault("entry_date", DAY)
    async with transaction(_db(app)) as session:
        return await journal_post(session, **kwargs)


async def _capital(app: Any, amount: str = "500000.00") -> JournalEntry:
    """Owners' capital as the capital service records it: the journal and its investment row
    (`ledger_check` reconciles the capital account with the standing investments)."""
    async with transaction(_db(app)) as session:
        entry = await journal_post(
            session,
            kind="capital",
            entry_date=DAY,
            legs=[Leg(K.BANK, debit=D(amount)), Leg(K.CAPITAL, credit=D(amount))],
        )
        admin = await session.scalar(select(User.id).where(User.role == Role.ADMIN).limit(1))
        assert admin is not None
        session.add(
            Investment(
                amount=D(amount),
                source="Founders",
                invested_on=DAY,
                method=CapitalMethod.BANK,
                journal_entry_id=entry.id,
                created_by_id=admin,
            )
        )
        return entry


async def _fund_branch(app: Any, branch_id: uuid.UUID, amount: str, day: dt.date = DAY) -> None:
    await _post(
        app,
        kind="branch.funding",
        entry_date=day,
        branch_id=branch_id,
        legs=[
            Leg(K.BRANCH_CASH, debit=D(amount), branch_id=branch_id),
            Leg(K.BANK, credit=D(amount)),
        ],
    )


async def _make_loan(
    app: Any,
    world: World,
    *,
    principal: str = "10000.00",
    status: LoanStatus = LoanStatus.ACTIVE,
    number: str = "BLR01-2026-000001",
    disbursed: bool = True,
) -> uuid.UUID:
    """A minimal loan row (the lending service is not needed to reconcile one)."""
    async with transaction(_db(app)) as session:
        version_id = await product_version_plain(
            session, code="LEDGER-T", name="Ledger test product", max_installments=52
        )
        loan = Loan(
            loan_number=number,
            branch_id=world.branch_a.id,
            customer_id=world.customer_a.id,
            product_version_id=version_id,
            status=status,
            principal=D(principal),
            annual_rate=D("24"),
            installments=12,
            terms={},
            applied_by_id=world.agent_a.id,
            disbursed_on=DAY if disbursed else None,
            outstanding_principal=D(principal) if disbursed else D("0.00"),
        )
        session.add(loan)
        await session.flush()
        return loan.id


async def _disburse(
    app: Any, world: World, loan_id: uuid.UUID, principal: str, fee: str = "0.00"
) -> JournalEntry:
    """Dr portfolio principal (tagged) / Cr branch cash net / Cr fee income deducted fee."""
    net = D(principal) - D(fee)
    return await _post(
        app,
        kind="loan.disbursement",
        branch_id=world.branch_a.id,
        loan_id=loan_id,
        legs=[
            Leg(K.LOAN_PORTFOLIO, debit=D(principal), loan_id=loan_id),
            Leg(K.BRANCH_CASH, credit=net, branch_id=world.branch_a.id),
            Leg(K.FEE_INCOME, credit=D(fee), loan_id=loan_id),
        ],
    )


async def _collect(
    app: Any, world: World, loan_id: uuid.UUID, principal: str, interest: str
) -> JournalEntry:
    """Dr agent cash / Cr portfolio principal / Cr interest income; the loan row follows."""
    async with transaction(_db(app)) as session:
        entry = await journal_post(
            session,
            kind="collection",
            entry_date=DAY + dt.timedelta(days=7),
            branch_id=world.branch_a.id,
            loan_id=loan_id,
            legs=[
                Leg(K.AGENT_CASH, debit=D(principal) + D(interest), agent_id=world.agent_a.id),
                Leg(K.LOAN_PORTFOLIO, credit=D(principal), loan_id=loan_id),
                Leg(K.INTEREST_INCOME, credit=D(interest), loan_id=loan_id),
            ],
        )
        loan = await session.get(Loan, loan_id, with_for_update=True)
        assert loan is not None
        loan.outstanding_principal -= D(principal)
        return entry


def _sql(url: str, *statements: str) -> None:
    """Run statements in one transaction through plain psycopg, committed at the end."""
    with psycopg.connect(libpq_url(url)) as conn:
        for statement in statements:
            conn.execute(statement)


async def _an_account_id(app: Any, kind: AccountKind = K.BANK) -> uuid.UUID:
    async with transaction(_db(app)) as session:
        return (await ledger_account(session, kind)).id


# --- posting ------------------------------------------------------------------------------------


async def test_journal_post_writes_balanced_lines_and_cash_accounts_once(
    app: Any, world: World
) -> None:
    await _capital(app)
    await _fund_branch(app, world.branch_a.id, "20000.00")
    await _fund_branch(app, world.branch_a.id, "5000.00")
    entry = await _post(
        app,
        kind="agent.float",
        branch_id=world.branch_a.id,
        legs=[
            Leg(K.AGENT_CASH, debit=D("1500.50"), agent_id=world.agent_a.id),
            Leg(K.BRANCH_CASH, credit=D("1500.50"), branch_id=world.branch_a.id),
            Leg(K.FEE_INCOME, credit=D("0.00")),  # a zero leg is no line
        ],
    )
    async with transaction(_db(app)) as session:
        lines = (
            await session.scalars(select(JournalLine).where(JournalLine.entry_id == entry.id))
        ).all()
        assert sorted((line.debit, line.credit) for line in lines) == [
            (D("0.00"), D("1500.50")),
            (D("1500.50"), D("0.00")),
        ]
        branch_cash = (
            await session.scalars(select(LedgerAccount).where(LedgerAccount.kind == K.BRANCH_CASH))
        ).all()
        assert [(a.code, a.branch_id, a.type) for a in branch_cash] == [
            ("1010-BLR01", world.branch_a.id, AccountType.ASSET)
        ]
        agent_cash = (
            await session.scalars(select(LedgerAccount).where(LedgerAccount.kind == K.AGENT_CASH))
        ).all()
        assert len(agent_cash) == 1
        assert agent_cash[0].agent_id == world.agent_a.id and agent_cash[0].branch_id is None
        assert agent_cash[0].code == f"1020-{world.agent_a.id.hex[:12]}"
        # The same kind for another branch is another account; head-office kinds are single.
        again = await ledger_account(session, K.BRANCH_CASH, branch_id=world.branch_b.id)
        assert again.code == "1010-MYS01"
        bank = await ledger_account(session, K.BANK, branch_id=world.branch_a.id)
        assert bank.code == "1030" and bank.branch_id is None
        assert await session.scalar(select(func.count()).select_from(LedgerAccount)) == 5


async def test_journal_post_refuses_bad_journals_and_writes_nothing(app: Any, world: World) -> None:
    bad = [
        [Leg(K.BANK, debit=D("100.00")), Leg(K.CAPITAL, credit=D("99.99"))],
        [Leg(K.BANK, debit=D("100.00")), Leg(K.CAPITAL, credit=D("0"))],
        [Leg(K.BANK, debit=D("0.001")), Leg(K.CAPITAL, credit=D("0.001"))],
        [Leg(K.BANK, debit=D("-1.00")), Leg(K.CAPITAL, debit=D("1.00"))],
    ]
    for legs in bad:
        with pytest.raises(LedgerError):
            await _post(app, kind="capital", legs=legs)
    with pytest.raises(LedgerError, match="needs a branch"):
        await _post(
            app,
            kind="x",
            legs=[Leg(K.BRANCH_CASH, debit=D("1.00")), Leg(K.BANK, credit=D("1.00"))],
        )
    async with transaction(_db(app)) as session:
        assert await session.scalar(select(func.count()).select_from(JournalEntry)) == 0


async def test_concurrent_first_use_creates_one_cash_account(app: Any, world: World) -> None:
    db = _db(app)
    async with db.sessionmaker() as first, db.sessionmaker() as second:
        mine = await ledger_account(first, K.BRANCH_CASH, branch_id=world.branch_b.id)
        # The second session's insert waits on the unique index for the first to finish.
        theirs = asyncio.create_task(
            ledger_account(second, K.BRANCH_CASH, branch_id=world.branch_b.id)
        )
        await asyncio.sleep(0.3)
        assert not theirs.done()
        await first.commit()
        other = await theirs
        await second.commit()
        assert other.id == mine.id


async def test_concurrent_postings_share_the_new_agent_account(app: Any, world: World) -> None:
    async def float_to_agent(amount: str) -> None:
        await _post(
            app,
            kind="agent.float",
            branch_id=world.branch_b.id,
            legs=[
                Leg(K.AGENT_CASH, debit=D(amount), agent_id=world.agent_b.id),
                Leg(K.BRANCH_CASH, credit=D(amount), branch_id=world.branch_b.id),
            ],
        )

    await asyncio.gather(*(float_to_agent(f"{n}00.00") for n in range(1, 7)))
    async with transaction(_db(app)) as session:
        accounts = (
            await session.scalars(
                select(LedgerAccount.kind).where(
                    LedgerAccount.kind.in_([K.AGENT_CASH, K.BRANCH_CASH])
                )
            )
        ).all()
        assert sorted(accounts) == sorted([K.AGENT_CASH, K.BRANCH_CASH])
    balances = await _trial(app)
    assert balances["agent_cash"] == D("2100.00")
    assert balances["branch_cash"] == D("-2100.00")


# --- the database's own guard -----------------------------------------------------------------


async def test_database_refuses_a_hand_made_unbalanced_journal(
    app: Any, world: World, clean_database: str
) -> None:
    bank = await _an_account_id(app, K.BANK)
    # Not capital: that account is reconciled with the investments, which a hand-made entry
    # has none of.
    income = await _an_account_id(app, K.FEE_INCOME)
    one_line = (
        "WITH e AS (INSERT INTO journal_entries (entry_date, kind) "
        "VALUES ('2026-01-15', 'hand') RETURNING id) "
        "INSERT INTO journal_lines (entry_id, account_id, debit, credit) "
        f"SELECT id, '{bank}'::uuid, 100, 0 FROM e"
    )
    unequal = (
        "WITH e AS (INSERT INTO journal_entries (entry_date, kind) "
        "VALUES ('2026-01-15', 'hand') RETURNING id) "
        "INSERT INTO journal_lines (entry_id, account_id, debit, credit) "
        f"SELECT id, '{bank}'::uuid, 100.00, 0 FROM e "
        f"UNION ALL SELECT id, '{income}'::uuid, 0, 99.99 FROM e"
    )
    no_lines = "INSERT INTO journal_entries (entry_date, kind) VALUES ('2026-01-15', 'hand')"
    for statement in (one_line, unequal, no_lines):
        with pytest.raises(psycopg.errors.CheckViolation, match="does not balance"):
            await anyio.to_thread.run_sync(_sql, clean_database, statement)

    # Balanced by hand is fine: the trigger checks at COMMIT, after all lines are in.
    balanced = unequal.replace("0, 99.99", "0, 100.00")
    await anyio.to_thread.run_sync(_sql, clean_database, balanced)
    async with transaction(_db(app)) as session:
        assert await session.scalar(select(func.count()).select_from(JournalEntry)) == 1
        assert (await ledger_check(session)).ok


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE journal_lines SET debit = debit + 1 WHERE debit > 0",
        "DELETE FROM journal_lines",
        "UPDATE journal_entries SET memo = 'edited'",
        "DELETE FROM journal_entries",
        "TRUNCATE journal_lines",
        "TRUNCATE journal_entries CASCADE",
    ],
)
async def test_database_refuses_edits_of_the_ledger(
    app: Any, world: World, clean_database: str, statement: str
) -> None:
    await _capital(app)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
        await anyio.to_thread.run_sync(_sql, clean_database, statement)


# --- reversals ----------------------------------------------------------------------------------


async def test_journal_reverse_posts_the_mirror_once(app: Any, world: World) -> None:
    await _capital(app)
    loan_id = await _make_loan(app, world)
    original = await _disburse(app, world, loan_id, "10000.00", fee="150.00")
    async with transaction(_db(app)) as session:
        reversal = await journal_reverse(
            session,
            entry_id=original.id,
            entry_date=DAY + dt.timedelta(days=1),
            reason="wrong customer",
            created_by_id=world.admin.id,
        )
        loan = await session.get(Loan, loan_id)
        assert loan is not None
        loan.outstanding_principal = D("0.00")
    assert reversal.reverses_id == original.id
    assert reversal.kind == "loan.disbursement.reversal"
    assert reversal.branch_id == world.branch_a.id and reversal.loan_id == loan_id
    assert reversal.memo == f"Reversal of entry {original.id}: wrong customer"

    async with transaction(_db(app)) as session:

        async def lines(entry_id: int) -> list[tuple[uuid.UUID, D, D, uuid.UUID | None]]:
            rows = await session.scalars(
                select(JournalLine).where(JournalLine.entry_id == entry_id)
            )
            return sorted((line.account_id, line.debit, line.credit, line.loan_id) for line in rows)

        mirrored = [(a, c, d, t) for a, d, c, t in await lines(original.id)]
        assert await lines(reversal.id) == sorted(mirrored)
        assert await loan_ledger_balances(session, loan_id) == {
            K.LOAN_PORTFOLIO: D("0.00"),
            K.FEE_INCOME: D("0.00"),
        }
        assert (await ledger_check(session)).ok

    for entry_id, message in ((original.id, "already reversed"), (reversal.id, "is itself")):
        with pytest.raises(ConflictError, match=message) as refused:
            async with transaction(_db(app)) as session:
                await journal_reverse(
                    session,
                    entry_id=entry_id,
                    entry_date=DAY,
                    reason="again",
                    created_by_id=None,
                )
        assert refused.value.status_code == 409
    with pytest.raises(NotFoundError):
        async with transaction(_db(app)) as session:
            await journal_reverse(
                session, entry_id=999_999, entry_date=DAY, reason="x", created_by_id=None
            )
    with pytest.raises(InvalidInputError):
        async with transaction(_db(app)) as session:
            await journal_reverse(
                session, entry_id=original.id, entry_date=DAY, reason="  ", created_by_id=None
            )
    async with transaction(_db(app)) as session:
        assert await session.scalar(select(func.count()).select_from(JournalEntry)) == 3


async def test_concurrent_reversals_reverse_once(app: Any, world: World) -> None:
    entry = await _capital(app)

    async def reverse() -> JournalEntry | ConflictError:
        try:
            async with transaction(_db(app)) as session:
                return await journal_reverse(
                    session, entry_id=entry.id, entry_date=DAY, reason="dup", created_by_id=None
                )
        except ConflictError as exc:
            return exc

    results = await asyncio.gather(reverse(), reverse(), reverse())
    assert sum(isinstance(r, JournalEntry) for r in results) == 1
    assert sum(isinstance(r, ConflictError) for r in results) == 2


# --- trial balance and statements ---------------------------------------------------------------


async def _trial(app: Any, **kwargs: Any) -> dict[str, D]:
    async with transaction(_db(app)) as session:
        result = await trial_balance(session, **kwargs)
    assert result.total_debit == result.total_credit
    return {row.kind.value: row.balance for row in result.rows}


async def test_trial_balance_totals_agree_and_balances_follow_the_normal_side(
    app: Any, world: World
) -> None:
    await _capital(app, "500000.00")
    await _post(
        app,
        kind="borrowing",
        legs=[Leg(K.BANK, debit=D("200000.00")), Leg(K.BORROWINGS, credit=D("200000.00"))],
    )
    await _fund_branch(app, world.branch_a.id, "50000.00")
    loan_id = await _make_loan(app, world)
    await _disburse(app, world, loan_id, "10000.00", fee="200.00")
    await _collect(app, world, loan_id, "800.00", "180.25")
    later = DAY + dt.timedelta(days=30)
    await _post(
        app,
        kind="loan.write_off",
        entry_date=later,
        branch_id=world.branch_a.id,
        loan_id=loan_id,
        legs=[
            Leg(K.WRITE_OFF_EXPENSE, debit=D("9200.00"), loan_id=loan_id),
            Leg(K.LOAN_PORTFOLIO, credit=D("9200.00"), loan_id=loan_id),
        ],
    )

    async with transaction(_db(app)) as session:
        result = await trial_balance(session)
        by_kind = {row.kind: row for row in result.rows}
        assert result.balanced
        assert result.total_debit == result.total_credit == D("770180.25")
        assert [row.code for row in result.rows] == sorted(row.code for row in result.rows)
        assert by_kind[K.BANK].balance == D("650000.00")
        assert by_kind[K.BANK].normal_side == "debit"
        assert by_kind[K.CAPITAL].balance == D("500000.00")  # credit-normal, shown positive
        assert by_kind[K.CAPITAL].normal_side == "credit"
        assert by_kind[K.BORROWINGS].balance == D("200000.00")
        assert by_kind[K.BRANCH_CASH].balance == D("40200.00")
        assert by_kind[K.AGENT_CASH].balance == D("980.25")
        assert by_kind[K.LOAN_PORTFOLIO].debit == D("10000.00")
        assert by_kind[K.LOAN_PORTFOLIO].credit == D("10000.00")
        assert by_kind[K.LOAN_PORTFOLIO].balance == D("0.00")
        assert by_kind[K.INTEREST_INCOME].balance == D("180.25")
        assert by_kind[K.FEE_INCOME].balance == D("200.00")
        assert by_kind[K.WRITE_OFF_EXPENSE].balance == D("9200.00")

        before_write_off = await trial_balance(session, as_of=later - dt.timedelta(days=1))
        assert {r.kind: r.balance for r in before_write_off.rows}[K.LOAN_PORTFOLIO] == D("9200.00")
        assert K.WRITE_OFF_EXPENSE not in {r.kind for r in before_write_off.rows}

        branch = await trial_balance(session, branch_id=world.branch_a.id)
        assert branch.balanced and branch.total_debit == D("70180.25")
        assert K.CAPITAL not in {r.kind for r in branch.rows}
        assert (await trial_balance(session, branch_id=world.branch_b.id)).rows == []

        assert await loan_ledger_balances(session, loan_id) == {
            K.LOAN_PORTFOLIO: D("0.00"),
            K.FEE_INCOME: D("200.00"),
            K.INTEREST_INCOME: D("180.25"),
            K.WRITE_OFF_EXPENSE: D("9200.00"),
        }


async def test_account_statement_runs_a_balance_and_pages_by_keyset(app: Any, world: World) -> None:
    await _capital(app)
    # Posted out of date order: the statement follows entry dates.
    await _fund_branch(app, world.branch_a.id, "3000.00", DAY + dt.timedelta(days=2))
    await _fund_branch(app, world.branch_a.id, "1000.00", DAY)
    await _fund_branch(app, world.branch_a.id, "2000.00", DAY + dt.timedelta(days=1))
    await _post(
        app,
        kind="agent.float",
        entry_date=DAY + dt.timedelta(days=3),
        branch_id=world.branch_a.id,
        legs=[
            Leg(K.AGENT_CASH, debit=D("500.00"), agent_id=world.agent_a.id),
            Leg(K.BRANCH_CASH, credit=D("500.00"), branch_id=world.branch_a.id),
        ],
    )
    async with transaction(_db(app)) as session:
        account = await ledger_account(session, K.BRANCH_CASH, branch_id=world.branch_a.id)
        everything = await account_statement(session, account_id=account.id)
        assert [(line.debit, line.credit, line.balance) for line in everything.lines] == [
            (D("1000.00"), D("0.00"), D("1000.00")),
            (D("2000.00"), D("0.00"), D("3000.00")),
            (D("3000.00"), D("0.00"), D("6000.00")),
            (D("0.00"), D("500.00"), D("5500.00")),
        ]
        assert everything.opening_balance == D("0.00")
        assert everything.closing_balance == D("5500.00")
        assert everything.next_after_line_id is None

        first = await account_statement(session, account_id=account.id, limit=3)
        assert len(first.lines) == 3 and first.next_after_line_id == first.lines[-1].line_id
        rest = await account_statement(
            session, account_id=account.id, after_line_id=first.next_after_line_id, limit=3
        )
        assert rest.opening_balance == D("6000.00")
        assert [line.balance for line in rest.lines] == [D("5500.00")]
        assert rest.next_after_line_id is None

        window = await account_statement(
            session,
            account_id=account.id,
            since=DAY + dt.timedelta(days=1),
            until=DAY + dt.timedelta(days=2),
        )
        assert window.opening_balance == D("1000.00")
        assert [line.balance for line in window.lines] == [D("3000.00"), D("6000.00")]

        capital = await ledger_account(session, K.CAPITAL)
        credit_normal = await account_statement(session, account_id=capital.id)
        assert [line.balance for line in credit_normal.lines] == [D("500000.00")]

        with pytest.raises(InvalidInputError):
            await account_statement(session, account_id=account.id, after_line_id=10**9)
        with pytest.raises(InvalidInputError):
            await account_statement(
                session, account_id=account.id, since=DAY, until=DAY - dt.timedelta(days=1)
            )
        with pytest.raises(NotFoundError):
            await account_statement(session, account_id=uuid.uuid4())


# --- ledger check -------------------------------------------------------------------------------


async def test_ledger_check_passes_on_good_data(app: Any, world: World) -> None:
    async with transaction(_db(app)) as session:
        empty = await ledger_check(session)
    assert empty.ok and empty.entries == 0 and empty.total_debit == D("0")

    await _capital(app)
    await _fund_branch(app, world.branch_a.id, "20000.00")
    loan_id = await _make_loan(app, world)
    await _disburse(app, world, loan_id, "10000.00", fee="100.00")
    await _collect(app, world, loan_id, "833.33", "200.00")
    await _make_loan(
        app, world, number="BLR01-2026-000002", status=LoanStatus.APPROVED, disbursed=False
    )
    async with transaction(_db(app)) as session:
        result = await ledger_check(session)
        assert result.ok, result.problems()
        assert result.problems() == []
        assert result.entries == 4 and result.lines == 10
        assert result.total_debit == result.total_credit == D("531033.33")
        assert result.loans_reconciled == 1
        loan = await session.get(Loan, loan_id)
        assert loan is not None and loan.outstanding_principal == D("9166.67")


async def test_ledger_check_reports_a_loan_that_disagrees_with_its_portfolio(
    app: Any, world: World, clean_database: str
) -> None:
    loan_id = await _make_loan(app, world)
    await _disburse(app, world, loan_id, "10000.00")
    await _collect(app, world, loan_id, "1000.00", "150.00")
    untouched = await _make_loan(app, world, number="BLR01-2026-000002", principal="5000.00")
    await _disburse(app, world, untouched, "5000.00")
    async with transaction(_db(app)) as session:
        assert (await ledger_check(session)).ok

    # The denormalised balance drifts (an UPDATE of loans is allowed; the ledger is not).
    await anyio.to_thread.run_sync(
        _sql,
        clean_database,
        f"UPDATE loans SET outstanding_principal = 9500.00 WHERE id = '{loan_id}'",
    )
    async with transaction(_db(app)) as session:
        result = await ledger_check(session)
    assert not result.ok
    assert result.unbalanced == [] and result.total_debit == result.total_credit
    assert [
        (m.loan_number, m.outstanding_principal, m.portfolio_balance)
        for m in result.loan_mismatches
    ] == [("BLR01-2026-000001", D("9500.00"), D("9000.00"))]
    assert result.problems() == [
        "Loan BLR01-2026-000001 (active): outstanding principal 9500.00 on the loan, "
        "but 9000.00 in the loan portfolio (difference 500.00)."
    ]


async def test_ledger_check_reports_corruption_that_bypassed_the_guards(
    app: Any, world: World, clean_database: str
) -> None:
    """Rows written while the triggers were off (an old restore, a careless operator): the
    check still finds them."""
    bank = await _an_account_id(app, K.BANK)
    portfolio = await _an_account_id(app, K.LOAN_PORTFOLIO)
    never_disbursed = await _make_loan(
        app, world, number="BLR01-2026-000009", status=LoanStatus.APPLIED, disbursed=False
    )
    guards = ("journal_lines journal_lines_balance", "journal_entries journal_entries_have_lines")
    await anyio.to_thread.run_sync(
        lambda: _sql(
            clean_database,
            *(f"ALTER TABLE {g.split()[0]} DISABLE TRIGGER {g.split()[1]}" for g in guards),
            "INSERT INTO journal_entries (entry_date, kind) "
            "VALUES ('2026-01-15', 'bad'), ('2026-01-15', 'bad'), ('2026-01-15', 'bad')",
            f"INSERT INTO journal_lines (entry_id, account_id, debit, credit) VALUES "
            f"(1, '{bank}', 100.00, 0), (1, '{portfolio}', 0, 99.00),"
            f"(2, '{bank}', 5.00, 0),"
            f"(1, '{portfolio}', 0, 1.50)",
            f"INSERT INTO journal_lines (entry_id, account_id, debit, credit, loan_id) VALUES "
            f"(1, '{portfolio}', 700.00, 0, '{never_disbursed}')",
            *(f"ALTER TABLE {g.split()[0]} ENABLE TRIGGER {g.split()[1]}" for g in guards),
        )
    )
    async with transaction(_db(app)) as session:
        result = await ledger_check(session)
    assert not result.ok
    assert [(u.entry_id, u.debit, u.credit, u.lines) for u in result.unbalanced] == [
        (1, D("800.00"), D("100.50"), 4),
        (2, D("5.00"), D("0.00"), 1),
        (3, D("0.00"), D("0.00"), 0),
    ]
    assert result.untagged_portfolio_lines == 2
    assert [m.loan_number for m in result.loan_mismatches] == ["BLR01-2026-000009"]
    problems = result.problems()
    assert problems[0] == "Journal entry 1 does not balance: debits 800.00, credits 100.50."
    assert problems[1] == "Journal entry 2 has 1 line(s); it needs at least 2."
    assert problems[2] == "Journal entry 3 has 0 line(s); it needs at least 2."
    assert problems[3] == ("All debits (805.00) differ from all credits (100.50) by 704.50.")
    assert "2 loan portfolio line(s) name no loan" in problems[4]
    assert problems[5] == (
        "Loan BLR01-2026-000009 (applied) was never disbursed, yet the loan portfolio holds "
        "700.00 for it."
    )


async def _capital_through_services(app: Any, world: World) -> dict[str, Any]:
    """An investment, a borrowing with one repayment, and a reversed investment and borrowing,
    all recorded by the capital service."""
    from namma.capital.service import (
        BorrowingTerms,
        borrowing_record,
        borrowing_repay,
        borrowing_reverse,
        investment_record,
        investment_reverse,
    )
    from tests.integration.test_loans import acting

    admin = acting(world.admin)

    async def invest(session: Any, amount: str) -> Investment:
        return await investment_record(
            session, principal=admin, amount=D(amount), source="Founders", invested_on=DAY,
            method=CapitalMethod.BANK, reference=None, description=None,
        )  # fmt: skip

    async def borrow(session: Any, lender: str) -> Any:
        borrowing, _ = await borrowing_record(
            session, principal=admin, lender_name=lender, lender_contact=None,
            amount=D("120000.00"), annual_rate=D("12"), installments=12, terms=BorrowingTerms(),
            received_on=DAY, first_due_on=None, method=CapitalMethod.BANK, reference=None,
            remarks=None,
        )  # fmt: skip
        return borrowing

    async with transaction(_db(app)) as session:
        await invest(session, "300000.00")
        mistake = await invest(session, "3000.00")
        borrowing = await borrow(session, "Capital Finance Ltd")
        wrong_lender = await borrow(session, "Wrong Lender")
    async with transaction(_db(app)) as session:
        repaid = await borrowing_repay(
            session, principal=admin, borrowing_id=borrowing.id, amount=D("10661.85"),
            paid_on=DAY + dt.timedelta(days=31), method=CapitalMethod.BANK, reference=None,
        )  # fmt: skip
        await investment_reverse(
            session, principal=admin, investment_id=mistake.id, reason="typed twice"
        )
        await borrowing_reverse(
            session, principal=admin, borrowing_id=wrong_lender.id, reason="not ours"
        )
    return {"borrowing": borrowing, "repayment": repaid.repayment}


async def test_ledger_check_reconciles_capital_and_borrowings(
    app: Any, world: World, clean_database: str
) -> None:
    made = await _capital_through_services(app, world)
    borrowing = made["borrowing"]
    async with transaction(_db(app)) as session:
        result = await ledger_check(session)
    assert result.ok, result.problems()
    # 120000 at 12 % × 12 monthly: EMI 10661.85, installment 1 = 9461.85 principal + 1200.00.
    assert made["repayment"].principal_paid == D("9461.85")
    assert (result.borrowings_outstanding, result.borrowings_balance) == (
        D("110538.15"),
        D("110538.15"),
    )
    assert (result.investments_total, result.capital_balance) == (D("300000.00"), D("300000.00"))

    # The borrowing row drifts from its repayments and from the borrowings account.
    await anyio.to_thread.run_sync(
        _sql,
        clean_database,
        f"UPDATE borrowings SET outstanding_principal = 100000.00 WHERE id = '{borrowing.id}'",
    )
    async with transaction(_db(app)) as session:
        result = await ledger_check(session)
    assert not result.ok
    assert result.unbalanced == [] and result.loan_mismatches == []
    assert result.problems() == [
        "Borrowings: the standing borrowings owe 100000.00 principal, but the borrowings "
        "account holds 110538.15 (difference -10538.15).",
        f"Borrowing from Capital Finance Ltd ({borrowing.id}): outstanding principal 100000.00 "
        "on the borrowing, but 120000.00 borrowed less 9461.85 repaid is 110538.15 "
        "(difference -10538.15).",
    ]
    await anyio.to_thread.run_sync(
        _sql,
        clean_database,
        f"UPDATE borrowings SET outstanding_principal = 110538.15 WHERE id = '{borrowing.id}'",
        # A reversed investment counted again: the capital account no longer agrees.
        "UPDATE investments SET reversed_at = NULL, reversal_entry_id = NULL "
        "WHERE amount = 3000.00",
    )
    async with transaction(_db(app)) as session:
        result = await ledger_check(session)
    assert result.problems() == [
        "Capital: the standing investments add up to 303000.00, but the capital account holds "
        "300000.00 (difference 3000.00)."
    ]


async def test_ledger_check_finds_capital_posted_without_an_investment(
    app: Any, world: World
) -> None:
    await _capital(app, "1000.00")
    await _post(
        app,
        kind="hand.made",
        legs=[Leg(K.BANK, debit=D("250.00")), Leg(K.CAPITAL, credit=D("250.00"))],
    )
    await _post(
        app,
        kind="hand.made",
        legs=[Leg(K.BANK, debit=D("70.00")), Leg(K.BORROWINGS, credit=D("70.00"))],
    )
    async with transaction(_db(app)) as session:
        result = await ledger_check(session)
    assert result.problems() == [
        "Borrowings: the standing borrowings owe 0.00 principal, but the borrowings account "
        "holds 70.00 (difference -70.00).",
        "Capital: the standing investments add up to 1000.00, but the capital account holds "
        "1250.00 (difference -250.00).",
    ]


# --- the command --------------------------------------------------------------------------------


def _run_cli(url: str) -> Any:
    return CliRunner().invoke(ledger_app, ["check"], env={"NAMMA_DATABASE_URL": url})


_NAMMA_WITH_LEDGER = (
    "from namma.ledger.cli import ledger_app\n"
    "from namma.cli import app\n"
    "if 'ledger' not in {g.name for g in app.registered_groups}:\n"
    "    app.add_typer(ledger_app, name='ledger')\n"
    "app(prog_name='namma')\n"
)


def _namma_ledger_check(url: str) -> subprocess.CompletedProcess[str]:
    """`namma ledger check` in its own process, as an operator runs it."""
    from namma.cli import app

    wired = "ledger" in {group.name for group in app.registered_groups}
    command = ["-m", "namma"] if wired else ["-c", _NAMMA_WITH_LEDGER]
    return subprocess.run(
        [sys.executable, *command, "ledger", "check"],
        cwd=REPO_ROOT,
        env={**os.environ, "NAMMA_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_ledger_check_command(app: Any, world: World, clean_database: str) -> None:
    await _capital(app, "100000.00")
    loan_id = await _make_loan(app, world)
    await _disburse(app, world, loan_id, "10000.00", fee="250.00")

    result = await anyio.to_thread.run_sync(_run_cli, clean_database)
    assert result.exit_code == 0, result.output
    assert (
        result.output.strip()
        == "Ledger OK: 2 entries, debits = credits = 110000.00, 1 loans reconciled, "
        "provision for loan losses 0.00"
    )

    await anyio.to_thread.run_sync(
        _sql, clean_database, f"UPDATE loans SET outstanding_principal = 0 WHERE id = '{loan_id}'"
    )
    result = await anyio.to_thread.run_sync(_run_cli, clean_database)
    assert result.exit_code == 1
    assert "Ledger BROKEN: 1 problem(s)" in result.output
    assert (
        "Loan BLR01-2026-000001 (active): outstanding principal 0.00 on the loan, "
        "but 10000.00 in the loan portfolio" in result.output
    )

    process = await anyio.to_thread.run_sync(_namma_ledger_check, clean_database)
    assert process.returncode == 1, process.stderr
    assert "Loan BLR01-2026-000001 (active)" in process.stderr


# --- the API ------------------------------------------------------------------------------------


@pytest.fixture
def ledger_routes(app: Any) -> Any:
    """The ledger router, included here until app.py wires it."""
    from namma.ledger.endpoints import router

    try:
        app.url_path_for("ledger_trial_balance")
    except NoMatchFound:
        app.include_router(router)
    return app


async def _ledger_fixture(app: Any, world: World) -> dict[str, Any]:
    await _capital(app)
    await _fund_branch(app, world.branch_a.id, "20000.00")
    await _fund_branch(app, world.branch_b.id, "7000.00")
    loan_id = await _make_loan(app, world)
    await _disburse(app, world, loan_id, "10000.00", fee="100.00")
    await _collect(app, world, loan_id, "800.00", "200.00")
    async with transaction(_db(app)) as session:
        return {
            "cash_a": await ledger_account(session, K.BRANCH_CASH, branch_id=world.branch_a.id),
            "cash_b": await ledger_account(session, K.BRANCH_CASH, branch_id=world.branch_b.id),
            "agent_a": await ledger_account(session, K.AGENT_CASH, agent_id=world.agent_a.id),
            "bank": await ledger_account(session, K.BANK),
        }


async def test_admin_reads_the_trial_balance_accounts_and_statements(
    ledger_routes: Any, client: httpx.AsyncClient, world: World, bearer: Any
) -> None:
    accounts = await _ledger_fixture(ledger_routes, world)
    admin = await bearer(world.admin)

    response = await client.get("/api/ledger/trial-balance", headers=admin)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["balanced"] is True
    assert body["total_debit"] == body["total_credit"] == "538000.00"
    rows = {row["code"]: row for row in body["accounts"]}
    assert rows["1030"] == {
        "account_id": str(accounts["bank"].id),
        "code": "1030",
        "name": "Bank",
        "kind": "bank",
        "type": "asset",
        "normal_side": "debit",
        "debit": "500000.00",
        "credit": "27000.00",
        "balance": "473000.00",
    }
    assert rows["3100"]["balance"] == "500000.00" and rows["3100"]["normal_side"] == "credit"
    assert rows["4200"]["balance"] == "100.00"

    as_of = await client.get(
        "/api/ledger/trial-balance",
        params={"as_of": "2026-01-15", "branch_id": str(world.branch_b.id)},
        headers=admin,
    )
    assert as_of.status_code == 200
    assert as_of.json()["total_debit"] == "7000.00"
    assert as_of.json()["branch_id"] == str(world.branch_b.id)

    listed = await client.get("/api/ledger/accounts", headers=admin)
    assert listed.status_code == 200
    codes = [a["code"] for a in listed.json()["accounts"]]
    assert codes == sorted(codes) and "1010-MYS01" in codes and "3100" in codes

    statement = await client.get(
        f"/api/ledger/accounts/{accounts['cash_a'].id}/statement",
        params={"limit": 2},
        headers=admin,
    )
    assert statement.status_code == 200, statement.text
    page = statement.json()
    assert [(line["debit"], line["credit"], line["balance"]) for line in page["lines"]] == [
        ("20000.00", "0.00", "20000.00"),
        ("0.00", "9900.00", "10100.00"),
    ]
    assert page["account"]["code"] == "1010-BLR01"
    assert page["opening_balance"] == "0.00" and page["closing_balance"] == "10100.00"
    assert page["next"] == page["lines"][-1]["line_id"]
    more = await client.get(
        f"/api/ledger/accounts/{accounts['cash_a'].id}/statement",
        params={"after_line_id": page["next"]},
        headers=admin,
    )
    assert more.status_code == 200
    assert more.json()["lines"] == [] and more.json()["next"] is None
    assert more.json()["opening_balance"] == "10100.00"

    for params, field in (
        ({"since": "2026-02-01", "until": "2026-01-01"}, "until"),
        ({"after_line_id": "0"}, "after_line_id"),
        ({"after_line_id": str(2**63)}, "after_line_id"),
        ({"limit": "500"}, "limit"),
        ({"since": "yesterday"}, "since"),
    ):
        bad = await client.get(
            f"/api/ledger/accounts/{accounts['cash_a'].id}/statement", params=params, headers=admin
        )
        assert bad.status_code == 422, (params, bad.text)
        assert bad.json()["error"]["details"][0]["field"] == field
    unknown = await client.get(f"/api/ledger/accounts/{uuid.uuid4()}/statement", headers=admin)
    assert unknown.status_code == 404


async def test_agents_and_customers_may_not_read_the_ledger(
    ledger_routes: Any, client: httpx.AsyncClient, world: World, bearer: Any
) -> None:
    accounts = await _ledger_fixture(ledger_routes, world)
    for user in (world.agent_a, world.customer_user_a):
        headers = await bearer(user)
        for path in (
            "/api/ledger/trial-balance",
            "/api/ledger/accounts",
            f"/api/ledger/accounts/{accounts['agent_a'].id}/statement",
        ):
            response = await client.get(path, headers=headers)
            assert response.status_code == 403, (user.role, path, response.text)
    assert (await client.get("/api/ledger/trial-balance")).status_code == 401


async def test_a_manager_sees_only_their_branch(
    ledger_routes: Any, client: httpx.AsyncClient, world: World, bearer: Any
) -> None:
    accounts = await _ledger_fixture(ledger_routes, world)
    manager_a = await bearer(world.manager_a)
    manager_b = await bearer(world.manager_b)

    # Another branch's cash, and head-office accounts, are out of scope: 404.
    for headers, account in (
        (manager_b, accounts["cash_a"]),
        (manager_b, accounts["agent_a"]),
        (manager_a, accounts["cash_b"]),
        (manager_a, accounts["bank"]),
    ):
        response = await client.get(f"/api/ledger/accounts/{account.id}/statement", headers=headers)
        assert response.status_code == 404, (account.code, response.text)

    own = await client.get(
        f"/api/ledger/accounts/{accounts['agent_a'].id}/statement", headers=manager_a
    )
    assert own.status_code == 200
    assert [line["balance"] for line in own.json()["lines"]] == ["1000.00"]

    listed = await client.get("/api/ledger/accounts", headers=manager_a)
    assert sorted(a["code"] for a in listed.json()["accounts"]) == sorted(
        [accounts["cash_a"].code, accounts["agent_a"].code]
    )
    assert {a["code"]: a["balance"] for a in listed.json()["accounts"]}["1010-BLR01"] == (
        "10100.00"
    )

    tb = await client.get("/api/ledger/trial-balance", headers=manager_a)
    assert tb.status_code == 200
    body = tb.json()
    assert body["branch_id"] == str(world.branch_a.id)
    assert body["total_debit"] == body["total_credit"] == "31000.00"
    assert "3100" not in {row["code"] for row in body["accounts"]}  # head-office capital
    assert "1010-MYS01" not in {row["code"] for row in body["accounts"]}

    same = await client.get(
        "/api/ledger/trial-balance", params={"branch_id": str(world.branch_a.id)}, headers=manager_a
    )
    assert same.status_code == 200 and same.json() == body
    other = await client.get(
        "/api/ledger/trial-balance", params={"branch_id": str(world.branch_b.id)}, headers=manager_a
    )
    assert other.status_code == 404
