"""Migrations describe the models exactly (`alembic check`) and can be undone and redone."""

from __future__ import annotations

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, inspect, pool

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
