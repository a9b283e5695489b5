"""hand-over reversal, capital reversals, idempotency retention

Hand-overs already have their reversal columns (and ``idempotency_keys.created_at`` its
index); this adds the same reversal columns to investments, borrowings and borrowing
repayments, the ``reversed`` borrowing status, and ``borrowing_repayments.seq`` (the order
repayments were applied in, replayed when one is reversed).

Revision ID: f6a7b8c9d0e1
Revises: e5f6a7b8c9d0
Create Date: 2026-11-25 18:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f6a7b8c9d0e1"
down_revision: str | None = "e5f6a7b8c9d0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ("investments", "borrowings", "borrowing_repayments")


def upgrade() -> None:
    # Not used in this transaction (PostgreSQL allows adding, not using, an enum value here).
    op.execute("ALTER TYPE borrowing_status ADD VALUE IF NOT EXISTS 'reversed'")
    for table in TABLES:
        op.add_column(table, sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True))
        op.add_column(table, sa.Column("reversed_by_id", sa.Uuid(), nullable=True))
        op.add_column(table, sa.Column("reversal_reason", sa.Text(), nullable=True))
        op.add_column(table, sa.Column("reversal_entry_id", sa.BigInteger(), nullable=True))
        op.create_foreign_key(
            op.f(f"fk_{table}_reversed_by_id_users"),
            table,
            "users",
            ["reversed_by_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        op.create_foreign_key(
            op.f(f"fk_{table}_reversal_entry_id_journal_entries"),
            table,
            "journal_entries",
            ["reversal_entry_id"],
            ["id"],
            ondelete="RESTRICT",
        )
        op.create_unique_constraint(
            op.f(f"uq_{table}_reversal_entry_id"), table, ["reversal_entry_id"]
        )
    # An identity column added to a table numbers the existing rows itself, in storage order
    # (for rows only ever inserted and marked, near enough the order they were recorded in).
    op.add_column(
        "borrowing_repayments",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
    )
    op.create_unique_constraint(
        op.f("uq_borrowing_repayments_seq"), "borrowing_repayments", ["seq"]
    )


def downgrade() -> None:
    op.drop_constraint(op.f("uq_borrowing_repayments_seq"), "borrowing_repayments", type_="unique")
    op.drop_column("borrowing_repayments", "seq")
    for table in reversed(TABLES):
        op.drop_constraint(op.f(f"uq_{table}_reversal_entry_id"), table, type_="unique")
        op.drop_constraint(
            op.f(f"fk_{table}_reversal_entry_id_journal_entries"), table, type_="foreignkey"
        )
        op.drop_constraint(op.f(f"fk_{table}_reversed_by_id_users"), table, type_="foreignkey")
        op.drop_column(table, "reversal_entry_id")
        op.drop_column(table, "reversal_reason")
        op.drop_column(table, "reversed_by_id")
        op.drop_column(table, "reversed_at")
    # PostgreSQL cannot drop an enum value: rebuild the type without it. A reversed borrowing
    # owes nothing; it goes back as closed.
    op.execute("UPDATE borrowings SET status = 'closed' WHERE status = 'reversed'")
    op.execute("ALTER TYPE borrowing_status RENAME TO borrowing_status_old")
    op.execute("CREATE TYPE borrowing_status AS ENUM ('active', 'closed')")
    op.execute(
        "ALTER TABLE borrowings ALTER COLUMN status TYPE borrowing_status "
        "USING status::text::borrowing_status"
    )
    op.execute("DROP TYPE borrowing_status_old")
