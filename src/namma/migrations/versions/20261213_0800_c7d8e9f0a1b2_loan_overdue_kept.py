"""loans keep their overdue amount with their balances; the dues of a period from an index


``loans.overdue_amount`` (what the installments due before ``balances_as_of`` still owed on
that day) and ``loans.balances_as_of`` (the Indian date the loan's balances were computed for),
written by every write to a loan's installments and by the close of business, so that the
reports' overdue amount is read from the loan rows plus what fell due since (D-179). Existing
loans start with ``balances_as_of`` NULL: their overdue amount is computed from the
installments until their next write or close of business.

``ix_loan_installments_due_date_status`` carries an installment's loan and amounts (INCLUDE),
so that a period's dues and what a day's installments still owe are read from the index alone; ``ix_loans_applied_at``
answers the dashboards' newest loans.

Revision ID: c7d8e9f0a1b2
Revises: b1c2d3e4f5a6
Create Date: 2026-12-13 08:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c7d8e9f0a1b2"
down_revision: str | None = "b1c2d3e4f5a6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AMOUNT_COLUMNS = (
    "id",
    "loan_id",
    "principal_due",
    "interest_due",
    "fee_due",
    "interest_waived",
    "fee_waived",
    "principal_paid",
    "interest_paid",
    "fee_paid",
    "penalty_due",
    "penalty_paid",
    "penalty_waived",
)


def upgrade() -> None:
    op.add_column(
        "loans", sa.Column("overdue_amount", sa.Numeric(20, 2), server_default="0", nullable=False)
    )
    op.add_column("loans", sa.Column("balances_as_of", sa.Date(), nullable=True))
    op.create_index("ix_loans_applied_at", "loans", ["applied_at", "loan_number"])
    op.drop_index("ix_loan_installments_due_date_status", table_name="loan_installments")
    op.create_index(
        "ix_loan_installments_due_date_status",
        "loan_installments",
        ["due_date", "status"],
        postgresql_include=[*AMOUNT_COLUMNS],
    )


def downgrade() -> None:
    op.drop_index("ix_loan_installments_due_date_status", table_name="loan_installments")
    op.create_index(
        "ix_loan_installments_due_date_status", "loan_installments", ["due_date", "status"]
    )
    op.drop_index("ix_loans_applied_at", table_name="loans")
    op.drop_column("loans", "balances_as_of")
    op.drop_column("loans", "overdue_amount")
