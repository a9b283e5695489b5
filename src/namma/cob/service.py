"""The steps of the close of business for a business date ``D``, each one set of SQL statements
over the whole portfolio (never a loop over loans in Python). Each takes a session and never
commits: ``namma.cob.runner`` commits each step separately, with the run's progress.

0. ``cob_advances_apply``: money held as an advance pays what has fallen due by ``D``
   (``namma.collections.advances.advances_apply``: a journal entry per loan; idempotent per
   date). First, so that an installment an advance pays is never marked overdue nor charged a
   penalty.
1. ``cob_installments_mark``: every installment of an active loan gets the status
   ``namma.finance.owed.STATUS_RULES`` give it as of ``D`` (paid / overdue / partly_paid /
   due).
2. ``cob_penalties_apply``: overdue penalties as of ``D``
   (``namma.collections.penalties.penalties_apply``: idempotent per date).
3. ``cob_loans_refresh``: each active loan's outstanding balances, next due date and days past
   due from its installments (the money core's ``loan_balances`` rules, as of ``D``), its DPD
   bucket, RBI asset class and NPA date; and its overdue amount for the morning after
   (``balances_as_of`` = ``D`` + 1: what fell due by ``D`` and is unpaid), which the reports
   then read as it is all day (D-205). Then a restructured loan whose year after the
   restructuring performed is upgraded (D-210).
4. ``cob_interest_accrue``: on loans of accrual-basis products, interest earned by ``D`` and
   not collected is carried as interest receivable: one journal entry per loan whose receivable
   changes (an accrual, or a reversal when the loan became non-performing — NPA, or restructured
   and not upgraded — or is no longer active); a non-performing loan's earned and unpaid
   interest is kept in suspense, a memorandum (D-215); idempotent per date
   (``namma.finance.accrual``).
5. ``cob_provisions_post``: each loan's prudential class and the provision it needs; the
   difference from what the ledger holds posted per branch (``namma.provisioning.service``:
   idempotent per date).
6. ``cob_snapshots_store``: the portfolio per branch and per agent as of ``D``
   (``portfolio_snapshots``), upserted.

Every step is idempotent: run twice for the same date (or resumed after a crash) it changes
nothing the second time. Steps 1 and 3 lock the active loans first, in id order, as a collection
does (loan row first, then its installments), so a collection posted during the run waits
instead of deadlocking.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import AuditActor
from namma.finance.owed import (
    STATUS_OTHERWISE,
    STATUS_RULES,
    counts_past_due,
    is_unpaid,
    owed,
    owed_fee,
    owed_interest,
    owed_penalty,
    owed_principal,
)
from namma.kit.sqltext import SqlText, sql_case, sql_of
from namma.models.ledger import AccountKind
from namma.provisioning.service import NON_PERFORMING_SQL

STEPS: tuple[str, ...] = (
    "advances",
    "installments",
    "penalties",
    "loans",
    "accrual",
    "provisions",
    "snapshots",
)

# Memory for each step's sorts and hashes (per plan node), set for the step's transaction only:
# at the server default (4 MB) aggregating a million installments by loan sorts on disk
# (docs/benchmarks.md).
WORK_MEM_SET = "SET LOCAL work_mem = '64MB'"

# --- shared SQL fragments (alias i: loan_installments, l: loans) ------------------------------
# The statements below are composed from these constants only; every value is a bound parameter.
# The rules are the money core's (`namma.finance.owed`), read as SQL: a collection, a waiver
# and this run compute balances and statuses by the same definitions.

BUSINESS_DATE = SqlText("CAST(:d AS date)")

# What is still owed on an installment, per component, and in all.
OWED_PRINCIPAL = sql_of(owed_principal, "i")
OWED_INTEREST = sql_of(owed_interest, "i")
OWED_FEE = sql_of(owed_fee, "i")
OWED_PENALTY = sql_of(owed_penalty, "i")
OWED = sql_of(owed, "i")
# Anything owed at all (the next due date is the earliest such installment).
UNPAID = sql_of(is_unpaid, "i")
# Due before :d and in arrears — principal, interest or fees owed; penalties alone never make
# an installment past due (days past due count from the earliest such installment).
PAST_DUE = sql_of(counts_past_due, "i", BUSINESS_DATE)

# The loans COB maintains: active, disbursed on or before the date (a disbursement writes the
# schedule in its own transaction, so every active loan has its installments).
ACTIVE_LOAN = "l.status = 'active' AND l.disbursed_on <= CAST(:d AS date)"

# An installment's status as of :d (`namma.finance.owed.STATUS_RULES`).
INSTALLMENT_STATUS = sql_case(STATUS_RULES, STATUS_OTHERWISE, "i", BUSINESS_DATE, SqlText(OWED))

LOCK_ACTIVE_LOANS = """
SELECT count(*) FROM (
    SELECT 1 FROM loans l WHERE l.status = 'active' ORDER BY l.id FOR UPDATE
) locked
"""

# --- step 1: installment statuses -------------------------------------------------------------

INSTALLMENTS_MARK = f"""
WITH changed AS (
    UPDATE loan_installments i
       SET status = CAST({INSTALLMENT_STATUS} AS installment_status),
           paid_at = CASE WHEN {OWED} = 0 THEN i.paid_at END
      FROM loans l
     WHERE l.id = i.loan_id AND {ACTIVE_LOAN}
       AND (CAST(i.status AS text) <> {INSTALLMENT_STATUS}
            OR ({OWED} <> 0 AND i.paid_at IS NOT NULL))
    RETURNING CAST(i.status AS text) AS status
)
SELECT status, count(*) FROM changed GROUP BY status ORDER BY status
"""  # noqa: S608 (constant fragments; values are bound parameters)

# --- step 3: loan balances, days past due, bucket, asset class --------------------------------

# Days past due → bucket; and the RBI class, where an NPA stays NPA until every arrear is
# cleared (DPD 0), however far its days past due fall meanwhile.
DPD_BUCKET = """
CASE WHEN {dpd} = 0 THEN 'current' WHEN {dpd} <= 30 THEN '1-30' WHEN {dpd} <= 60 THEN '31-60'
     WHEN {dpd} <= 90 THEN '61-90' ELSE '90+' END
