"""interest in suspense: a memorandum of the interest a non-performing loan owes, not recognised

- ``loans.interest_suspense`` (never negative): what a non-performing accrual-basis loan has
  earned on its schedule and not paid, kept off the books because it is income only when
  collected (D-215); 0 for every existing loan — the close of business fills it for the
  non-performing ones at its next run (its accrual step posts the difference from 0);
- ledger account kinds ``interest_suspense`` (9200) and ``interest_suspense_contra`` (9210),
  the memorandum pair. Accounts other than cash are institution-wide and created on first use
  (``ledger_account``), so no account rows are written here.

Revision ID: c5d1e8a4f2b7
Revises: a3f9c2e7d1b4
Create Date: 2026-12-16 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c5d1e8a4f2b7"
down_revision: str | None = "a3f9c2e7d1b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The new enum values are not used in this transaction (PostgreSQL allows adding them in one).
    op.execute("ALTER TYPE ledger_account_kind ADD VALUE IF NOT EXISTS 'interest_suspense'")
    op.execute("ALTER TYPE ledger_account_kind ADD VALUE IF NOT EXISTS 'interest_suspense_contra'")
    op.add_column(
        "loans",
        sa.Column("interest_suspense", sa.Numeric(20, 2), server_default="0", nullable=False),
    )
    op.create_check_constraint("interest_suspense_not_negative", "loans", "interest_suspense >= 0")


def downgrade() -> None:
    op.drop_constraint("interest_suspense_not_negative", "loans", type_="check")
    op.drop_column("loans", "interest_suspense")
    # PostgreSQL cannot drop an enum value: the two ledger account kinds stay (unused).
