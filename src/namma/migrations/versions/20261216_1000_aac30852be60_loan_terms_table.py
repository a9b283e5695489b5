"""loan terms in their own table; the loans row keeps only the frequency

``loan_terms``: one row per loan with its terms (the JSON that was ``loans.terms``), read when a
loan's money is computed. ``loans.frequency``: the terms' ``frequency``, which the loan lists
show. The terms were ~900 of a loan row's ~1,150 bytes, and every report scans a branch's
loans (D-212).

The loans table is rewritten once, by the statement that fills ``frequency`` and drops
``terms`` together: dropping the column alone leaves its bytes in every row until the row is
next updated, and filling ``frequency`` with an UPDATE first would write a second, still wide,
version of every row.

Revision ID: aac30852be60
Revises: c5d1e8a4f2b7
Create Date: 2026-12-16 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "aac30852be60"
down_revision: str | None = "c5d1e8a4f2b7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "loan_terms",
        sa.Column("loan_id", sa.Uuid(), nullable=False),
        sa.Column("terms", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.ForeignKeyConstraint(
            ["loan_id"],
            ["loans.id"],
            name=op.f("fk_loan_terms_loan_id_loans"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("loan_id", name=op.f("pk_loan_terms")),
    )
    op.execute("INSERT INTO loan_terms (loan_id, terms) SELECT id, terms FROM loans")
    op.add_column("loans", sa.Column("frequency", sa.String(length=20), nullable=True))
    # One ALTER TABLE: the new type's USING makes PostgreSQL rewrite every row, reading the
    # terms before the same statement drops them, so the rows it writes are narrow.
    op.execute(
        "ALTER TABLE loans ALTER COLUMN frequency TYPE varchar(20) "
        "USING terms ->> 'frequency', DROP COLUMN terms"
    )


def downgrade() -> None:
    op.add_column(
        "loans", sa.Column("terms", postgresql.JSONB(astext_type=sa.Text()), nullable=True)
    )
    op.execute("UPDATE loans l SET terms = t.terms FROM loan_terms t WHERE t.loan_id = l.id")
    op.alter_column("loans", "terms", nullable=False)
    op.drop_column("loans", "frequency")
    op.drop_table("loan_terms")
