"""prepayment reschedules: the excess policies reduce-term and reduce-installment

``collections.prepaid_principal`` (the part of a collection's principal prepaid beyond the dues,
at most its principal) and ``loan_schedule_revisions`` (a collection's prepayment rewriting the
installments still to fall due, with the installments it replaced, so that a reversal restores
them exactly). A product version's excess policy stays in its terms
(``terms.allocation.excess``).

Revision ID: b1c2d3e4f5a6
Revises: 6c2f8d4e0a31
Create Date: 2026-12-12 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "b1c2d3e4f5a6"
down_revision: str | None = "6c2f8d4e0a31"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "collections",
        sa.Column("prepaid_principal", sa.Numeric(20, 2), server_default="0", nullable=False),
    )
    op.create_check_constraint(
        "prepaid_within_principal",
        "collections",
        "prepaid_principal >= 0 AND prepaid_principal <= principal",
    )
    op.create_table(
        "loan_schedule_revisions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("loan_id", sa.Uuid(), nullable=False),
        sa.Column("collection_id", sa.Uuid(), nullable=False),
        sa.Column("policy", sa.Text(), nullable=False),
        sa.Column("prepaid_principal", sa.Numeric(20, 2), nullable=False),
        sa.Column("from_number", sa.Integer(), nullable=False),
        sa.Column("installments_before", sa.Integer(), nullable=False),
        sa.Column("installments_after", sa.Integer(), nullable=False),
        sa.Column("installment_before", sa.Numeric(20, 2), nullable=False),
        sa.Column("installment_after", sa.Numeric(20, 2), nullable=False),
        sa.Column("replaced", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("prepaid_principal > 0", name="prepaid_positive"),
        sa.CheckConstraint(
            "policy IN ('reduce-term', 'reduce-installment')", name="policy_reschedules"
        ),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["collection_id"], ["collections.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("collection_id", name=op.f("uq_loan_schedule_revisions_collection_id")),
    )
    op.create_index(
        op.f("ix_loan_schedule_revisions_loan_id"), "loan_schedule_revisions", ["loan_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_loan_schedule_revisions_loan_id"), table_name="loan_schedule_revisions")
    op.drop_table("loan_schedule_revisions")
    op.drop_constraint("prepaid_within_principal", "collections", type_="check")
    op.drop_column("collections", "prepaid_principal")
