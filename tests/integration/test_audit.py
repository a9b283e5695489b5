"""The audit log against a real PostgreSQL: same transaction, append-only, hash chain, tampering."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import os
import random
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio.to_thread
import psycopg
import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import DBAPIError, IntegrityError
from typer.testing import CliRunner

from namma.audit import AuditActor, audit_list, audit_record, audit_verify
from namma.audit.cli import audit_app
from namma.audit.service import GENESIS_HASH
from namma.kit.db import Database, before_commit, libpq_url, transaction
from namma.models import AuditEntry, Role, User

REPO_ROOT = Path(__file__).resolve().parents[2]
TRIGGER = "audit_log_append_only"


@pytest.fixture
async def db(clean_database: str) -> AsyncIterator[Database]:
    database = Database.connect(clean_database)
    yield database
    await database.dispose()


def _sql(url: str, *statements: str) -> list[tuple[Any, ...]]:
    """Run statements in one transaction on a separate connection; the last one's rows."""
    rows: list[tuple[Any, ...]] = []
    with psycopg.connect(libpq_url(url)) as conn:
        for statement in statements:
            cursor = conn.execute(statement)
            rows = cursor.fetchall() if cursor.description else []
    return rows


def _tamper(url: str, statement: str) -> None:
    """What an attacker with the owner's rights could do: disable the guard, edit, re-enable."""
    _sql(
        url,
        f"ALTER TABLE audit_log DISABLE TRIGGER {TRIGGER}",
        statement,
        f"ALTER TABLE audit_log ENABLE TRIGGER {TRIGGER}",
    )


async def _append(db: Database, n: int, *, actor: AuditActor | None = None) -> list[int]:
    entries = []
    async with transaction(db) as session:
        for i in range(n):
            entry = await audit_record(
                session,
                actor=actor or AuditActor.system(),
                action="loan.disbursed",
                entity_type="loan",
                entity_id=f"L-{i}",
                before={"status": "approved"},
                after={"status": "active", "amount": Decimal(f"{1000 + i}.50")},
            )
            entries.append(entry)
    # Written at the commit, in the order recorded.
    return [entry.id for entry in entries]


async def _admin(db: Database) -> User:
    async with transaction(db) as session:
        user = User(
            name="Asha", email=f"{uuid.uuid4().hex[:8]}@example.com", role=Role.ADMIN,
            password_hash="x",
        )  # fmt: skip
        session.add(user)
    return user


# --- same transaction ---------------------------------------------------------------------------


async def test_entry_commits_with_the_transaction(db: Database) -> None:
    user = await _admin(db)
    actor = AuditActor(
        actor_id=user.id,
        actor_role=Role.ADMIN,
        ip="203.0.113.7",
        user_agent="Mozilla/5.0 (Android 14)",
        request_id="req-42",
    )
    async with transaction(db) as session:
        entry = await audit_record(
            session, actor=actor, action="user.created", entity_type="user", entity_id="u-1"
        )
        assert entry.id is None  # written at the commit, so the chain lock is held briefly
    rows = _sql(
        db.url,
        "SELECT id, actor_id, actor_role, action, entity_type, entity_id, ip, user_agent, "
        "request_id, prev_hash, hash FROM audit_log",
    )
    assert rows == [
        (
            entry.id,
            user.id,
            "admin",
            "user.created",
            "user",
            "u-1",
            "203.0.113.7",
            "Mozilla/5.0 (Android 14)",
            "req-42",
            GENESIS_HASH,
            entry.hash,
        )
    ]


async def test_the_chain_is_appended_after_every_other_step_before_the_commit(
    db: Database,
) -> None:
    """The chain's lock is held for the commit only: a step asked for after the entry (the
    collection sheets' agent lookup) still runs before the append."""
    seen: list[int] = []

    async def count_entries(session: Any) -> None:
        seen.append(int(await session.scalar(text("SELECT count(*) FROM audit_log"))))

    async with transaction(db) as session:
        await audit_record(
            session, actor=AuditActor.system(), action="user.created", entity_type="user",
            entity_id="u-1",
        )  # fmt: skip
        before_commit(session, "count", count_entries)
    assert seen == [0]
    assert _sql(db.url, "SELECT count(*) FROM audit_log") == [(1,)]


