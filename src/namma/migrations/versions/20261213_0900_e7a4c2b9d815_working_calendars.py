"""working calendars: holidays and non-working weekdays, institution-wide or per branch

``holidays`` (a date and a name; ``branch_id`` NULL for the whole institution) and
``working_weeks`` (the weekdays a branch, or the institution, is closed). A product version's
non-working-day rule stays in its terms (``terms.non_working_day``, ``terms.extend_term``).

Revision ID: e7a4c2b9d815
Revises: c7d8e9f0a1b2
Create Date: 2026-12-13 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "e7a4c2b9d815"
down_revision: str | None = "c7d8e9f0a1b2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "holidays",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("branch_id", sa.Uuid(), nullable=True),
        sa.Column("on_date", sa.Date(), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_holidays_name_present")),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["branches.id"],
            name=op.f("fk_holidays_branch_id_branches"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_holidays_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_holidays")),
        sa.UniqueConstraint(
            "branch_id",
            "on_date",
            name=op.f("uq_holidays_branch_id_on_date"),
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_index(op.f("ix_holidays_branch_id"), "holidays", ["branch_id"])
    op.create_index(op.f("ix_holidays_on_date"), "holidays", ["on_date"])
    op.create_table(
        "working_weeks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("branch_id", sa.Uuid(), nullable=True),
        sa.Column("non_working_weekdays", postgresql.ARRAY(sa.SmallInteger()), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "non_working_weekdays <@ ARRAY[0,1,2,3,4,5,6]::smallint[] "
            "AND cardinality(non_working_weekdays) < 7",
            name=op.f("ck_working_weeks_weekdays_valid"),
        ),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["branches.id"],
            name=op.f("fk_working_weeks_branch_id_branches"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_working_weeks")),
        sa.UniqueConstraint(
            "branch_id",
            name=op.f("uq_working_weeks_branch_id"),
            postgresql_nulls_not_distinct=True,
        ),
    )


def downgrade() -> None:
    op.drop_table("working_weeks")
    op.drop_index(op.f("ix_holidays_on_date"), table_name="holidays")
    op.drop_index(op.f("ix_holidays_branch_id"), table_name="holidays")
    op.drop_table("holidays")
