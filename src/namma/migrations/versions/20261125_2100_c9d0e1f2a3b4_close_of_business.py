"""close of business: runs, loan classes, portfolio snapshots

Revision ID: c9d0e1f2a3b4
Revises: b8c9d0e1f2a3
Create Date: 2026-11-25 21:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "c9d0e1f2a3b4"
down_revision: str | None = "b8c9d0e1f2a3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COB_RUN_STATUS = postgresql.ENUM(
    "running", "completed", "failed", name="cob_run_status", create_type=False
)
DPD_BUCKET = postgresql.ENUM(
    "current", "1-30", "31-60", "61-90", "90+", name="dpd_bucket", create_type=False
)
ASSET_CLASS = postgresql.ENUM(
    "standard", "sma_0", "sma_1", "sma_2", "npa", name="asset_class", create_type=False
)


def _money(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.Numeric(precision=20, scale=2), server_default="0", nullable=False)


def _count(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.Integer(), server_default="0", nullable=False)


def upgrade() -> None:
    bind = op.get_bind()
    for enum_type in (COB_RUN_STATUS, DPD_BUCKET, ASSET_CLASS):
        enum_type.create(bind, checkfirst=False)

    op.add_column(
        "loans", sa.Column("dpd_bucket", DPD_BUCKET, server_default="current", nullable=False)
    )
    op.add_column(
        "loans", sa.Column("asset_class", ASSET_CLASS, server_default="standard", nullable=False)
    )
    op.add_column("loans", sa.Column("npa_since", sa.Date(), nullable=True))

    op.create_table(
        "cob_runs",
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("status", COB_RUN_STATUS, nullable=False),
        sa.Column("steps_done", sa.Integer(), server_default="0", nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "counts",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default="{}",
            nullable=False,
        ),
        sa.Column("attempts", sa.Integer(), server_default="1", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.CheckConstraint("steps_done BETWEEN 0 AND 5", name=op.f("ck_cob_runs_steps_done_range")),
        sa.PrimaryKeyConstraint("business_date", name=op.f("pk_cob_runs")),
    )

    op.create_table(
        "portfolio_snapshots",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("business_date", sa.Date(), nullable=False),
        sa.Column("branch_id", sa.Uuid(), nullable=False),
        sa.Column("agent_id", sa.Uuid(), nullable=True),
        _count("active_loans"),
        _count("active_customers"),
        _money("outstanding_principal"),
        _money("outstanding_interest"),
        _money("outstanding_fees"),
        _money("outstanding_penalties"),
        _money("par_1_30"),
        _money("par_31_60"),
        _money("par_61_90"),
        _money("par_90_plus"),
        _money("overdue_amount"),
        _money("due_amount"),
        _money("collected_amount"),
        _count("collections_count"),
        _money("disbursed_amount"),
        _count("disbursed_count"),
        sa.ForeignKeyConstraint(
            ["agent_id"],
            ["users.id"],
            name=op.f("fk_portfolio_snapshots_agent_id_users"),
            ondelete="RESTRICT",
        ),
        sa.ForeignKeyConstraint(
            ["branch_id"],
            ["branches.id"],
            name=op.f("fk_portfolio_snapshots_branch_id_branches"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_portfolio_snapshots")),
    )
    op.create_index(
        op.f("ix_portfolio_snapshots_agent_id"), "portfolio_snapshots", ["agent_id"], unique=False
    )
    op.create_index(
        "uq_portfolio_snapshots_date_branch_agent",
        "portfolio_snapshots",
        ["business_date", "branch_id", "agent_id"],
        unique=True,
        postgresql_nulls_not_distinct=True,
    )


def downgrade() -> None:
    op.drop_index("uq_portfolio_snapshots_date_branch_agent", table_name="portfolio_snapshots")
    op.drop_index(op.f("ix_portfolio_snapshots_agent_id"), table_name="portfolio_snapshots")
    op.drop_table("portfolio_snapshots")
    op.drop_table("cob_runs")
    op.drop_column("loans", "npa_since")
    op.drop_column("loans", "asset_class")
    op.drop_column("loans", "dpd_bucket")
    bind = op.get_bind()
    for enum_type in (ASSET_CLASS, DPD_BUCKET, COB_RUN_STATUS):
        enum_type.drop(bind, checkfirst=False)