async def test_entry_is_rolled_back_with_its_transaction(db: Database) -> None:
    with pytest.raises(RuntimeError, match="boom"):
        async with transaction(db) as session:
            await audit_record(
                session, actor=AuditActor.system(), action="loan.disbursed", entity_type="loan"
            )
            raise RuntimeError("boom")
    assert _sql(db.url, "SELECT count(*) FROM audit_log") == [(0,)]

    # The rolled-back entry took an id but left no trace in the chain.
    await _append(db, 2)
    assert (await _verify(db)).ok
    first = _sql(db.url, "SELECT prev_hash FROM audit_log ORDER BY id LIMIT 1")
    assert first == [(GENESIS_HASH,)]


async def test_a_failing_change_leaves_no_orphan_entry(db: Database) -> None:
    with pytest.raises(IntegrityError):
        async with transaction(db) as session:
            await audit_record(
                session, actor=AuditActor.system(), action="user.created", entity_type="user"
            )
            # The business row fails after the audit entry: both go.
            session.add(User(name="x", role=Role.ADMIN, password_hash="x"))
            await session.flush()
    assert _sql(db.url, "SELECT count(*) FROM audit_log") == [(0,)]


async def test_an_entry_inside_a_rolled_back_savepoint_is_dropped(db: Database) -> None:
    """A bulk posting's refused line rolls back its savepoint: its entry goes with it, the
    entries before and after it (and one in a released savepoint) stay, in order."""
    async with transaction(db) as session:
        await audit_record(
            session, actor=AuditActor(), action="sheet.line", entity_type="x", entity_id="1"
        )
        with pytest.raises(RuntimeError):
            async with session.begin_nested():
                await audit_record(
                    session, actor=AuditActor(), action="sheet.line", entity_type="x", entity_id="2"
                )
                async with session.begin_nested():
                    await audit_record(
                        session,
                        actor=AuditActor(),
                        action="sheet.line",
                        entity_type="x",
                        entity_id="3",
                    )
                raise RuntimeError("refused line")
        async with session.begin_nested():
            await audit_record(
                session, actor=AuditActor(), action="sheet.line", entity_type="x", entity_id="4"
            )
        await audit_record(
            session, actor=AuditActor(), action="sheet.line", entity_type="x", entity_id="5"
        )
    assert _sql(db.url, "SELECT entity_id FROM audit_log ORDER BY id") == [("1",), ("4",), ("5",)]
    assert (await _verify(db)).ok


# --- stored values ------------------------------------------------------------------------------


async def test_details_are_masked_and_exact_in_the_database(db: Database) -> None:
    loan_id = uuid.uuid4()
    async with transaction(db) as session:
        entry = await audit_record(
            session,
            actor=AuditActor.system(),
            action="customer.updated",
            entity_type="customer",
            entity_id=str(loan_id),
            before={"aadhaar": "123456789012", "pan": "ABCDE1234F", "pincode": "560001"},
            after={
                "aadhaar": "123456789099",
                "password": "correct horse battery",
                "emi": Decimal("8884.88"),
                "first_due": dt.date(2026, 12, 25),
                "loan_id": loan_id,
                "role": Role.AGENT,
            },
        )
    assert _sql(db.url, f"SELECT before, after FROM audit_log WHERE id = {entry.id}") == [
        (
            {"aadhaar": "********9012", "pan": "******234F", "pincode": "560001"},
            {
                "aadhaar": "********9099",
                "password": "***",
                "emi": "8884.88",
                "first_due": "2026-12-25",
                "loan_id": str(loan_id),
                "role": "agent",
            },
        )
    ]
    text_dump = _sql(db.url, "SELECT after::text FROM audit_log")[0][0]
    assert "correct horse" not in text_dump and "123456789099" not in text_dump


async def test_floats_are_refused_before_anything_is_written(db: Database) -> None:
    with pytest.raises(TypeError, match=r"after\.amount: float"):
        async with transaction(db) as session:
            await audit_record(
                session,
                actor=AuditActor.system(),
                action="collection.recorded",
                entity_type="collection",
                after={"amount": 500.0},
            )
    assert _sql(db.url, "SELECT count(*) FROM audit_log") == [(0,)]


async def test_malformed_actions_and_oversized_request_text(db: Database) -> None:
    async with transaction(db) as session:
        for bad in ("Loan.Disbursed", "disbursed", "loan disbursed", ""):
            with pytest.raises(ValueError, match="action"):
                await audit_record(
                    session, actor=AuditActor.system(), action=bad, entity_type="loan"
                )
        entry = await audit_record(
            session,
            actor=AuditActor(user_agent="A" * 5000 + "\x00", ip="::1", request_id="r" * 100),
            action="auth.login_failed",
            entity_type="user",
        )
    assert entry.user_agent == "A" * 512
    assert entry.request_id == "r" * 64
    assert (await _verify(db)).ok


