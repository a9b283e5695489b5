"""cash_handover: agents' daily cash hand-overs at the branch, reconciled with their
collections

Revision ID: c3d4e5f6a7b8
Revises: b2c3d4e5f6a7
Create Date: 2026-11-25 15:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c3d4e5f6a7b8"
down_revision: str | None = "b2c3d4e5f6a7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "cash_handovers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=False),
        sa.Column("branch_id", sa.Uuid(), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("expected", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("collections_count", sa.Integer(), nullable=False),
        sa.Column("amount_deposited", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("difference", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("remarks", sa.Text(), nullable=True),
        sa.Column("journal_entry_id", sa.BigInteger(), nullable=False),
        sa.Column("recorded_by_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("reversed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reversed_by_id", sa.Uuid(), nullable=True),
        sa.Column("reversal_reason", sa.Text(), nullable=True),
        sa.Column("reversal_entry_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "expected >= 0 AND amount_deposited >= 0",
            name=op.f("ck_cash_handovers_amounts_not_negative"),
        ),
        sa.CheckConstraint(
            "difference = amount_deposited - expected",
            name=op.f("ck_cash_handovers_difference_adds_up"),
        ),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["users.id"],
            name=op.f("fk_cash_handovers_agent_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["branches.id"],
            name=op.f("fk_cash_handovers_branch_id_branches"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["journal_entry_id"],
            ["journal_entries.id"],
            name=op.f("fk_cash_handovers_journal_entry_id_journal_entries"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by_id"],
            ["users.id"],
            name=op.f("fk_cash_handovers_recorded_by_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["reversal_entry_id"],
            ["journal_entries.id"],
            name=op.f("fk_cash_handovers_reversal_entry_id_journal_entries"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["reversed_by_id"],
            ["users.id"],
            name=op.f("fk_cash_handovers_reversed_by_id_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cash_handovers")),
        sa.UniqueConstraint("journal_entry_id", name=op.f("uq_cash_handovers_journal_entry_id")),
        sa.UniqueConstraint("reversal_entry_id", name=op.f("uq_cash_handovers_reversal_entry_id")),
    )
    op.create_index(
        "ix_cash_handovers_branch_id_business_date",
        "cash_handovers",
        ["branch_id", "business_date"],
        unique=False,
    )
    op.create_index(
        "uq_cash_handovers_agent_id_business_date",
        "cash_handovers",
        ["agent_id", "business_date"],
        unique=True,
        postgresql_where=sa.text("reversed_at IS NULL"),
    )


def downgrade() -> None:
    op.drop_index(
        "uq_cash_handovers_agent_id_business_date",
        table_name="cash_handovers",
        postgresql_where=sa.text("reversed_at IS NULL"),
    )
    op.drop_index("ix_cash_handovers_branch_id_business_date", table_name="cash_handovers")
    op.drop_table("cash_handovers")
