"""each installment names its loan's branch; a branch's dues of a period by index

``loan_installments.branch_id`` (the loan's branch, which never changes) and
``ix_loan_installments_branch_id_due_date (branch_id, due_date) INCLUDE (...)``: a branch's
dashboard and reports read its installments of a period from the index alone, among that
branch's only. The due-date index holds every branch's, so a branch's month read the
institution's installments of those days and kept its own (D-220).

Revision ID: e4b7c1d9a2f6
Revises: aac30852be60
Create Date: 2026-12-17 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "e4b7c1d9a2f6"
down_revision: str | None = "aac30852be60"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

INCLUDED = [
    "id",
    "loan_id",
    "status",
    "principal_due",
    "interest_due",
    "fee_due",
    "interest_waived",
    "fee_waived",
    "principal_paid",
    "interest_paid",
    "fee_paid",
]


def upgrade() -> None:
    op.add_column("loan_installments", sa.Column("branch_id", sa.Uuid(), nullable=True))
    op.execute(
        "UPDATE loan_installments i SET branch_id = l.branch_id FROM loans l WHERE l.id = i.loan_id"
    )
    op.alter_column("loan_installments", "branch_id", nullable=False)
    op.create_foreign_key(
        op.f("fk_loan_installments_branch_id_branches"),
        "loan_installments",
        "branches",
        ["branch_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.create_index(
        "ix_loan_installments_branch_id_due_date",
        "loan_installments",
        ["branch_id", "due_date"],
        postgresql_include=INCLUDED,
    )


def downgrade() -> None:
    op.drop_index("ix_loan_installments_branch_id_due_date", table_name="loan_installments")
    op.drop_constraint(
        op.f("fk_loan_installments_branch_id_branches"), "loan_installments", type_="foreignkey"
    )
    op.drop_column("loan_installments", "branch_id")
