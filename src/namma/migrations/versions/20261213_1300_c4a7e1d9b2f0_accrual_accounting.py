"""accrual accounting: interest receivable carried per loan

``loans.interest_receivable``: interest earned and not yet collected on a loan of a product
that accounts on accrual basis (its terms' ``interest_accounting``), recognised as income by the
close of business (step 4, ``accrual``) and settled by collections; 0 on cash-basis loans and
for every existing loan (every existing product stays on cash basis: the terms' default). The
ledger account kind ``interest_receivable`` (1110) already exists (it was reserved).

Revision ID: c4a7e1d9b2f0
Revises: e7a1c4b9d2f0
Create Date: 2026-12-13 13:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4a7e1d9b2f0"
down_revision: str | None = "e7a1c4b9d2f0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "loans",
        sa.Column("interest_receivable", sa.Numeric(20, 2), server_default="0", nullable=False),
    )
    op.create_check_constraint(
        "interest_receivable_not_negative", "loans", "interest_receivable >= 0"
    )


def downgrade() -> None:
    op.drop_constraint("interest_receivable_not_negative", "loans", type_="check")
    op.drop_column("loans", "interest_receivable")