"""
ASSET_CLASS = """
CASE WHEN {dpd} > 90 THEN 'npa'
     WHEN {old} = 'npa' AND {dpd} > 0 THEN 'npa'
     WHEN {dpd} = 0 THEN 'standard' WHEN {dpd} <= 30 THEN 'sma_0'
     WHEN {dpd} <= 60 THEN 'sma_1' ELSE 'sma_2' END
"""

LOANS_REFRESH = f"""
WITH balances AS (
    SELECT l.id AS loan_id, l.asset_class AS old_class, l.npa_since AS old_npa_since,
           sum({OWED_PRINCIPAL}) AS principal,
           sum({OWED_INTEREST}) AS interest,
           sum({OWED_FEE}) AS fees,
           sum({OWED_PENALTY}) AS penalties,
           min(i.due_date) FILTER (WHERE {UNPAID}) AS next_due_on,
           COALESCE(
               CAST(:d AS date)
               - min(i.due_date) FILTER (WHERE {PAST_DUE}),
               0
           ) AS dpd,
           -- For the morning after D (`balances_as_of` = D + 1): what fell due on D and is
           -- unpaid at the close is overdue from then (D-205).
           COALESCE(sum({OWED}) FILTER (WHERE i.due_date <= CAST(:d AS date)), 0) AS overdue
      FROM loans l
      JOIN loan_installments i ON i.loan_id = l.id
     WHERE {ACTIVE_LOAN}
     GROUP BY l.id
), classed AS (
    SELECT b.*,
           {DPD_BUCKET.format(dpd="b.dpd")} AS bucket,
           {ASSET_CLASS.format(dpd="b.dpd", old="CAST(b.old_class AS text)")} AS class
      FROM balances b
), target AS (
    SELECT c.*,
           -- The date the loan became NPA: kept while it stays NPA; on entry, the day its
           -- days past due reached 91 (the business date itself when COB runs daily).
           CASE WHEN c.class = 'npa' THEN
                COALESCE(CASE WHEN c.old_class = 'npa' THEN c.old_npa_since END,
                         CAST(:d AS date) - GREATEST(c.dpd - 91, 0))
           END AS npa_since
      FROM classed c
), changed AS (
    UPDATE loans l
       SET outstanding_principal = t.principal,
           outstanding_interest = t.interest,
           outstanding_fees = t.fees,
           outstanding_penalties = t.penalties,
           next_due_on = t.next_due_on,
           days_past_due = t.dpd,
           dpd_bucket = CAST(t.bucket AS dpd_bucket),
           asset_class = CAST(t.class AS asset_class),
           npa_since = t.npa_since,
           overdue_amount = t.overdue,
           balances_as_of = CAST(:d AS date) + 1,
           updated_at = now()
      FROM target t
     WHERE l.id = t.loan_id
       AND (l.outstanding_principal, l.outstanding_interest, l.outstanding_fees,
            l.outstanding_penalties, l.next_due_on, l.days_past_due,
            CAST(l.dpd_bucket AS text), CAST(l.asset_class AS text), l.npa_since,
            l.overdue_amount, l.balances_as_of)
           IS DISTINCT FROM
           (t.principal, t.interest, t.fees, t.penalties, t.next_due_on, t.dpd,
            t.bucket, t.class, t.npa_since, t.overdue, CAST(:d AS date) + 1)
    RETURNING 1
)
SELECT count(*) FROM changed
"""  # noqa: S608 (constant fragments; values are bound parameters)

LOANS_SUMMARY = f"""
SELECT CAST(l.asset_class AS text), CAST(l.dpd_bucket AS text), count(*)
  FROM loans l WHERE {ACTIVE_LOAN}
 GROUP BY 1, 2
