"""job engine schema (procrastinate 3.10)

Revision ID: a1b2c3d4e5f6
Revises:
Create Date: 2026-11-25 09:00:00

The schema is procrastinate's own, installed as it ships with the pinned version. When upgrading
procrastinate, add a migration that applies the SQL files of its new versions
(procrastinate/sql/migrations/*.sql), in order.
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op
from procrastinate.schema import SchemaManager

revision: str = "a1b2c3d4e5f6"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Run on the driver connection: the schema contains % and :name sequences that must reach
    # PostgreSQL untouched by parameter parsing.
    driver = op.get_bind().connection.driver_connection
    driver.execute(SchemaManager.get_schema())  # type: ignore[union-attr]


def downgrade() -> None:
    driver = op.get_bind().connection.driver_connection
    driver.execute(  # type: ignore[union-attr]
        """
        DO $$
        DECLARE fn regprocedure;
        BEGIN
            DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers,
                procrastinate_jobs, procrastinate_workers CASCADE;
            FOR fn IN SELECT p.oid::regprocedure FROM pg_proc p
                      WHERE p.proname LIKE 'procrastinate\\_%' LOOP
                EXECUTE 'DROP FUNCTION ' || fn || ' CASCADE';
            END LOOP;
            DROP TYPE IF EXISTS procrastinate_job_status, procrastinate_job_event_type,
                procrastinate_job_to_defer_v1 CASCADE;
        END $$;
        """
    )
