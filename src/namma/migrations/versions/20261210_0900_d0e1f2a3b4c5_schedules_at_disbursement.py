"""schedules written at disbursement: pending schedules generated, loans.schedule_status dropped

A disbursement now writes its installments in its own transaction, so a disbursed loan always
has its schedule and ``schedule_status`` says nothing (the API derives it from the disbursement
date). Loans disbursed before this migration whose schedule job had not run yet (``pending``)
get their installments here, from the money core, exactly as the job would have written them:
nothing can have been paid on them (every payment, waiver and penalty wrote the schedule
first). Their balances, statuses and days past due are set as of today (India).

Revision ID: d0e1f2a3b4c5
Revises: c9d0e1f2a3b4
Create Date: 2026-12-10 09:00:00
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from types import SimpleNamespace

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "d0e1f2a3b4c5"
down_revision: str | None = "c9d0e1f2a3b4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SCHEDULE_STATUS = postgresql.ENUM(
    "none", "pending", "generated", name="schedule_status", create_type=False
)
ZERO = Decimal("0.00")


def _fresh(due_date: date, principal: Decimal, interest: Decimal, fee: Decimal) -> SimpleNamespace:
    """An installment as the money core's rules read it: due as scheduled, nothing paid."""
    return SimpleNamespace(
        due_date=due_date,
        principal_due=principal,
        interest_due=interest,
        fee_due=fee,
        penalty_due=ZERO,
        principal_paid=ZERO,
        interest_paid=ZERO,
        fee_paid=ZERO,
        penalty_paid=ZERO,
        interest_waived=ZERO,
        fee_waived=ZERO,
        penalty_waived=ZERO,
    )


def _pending_schedules_write(connection: sa.Connection) -> int:
    """Write the installments of every disbursed loan whose schedule is still pending."""
    from namma.finance import generate_schedule
    from namma.finance.owed import loan_balances
    from namma.kit.clock import today_india
    from namma.products.schemas import loan_terms_from_stored

    pending = connection.execute(
        sa.text(
            "SELECT l.id, l.terms, l.principal, l.annual_rate, l.installments, l.disbursed_on, "
            "l.requested_first_due_on, v.microfinance FROM loans l "
            "JOIN loan_product_versions v ON v.id = l.product_version_id "
            "WHERE l.schedule_status = 'pending' AND l.disbursed_on IS NOT NULL "
            "AND NOT EXISTS (SELECT 1 FROM loan_installments i WHERE i.loan_id = l.id) "
            "ORDER BY l.id FOR UPDATE OF l"
        )
    ).all()
    today = today_india()
    for loan_id, terms, principal, rate, count, disbursed_on, first_due, microfinance in pending:
        schedule = generate_schedule(
            loan_terms_from_stored(
                terms,
                principal=principal,
                annual_rate=rate,
                installments=count,
                microfinance=microfinance,
            ),
            disbursed_on=disbursed_on,
            first_due_on=first_due if first_due is not None and first_due > disbursed_on else None,
        )
        rows = [_fresh(r.due_date, r.principal, r.interest, r.fees) for r in schedule.rows]
        balances = loan_balances(rows, today)
        for row, status in zip(schedule.rows, balances.statuses, strict=True):
            connection.execute(
                sa.text(
                    "INSERT INTO loan_installments (id, loan_id, number, due_date, period_start, "
                    "principal_due, interest_due, fee_due, interest_for_period, balance_after, "
                    "status) VALUES (:id, :loan_id, :number, :due_date, :period_start, "
                    ":principal, :interest, :fee, :for_period, :balance, "
                    "CAST(:status AS installment_status))"
                ),
                {
                    "id": uuid.uuid4(),
                    "loan_id": loan_id,
                    "number": row.number,
                    "due_date": row.due_date,
                    "period_start": row.period_start,
                    "principal": row.principal,
                    "interest": row.interest,
                    "fee": row.fees,
                    "for_period": row.interest_for_period,
                    "balance": row.balance,
                    "status": status,
                },
            )
        connection.execute(
            sa.text(
                "UPDATE loans SET outstanding_principal = :principal, "
                "outstanding_interest = :interest, outstanding_fees = :fees, "
                "outstanding_penalties = :penalties, next_due_on = :next_due, "
                "days_past_due = :dpd, schedule_status = 'generated', updated_at = now() "
                "WHERE id = :id"
            ),
            {
                "id": loan_id,
                "principal": balances.principal,
                "interest": balances.interest,
                "fees": balances.fees,
                "penalties": balances.penalties,
                "next_due": balances.next_due_on,
                "dpd": balances.days_past_due,
            },
        )
    return len(pending)


def upgrade() -> None:
    _pending_schedules_write(op.get_bind())
    op.drop_column("loans", "schedule_status")
    SCHEDULE_STATUS.drop(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    SCHEDULE_STATUS.create(op.get_bind(), checkfirst=True)
    op.add_column(
        "loans",
        sa.Column("schedule_status", SCHEDULE_STATUS, server_default="none", nullable=False),
    )
    op.execute("UPDATE loans SET schedule_status = 'generated' WHERE disbursed_on IS NOT NULL")
