"""restructuring: requests with a maker-checker step, the schedule they replace kept for history

``loan_restructure_requests`` (one loan, or a village of a branch: natural-calamity relief;
the change, its preview, maker and checker), ``loan_schedule_revisions`` also records an
approved restructuring (``restructure_id``, policy ``restructure``; ``collection_id`` becomes
optional: exactly one of the two), ``loans.restructured_on`` / ``restructure_reason`` (the
flag asset classification reads) and the ledger account kind ``interest_capitalised`` (2300,
interest a moratorium capitalised, not yet received). A product version's moratorium rule stays
in its terms (``terms.moratorium_interest``, default ``carry``).

Revision ID: e7a1c4b9d2f0
Revises: 913f04a8266a
Create Date: 2026-12-13 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "e7a1c4b9d2f0"
down_revision: str | None = "913f04a8266a"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The new enum value is not used in this transaction (PostgreSQL allows adding it in one).
    op.execute("ALTER TYPE ledger_account_kind ADD VALUE IF NOT EXISTS 'interest_capitalised'")
    op.add_column("loans", sa.Column("restructured_on", sa.Date(), nullable=True))
    op.add_column("loans", sa.Column("restructure_reason", sa.Text(), nullable=True))
    op.create_table(
        "loan_restructure_requests",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("branch_id", sa.Uuid(), nullable=False),
        sa.Column("loan_id", sa.Uuid(), nullable=True),
        sa.Column("village", sa.Text(), nullable=True),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("params", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.Text(), server_default="pending", nullable=False),
        sa.Column("preview", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("loan_count", sa.Integer(), nullable=False),
        sa.Column("requested_by_id", sa.Uuid(), nullable=False),
        sa.Column(
            "requested_at",
            sa.DateTime(timezone=True),
            server_default=sa.func.now(),
            nullable=False,
        ),
        sa.Column("decided_by_id", sa.Uuid(), nullable=True),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column("rejection_reason", sa.Text(), nullable=True),
        sa.CheckConstraint("(loan_id IS NULL) <> (village IS NULL)", name="one_scope"),
        sa.CheckConstraint(
            "kind IN ('next-due-date', 'moratorium', 'rate', 'term', 'installment')",
            name="kind_known",
        ),
        sa.CheckConstraint("status IN ('pending', 'approved', 'rejected')", name="status_known"),
        sa.ForeignKeyConstraint(["branch_id"], ["branches.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["requested_by_id"], ["users.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["decided_by_id"], ["users.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(
        "ix_loan_restructure_requests_branch_id_status",
        "loan_restructure_requests",
        ["branch_id", "status"],
    )
    op.create_index(
        op.f("ix_loan_restructure_requests_loan_id"), "loan_restructure_requests", ["loan_id"]
    )
    op.alter_column("loan_schedule_revisions", "collection_id", nullable=True)
    op.add_column("loan_schedule_revisions", sa.Column("restructure_id", sa.Uuid(), nullable=True))
    op.create_foreign_key(
        None,
        "loan_schedule_revisions",
        "loan_restructure_requests",
        ["restructure_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.create_index(
        op.f("ix_loan_schedule_revisions_restructure_id"),
        "loan_schedule_revisions",
        ["restructure_id"],
    )
    op.drop_constraint("prepaid_positive", "loan_schedule_revisions", type_="check")
    op.create_check_constraint(
        "prepaid_positive",
        "loan_schedule_revisions",
        "prepaid_principal > 0 OR policy = 'restructure'",
    )
    op.drop_constraint("policy_reschedules", "loan_schedule_revisions", type_="check")
    op.create_check_constraint(
        "policy_reschedules",
        "loan_schedule_revisions",
        "policy IN ('reduce-term', 'reduce-installment', 'restructure')",
    )
    op.create_check_constraint(
        "one_cause",
        "loan_schedule_revisions",
        "(collection_id IS NULL) <> (restructure_id IS NULL)",
    )


def downgrade() -> None:
    op.execute("DELETE FROM loan_schedule_revisions WHERE restructure_id IS NOT NULL")
    op.drop_constraint("one_cause", "loan_schedule_revisions", type_="check")
    op.drop_constraint("policy_reschedules", "loan_schedule_revisions", type_="check")
    op.create_check_constraint(
        "policy_reschedules",
        "loan_schedule_revisions",
        "policy IN ('reduce-term', 'reduce-installment')",
    )
    op.drop_constraint("prepaid_positive", "loan_schedule_revisions", type_="check")
    op.create_check_constraint(
        "prepaid_positive", "loan_schedule_revisions", "prepaid_principal > 0"
    )
    op.drop_index(
        op.f("ix_loan_schedule_revisions_restructure_id"), table_name="loan_schedule_revisions"
    )
    op.drop_column("loan_schedule_revisions", "restructure_id")
    op.alter_column("loan_schedule_revisions", "collection_id", nullable=False)
    op.drop_index(
        op.f("ix_loan_restructure_requests_loan_id"), table_name="loan_restructure_requests"
    )
    op.drop_index(
        "ix_loan_restructure_requests_branch_id_status", table_name="loan_restructure_requests"
    )
    op.drop_table("loan_restructure_requests")
    op.drop_column("loans", "restructure_reason")
    op.drop_column("loans", "restructured_on")
    # The enum value 'interest_capitalised' stays (PostgreSQL cannot drop one).
