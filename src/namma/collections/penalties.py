"""Overdue penalties: charged on installments by the product's rule, as of a business date.

The rule is the money core's (`namma.finance.penalties.penalty_for_installment`): nothing within
the grace days; a flat amount or a percent of the overdue principal (or principal + interest);
once, or for every day beyond the grace days; rounded half-up to the paisa; capped. The rule
gives the penalty an installment has accrued *in total* as of the date; a run charges the
difference from what the installment was already charged (`penalty_due`), never less than 0.
So a second run for the same date charges nothing, a skipped day is caught up by the next run,
and a partial payment that shrinks the overdue amount never takes back a charge.

`penalties_apply` is one set of SQL statements over every active loan with a penalty rule (or
one loan): the nightly close of business calls it for the whole portfolio; it is not a loop over
loans in Python. The SQL mirrors the money core term for term; tests compare the two.

Penalties are income when collected (cash basis, docs/ledger.md): a charge posts no journal.
Each charge is a row in `loan_penalty_charges` (per installment and date), and the run is
audited once.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import AuditActor, audit_record
from namma.finance.owed import counts_past_due, owed_interest, owed_principal
from namma.kit.sqltext import SqlText, sql_of

ZERO = Decimal("0.00")

# The loans a run charges (both statements): active, with a penalty rule, optionally one loan.
# Lock them first, in a fixed order: a collection locks its loan before its installments, so a
# run that touched installments first could deadlock with one.
_LOCK = """
SELECT count(*) FROM (
    SELECT 1 FROM loans l JOIN loan_terms t ON t.loan_id = l.id
    WHERE l.status = 'active' AND jsonb_typeof(t.terms -> 'penalty') = 'object'
      AND (CAST(:loan_id AS uuid) IS NULL OR l.id = CAST(:loan_id AS uuid))
    ORDER BY l.id FOR UPDATE OF l
) locked
"""

# What each installment in arrears has accrued by the rule as of :as_of, and the increment.
# Arrears and the overdue amounts are the money core's rules (`namma.finance.owed`), as SQL.
_COMPUTE = f"""
CREATE TEMP TABLE penalty_run ON COMMIT DROP AS
WITH arrears AS (
    SELECT i.id AS installment_id, i.loan_id, i.number, i.penalty_due,
           CAST(:as_of AS date) - i.due_date AS days_late,
           {sql_of(owed_principal, "i")} AS overdue_principal,
           {sql_of(owed_interest, "i")} AS overdue_interest,
           t.terms -> 'penalty' AS rule
    FROM loan_installments i
    JOIN loans l ON l.id = i.loan_id
    JOIN loan_terms t ON t.loan_id = l.id
    WHERE l.status = 'active' AND jsonb_typeof(t.terms -> 'penalty') = 'object'
      AND (CAST(:loan_id AS uuid) IS NULL OR l.id = CAST(:loan_id AS uuid))
      -- Due before the date and in arrears: penalties alone do not put an installment in
      -- arrears, only what the schedule demanded.
      AND {sql_of(counts_past_due, "i", SqlText("CAST(:as_of AS date)"))}
), chargeable AS (
    SELECT a.*,
           a.days_late - CAST(a.rule ->> 'grace_days' AS integer) AS chargeable_days,
           CAST(a.rule ->> 'value' AS numeric) AS rate,
           CAST(a.rule ->> 'cap' AS numeric) AS cap
    FROM arrears a
), accrued AS (
    SELECT c.*,
           round(
               CASE c.rule ->> 'basis'
                   WHEN 'flat' THEN c.rate
                   WHEN 'percent-of-overdue-principal' THEN c.overdue_principal * c.rate / 100
                   ELSE (c.overdue_principal + c.overdue_interest) * c.rate / 100
               END
               * CASE c.rule ->> 'recurrence' WHEN 'daily' THEN c.chargeable_days ELSE 1 END,
               2
           ) AS uncapped
    FROM chargeable c
    WHERE c.chargeable_days > 0
), totals AS (
    SELECT a.*, CASE WHEN a.cap IS NOT NULL AND a.uncapped > a.cap THEN a.cap
                     ELSE a.uncapped END AS total
    FROM accrued a
)
SELECT installment_id, loan_id, number, days_late, total, total - penalty_due AS amount
FROM totals
WHERE total > penalty_due
"""  # noqa: S608 (constant fragments; values are bound parameters)

_CHARGE = """
INSERT INTO loan_penalty_charges
    (loan_id, installment_id, installment_number, charged_on, days_overdue, amount, total_after)
SELECT loan_id, installment_id, number, CAST(:as_of AS date), days_late, amount, total
FROM penalty_run
ON CONFLICT (installment_id, charged_on) DO UPDATE
    SET amount = loan_penalty_charges.amount + EXCLUDED.amount,
        total_after = EXCLUDED.total_after,
        days_overdue = EXCLUDED.days_overdue
"""

_INSTALLMENTS = """
UPDATE loan_installments i SET penalty_due = r.total
FROM penalty_run r WHERE i.id = r.installment_id
"""

_LOAN_BALANCES = """
UPDATE loans l SET outstanding_penalties = l.outstanding_penalties + s.amount, updated_at = now()
FROM (SELECT loan_id, sum(amount) AS amount FROM penalty_run GROUP BY loan_id) s
WHERE l.id = s.loan_id
"""

_SUMMARY = "SELECT count(*), count(DISTINCT loan_id), coalesce(sum(amount), 0) FROM penalty_run"


@dataclass(frozen=True)
class PenaltyRun:
    as_of: dt.date
    installments: int  # installments charged
    loans: int
    amount: Decimal  # charged by this run


async def penalties_apply(
    session: AsyncSession,
    *,
    as_of: dt.date,
    loan_id: uuid.UUID | None = None,
    actor: AuditActor | None = None,
) -> PenaltyRun:
    """Charge overdue penalties as of ``as_of`` on every active loan whose product has a penalty
    rule (or on ``loan_id`` only). Idempotent per date; never commits. Plain SQL: refresh any
    loan or installment object the session already holds before reading its penalties."""
    params = {"as_of": as_of, "loan_id": str(loan_id) if loan_id else None}
    await session.execute(text(_LOCK), params)
    await session.execute(text("DROP TABLE IF EXISTS penalty_run"))
    await session.execute(text(_COMPUTE), params)
    row = (await session.execute(text(_SUMMARY))).one()
    run = PenaltyRun(as_of=as_of, installments=int(row[0]), loans=int(row[1]), amount=row[2])
    if run.installments:
        await session.execute(text(_CHARGE), params)
        await session.execute(text(_INSTALLMENTS))
        await session.execute(text(_LOAN_BALANCES))
        await audit_record(
            session,
            actor=actor or AuditActor.system(),
            action="penalty.charged",
            entity_type="loan" if loan_id else "portfolio",
            entity_id=str(loan_id) if loan_id else None,
            after={
                "as_of": as_of,
                "installments": run.installments,
                "loans": run.loans,
                "amount": run.amount,
            },
        )
    await session.execute(text("DROP TABLE penalty_run"))
    return run
