"""provisioning: prudential asset classes, provisioning rates, the provision in the ledger

- enum ``provision_class`` (standard, sub_standard, doubtful, loss) and the table
  ``provisioning_rates`` (percent of outstanding principal per class), seeded with the RBI-style
  defaults of D-191: standard 0.40, sub-standard 10, doubtful 100, loss 100;
- ``loans.provision_class`` and ``loans.provision_held`` (the provision the ledger holds for the
  loan, never negative);
- ledger account kinds ``loan_loss_provision`` (1190, a contra-asset) and
  ``provision_expense`` (5500);
- the close of business gains a step (``provisions``, sixth of seven, before the snapshots):
  ``cob_runs.steps_done`` now counts to 7. A completed run stays completed (7); a run left
  unfinished keeps its steps up to the accrual and resumes at the provisions.

Revision ID: 913f04a8266a
Revises: e7a4c2b9d815
Create Date: 2026-12-13 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "913f04a8266a"
down_revision: str | None = "e7a4c2b9d815"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CLASSES = ("standard", "sub_standard", "doubtful", "loss")
# D-191: RBI-style defaults for unsecured microfinance loans, percent of outstanding principal.
DEFAULT_RATES = {
    "standard": "0.4000",
    "sub_standard": "10.0000",
    "doubtful": "100.0000",
    "loss": "100.0000",
}


def upgrade() -> None:
    # The new enum values are not used in this transaction (PostgreSQL allows adding them in one).
    op.execute("ALTER TYPE ledger_account_kind ADD VALUE IF NOT EXISTS 'loan_loss_provision'")
    op.execute("ALTER TYPE ledger_account_kind ADD VALUE IF NOT EXISTS 'provision_expense'")
    provision_class = postgresql.ENUM(*CLASSES, name="provision_class", create_type=False)
    provision_class.create(op.get_bind(), checkfirst=True)
    op.create_table(
        "provisioning_rates",
        sa.Column("asset_class", provision_class, nullable=False),
        sa.Column("rate", sa.Numeric(7, 4), nullable=False),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("updated_by_id", sa.Uuid(), nullable=True),
        sa.CheckConstraint("rate >= 0 AND rate <= 100", name="rate_range"),
        sa.ForeignKeyConstraint(["updated_by_id"], ["users.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("asset_class"),
    )
    for asset_class, rate in DEFAULT_RATES.items():
        op.execute(
            sa.text(
                "INSERT INTO provisioning_rates (asset_class, rate) "
                "VALUES (CAST(:c AS provision_class), CAST(:r AS numeric))"
            ).bindparams(c=asset_class, r=rate)
        )
    op.add_column(
        "loans",
        sa.Column("provision_class", provision_class, server_default="standard", nullable=False),
    )
    op.add_column(
        "loans",
        sa.Column("provision_held", sa.Numeric(20, 2), server_default="0", nullable=False),
    )
    op.create_check_constraint("provision_not_negative", "loans", "provision_held >= 0")
    op.drop_constraint("steps_done_range", "cob_runs", type_="check")
    op.execute(
        "UPDATE cob_runs SET steps_done = CASE WHEN status = 'completed' THEN 7 "
        "ELSE least(steps_done, 5) END"
    )
    op.create_check_constraint("steps_done_range", "cob_runs", "steps_done BETWEEN 0 AND 7")


def downgrade() -> None:
    op.drop_constraint("steps_done_range", "cob_runs", type_="check")
    op.execute(
        "UPDATE cob_runs SET steps_done = CASE WHEN status = 'completed' THEN 6 "
        "ELSE least(steps_done, 5) END"
    )
    op.create_check_constraint("steps_done_range", "cob_runs", "steps_done BETWEEN 0 AND 6")
    op.drop_constraint("provision_not_negative", "loans", type_="check")
    op.drop_column("loans", "provision_held")
    op.drop_column("loans", "provision_class")
    op.drop_table("provisioning_rates")
    op.execute("DROP TYPE provision_class")
    # PostgreSQL cannot drop an enum value: the two ledger account kinds stay (unused).
