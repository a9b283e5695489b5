"""Running Alembic migrations from the application (``namma migrate``, start-up, tests).

An advisory lock serialises concurrent upgrades (several ``serve`` workers starting at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, pool, text

from namma.kit.db import sqlalchemy_url

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# An arbitrary constant shared by every process that migrates this database.
_MIGRATION_LOCK_ID = 0x6E616D6D61


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def migrate_upgrade(url: str, revision: str = "head") -> None:
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
            connection.commit()
            try:
                config = alembic_config()
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                connection.commit()
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:id)"), {"id": _MIGRATION_LOCK_ID}
                )
                connection.commit()
    finally:
        engine.dispose()


@dataclass(frozen=True)
class MigrationState:
    current: tuple[str, ...]
    head: tuple[str, ...]

    @property
    def up_to_date(self) -> bool:
        return set(self.current) == set(self.head)


def migration_state(url: str) -> MigrationState:
    head = tuple(ScriptDirectory.from_config(alembic_config()).get_heads())
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    try:
        with engine.connect() as connection:
            current = tuple(MigrationContext.configure(connection).get_current_heads())
    finally:
        engine.dispose()
    return MigrationState(current=current, head=head)
