"""notifications: messages to customers and their delivery; customers.preferred_language

Revision ID: a7b8c9d0e1f2
Revises: f6a7b8c9d0e1
Create Date: 2026-11-25 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "a7b8c9d0e1f2"
down_revision: str | None = "f6a7b8c9d0e1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "customers",
        sa.Column("preferred_language", sa.String(length=5), server_default="en", nullable=False),
    )
    op.create_check_constraint(
        op.f("ck_customers_preferred_language_known"),
        "customers",
        "preferred_language IN ('en', 'kn')",
    )
    op.create_table(
        "notifications",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("loan_id", sa.Uuid(), nullable=True),
        sa.Column("installment_id", sa.Uuid(), nullable=True),
        sa.Column("collection_id", sa.Uuid(), nullable=True),
        sa.Column("channel", sa.Enum("email", "sms", name="notification_channel"), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("template", sa.String(length=40), nullable=False),
        sa.Column("language", sa.String(length=5), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("queued", "sent", "failed", name="notification_status"),
            server_default="queued",
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("job_id", sa.BigInteger(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_notifications_attempts_not_negative")),
        sa.CheckConstraint(
            "language IN ('en', 'kn')", name=op.f("ck_notifications_language_known")
        ),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name=op.f("fk_notifications_collection_id_collections"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_notifications_customer_id_customers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["installment_id"],
            ["loan_installments.id"],
            name=op.f("fk_notifications_installment_id_loan_installments"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["loan_id"],
            ["loans.id"],
            name=op.f("fk_notifications_loan_id_loans"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("dedupe_key", name=op.f("uq_notifications_dedupe_key")),
    )
    op.create_index(
        op.f("ix_notifications_collection_id"), "notifications", ["collection_id"], unique=False
    )
    op.create_index(
        "ix_notifications_customer_id_created_at",
        "notifications",
        ["customer_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_notifications_installment_id"), "notifications", ["installment_id"], unique=False
    )
    op.create_index(op.f("ix_notifications_job_id"), "notifications", ["job_id"], unique=False)
    op.create_index(op.f("ix_notifications_loan_id"), "notifications", ["loan_id"], unique=False)
    op.create_index(
        "ix_notifications_status_created_at",
        "notifications",
        ["status", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_notifications_status_created_at", table_name="notifications")
    op.drop_index(op.f("ix_notifications_loan_id"), table_name="notifications")
    op.drop_index(op.f("ix_notifications_job_id"), table_name="notifications")
    op.drop_index(op.f("ix_notifications_installment_id"), table_name="notifications")
    op.drop_index("ix_notifications_customer_id_created_at", table_name="notifications")
    op.drop_index(op.f("ix_notifications_collection_id"), table_name="notifications")
    op.drop_table("notifications")
    op.execute("DROP TYPE notification_status")
    op.execute("DROP TYPE notification_channel")
    op.drop_constraint(op.f("ck_customers_preferred_language_known"), "customers", type_="check")
    op.drop_column("customers", "preferred_language")
