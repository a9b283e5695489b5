"""Alembic environment: runs on a connection handed in by namma.kit.migrations, or on its own
(``alembic check`` / ``alembic revision``) against NAMMA_DATABASE_URL."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool

import namma.models  # noqa: F401  (registers every model on Base.metadata)
from namma.config import get_settings
from namma.kit.db import Base, sqlalchemy_url

target_metadata = Base.metadata


def include_name(name: str | None, type_: str, parent_names: object) -> bool:
    # The job engine's tables belong to procrastinate; its schema is installed by a migration
    # of ours but is not described by our models.
    return not (type_ == "table" and name is not None and name.startswith("procrastinate_"))


def run_migrations(connection: object) -> None:
    context.configure(
        connection=connection,  # type: ignore[arg-type]
        target_metadata=target_metadata,
        include_name=include_name,
        compare_type=True,
        compare_server_default=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    # Straight to the primary when there is a pooler in front of it (D-218).
    url = get_settings().session_database_url
    if not url:
        raise SystemExit(
            "NAMMA_DATABASE_URL is not set. Use `namma migrate` (which can start the embedded "
            "database) or set NAMMA_DATABASE_URL for the alembic command."
        )
    engine = create_engine(sqlalchemy_url(url), poolclass=pool.NullPool)
    with engine.connect() as conn:
        run_migrations(conn)
    engine.dispose()
