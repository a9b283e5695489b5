"""installments by loan and due date: a scope's dues of a period without the other loans'

``loan_installments (loan_id, due_date)``: a branch's dues of a period (the portfolio summary,
the dashboards, demand and collection) are read per loan of the branch instead of among every
loan's installments of those days (at 100,000 loans, 83,000 rows read to keep 4,000).

Revision ID: 6c2f8d4e0a31
Revises: 5b1e7c3d9f20
Create Date: 2026-12-12 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "6c2f8d4e0a31"
down_revision: str | None = "5b1e7c3d9f20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_loan_installments_loan_id_due_date", "loan_installments", ["loan_id", "due_date"]
    )


def downgrade() -> None:
    op.drop_index("ix_loan_installments_loan_id_due_date", table_name="loan_installments")
