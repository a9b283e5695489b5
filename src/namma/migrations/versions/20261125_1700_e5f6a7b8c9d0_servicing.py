"""servicing: penalties, waivers, recoveries

Revision ID: e5f6a7b8c9d0
Revises: d4e5f6a7b8c9
Create Date: 2026-11-25 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "e5f6a7b8c9d0"
down_revision: str | None = "d4e5f6a7b8c9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


WAIVER_COMPONENT = postgresql.ENUM(
    "interest", "fee", "penalty", name="waiver_component", create_type=False
)


def upgrade() -> None:
    # New enum values are not used in this transaction (PostgreSQL allows adding them in one).
    op.execute("ALTER TYPE ledger_account_type ADD VALUE IF NOT EXISTS 'memo'")
    op.execute("ALTER TYPE ledger_account_kind ADD VALUE IF NOT EXISTS 'waivers_memo'")
    op.execute("ALTER TYPE ledger_account_kind ADD VALUE IF NOT EXISTS 'waivers_memo_contra'")

    op.add_column(
        "collections",
        sa.Column("recovery", sa.Numeric(20, 2), server_default="0", nullable=False),
    )
    op.drop_constraint("parts_add_up", "collections", type_="check")
    op.drop_constraint("parts_not_negative", "collections", type_="check")
    op.create_check_constraint(
        "parts_add_up", "collections", "amount = principal + interest + fee + penalty + recovery"
    )
    op.create_check_constraint(
        "parts_not_negative",
        "collections",
        "principal >= 0 AND interest >= 0 AND fee >= 0 AND penalty >= 0 AND recovery >= 0",
    )

    op.create_table(
        "loan_penalty_charges",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("loan_id", sa.Uuid(), nullable=False),
        sa.Column("installment_id", sa.Uuid(), nullable=False),
        sa.Column("installment_number", sa.Integer(), nullable=False),
        sa.Column("charged_on", sa.Date(), nullable=False),
        sa.Column("days_overdue", sa.Integer(), nullable=False),
        sa.Column("amount", sa.Numeric(20, 2), nullable=False),
        sa.Column("total_after", sa.Numeric(20, 2), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["installment_id"], ["loan_installments.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("installment_id", "charged_on"),
    )
    op.create_index(
        "ix_loan_penalty_charges_loan_id_charged_on",
        "loan_penalty_charges",
        ["loan_id", "charged_on"],
    )

    WAIVER_COMPONENT.create(op.get_bind(), checkfirst=False)
    op.create_table(
        "loan_waivers",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("loan_id", sa.Uuid(), nullable=False),
        sa.Column("branch_id", sa.Uuid(), nullable=False),
        sa.Column("component", WAIVER_COMPONENT, nullable=False),
        sa.Column("amount", sa.Numeric(20, 2), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("waived_on", sa.Date(), nullable=False),
        sa.Column("lines", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("waived_by_id", sa.Uuid(), nullable=False),
        sa.Column("journal_entry_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("amount > 0", name="amount_positive"),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["branch_id"], ["branches.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["waived_by_id"], ["users.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["journal_entry_id"], ["journal_entries.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_loan_waivers_loan_id", "loan_waivers", ["loan_id"])


def downgrade() -> None:
    op.drop_index("ix_loan_waivers_loan_id", table_name="loan_waivers")
    op.drop_table("loan_waivers")
    WAIVER_COMPONENT.drop(op.get_bind(), checkfirst=False)
    op.drop_index("ix_loan_penalty_charges_loan_id_charged_on", table_name="loan_penalty_charges")
    op.drop_table("loan_penalty_charges")
    op.drop_constraint("parts_add_up", "collections", type_="check")
    op.drop_constraint("parts_not_negative", "collections", type_="check")
    op.create_check_constraint(
        "parts_add_up", "collections", "amount = principal + interest + fee + penalty"
    )
    op.create_check_constraint(
        "parts_not_negative",
        "collections",
        "principal >= 0 AND interest >= 0 AND fee >= 0 AND penalty >= 0",
    )
    op.drop_column("collections", "recovery")
    # Enum values cannot be dropped in PostgreSQL; 'memo' and the memo kinds stay (unused).