async def test_what_is_hashed_is_what_postgresql_returns(db: Database) -> None:
    """JSONB reorders keys and normalises text; timestamptz keeps microseconds: still verifies."""
    async with transaction(db) as session:
        await session.execute(text("SET LOCAL TIME ZONE 'Asia/Kolkata'"))
        await audit_record(
            session,
            actor=AuditActor(actor_role="agent", user_agent='ನಮ್ಮ 📱 "quoted" \\ back'),
            action="collection.recorded",
            entity_type="collection",
            entity_id="C-ಒಂದು",
            before=None,
            after={
                "zz": 1,
                "a": {"nested": [1, "two", None, True, {"b": "x", "a": "y"}]},
                "big": 10**40,
                "negative": -7,
                "empty": {},
                "list": [],
                "text": "line\nbreak\ttab \u2028 \u00e9 e\u0301 \x00 end",
                "amount": Decimal("-0.00"),
                "many_places": Decimal("1.23456789012345678901234567890"),
                "": "empty key",
            },
        )
    result = await _verify(db)
    assert result.ok, result


# --- append-only --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_log SET action = 'loan.rejected'",
        "UPDATE audit_log SET action = 'x.y' WHERE false",
        "DELETE FROM audit_log",
        "DELETE FROM audit_log WHERE id = -1",
        "TRUNCATE audit_log",
        "TRUNCATE audit_log, users CASCADE",
    ],
)
async def test_database_refuses_changes_to_the_log(db: Database, statement: str) -> None:
    await _append(db, 2)
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="audit_log is append-only"):
        _sql(db.url, statement)
    assert _sql(db.url, "SELECT count(*) FROM audit_log") == [(2,)]
    assert (await _verify(db)).ok


async def test_orm_update_is_refused_too(db: Database) -> None:
    [entry_id] = await _append(db, 1)
    with pytest.raises(DBAPIError, match="append-only"):
        async with transaction(db) as session:
            await session.execute(
                update(AuditEntry).where(AuditEntry.id == entry_id).values(after=None)
            )


async def test_the_chain_cannot_fork(db: Database) -> None:
    await _append(db, 2)
    with pytest.raises(psycopg.errors.UniqueViolation, match="uq_audit_log_prev_hash"):
        _sql(
            db.url,
            "INSERT INTO audit_log (action, entity_type, prev_hash, hash) "
            f"SELECT 'x.forked', 'x', prev_hash, '{'f' * 64}' FROM audit_log "
            "ORDER BY id DESC LIMIT 1",
        )


# --- the chain ----------------------------------------------------------------------------------


async def _verify(db: Database, **kwargs: Any) -> Any:
    async with db.sessionmaker() as session:
        return await audit_verify(session, **kwargs)


async def test_empty_log_verifies(db: Database) -> None:
    result = await _verify(db)
    assert (result.ok, result.count, result.first_broken_id, result.last_id) == (
        True,
        0,
        None,
        None,
    )


async def test_chain_links_and_verifies_over_many_rows(db: Database) -> None:
    ids: list[int] = []
    for _ in range(5):
        ids += await _append(db, 20)
    for batch_size in (1, 7, 1000):
        result = await _verify(db, batch_size=batch_size)
        assert result.ok and result.count == 100, result
    rows = _sql(db.url, "SELECT id, prev_hash, hash, at FROM audit_log ORDER BY id")
    assert [r[0] for r in rows] == ids
    assert rows[0][1] == GENESIS_HASH
    for previous, current in itertools.pairwise(rows):
        assert current[1] == previous[2]
        assert current[3] >= previous[3]  # database clock, read under the chain lock
    assert result.last_id == ids[-1] and result.last_hash == rows[-1][2]


async def test_a_transaction_with_more_entries_than_one_insert_holds_stays_in_order(
    db: Database,
) -> None:
    """The entries of one transaction go out in multi-row INSERTs of at most 1,000 rows (the
    65,535-parameter limit); across them the ids still follow the order recorded."""
    ids = await _append(db, 1001)
    assert ids == sorted(ids) and len(set(ids)) == 1001
    rows = _sql(db.url, "SELECT id, entity_id FROM audit_log ORDER BY id")
    assert [r[0] for r in rows] == ids
    assert [r[1] for r in rows] == [f"L-{i}" for i in range(1001)]
    result = await _verify(db, batch_size=1000)
    assert result.ok and result.count == 1001, result


