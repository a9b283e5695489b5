"""a restructured loan upgraded after a year of satisfactory performance

``loans.restructure_upgraded_on``: the business date of the close of business that found the
year after the loan's latest restructuring performed as D-210 says and upgraded it; from then on
it is classed and accrues like any loan (NULL: not upgraded, so a restructured loan is
sub-standard and accrues nothing). A new restructuring clears it.

Revision ID: b8c2e5f1d4a7
Revises: a3f6d2c8e1b4
Create Date: 2026-12-15 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b8c2e5f1d4a7"
down_revision: str | None = "a3f6d2c8e1b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("loans", sa.Column("restructure_upgraded_on", sa.Date(), nullable=True))


def downgrade() -> None:
    op.drop_column("loans", "restructure_upgraded_on")