"""  # noqa: S608 (constant fragments; values are bound parameters)

# --- step 4: interest accrual (accrual-basis products) ------------------------------------------

# The loans with their terms (`loan_terms`, D-212), for the conditions below.
LOANS_WITH_TERMS = "loans l JOIN loan_terms t ON t.loan_id = l.id"
# A loan of a product that accounts on accrual basis (its terms' `interest_accounting`).
ACCRUAL_LOAN = "t.terms ->> 'interest_accounting' = 'accrual'"
# The loans the step looks at: active ones, and any other still carrying a receivable or
# interest in suspense (closed, pre-closed, refinanced or written off since: it is cleared).
ACCRUAL_SCOPE = (
    f"{ACCRUAL_LOAN} AND (l.status = 'active' OR l.interest_receivable <> 0 "
    "OR l.interest_suspense <> 0)"
)

LOCK_ACCRUAL_LOANS = f"""
SELECT count(*) FROM (
    SELECT 1 FROM {LOANS_WITH_TERMS} WHERE {ACCRUAL_SCOPE} ORDER BY l.id FOR UPDATE OF l
) locked
"""  # noqa: S608 (constant fragments; values are bound parameters)

# An installment's interest (what it asks, less what was waived) earned by the end of :d —
# `namma.finance.accrual.interest_earned_to`: evenly over the days of its period, cumulative
# to date and rounded once to the paisa half-up (PostgreSQL rounds numeric half away from zero).
INSTALLMENT_INTEREST = "(i.interest_due - i.interest_waived)"
INTEREST_EARNED = f"""
CASE WHEN CAST(:d AS date) >= i.due_date THEN {INSTALLMENT_INTEREST}
     WHEN i.due_date <= i.period_start OR CAST(:d AS date) <= i.period_start THEN 0
     ELSE ROUND({INSTALLMENT_INTEREST} * (CAST(:d AS date) - i.period_start)
                / (i.due_date - i.period_start), 2)
