"""cash hand-over counted by the branch: the agent declares, someone else counts

A hand-over is now two steps (maker-checker): the declaration (``amount_declared``, by
``recorded_by_id``) and the branch's count (``amount_deposited``, ``counted_by_id``,
``counted_at``, ``count_remarks``), when the journal is posted. Until counted, the amount
counted, the difference and the journal entry are empty. Hand-overs recorded before this
migration were counted when recorded: they are declared and counted by their recorder, the one
case the new check (the counter is not the declarer) lets stand (it is added NOT VALID).

Revision ID: 7f3c1a9e2b64
Revises: d0e1f2a3b4c5
Create Date: 2026-12-07 01:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7f3c1a9e2b64"
down_revision: str | None = "d0e1f2a3b4c5"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric(20, 2)


def upgrade() -> None:
    op.add_column("cash_handovers", sa.Column("amount_declared", MONEY, nullable=True))
    op.add_column("cash_handovers", sa.Column("counted_by_id", sa.Uuid(), nullable=True))
    op.add_column(
        "cash_handovers", sa.Column("counted_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column("cash_handovers", sa.Column("count_remarks", sa.Text(), nullable=True))
    op.execute(
        "UPDATE cash_handovers SET amount_declared = amount_deposited, "
        "counted_by_id = recorded_by_id, counted_at = created_at"
    )
    op.alter_column("cash_handovers", "amount_declared", nullable=False)
    op.alter_column("cash_handovers", "amount_deposited", nullable=True)
    op.alter_column("cash_handovers", "difference", nullable=True)
    op.alter_column("cash_handovers", "journal_entry_id", nullable=True)
    op.create_foreign_key(
        op.f("fk_cash_handovers_counted_by_id_users"),
        "cash_handovers",
        "users",
        ["counted_by_id"],
        ["id"],
        ondelete="RESTRICT",
    )
    op.drop_constraint(
        op.f("ck_cash_handovers_amounts_not_negative"), "cash_handovers", type_="check"
    )
    op.create_check_constraint(
        op.f("ck_cash_handovers_amounts_not_negative"),
        "cash_handovers",
        "expected >= 0 AND amount_declared >= 0 AND amount_deposited >= 0",
    )
    op.create_check_constraint(
        op.f("ck_cash_handovers_counted_whole"),
        "cash_handovers",
        "(counted_at IS NULL) = (amount_deposited IS NULL) "
        "AND (counted_at IS NULL) = (difference IS NULL) "
        "AND (counted_at IS NULL) = (journal_entry_id IS NULL) "
        "AND (counted_at IS NULL) = (counted_by_id IS NULL)",
    )
    op.execute(
        "ALTER TABLE cash_handovers ADD CONSTRAINT ck_cash_handovers_counter_not_declarer "
        "CHECK (counted_by_id <> recorded_by_id) NOT VALID"
    )


def downgrade() -> None:
    op.execute("DELETE FROM cash_handovers WHERE counted_at IS NULL")
    op.drop_constraint(
        op.f("ck_cash_handovers_counter_not_declarer"), "cash_handovers", type_="check"
    )
    op.drop_constraint(op.f("ck_cash_handovers_counted_whole"), "cash_handovers", type_="check")
    op.drop_constraint(
        op.f("ck_cash_handovers_amounts_not_negative"), "cash_handovers", type_="check"
    )
    op.create_check_constraint(
        op.f("ck_cash_handovers_amounts_not_negative"),
        "cash_handovers",
        "expected >= 0 AND amount_deposited >= 0",
    )
    op.drop_constraint(
        op.f("fk_cash_handovers_counted_by_id_users"), "cash_handovers", type_="foreignkey"
    )
    op.alter_column("cash_handovers", "journal_entry_id", nullable=False)
    op.alter_column("cash_handovers", "difference", nullable=False)
    op.alter_column("cash_handovers", "amount_deposited", nullable=False)
    op.drop_column("cash_handovers", "count_remarks")
    op.drop_column("cash_handovers", "counted_at")
    op.drop_column("cash_handovers", "counted_by_id")
    op.drop_column("cash_handovers", "amount_declared")
