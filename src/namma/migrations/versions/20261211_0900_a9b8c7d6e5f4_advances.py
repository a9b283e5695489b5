"""advances: money beyond a loan's dues held as an advance (a liability) until applied

``loans.advance_balance`` (what is held), ``collections.advance`` (the part of a collection held,
or, negative, the advance a pre-closure used), ``advance_applications`` (what the close of
business applied to each installment as it fell due) and the ledger account kind
``customer_advances`` (2200, "Advances from customers"). A product version's excess policy
stays in its terms (``terms.allocation.excess``, default ``advance``).

The close of business gains a first step (``advances``): ``cob_runs.steps_done`` now counts to
6; a completed run has done all 6, and a run left unfinished starts again at step 1 (every step
is idempotent).

Revision ID: a9b8c7d6e5f4
Revises: 7f3c1a9e2b64
Create Date: 2026-12-11 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a9b8c7d6e5f4"
down_revision: str | None = "7f3c1a9e2b64"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The new enum value is not used in this transaction (PostgreSQL allows adding it in one).
    op.execute("ALTER TYPE ledger_account_kind ADD VALUE IF NOT EXISTS 'customer_advances'")
    op.add_column(
        "loans",
        sa.Column("advance_balance", sa.Numeric(20, 2), server_default="0", nullable=False),
    )
    op.create_check_constraint("advance_not_negative", "loans", "advance_balance >= 0")
    op.add_column(
        "collections",
        sa.Column("advance", sa.Numeric(20, 2), server_default="0", nullable=False),
    )
    op.drop_constraint("parts_add_up", "collections", type_="check")
    op.create_check_constraint(
        "parts_add_up",
        "collections",
        "amount = principal + interest + fee + penalty + recovery + advance",
    )
    op.create_table(
        "advance_applications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("loan_id", sa.Uuid(), nullable=False),
        sa.Column("installment_id", sa.Uuid(), nullable=False),
        sa.Column("installment_number", sa.Integer(), nullable=False),
        sa.Column("applied_on", sa.Date(), nullable=False),
        sa.Column("principal", sa.Numeric(20, 2), server_default="0", nullable=False),
        sa.Column("interest", sa.Numeric(20, 2), server_default="0", nullable=False),
        sa.Column("fee", sa.Numeric(20, 2), server_default="0", nullable=False),
        sa.Column("penalty", sa.Numeric(20, 2), server_default="0", nullable=False),
        sa.Column("journal_entry_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint(
            "principal >= 0 AND interest >= 0 AND fee >= 0 AND penalty >= 0",
            name="parts_not_negative",
        ),
        sa.ForeignKeyConstraint(["loan_id"], ["loans.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["installment_id"], ["loan_installments.id"], ondelete="RESTRICT"),
        sa.ForeignKeyConstraint(["journal_entry_id"], ["journal_entries.id"], ondelete="RESTRICT"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.drop_constraint("steps_done_range", "cob_runs", type_="check")
    op.execute("UPDATE cob_runs SET steps_done = CASE WHEN status = 'completed' THEN 6 ELSE 0 END")
    op.create_check_constraint("steps_done_range", "cob_runs", "steps_done BETWEEN 0 AND 6")
    op.create_index(
        "ix_advance_applications_loan_id_seq", "advance_applications", ["loan_id", "seq"]
    )
    op.create_index(
        op.f("ix_advance_applications_installment_id"),
        "advance_applications",
        ["installment_id"],
    )
    op.create_index(
        op.f("ix_advance_applications_journal_entry_id"),
        "advance_applications",
        ["journal_entry_id"],
    )


def downgrade() -> None:
    op.drop_constraint("steps_done_range", "cob_runs", type_="check")
    op.execute("UPDATE cob_runs SET steps_done = greatest(steps_done - 1, 0)")
    op.create_check_constraint("steps_done_range", "cob_runs", "steps_done BETWEEN 0 AND 5")
    op.drop_table("advance_applications")
    op.drop_constraint("parts_add_up", "collections", type_="check")
    op.create_check_constraint(
        "parts_add_up", "collections", "amount = principal + interest + fee + penalty + recovery"
    )
    op.drop_column("collections", "advance")
    op.drop_constraint("advance_not_negative", "loans", type_="check")
    op.drop_column("loans", "advance_balance")
    # PostgreSQL cannot drop an enum value: 'customer_advances' stays (unused).