END
"""

# Per loan: the interest it has earned and not been paid, which is in exactly one place — its
# receivable (income) while it performs (`namma.finance.accrual.receivable_target`), in
# suspense (a memorandum, not income) while it is active and non-performing — NPA, or
# restructured and not yet upgraded (`NON_PERFORMING_SQL`, D-210; `suspense_target`, D-215) —
# and neither once it is closed or written off. For each of the two, the difference from what
# the loan carries is posted, one journal entry per loan that moves with its two lines, and the
# loan's columns are set to the targets (one UPDATE: a row is written once per statement).
INTEREST_ACCRUE = f"""
WITH earned AS (
    SELECT l.id AS loan_id, l.branch_id, l.loan_number, l.interest_receivable AS held,
           l.interest_suspense AS suspended,
           {NON_PERFORMING_SQL} AS npa, {ACTIVE_LOAN} AS active,
           GREATEST(sum({INTEREST_EARNED}) - sum(i.interest_paid), 0) AS unpaid
      FROM {LOANS_WITH_TERMS}
      JOIN loan_installments i ON i.loan_id = l.id
     WHERE {ACCRUAL_SCOPE}
     GROUP BY l.id
), target AS (
    SELECT e.*,
           CASE WHEN e.active AND NOT e.npa THEN e.unpaid ELSE 0 END AS target,
           CASE WHEN e.active AND e.npa THEN e.unpaid ELSE 0 END AS suspense_target
      FROM earned e
), moved AS (
    SELECT t.*, t.target - t.held AS delta,
           CASE WHEN t.target > t.held THEN 'interest.accrual'
                WHEN t.npa THEN 'interest.npa_reversal'
                ELSE 'interest.accrual_reversal'
           END AS kind
      FROM target t
     WHERE t.target <> t.held
), entries AS (
    INSERT INTO journal_entries (entry_date, kind, memo, branch_id, loan_id, created_by_id)
    SELECT CAST(:d AS date), m.kind,
           CASE m.kind WHEN 'interest.accrual' THEN 'Interest accrued on '
                       WHEN 'interest.npa_reversal' THEN 'Accrued interest reversed (NPA) on '
                       ELSE 'Accrued interest reversed on '
           END || m.loan_number,
           m.branch_id, m.loan_id, CAST(:actor AS uuid)
      FROM moved m
    RETURNING id, loan_id
), lines AS (
    INSERT INTO journal_lines (entry_id, account_id, debit, credit, loan_id)
    SELECT e.id, x.account_id, x.debit, x.credit, e.loan_id
      FROM entries e
      JOIN moved m ON m.loan_id = e.loan_id
     CROSS JOIN LATERAL (VALUES
         (CAST(:receivable AS uuid), GREATEST(m.delta, 0), GREATEST(-m.delta, 0)),
         (CAST(:income AS uuid), GREATEST(-m.delta, 0), GREATEST(m.delta, 0))
     ) AS x (account_id, debit, credit)
    RETURNING 1
), suspense_moved AS (
    SELECT t.*, t.suspense_target - t.suspended AS delta,
           CASE WHEN t.suspense_target > t.suspended THEN 'interest_suspense'
                ELSE 'interest_suspense.release'
           END AS kind
      FROM target t
     WHERE t.suspense_target <> t.suspended
), suspense_entries AS (
    INSERT INTO journal_entries (entry_date, kind, memo, branch_id, loan_id, created_by_id)
    SELECT CAST(:d AS date), m.kind,
           CASE m.kind WHEN 'interest_suspense' THEN 'Interest in suspense (non-performing) on '
                       ELSE 'Interest in suspense released on '
           END || m.loan_number,
           m.branch_id, m.loan_id, CAST(:actor AS uuid)
      FROM suspense_moved m
    RETURNING id, loan_id
), suspense_lines AS (
    INSERT INTO journal_lines (entry_id, account_id, debit, credit, loan_id)
    SELECT e.id, x.account_id, x.debit, x.credit, e.loan_id
      FROM suspense_entries e
      JOIN suspense_moved m ON m.loan_id = e.loan_id
     CROSS JOIN LATERAL (VALUES
         (CAST(:suspense AS uuid), GREATEST(m.delta, 0), GREATEST(-m.delta, 0)),
         (CAST(:suspense_contra AS uuid), GREATEST(-m.delta, 0), GREATEST(m.delta, 0))
     ) AS x (account_id, debit, credit)
    RETURNING 1
), updated AS (
    UPDATE loans l
       SET interest_receivable = t.target, interest_suspense = t.suspense_target,
           updated_at = now()
      FROM target t
     WHERE l.id = t.loan_id
       AND (t.target <> t.held OR t.suspense_target <> t.suspended)
    RETURNING 1
)
SELECT branch_id, kind, count(*), sum(abs(delta))
  FROM (SELECT branch_id, kind, delta FROM moved
        UNION ALL
        SELECT branch_id, kind, delta FROM suspense_moved) AS m
 GROUP BY branch_id, kind
 ORDER BY branch_id, kind
