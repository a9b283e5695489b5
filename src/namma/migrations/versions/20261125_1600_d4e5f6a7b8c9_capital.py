"""capital: owners' investments, borrowings with their schedule, and borrowing repayments

Revision ID: d4e5f6a7b8c9
Revises: c3d4e5f6a7b8
Create Date: 2026-11-25 16:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "d4e5f6a7b8c9"
down_revision: str | None = "c3d4e5f6a7b8"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Created once here (capital_method is shared by three tables), dropped in downgrade.
CAPITAL_METHOD = postgresql.ENUM("bank", "cash", name="capital_method", create_type=False)
BORROWING_STATUS = postgresql.ENUM("active", "closed", name="borrowing_status", create_type=False)


def upgrade() -> None:
    CAPITAL_METHOD.create(op.get_bind(), checkfirst=False)
    BORROWING_STATUS.create(op.get_bind(), checkfirst=False)
    op.create_table(
        "borrowings",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("lender_name", sa.String(length=200), nullable=False),
        sa.Column("lender_contact", sa.String(length=200), nullable=True),
        sa.Column("principal", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("annual_rate", sa.Numeric(precision=7, scale=4), nullable=False),
        sa.Column("installments", sa.Integer(), nullable=False),
        sa.Column("terms", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("received_on", sa.Date(), nullable=False),
        sa.Column("first_due_on", sa.Date(), nullable=True),
        sa.Column("method", CAPITAL_METHOD, nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("remarks", sa.Text(), nullable=True),
        sa.Column("status", BORROWING_STATUS, nullable=False),
        sa.Column("installment_amount", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("total_interest", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column(
            "outstanding_principal",
            sa.Numeric(precision=20, scale=2),
            server_default="0",
            nullable=False,
        ),
        sa.Column(
            "outstanding_interest",
            sa.Numeric(precision=20, scale=2),
            server_default="0",
            nullable=False,
        ),
        sa.Column(
            "total_repaid", sa.Numeric(precision=20, scale=2), server_default="0", nullable=False
        ),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("journal_entry_id", sa.BigInteger(), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("installments >= 1", name=op.f("ck_borrowings_installments_positive")),
        sa.CheckConstraint(
            "outstanding_principal >= 0 AND outstanding_interest >= 0",
            name=op.f("ck_borrowings_outstanding_not_negative"),
        ),
        sa.CheckConstraint("principal > 0", name=op.f("ck_borrowings_principal_positive")),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_borrowings_created_by_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["journal_entry_id"],
            ["journal_entries.id"],
            name=op.f("fk_borrowings_journal_entry_id_journal_entries"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_borrowings")),
        sa.UniqueConstraint("journal_entry_id", name=op.f("uq_borrowings_journal_entry_id")),
    )
    op.create_index(op.f("ix_borrowings_status"), "borrowings", ["status"], unique=False)
    op.create_table(
        "investments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("invested_on", sa.Date(), nullable=False),
        sa.Column("method", CAPITAL_METHOD, nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("journal_entry_id", sa.BigInteger(), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_investments_amount_positive")),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_investments_created_by_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["journal_entry_id"],
            ["journal_entries.id"],
            name=op.f("fk_investments_journal_entry_id_journal_entries"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_investments")),
        sa.UniqueConstraint("journal_entry_id", name=op.f("uq_investments_journal_entry_id")),
    )
    op.create_index("ix_investments_invested_on", "investments", ["invested_on"], unique=False)
    op.create_table(
        "borrowing_installments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("borrowing_id", sa.Uuid(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("period_start", sa.Date(), nullable=False),
        sa.Column("principal_due", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("interest_due", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("interest_for_period", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("balance_after", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column(
            "principal_paid", sa.Numeric(precision=20, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "interest_paid", sa.Numeric(precision=20, scale=2), server_default="0", nullable=False
        ),
        sa.Column(
            "interest_waived", sa.Numeric(precision=20, scale=2), server_default="0", nullable=False
        ),
        sa.Column("paid_on", sa.Date(), nullable=True),
        sa.ForeignKeyConstraint(
            ["borrowing_id"],
            ["borrowings.id"],
            name=op.f("fk_borrowing_installments_borrowing_id_borrowings"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_borrowing_installments")),
        sa.UniqueConstraint(
            "borrowing_id", "number", name=op.f("uq_borrowing_installments_borrowing_id_number")
        ),
    )
    op.create_table(
        "borrowing_repayments",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("borrowing_id", sa.Uuid(), nullable=False),
        sa.Column("paid_on", sa.Date(), nullable=False),
        sa.Column("amount", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("principal_paid", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("interest_paid", sa.Numeric(precision=20, scale=2), nullable=False),
        sa.Column("payoff", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("method", CAPITAL_METHOD, nullable=False),
        sa.Column("reference", sa.String(length=100), nullable=True),
        sa.Column("journal_entry_id", sa.BigInteger(), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "amount = principal_paid + interest_paid",
            name=op.f("ck_borrowing_repayments_parts_add_up"),
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_borrowing_repayments_amount_positive")),
        sa.ForeignKeyConstraint(
            ["borrowing_id"],
            ["borrowings.id"],
            name=op.f("fk_borrowing_repayments_borrowing_id_borrowings"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_borrowing_repayments_created_by_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["journal_entry_id"],
            ["journal_entries.id"],
            name=op.f("fk_borrowing_repayments_journal_entry_id_journal_entries"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_borrowing_repayments")),
        sa.UniqueConstraint(
            "journal_entry_id", name=op.f("uq_borrowing_repayments_journal_entry_id")
        ),
    )
    op.create_index(
        "ix_borrowing_repayments_borrowing_id_paid_on",
        "borrowing_repayments",
        ["borrowing_id", "paid_on"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_borrowing_repayments_borrowing_id_paid_on", table_name="borrowing_repayments")
    op.drop_table("borrowing_repayments")
    op.drop_table("borrowing_installments")
    op.drop_index("ix_investments_invested_on", table_name="investments")
    op.drop_table("investments")
    op.drop_index(op.f("ix_borrowings_status"), table_name="borrowings")
    op.drop_table("borrowings")
    BORROWING_STATUS.drop(op.get_bind(), checkfirst=False)
    CAPITAL_METHOD.drop(op.get_bind(), checkfirst=False)
