"""journal entries record the transaction that posted them; one disbursement entry per loan

``journal_entries.posted_xact``: the 64-bit id of the transaction that inserted the entry
(``pg_current_xact_id()``, a column default: no posting path sets it). A reader that kept sums
with the snapshot it read them in adds exactly the entries that snapshot could not see
(``pg_visible_in_snapshot``), whatever order transactions commit in (D-204). Existing entries
stay NULL: visible to every snapshot taken after this migration, so never "new". Adding a
nullable column and then its default rewrites no rows.

``uq_journal_entries_loan_disbursement``: a loan is paid out once, so "loans disbursed in a
month" adds up across partial reads.

Revision ID: d5e8f1a2b3c4
Revises: c4a7e1d9b2f0
Create Date: 2026-12-14 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d5e8f1a2b3c4"
down_revision: str | None = "c4a7e1d9b2f0"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("journal_entries", sa.Column("posted_xact", sa.BigInteger(), nullable=True))
    op.alter_column(
        "journal_entries",
        "posted_xact",
        server_default=sa.text("(pg_current_xact_id())::text::bigint"),
    )
    op.create_index("ix_journal_entries_posted_xact", "journal_entries", ["posted_xact"])
    op.create_index(
        "uq_journal_entries_loan_disbursement",
        "journal_entries",
        ["loan_id"],
        unique=True,
        postgresql_where=sa.text("kind = 'loan.disbursement'"),
    )


def downgrade() -> None:
    op.drop_index("uq_journal_entries_loan_disbursement", table_name="journal_entries")
    op.drop_index("ix_journal_entries_posted_xact", table_name="journal_entries")
    op.drop_column("journal_entries", "posted_xact")