"""  # noqa: S608 (constant fragments; values are bound parameters)

# --- step 5: portfolio snapshots --------------------------------------------------------------

SNAPSHOT_COLUMNS: tuple[str, ...] = (
    "active_loans",
    "active_customers",
    "outstanding_principal",
    "outstanding_interest",
    "outstanding_fees",
    "outstanding_penalties",
    "par_1_30",
    "par_31_60",
    "par_61_90",
    "par_90_plus",
    "overdue_amount",
    "due_amount",
    "collected_amount",
    "collections_count",
    "disbursed_amount",
    "disbursed_count",
)

# One row of facts per loan that matters on :d (active then, due on :d, collected on :d or
# disbursed on :d), aggregated per branch and per (branch, agent). A loan's agent is its
# customer's current agent; a loan of a customer with none counts in the branch row only.
SNAPSHOT_COMPUTE = f"""
CREATE TEMP TABLE cob_snapshot ON COMMIT DROP AS
WITH inst AS (
    SELECT i.loan_id,
           sum({OWED}) FILTER (WHERE i.due_date < CAST(:d AS date) AND l.status = 'active')
               AS overdue,
           sum(i.principal_due + i.interest_due + i.fee_due)
               FILTER (WHERE i.due_date = CAST(:d AS date)) AS due
      FROM loan_installments i
      JOIN loans l ON l.id = i.loan_id
     WHERE i.due_date <= CAST(:d AS date)
       AND ((l.status = 'active' AND l.disbursed_on <= CAST(:d AS date))
            OR (l.status = 'closed' AND i.due_date = CAST(:d AS date)))
     GROUP BY i.loan_id
), coll AS (
    SELECT c.loan_id, sum(c.amount) AS amount, count(*) AS n
      FROM collections c
     WHERE c.collected_on = CAST(:d AS date) AND c.status = 'posted'
     GROUP BY c.loan_id
), facts AS (
    SELECT l.branch_id, a.agent_id, l.customer_id,
           (l.status = 'active' AND l.disbursed_on <= CAST(:d AS date)) AS active,
           l.outstanding_principal, l.outstanding_interest, l.outstanding_fees,
           l.outstanding_penalties, CAST(l.dpd_bucket AS text) AS bucket,
           COALESCE(inst.overdue, 0) AS overdue, COALESCE(inst.due, 0) AS due,
           COALESCE(coll.amount, 0) AS collected, COALESCE(coll.n, 0) AS collections,
           l.disbursed_on = CAST(:d AS date) AS disbursed, l.principal
      FROM loans l
      LEFT JOIN agent_assignments a ON a.customer_id = l.customer_id AND a.ended_at IS NULL
      LEFT JOIN inst ON inst.loan_id = l.id
      LEFT JOIN coll ON coll.loan_id = l.id
     WHERE (l.status = 'active' AND l.disbursed_on <= CAST(:d AS date))
        OR inst.loan_id IS NOT NULL OR coll.loan_id IS NOT NULL
        OR l.disbursed_on = CAST(:d AS date)
), grouped AS (
    SELECT f.branch_id, f.agent_id, GROUPING(f.agent_id) = 1 AS whole_branch,
           count(*) FILTER (WHERE f.active) AS active_loans,
           count(DISTINCT f.customer_id) FILTER (WHERE f.active) AS active_customers,
           COALESCE(sum(f.outstanding_principal) FILTER (WHERE f.active), 0)
               AS outstanding_principal,
           COALESCE(sum(f.outstanding_interest) FILTER (WHERE f.active), 0)
               AS outstanding_interest,
           COALESCE(sum(f.outstanding_fees) FILTER (WHERE f.active), 0) AS outstanding_fees,
           COALESCE(sum(f.outstanding_penalties) FILTER (WHERE f.active), 0)
               AS outstanding_penalties,
           COALESCE(sum(f.outstanding_principal) FILTER (WHERE f.active AND f.bucket = '1-30'),
                    0) AS par_1_30,
           COALESCE(sum(f.outstanding_principal) FILTER (WHERE f.active AND f.bucket = '31-60'),
                    0) AS par_31_60,
           COALESCE(sum(f.outstanding_principal) FILTER (WHERE f.active AND f.bucket = '61-90'),
                    0) AS par_61_90,
           COALESCE(sum(f.outstanding_principal) FILTER (WHERE f.active AND f.bucket = '90+'),
                    0) AS par_90_plus,
           sum(f.overdue) AS overdue_amount,
           sum(f.due) AS due_amount,
           sum(f.collected) AS collected_amount,
           sum(f.collections) AS collections_count,
           COALESCE(sum(f.principal) FILTER (WHERE f.disbursed), 0) AS disbursed_amount,
           count(*) FILTER (WHERE f.disbursed) AS disbursed_count
      FROM facts f
     GROUP BY GROUPING SETS ((f.branch_id), (f.branch_id, f.agent_id))
)
SELECT CAST(:d AS date) AS business_date, g.branch_id,
       CASE WHEN g.whole_branch THEN NULL ELSE g.agent_id END AS agent_id,
       {", ".join(f"g.{c}" for c in SNAPSHOT_COLUMNS)}
  FROM grouped g
 WHERE g.whole_branch OR g.agent_id IS NOT NULL
