"""a restructuring keeps the regular date its rebuilt installments run from

``loan_schedule_revisions.regular_first_due_on``: for a restructuring (policy ``restructure``),
the first rebuilt installment's regular due date before a calendar moved it; the later ones
follow it by the loan's frequency. A calendar changed afterwards moves the restructured
installments from there, not from the loan's disbursement (D-208). Existing restructurings were
built without a calendar, so the first rebuilt row's date in the request's preview is that
regular date: the column is filled from it. Prepayment revisions leave it NULL.

Revision ID: a3f6d2c8e1b4
Revises: d5e8f1a2b3c4
Create Date: 2026-12-15 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a3f6d2c8e1b4"
down_revision: str | None = "d5e8f1a2b3c4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "loan_schedule_revisions", sa.Column("regular_first_due_on", sa.Date(), nullable=True)
    )
    op.execute(
        """
        UPDATE loan_schedule_revisions r
           SET regular_first_due_on =
               CAST(q.preview -> 'loans' -> CAST(r.loan_id AS text) ->> 'next_due_on' AS date)
          FROM loan_restructure_requests q
         WHERE r.restructure_id = q.id
        """
    )


def downgrade() -> None:
    op.drop_column("loan_schedule_revisions", "regular_first_due_on")
