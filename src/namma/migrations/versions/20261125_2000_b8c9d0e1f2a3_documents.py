"""documents: statements and receipts

Revision ID: b8c9d0e1f2a3
Revises: a7b8c9d0e1f2
Create Date: 2026-11-25 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b8c9d0e1f2a3"
down_revision: str | None = "a7b8c9d0e1f2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "documents",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.Enum("statement", "receipt", name="document_kind"), nullable=False),
        sa.Column("customer_id", sa.Uuid(), nullable=False),
        sa.Column("loan_id", sa.Uuid(), nullable=True),
        sa.Column("collection_id", sa.Uuid(), nullable=True),
        sa.Column("period_start", sa.Date(), nullable=True),
        sa.Column("period_end", sa.Date(), nullable=True),
        sa.Column(
            "status",
            sa.Enum("pending", "ready", "failed", name="document_status"),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("content", sa.LargeBinary(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("size", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("requested_by_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("generated_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(kind = 'receipt' AND collection_id IS NOT NULL AND period_start IS NULL "
            "AND period_end IS NULL) OR (kind = 'statement' AND collection_id IS NULL "
            "AND period_start IS NOT NULL AND period_end >= period_start)",
            name=op.f("ck_documents_kind_fields"),
        ),
        sa.CheckConstraint(
            "status <> 'ready' OR (content IS NOT NULL AND sha256 IS NOT NULL "
            "AND size IS NOT NULL AND generated_at IS NOT NULL)",
            name=op.f("ck_documents_ready_has_content"),
        ),
        sa.ForeignKeyConstraint(
            ["collection_id"],
            ["collections.id"],
            name=op.f("fk_documents_collection_id_collections"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["customer_id"],
            ["customers.id"],
            name=op.f("fk_documents_customer_id_customers"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["loan_id"],
            ["loans.id"],
            name=op.f("fk_documents_loan_id_loans"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"],
            ["users.id"],
            name=op.f("fk_documents_requested_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documents")),
        sa.UniqueConstraint("kind", "collection_id", name=op.f("uq_documents_kind_collection_id")),
        sa.UniqueConstraint(
            "kind",
            "customer_id",
            "period_start",
            name=op.f("uq_documents_kind_customer_id_period_start"),
        ),
    )
    op.create_index(
        "ix_documents_customer_id_created_at",
        "documents",
        ["customer_id", "created_at"],
        unique=False,
    )
    op.create_index(op.f("ix_documents_loan_id"), "documents", ["loan_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_documents_loan_id"), table_name="documents")
    op.drop_index("ix_documents_customer_id_created_at", table_name="documents")
    op.drop_table("documents")
    sa.Enum(name="document_status").drop(op.get_bind(), checkfirst=False)
    sa.Enum(name="document_kind").drop(op.get_bind(), checkfirst=False)