UNION ALL
-- Every active branch has its row, even on a day with nothing in it: trends need no gaps.
SELECT CAST(:d AS date), b.id, NULL, {", ".join("0" for _ in SNAPSHOT_COLUMNS)}
  FROM branches b
 WHERE b.is_active AND NOT EXISTS (SELECT 1 FROM grouped g WHERE g.branch_id = b.id)
"""  # noqa: S608 (constant fragments; values are bound parameters)

SNAPSHOT_DELETE_STALE = """
DELETE FROM portfolio_snapshots s
 WHERE s.business_date = CAST(:d AS date)
   AND NOT EXISTS (SELECT 1 FROM cob_snapshot n
                    WHERE n.branch_id = s.branch_id AND n.agent_id IS NOT DISTINCT FROM s.agent_id)
"""

SNAPSHOT_UPSERT = f"""
INSERT INTO portfolio_snapshots (business_date, branch_id, agent_id, {", ".join(SNAPSHOT_COLUMNS)})
SELECT business_date, branch_id, agent_id, {", ".join(SNAPSHOT_COLUMNS)} FROM cob_snapshot
ON CONFLICT (business_date, branch_id, agent_id) DO UPDATE
   SET {", ".join(f"{c} = EXCLUDED.{c}" for c in SNAPSHOT_COLUMNS)}
 WHERE ({", ".join(f"portfolio_snapshots.{c}" for c in SNAPSHOT_COLUMNS)})
       IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in SNAPSHOT_COLUMNS)})
"""  # noqa: S608 (constant fragments; values are bound parameters)


# --- the steps ----------------------------------------------------------------------------------


def _params(business_date: dt.date) -> dict[str, Any]:
    return {"d": business_date}


async def cob_advances_apply(
    session: AsyncSession, *, business_date: dt.date, actor: AuditActor
) -> dict[str, Any]:
    """Advances held pay the installments fallen due by the date (see the module docstring)."""
    from namma.collections.advances import advances_apply

    return await advances_apply(session, business_date=business_date, actor=actor)


async def cob_installments_mark(session: AsyncSession, *, business_date: dt.date) -> dict[str, Any]:
    """Step 1: installment statuses as of the date. Returns the changes by new status."""
    await session.execute(text(LOCK_ACTIVE_LOANS))
    rows = (await session.execute(text(INSTALLMENTS_MARK), _params(business_date))).all()
    return {"changed": {status: int(n) for status, n in rows}}


async def cob_penalties_apply(
    session: AsyncSession, *, business_date: dt.date, actor: AuditActor
) -> dict[str, Any]:
    """Step 2: overdue penalties as of the date, by each loan's product rule."""
    from namma.collections.penalties import penalties_apply

    run = await penalties_apply(session, as_of=business_date, actor=actor)
    return {"installments": run.installments, "loans": run.loans, "amount": str(run.amount)}


async def cob_loans_refresh(
    session: AsyncSession, *, business_date: dt.date, actor: AuditActor | None = None
) -> dict[str, Any]:
    """Step 3: balances, next due date, days past due, DPD bucket and asset class of every
    active loan; then the restructured loans that performed for a year since their
    restructuring are upgraded (`namma.provisioning.service.restructured_upgrade`, D-210), so
    that the accrual and provisioning steps after it see them upgraded. Returns how many loans
    changed, how many were upgraded and the portfolio by class and bucket."""
    from namma.provisioning.service import restructured_upgrade

    await session.execute(text(LOCK_ACTIVE_LOANS))
    changed = int((await session.scalar(text(LOANS_REFRESH), _params(business_date))) or 0)
    upgraded = await restructured_upgrade(
        session, business_date=business_date, actor=actor or AuditActor.system()
    )
    classes: dict[str, int] = {}
    buckets: dict[str, int] = {}
    for asset_class, bucket, n in (
        await session.execute(text(LOANS_SUMMARY), _params(business_date))
    ).all():
        classes[asset_class] = classes.get(asset_class, 0) + int(n)
        buckets[bucket] = buckets.get(bucket, 0) + int(n)
    return {
        "changed": changed,
        "restructured_upgraded": upgraded,
        "asset_classes": dict(sorted(classes.items())),
        "dpd_buckets": dict(sorted(buckets.items())),
    }