async def test_tampered_row_is_named(db: Database) -> None:
    ids = await _append(db, 30)
    victim = ids[17]
    _tamper(db.url, f"""UPDATE audit_log SET after = '{{"amount": "1.50"}}' WHERE id = {victim}""")
    result = await _verify(db, batch_size=7)
    assert not result.ok
    assert result.first_broken_id == victim
    assert result.count == 18
    assert "changed" in (result.reason or "")


async def test_tampering_with_any_column_is_detected(db: Database) -> None:
    user, other = await _admin(db), await _admin(db)
    ids = await _append(db, 3, actor=AuditActor(actor_id=user.id, actor_role="admin", ip="::1"))
    edits = [
        "at = at + interval '1 microsecond'",
        f"actor_id = '{other.id}'",
        "actor_id = NULL",
        "actor_role = 'manager'",
        "action = 'loan.rejected'",
        "entity_type = 'customer'",
        "entity_id = 'L-999'",
        "before = NULL",
        """after = after || '{"extra": 1}'""",
        """after = jsonb_set(after, '{amount}', '"1001.5"')""",
        "ip = '10.0.0.9'",
        "user_agent = 'curl'",
        "request_id = 'forged'",
    ]
    for edit in edits:
        # Tamper and verify inside one transaction, rolled back: each edit starts from a sound log.
        async with db.sessionmaker() as session:
            await session.execute(text(f"ALTER TABLE audit_log DISABLE TRIGGER {TRIGGER}"))
            await session.execute(text(f"UPDATE audit_log SET {edit} WHERE id = {ids[1]}"))
            result = await audit_verify(session)
            await session.rollback()
        assert (result.ok, result.first_broken_id) == (False, ids[1]), edit
    assert (await _verify(db)).ok


async def test_deleted_row_breaks_the_link(db: Database) -> None:
    ids = await _append(db, 10)
    _tamper(db.url, f"DELETE FROM audit_log WHERE id = {ids[4]}")
    result = await _verify(db, batch_size=3)
    assert (result.ok, result.first_broken_id) == (False, ids[5])
    assert "previous entry" in (result.reason or "")


async def test_deleted_first_row_is_detected(db: Database) -> None:
    ids = await _append(db, 3)
    _tamper(db.url, f"DELETE FROM audit_log WHERE id = {ids[0]}")
    result = await _verify(db)
    assert (result.ok, result.first_broken_id) == (False, ids[1])
    assert "first entry" in (result.reason or "")


async def test_rewritten_hash_is_caught_at_the_next_row(db: Database) -> None:
    ids = await _append(db, 5)
    # The attacker edits a row and recomputes its own hash (but not the rest of the chain).
    _tamper(db.url, f"UPDATE audit_log SET hash = '{'a' * 64}' WHERE id = {ids[2]}")
    result = await _verify(db)
    assert (result.ok, result.first_broken_id) == (False, ids[2])
    _tamper(
        db.url,
        f"UPDATE audit_log SET prev_hash = '{'a' * 64}' WHERE id = {ids[3]}",
    )
    assert (await _verify(db)).first_broken_id == ids[2]


# --- concurrency --------------------------------------------------------------------------------


async def test_concurrent_appends_form_one_chain(db: Database) -> None:
    await _append(db, 1)

    async def one(i: int) -> int:
        async with transaction(db) as session:
            # Work before the entry, then hold the chain lock a little while before commit.
            await session.execute(text("SELECT pg_sleep(:s)"), {"s": random.random() / 100})
            entry = await audit_record(
                session,
                actor=AuditActor(request_id=f"r{i}"),
                action="collection.recorded",
                entity_type="collection",
                entity_id=str(i),
                after={"amount": Decimal("100.00") + i},
            )
            await asyncio.sleep(random.random() / 100)
        assert entry.id is not None
        return entry.id

    ids = await asyncio.gather(*(one(i) for i in range(20)))
    assert len(set(ids)) == 20
    result = await _verify(db)
    assert result.ok and result.count == 21, result
    rows = _sql(db.url, "SELECT prev_hash, hash FROM audit_log ORDER BY id")
    assert len({prev for prev, _ in rows}) == 21
    for (_, previous_hash), (prev_hash, _) in itertools.pairwise(rows):
        assert prev_hash == previous_hash


# --- listing ------------------------------------------------------------------------------------


