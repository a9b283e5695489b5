"""Migrations describe the models exactly (`alembic check`) and can be undone and redone."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, pool, text

import namma.models  # noqa: F401
from namma.kit.db import Base, sqlalchemy_url
from namma.kit.migrations import alembic_config, migrate_upgrade, migration_state


def _include_name(name, type_, parent_names):  # type: ignore[no-untyped-def]
    return not (type_ == "table" and name and name.startswith("procrastinate_"))


def test_models_and_migrations_agree(empty_database_url: str) -> None:
    migrate_upgrade(empty_database_url)
    engine = create_engine(sqlalchemy_url(empty_database_url), poolclass=pool.NullPool)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn,
            opts={
                "include_name": _include_name,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_migration_file_names_are_dated() -> None:
    script = ScriptDirectory.from_config(alembic_config())
    for revision in script.walk_revisions():
        name = revision.path.rsplit("/", 1)[-1]
        assert name[:8].isdigit() and name[8] == "_", f"{name} should start with YYYYMMDD_"


def test_downgrade_to_base_and_upgrade_again(empty_database_url: str) -> None:
    migrate_upgrade(empty_database_url)
    assert migration_state(empty_database_url).up_to_date

    engine = create_engine(sqlalchemy_url(empty_database_url), poolclass=pool.NullPool)
    with engine.connect() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "base")
        conn.commit()
        assert set(inspect(conn).get_table_names()) <= {"alembic_version"}
    engine.dispose()

    migrate_upgrade(empty_database_url)
    state = migration_state(empty_database_url)
    assert state.up_to_date and state.current


async def test_schedules_still_pending_are_written_by_the_migration(
    empty_database_url: str,
) -> None:
    """Before schedules were written at disbursement a disbursed loan could wait for its job
    (``schedule_status = 'pending'``, no installments). The migration that drops the column
    writes those schedules: the same installments and balances the disbursement writes now."""
    import datetime as dt
    from decimal import Decimal

    from namma.kit.db import Database, transaction
    from namma.loans.service import loan_apply, loan_approve, loan_disburse, today_india
    from namma.models import (
        AgentAssignment,
        Branch,
        Customer,
        DisbursementMethod,
        KycStatus,
        LoanProduct,
        LoanProductVersion,
        Role,
        User,
    )
    from tests.integration.test_loans import acting

    url = empty_database_url
    migrate_upgrade(url)
    db = Database.connect(url, pool_size=2)
    try:
        async with transaction(db) as session:
            branch = Branch(code="BLR01", name="Bengaluru East")
            session.add(branch)
            await session.flush()
            staff = {
                role: User(
                    name=f"{role.value} one",
                    role=role,
                    branch_id=branch.id,
                    email=f"{role.value}@example.com",
                    phone=f"900000000{n}",
                    password_hash="x",
                )
                for n, role in enumerate((Role.MANAGER, Role.AGENT))
            }
            session.add_all(staff.values())
            customer = Customer(
                branch_id=branch.id,
                name="Kamala",
                phone="9100000001",
                kyc_status=KycStatus.VERIFIED,
                household_monthly_income=Decimal("50000.00"),
            )
            product = LoanProduct(code="MG-W", name="Weekly", latest_version=1)
            session.add_all([customer, product])
            await session.flush()
            session.add(AgentAssignment(customer_id=customer.id, agent_id=staff[Role.AGENT].id))
            session.add(
                LoanProductVersion(
                    product_id=product.id,
                    version=1,
                    terms={"frequency": "weekly"},
                    min_principal=Decimal("1000"),
                    max_principal=Decimal("50000"),
                    min_rate=Decimal("10"),
                    max_rate=Decimal("26"),
                    default_rate=Decimal("24"),
                    min_installments=4,
                    max_installments=52,
                )
            )
            await session.flush()
            loan = await loan_apply(
                session,
                principal=acting(staff[Role.AGENT]),
                customer_id=customer.id,
                product_id=product.id,
                amount=Decimal("10000.00"),
                annual_rate=None,
                installments=12,
                first_due_on=None,
                purpose=None,
            )
            await loan_approve(session, principal=acting(staff[Role.MANAGER]), loan_id=loan.id)
            await loan_disburse(
                session,
                principal=acting(staff[Role.MANAGER]),
                loan_id=loan.id,
                disbursed_on=today_india() - dt.timedelta(days=15),  # two installments late
                method=DisbursementMethod.CASH,
                reference=None,
            )
            loan_id = loan.id
    finally:
        await db.dispose()

    installments = (
        "SELECT number, due_date, period_start, principal_due, interest_due, fee_due, "
        "interest_for_period, balance_after, status::text FROM loan_installments "
        "WHERE loan_id = :id ORDER BY number"
    )
    balances = (
        "SELECT outstanding_principal, outstanding_interest, outstanding_fees, "
        "outstanding_penalties, next_due_on, days_past_due FROM loans WHERE id = :id"
    )
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    with engine.connect() as conn:
        written = conn.execute(text(installments), {"id": loan_id}).all()
        owed = conn.execute(text(balances), {"id": loan_id}).one()
        assert len(written) == 12 and [r.status for r in written[:2]] == ["overdue", "overdue"]
        assert owed.days_past_due == 8
        # Back to the revision before, where a disbursed loan could wait for its schedule.
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "c9d0e1f2a3b4")
        conn.execute(text("DELETE FROM loan_installments WHERE loan_id = :id"), {"id": loan_id})
        conn.execute(
            text(
                "UPDATE loans SET schedule_status = 'pending', outstanding_interest = 0, "
                "next_due_on = NULL, days_past_due = 0 WHERE id = :id"
            ),
            {"id": loan_id},
        )
        conn.commit()
    engine.dispose()

    migrate_upgrade(url)
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    with engine.connect() as conn:
        assert conn.execute(text(installments), {"id": loan_id}).all() == written
        assert conn.execute(text(balances), {"id": loan_id}).one() == owed
        columns = {c["name"] for c in inspect(conn).get_columns("loans")}
        assert "schedule_status" not in columns
    engine.dispose()


def test_loan_terms_move_to_their_table_and_back(empty_database_url: str) -> None:
    """The upgrade copies every loan's terms into `loan_terms` and its frequency into
    `loans.frequency`, and drops `loans.terms`; the downgrade puts the terms back in the loans
    row, each loan's own."""
    import json
    import uuid

    url = empty_database_url
    migrate_upgrade(url)
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    terms = {
        "weekly": {"frequency": "weekly", "penalty": {"basis": "flat", "value": "50"}},
        "monthly": {"frequency": "monthly", "interest_accounting": "accrual"},
        "none": {},
    }
    ids = {name: uuid.uuid4() for name in terms}
    with engine.connect() as conn:
        config = alembic_config()
        config.attributes["connection"] = conn
        command.downgrade(config, "c5d1e8a4f2b7")  # the revision before loan_terms
        conn.execute(
            text(
                "INSERT INTO branches (id, code, name, is_head_office, is_active) VALUES "
                "(md5('b')::uuid, 'BLR01', 'B', false, true);"
                "INSERT INTO users (id, name, role, branch_id, email, password_hash, is_active, "
                "must_change_password) VALUES (md5('u')::uuid, 'Agent', 'agent', "
                "md5('b')::uuid, 'a@example.com', 'x', true, false);"
                "INSERT INTO customers (id, branch_id, name, phone) VALUES "
                "(md5('c')::uuid, md5('b')::uuid, 'Kamala', '9100000001');"
                "INSERT INTO loan_products (id, code, name, is_active, latest_version) VALUES "
                "(md5('p')::uuid, 'MG-W', 'Weekly', true, 1);"
                "INSERT INTO loan_product_versions (id, product_id, version, terms, "
                "min_principal, max_principal, min_rate, max_rate, default_rate, "
                "min_installments, max_installments, microfinance, max_obligation_ratio) VALUES "
                "(md5('v')::uuid, md5('p')::uuid, 1, '{}', 1000, 50000, 0, 26, 24, 1, 52, "
                "false, 0.5)"
            )
        )
        for n, (name, value) in enumerate(terms.items()):
            conn.execute(
                text(
                    "INSERT INTO loans (id, loan_number, branch_id, customer_id, "
                    "product_version_id, status, principal, annual_rate, installments, terms, "
                    "applied_by_id) VALUES (:id, :number, md5('b')::uuid, md5('c')::uuid, "
                    "md5('v')::uuid, 'applied', 10000, 24, 12, CAST(:terms AS jsonb), "
                    "md5('u')::uuid)"
                ),
                {"id": ids[name], "number": f"BLR01-2026-{n:06d}", "terms": json.dumps(value)},
            )
        conn.commit()

        command.upgrade(config, "head")
        conn.commit()
        copied = dict(conn.execute(text("SELECT loan_id, terms FROM loan_terms")).all())
        assert copied == {ids[name]: value for name, value in terms.items()}
        frequencies = dict(conn.execute(text("SELECT id, frequency FROM loans")).all())
        assert frequencies == {
            ids["weekly"]: "weekly",
            ids["monthly"]: "monthly",
            ids["none"]: None,
        }
        assert "terms" not in {c["name"] for c in inspect(conn).get_columns("loans")}

        command.downgrade(config, "c5d1e8a4f2b7")
        conn.commit()
        restored = dict(conn.execute(text("SELECT id, terms FROM loans")).all())
        assert restored == {ids[name]: value for name, value in terms.items()}
        assert "loan_terms" not in inspect(conn).get_table_names()
        assert "frequency" not in {c["name"] for c in inspect(conn).get_columns("loans")}
    engine.dispose()