async def cob_interest_accrue(
    session: AsyncSession, *, business_date: dt.date, actor: AuditActor
) -> dict[str, Any]:
    """Step 4: interest accrual on the loans of accrual-basis products (docs/ledger.md,
    "Accrual accounting"). Each such loan's receivable is brought to its target as of the
    date — earned and not collected while active and not NPA, else nothing — by one journal
    entry per loan that moves: ``interest.accrual`` (Dr interest receivable, Cr interest
    income), ``interest.npa_reversal`` (the accrued interest of a loan that became NPA reversed
    out of income) or ``interest.accrual_reversal`` (a receivable that shrank otherwise: a
    waiver, a loan closed or written off). A non-performing loan's earned and unpaid interest
    is kept in suspense instead (D-215): ``interest_suspense`` (Dr the memorandum, Cr its
    contra) as it grows — the evening it is classified, the amount reversed and the day's
    interest — and ``interest_suspense.release`` as it shrinks (collected, waived, the loan
    upgraded, closed or written off). Idempotent: a second run finds every receivable and
    suspense at its target. Each branch whose loans moved gets one audit entry
    (``interest.accrued``) with its entries by kind. Returns the entries and amounts by kind."""
    from namma.audit.service import audit_record
    from namma.ledger.service import ledger_account_id

    params = {
        **_params(business_date),
        "receivable": await ledger_account_id(session, AccountKind.INTEREST_RECEIVABLE),
        "income": await ledger_account_id(session, AccountKind.INTEREST_INCOME),
        "suspense": await ledger_account_id(session, AccountKind.INTEREST_SUSPENSE),
        "suspense_contra": await ledger_account_id(session, AccountKind.INTEREST_SUSPENSE_CONTRA),
        "actor": actor.actor_id,
    }
    loans = int(await session.scalar(text(LOCK_ACCRUAL_LOANS)) or 0)
    by_branch: dict[Any, dict[str, dict[str, Any]]] = {}
    totals: dict[str, dict[str, Any]] = {}
    for branch_id, kind, n, amount in (await session.execute(text(INTEREST_ACCRUE), params)).all():
        by_branch.setdefault(branch_id, {})[kind] = {"loans": int(n), "amount": Decimal(amount)}
        total = totals.setdefault(kind, {"loans": 0, "amount": Decimal("0.00")})
        total["loans"] += int(n)
        total["amount"] += Decimal(amount)
    for branch_id, kinds in by_branch.items():
        await audit_record(
            session,
            actor=actor,
            action="interest.accrued",
            entity_type="branch",
            entity_id=str(branch_id),
            after={"business_date": business_date, **kinds},
        )
    moved = {
        kind: {"loans": t["loans"], "amount": str(t["amount"])}
        for kind, t in sorted(totals.items())
    }
    return {"accrual_loans": loans, "entries": moved}


async def cob_provisions_post(
    session: AsyncSession, *, business_date: dt.date, actor: AuditActor
) -> dict[str, Any]:
    """Step 5: provisions for loan losses as of the date (see the module docstring)."""
    from namma.provisioning.service import provisions_post

    return await provisions_post(session, business_date=business_date, actor=actor)


async def cob_snapshots_store(session: AsyncSession, *, business_date: dt.date) -> dict[str, Any]:
    """Step 6: the day's portfolio snapshot per branch and per agent (upsert; rows of the date
    that no longer apply, e.g. an agent whose customers were all reassigned, are removed)."""
    params = _params(business_date)
    await session.execute(text("DROP TABLE IF EXISTS cob_snapshot"))
    await session.execute(text(SNAPSHOT_COMPUTE), params)
    deleted = (await session.execute(text(SNAPSHOT_DELETE_STALE), params)).rowcount  # type: ignore[attr-defined]
    upserted = (await session.execute(text(SNAPSHOT_UPSERT))).rowcount  # type: ignore[attr-defined]
    row = (
        await session.execute(
            text(
                "SELECT count(*), count(*) FILTER (WHERE agent_id IS NULL), "
                "COALESCE(sum(outstanding_principal) FILTER (WHERE agent_id IS NULL), 0) "
                "FROM cob_snapshot"
            )
        )
    ).one()
    await session.execute(text("DROP TABLE cob_snapshot"))
    return {
        "rows": int(row[0]),
        "branches": int(row[1]),
        "outstanding_principal": str(Decimal(row[2])),
        "written": int(upserted or 0),
        "removed": int(deleted or 0),
    }