async def test_audit_list_filters_and_pages(db: Database) -> None:
    user = await _admin(db)
    staff = AuditActor(actor_id=user.id, actor_role="admin")
    # One command each: entries of one transaction share its time (the commit's).
    for i in range(12):
        async with transaction(db) as session:
            await audit_record(
                session,
                actor=staff if i % 2 else AuditActor.system(),
                action="loan.disbursed" if i % 3 else "loan.approved",
                entity_type="loan",
                entity_id=f"L-{i % 4}",
            )
    async with transaction(db) as session:
        await audit_record(
            session, actor=AuditActor(), action="auth.login_failed", entity_type="user"
        )
    async with db.sessionmaker() as session:
        everything = await audit_list(session, branch_id=None)
        assert len(everything) == 13
        assert [e.id for e in everything] == sorted((e.id for e in everything), reverse=True)
        assert everything[0].action == "auth.login_failed"

        mine = await audit_list(session, branch_id=None, actor_id=user.id)
        assert len(mine) == 6 and all(e.actor_id == user.id for e in mine)

        approved = await audit_list(session, branch_id=None, action="loan.approved")
        assert len(approved) == 4

        loan = await audit_list(session, branch_id=None, entity_type="loan", entity_id="L-1")
        assert [e.entity_id for e in loan] == ["L-1"] * 3

        pages: list[list[int]] = []
        before_id = None
        while True:
            page = await audit_list(
                session, branch_id=None, entity_type="loan", before_id=before_id, limit=5
            )
            if not page:
                break
            pages.append([e.id for e in page])
            before_id = page[-1].id
        assert [len(p) for p in pages] == [5, 5, 2]
        loan_ids = [e.id for e in everything if e.entity_type == "loan"]
        assert list(itertools.chain(*pages)) == loan_ids

        middle = everything[6].at
        assert {e.id for e in await audit_list(session, branch_id=None, since=middle)} == {
            e.id for e in everything[:7]
        }
        assert {e.id for e in await audit_list(session, branch_id=None, until=middle)} == {
            e.id for e in everything[7:]
        }
        assert await audit_list(
            session, branch_id=None, action="loan.approved", actor_id=user.id
        ) == [e for e in approved if e.actor_id == user.id]
        assert len(await audit_list(session, branch_id=None, limit=0)) == 1


async def test_audit_list_caps_the_limit(db: Database) -> None:
    await _append(db, 205)
    async with db.sessionmaker() as session:
        assert len(await audit_list(session, branch_id=None, limit=10_000)) == 200
    assert (await _verify(db)).count == 205


# --- the command --------------------------------------------------------------------------------


def _run_cli(url: str) -> Any:
    return CliRunner().invoke(audit_app, ["verify"], env={"NAMMA_DATABASE_URL": url})


_NAMMA_WITH_AUDIT = (
    "import typer\n"
    "from namma.audit.cli import audit_app\n"
    "from namma.cli import app\n"
    "if 'audit' not in {g.name for g in app.registered_groups}:\n"
    "    app.add_typer(audit_app, name='audit')\n"
    "app(prog_name='namma')\n"
)


def _namma_audit_verify(url: str) -> subprocess.CompletedProcess[str]:
    """`namma audit verify` in its own process, as an operator runs it."""
    from namma.cli import app

    wired = "audit" in {group.name for group in app.registered_groups}
    command = ["-m", "namma"] if wired else ["-c", _NAMMA_WITH_AUDIT]
    env = {**os.environ, "NAMMA_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, *command, "audit", "verify"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_verify_command_reports_ok_then_the_tampered_row(db: Database) -> None:
    ids = await _append(db, 12)

    result = await anyio.to_thread.run_sync(_run_cli, db.url)
    assert result.exit_code == 0, result.output
    assert "Audit log OK: 12 entries" in result.output

    _tamper(db.url, f"""UPDATE audit_log SET after = '{{"amount": "0.01"}}' WHERE id = {ids[7]}""")
    result = await anyio.to_thread.run_sync(_run_cli, db.url)
    assert result.exit_code == 1
    assert f"Audit log BROKEN at entry {ids[7]}:" in result.output

    process = await anyio.to_thread.run_sync(_namma_audit_verify, db.url)
    assert process.returncode == 1, process.stderr
    assert f"Audit log BROKEN at entry {ids[7]}:" in process.stderr


async def test_verify_command_in_its_own_process(db: Database) -> None:
    await _append(db, 3)
    process = await anyio.to_thread.run_sync(_namma_audit_verify, db.url)
    assert process.returncode == 0, process.stderr
    assert "Audit log OK: 3 entries" in process.stdout
