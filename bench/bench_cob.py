"""Close of business (`namma.cob`) over a generated portfolio, against the same steps written as
plain SQL statements sent straight through psycopg, in the same process.

    .venv/bin/python bench/bench_cob.py [--scale 1.0] [--sizes 100000,1000000] [--repeat 1]

1. Creates its own databases on the server of NAMMA_BENCH_DATABASE_URL (default
   postgresql://postgres@127.0.0.1:5432/test, used as the maintenance database): one migrated
   template, then a fresh copy for every measurement; all are dropped at the end.
2. Generates a portfolio with set-based SQL (generate_series; deterministic, no Python loop):
   loans of 50 weekly installments (1,000.00 principal each, declining interest, a fee on the
   first), spread over branches (one per 5,000 loans, at least 4) and agents (one per 400 loans);
   one customer per loan, 95 % with a current agent; five products (four penalty rules and
   none); disbursed over the last 420 days; most borrowers paid up to date, the rest 1 to 30
   installments behind (with one partly paid); 2 % of loans closed; collections of 10 % of the
   loans dated the business date (with their balanced journal entries). The day before the
   business date is closed first (untimed, with the plain SQL), so the timed run does one
   ordinary day's work: the installments due yesterday turn overdue, every late loan's days
   past due grow by one, penalties accrue, snapshots are written.
3. For each size (installments): the plain-SQL baseline on one fresh copy, COB
   (`namma.cob.runner.cob_execute`: advisory lock, one transaction per step with its progress,
   loan row locks, audit) on another; both results are compared (installment statuses, penalties,
   loan days past due, buckets and classes, snapshot totals) and must be equal.
4. Prints installments per second of both, COB / baseline time (target ≤ 2), the scaling
   efficiency from the smallest to the next size (size ratio / time ratio, Apache Fineract's
   measure; target ≥ 90 % from 100k to 1M installments) and whether 1,000,000 installments
   closed in under 60 s.

``--scale 1`` adds the full portfolio, 100,000 loans with 5,000,000 installments (a few minutes
on 2 cores); ``--scale 0.2`` adds 1,000,000 installments (20,000 loans), which --sizes already
has by default.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import sys
import time
import uuid
from typing import Any

import psycopg
from machine import machine
from sqlalchemy import text
from sqlalchemy.engine import make_url

from namma.cob.runner import cob_execute
from namma.kit.clock import today_india
from namma.kit.db import Database, libpq_url
from namma.kit.embedded import create_database, drop_database
from namma.kit.migrations import migrate_upgrade
from namma.products.schemas import ProductTerms

SERVER = os.environ.get("NAMMA_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
PER_LOAN = 50
BUSINESS_DATE = today_india() - dt.timedelta(days=1)

PENALTY_RULES: list[dict[str, Any] | None] = [
    {"basis": "flat", "value": "100", "recurrence": "once"},
    {"basis": "flat", "value": "7.5", "recurrence": "daily", "grace_days": 5, "cap": "400.00"},
    {
        "basis": "percent-of-overdue-principal",
        "value": "0.0833",
        "recurrence": "daily",
        "grace_days": 2,
    },
    {"basis": "percent-of-overdue-total", "value": "2", "recurrence": "once", "grace_days": 10},
    None,
]


def with_database(server: str, name: str) -> str:
    return make_url(server).set(database=name).render_as_string(hide_password=False)


# --- the portfolio ------------------------------------------------------------------------------

GENERATE = [
    # Plan: one row per loan with everything derived from its number (deterministic hashes).
    """
    CREATE TEMP TABLE plan AS
    SELECT n,
           md5('loan' || n)::uuid AS loan_id,
           md5('customer' || n)::uuid AS customer_id,
           md5('branch' || (n %% %(branches)s + 1))::uuid AS branch_id,
           CASE WHEN n %% 20 = 0 THEN NULL
                ELSE md5('agent' || ((n %% %(branches)s) * %(per_branch)s
                                     + (n / %(branches)s) %% %(per_branch)s + 1))::uuid
           END AS agent_id,
           md5('version' || n %% 5)::uuid AS version_id,
           CAST(%(d)s AS date) - 1 - abs(hashint4(n)) %% 420 AS disbursed_on,
           abs(hashint4(n + 7919)) %% 100 AS behaviour,
           n %% 50 = 0 AS closed
      FROM generate_series(1, %(loans)s) n
    """,
    """
    CREATE TEMP TABLE plan2 AS
    SELECT p.*,
           -- installments due before the business date's eve, and how many are left unpaid
           LEAST(%(per_loan)s, GREATEST(0, (CAST(%(d)s AS date) - 1 - p.disbursed_on - 1) / 7))
               AS due_count,
           CASE WHEN p.closed OR p.behaviour < 75 THEN 0
                WHEN p.behaviour < 85 THEN 1 + p.behaviour %% 4
                WHEN p.behaviour < 90 THEN 5 + p.behaviour %% 4
                WHEN p.behaviour < 94 THEN 9 + p.behaviour %% 4
                ELSE 13 + p.behaviour %% 18 END AS behind
      FROM plan p
    """,
    """
    INSERT INTO branches (id, code, name, is_head_office, is_active)
    SELECT md5('branch' || b)::uuid, 'B' || lpad(b::text, 5, '0'), 'Branch ' || b, false, true
      FROM generate_series(1, %(branches)s) b
    """,
    """
    INSERT INTO users (id, name, role, branch_id, email, password_hash, is_active,
                       must_change_password)
    SELECT md5('agent' || a)::uuid, 'Agent ' || a, 'agent',
           md5('branch' || ((a - 1) / %(per_branch)s + 1))::uuid,
           'agent' || a || '@bench.example', '!', true, false
      FROM generate_series(1, %(branches)s * %(per_branch)s) a
    """,
    """
    INSERT INTO customers (id, branch_id, name, phone, village)
    SELECT customer_id, branch_id, 'Customer ' || n, '6' || lpad(n::text, 9, '0'),
           -- an agent's ~400 customers in 20 villages (the centres they visit) of ~20 each
           'Village ' || (n / (%(branches)s * %(per_branch)s)) %% 20 + 1
      FROM plan
    """,
    """
    INSERT INTO agent_assignments (id, customer_id, agent_id)
    SELECT gen_random_uuid(), customer_id, agent_id FROM plan WHERE agent_id IS NOT NULL
    """,
    """
    INSERT INTO loans (id, loan_number, branch_id, customer_id, product_version_id, status,
                       principal, annual_rate, installments, frequency, applied_by_id,
                       disbursed_on, disbursed_at)
    SELECT p.loan_id, 'L' || lpad(p.n::text, 9, '0'), p.branch_id, p.customer_id, v.id,
           CAST(CASE WHEN p.closed THEN 'closed' ELSE 'active' END AS loan_status),
           %(per_loan)s * 1000.00, 24, %(per_loan)s, v.terms ->> 'frequency',
           md5('agent1')::uuid, p.disbursed_on, p.disbursed_on
      FROM plan2 p JOIN loan_product_versions v ON v.id = p.version_id
    """,
    # Each loan's terms, as `loan_apply` copies them from its product version (D-212).
    """
    INSERT INTO loan_terms (loan_id, terms)
    SELECT p.loan_id, v.terms FROM plan2 p JOIN loan_product_versions v ON v.id = p.version_id
    """,
    # Installments: paid in full up to the borrower's arrears, the next one partly paid.
    """
    INSERT INTO loan_installments (id, loan_id, branch_id, number, due_date, period_start,
        principal_due, interest_due, fee_due, interest_for_period, balance_after, principal_paid,
        interest_paid, fee_paid, status)
    SELECT gen_random_uuid(), p.loan_id, p.branch_id, k,
           p.disbursed_on + 7 * k, p.disbursed_on + 7 * (k - 1),
           1000.00, x.interest, x.fee, x.interest, (%(per_loan)s - k) * 1000.00,
           CASE WHEN x.paid THEN 1000.00 WHEN x.part THEN 400.00 ELSE 0 END,
           CASE WHEN x.paid OR x.part THEN x.interest ELSE 0 END,
           CASE WHEN x.paid THEN x.fee ELSE 0 END,
           CAST(CASE WHEN x.paid THEN 'paid' ELSE 'due' END AS installment_status)
      FROM plan2 p
     CROSS JOIN generate_series(1, %(per_loan)s) k
     CROSS JOIN LATERAL (
        SELECT round((%(per_loan)s - k + 1) * 1000.00 * 24 / 5200, 2) AS interest,
               CASE WHEN k = 1 THEN 50.00 ELSE 0 END AS fee,
               p.closed OR k <= p.due_count - p.behind AS paid,
               NOT p.closed AND p.behind > 0 AND k = p.due_count - p.behind + 1 AS part
     ) x
    """,
    """
    INSERT INTO ledger_accounts (id, code, name, kind, type)
    VALUES (md5('cash')::uuid, '1010-BENCH', 'Cash (bench)', 'branch_cash', 'asset'),
           (md5('portfolio')::uuid, '1100-BENCH', 'Loan portfolio (bench)', 'loan_portfolio',
            'asset')
    """,
    # Collections dated the business date, each with its balanced journal entry.
    """
    WITH entries AS (
        INSERT INTO journal_entries (entry_date, kind, branch_id, loan_id)
        SELECT %(d)s, 'collection', branch_id, loan_id FROM plan
         WHERE n %% 10 = 3 AND NOT closed
        RETURNING id, branch_id, loan_id
    ), lines AS (
        INSERT INTO journal_lines (entry_id, account_id, debit, credit, loan_id)
        SELECT e.id, a.account, a.debit, a.credit, e.loan_id
          FROM entries e
         CROSS JOIN (VALUES (md5('cash')::uuid, 250.00, 0), (md5('portfolio')::uuid, 0, 250.00))
               AS a (account, debit, credit)
    )
    INSERT INTO collections (id, receipt_number, loan_id, branch_id, collected_by_id, amount,
                             principal, collected_on, method, journal_entry_id)
    SELECT gen_random_uuid(), 'R' || e.id, e.loan_id, e.branch_id, md5('agent1')::uuid,
           250.00, 250.00, %(d)s, 'cash', e.id
      FROM entries e
    """,
]


def portfolio_generate(url: str, loans: int) -> None:
    branches = max(4, loans // 5000)
    per_branch = max(1, loans // (400 * branches))
    params = {
        "loans": loans,
        "branches": branches,
        "per_branch": per_branch,
        "per_loan": PER_LOAN,
        "d": BUSINESS_DATE,
    }
    with psycopg.connect(libpq_url(url)) as conn:
        product = uuid.uuid5(uuid.NAMESPACE_URL, "bench-product")
        conn.execute(
            "INSERT INTO loan_products (id, code, name, is_active, latest_version) "
            "VALUES (%s, 'BENCH', 'Bench', true, 5)",
            (product,),
        )
        for k, rule in enumerate(PENALTY_RULES):
            terms = ProductTerms.model_validate({"frequency": "weekly", "penalty": rule}).stored()
            conn.execute(
                "INSERT INTO loan_product_versions (id, product_id, version, terms, min_principal,"
                " max_principal, min_rate, max_rate, default_rate, min_installments,"
                " max_installments, microfinance, max_obligation_ratio) VALUES"
                " (md5('version' || %s)::uuid, %s, %s, %s, 1000, 100000, 0, 26, 24, 1, 52,"
                " true, 0.5)",
                (k, product, k + 1, json.dumps(terms)),
            )
        for statement in GENERATE:
            conn.execute(statement, params)  # type: ignore[arg-type]
        conn.commit()
        conn.execute("ANALYZE")
        # The day before, closed with the plain SQL (untimed): the timed run is one day's work.
        for _, statement in BASELINE:
            conn.execute(statement, {"d": BUSINESS_DATE - dt.timedelta(days=1)})  # type: ignore[arg-type]
        conn.commit()
        conn.execute("DELETE FROM portfolio_snapshots")
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE")
        conn.execute("CHECKPOINT")


# --- the baseline: the same steps as plain SQL ------------------------------------------------

_OWED = (
    "(i.principal_due - i.principal_paid) + (i.interest_due - i.interest_paid - i.interest_waived)"
    " + (i.fee_due - i.fee_paid - i.fee_waived)"
    " + (i.penalty_due - i.penalty_paid - i.penalty_waived)"
)
_ARREARS = (
    "(i.principal_due - i.principal_paid > 0 OR i.interest_due - i.interest_paid"
    " - i.interest_waived > 0 OR i.fee_due - i.fee_paid - i.fee_waived > 0)"
)
_STATUS = (
    f"CASE WHEN {_OWED} = 0 THEN 'paid' WHEN i.due_date < %(d)s THEN 'overdue'"
    " WHEN i.principal_paid + i.interest_paid + i.fee_paid + i.penalty_paid > 0"
    " THEN 'partly_paid' ELSE 'due' END"
)
_ACTIVE = "l.status = 'active' AND l.disbursed_on <= %(d)s"

BASELINE: list[tuple[str, str]] = [
    (
        "installments",
        f"""
        UPDATE loan_installments i
           SET status = CAST({_STATUS} AS installment_status),
               paid_at = CASE WHEN {_OWED} = 0 THEN i.paid_at END
          FROM loans l
         WHERE l.id = i.loan_id AND {_ACTIVE}
           AND (CAST(i.status AS text) <> {_STATUS} OR ({_OWED} <> 0 AND i.paid_at IS NOT NULL))
        """,
    ),
    (
        "penalties",
        f"""
        WITH due AS (
            SELECT i.id, i.loan_id, i.number, i.penalty_due, %(d)s - i.due_date AS late,
                   t.terms -> 'penalty' AS r,
                   i.principal_due - i.principal_paid AS p,
                   i.interest_due - i.interest_paid - i.interest_waived AS it
              FROM loan_installments i JOIN loans l ON l.id = i.loan_id
              JOIN loan_terms t ON t.loan_id = l.id
             WHERE l.status = 'active' AND jsonb_typeof(t.terms -> 'penalty') = 'object'
               AND i.due_date < %(d)s AND {_ARREARS}
        ), run AS (
            SELECT d.*, LEAST(
                       COALESCE(CAST(r ->> 'cap' AS numeric), 'Infinity'),
                       round(CASE r ->> 'basis' WHEN 'flat' THEN CAST(r ->> 'value' AS numeric)
                                  WHEN 'percent-of-overdue-principal'
                                  THEN p * CAST(r ->> 'value' AS numeric) / 100
                                  ELSE (p + it) * CAST(r ->> 'value' AS numeric) / 100 END
                             * CASE WHEN r ->> 'recurrence' = 'daily'
                                    THEN late - CAST(r ->> 'grace_days' AS integer) ELSE 1 END,
                             2)) AS total
              FROM due d WHERE late > CAST(r ->> 'grace_days' AS integer)
        ), charged AS (
            SELECT * FROM run WHERE total > penalty_due
        ), charges AS (
            INSERT INTO loan_penalty_charges (loan_id, installment_id, installment_number,
                                              charged_on, days_overdue, amount, total_after)
            SELECT loan_id, id, number, %(d)s, late, total - penalty_due, total FROM charged
            ON CONFLICT (installment_id, charged_on) DO UPDATE
               SET amount = loan_penalty_charges.amount + EXCLUDED.amount,
                   total_after = EXCLUDED.total_after
        )
        UPDATE loan_installments i SET penalty_due = c.total FROM charged c WHERE i.id = c.id
        """,
    ),
    (
        "loans",
        f"""
        WITH b AS (
            SELECT l.id, l.asset_class AS old, l.npa_since AS old_since,
                   sum(i.principal_due - i.principal_paid) AS p,
                   sum(i.interest_due - i.interest_paid - i.interest_waived) AS it,
                   sum(i.fee_due - i.fee_paid - i.fee_waived) AS f,
                   sum(i.penalty_due - i.penalty_paid - i.penalty_waived) AS pen,
                   min(i.due_date) FILTER (WHERE {_OWED} > 0) AS next_due,
                   COALESCE(%(d)s - min(i.due_date)
                                FILTER (WHERE i.due_date < %(d)s AND {_ARREARS}), 0) AS dpd
              FROM loans l JOIN loan_installments i ON i.loan_id = l.id
             WHERE {_ACTIVE}
             GROUP BY l.id
        ), c AS (
            SELECT b.*,
                   CASE WHEN dpd = 0 THEN 'current' WHEN dpd <= 30 THEN '1-30'
                        WHEN dpd <= 60 THEN '31-60' WHEN dpd <= 90 THEN '61-90' ELSE '90+' END
                       AS bucket,
                   CASE WHEN dpd > 90 OR (old = 'npa' AND dpd > 0) THEN 'npa'
                        WHEN dpd = 0 THEN 'standard' WHEN dpd <= 30 THEN 'sma_0'
                        WHEN dpd <= 60 THEN 'sma_1' ELSE 'sma_2' END AS class
              FROM b
        )
        UPDATE loans l
           SET outstanding_principal = c.p, outstanding_interest = c.it,
               outstanding_fees = c.f, outstanding_penalties = c.pen, next_due_on = c.next_due,
               days_past_due = c.dpd, dpd_bucket = CAST(c.bucket AS dpd_bucket),
               asset_class = CAST(c.class AS asset_class),
               npa_since = CASE WHEN c.class = 'npa'
                                THEN COALESCE(CASE WHEN c.old = 'npa' THEN c.old_since END,
                                              %(d)s - GREATEST(c.dpd - 91, 0)) END,
               updated_at = now()
          FROM c
         WHERE l.id = c.id
           AND (l.outstanding_principal, l.outstanding_interest, l.outstanding_fees,
                l.outstanding_penalties, l.next_due_on, l.days_past_due,
                CAST(l.dpd_bucket AS text), CAST(l.asset_class AS text))
               IS DISTINCT FROM (c.p, c.it, c.f, c.pen, c.next_due, c.dpd, c.bucket, c.class)
        """,
    ),
    (
        "snapshots",
        f"""
        WITH inst AS (
            SELECT i.loan_id,
                   sum({_OWED}) FILTER (WHERE i.due_date < %(d)s AND l.status = 'active')
                       AS overdue,
                   sum(i.principal_due + i.interest_due + i.fee_due)
                       FILTER (WHERE i.due_date = %(d)s) AS due
              FROM loan_installments i JOIN loans l ON l.id = i.loan_id
             WHERE i.due_date <= %(d)s
               AND ((l.status = 'active' AND l.disbursed_on <= %(d)s)
                    OR (l.status = 'closed' AND i.due_date = %(d)s))
             GROUP BY i.loan_id
        ), coll AS (
            SELECT loan_id, sum(amount) AS amount, count(*) AS n FROM collections
             WHERE collected_on = %(d)s AND status = 'posted' GROUP BY loan_id
        ), f AS (
            SELECT l.branch_id, a.agent_id, l.customer_id,
                   l.status = 'active' AND l.disbursed_on <= %(d)s AS active,
                   l.outstanding_principal AS op, l.outstanding_interest AS oi,
                   l.outstanding_fees AS ofe, l.outstanding_penalties AS ope,
                   l.dpd_bucket AS bucket, COALESCE(inst.overdue, 0) AS overdue,
                   COALESCE(inst.due, 0) AS due, COALESCE(coll.amount, 0) AS collected,
                   COALESCE(coll.n, 0) AS collections, l.disbursed_on = %(d)s AS disbursed,
                   l.principal
              FROM loans l
              LEFT JOIN agent_assignments a
                     ON a.customer_id = l.customer_id AND a.ended_at IS NULL
              LEFT JOIN inst ON inst.loan_id = l.id
              LEFT JOIN coll ON coll.loan_id = l.id
             WHERE (l.status = 'active' AND l.disbursed_on <= %(d)s)
                OR inst.loan_id IS NOT NULL OR coll.loan_id IS NOT NULL
                OR l.disbursed_on = %(d)s
        ), g AS (
            SELECT branch_id, agent_id, GROUPING(agent_id) = 1 AS whole,
                   count(*) FILTER (WHERE active) AS loans,
                   count(DISTINCT customer_id) FILTER (WHERE active) AS customers,
                   COALESCE(sum(op) FILTER (WHERE active), 0) AS op,
                   COALESCE(sum(oi) FILTER (WHERE active), 0) AS oi,
                   COALESCE(sum(ofe) FILTER (WHERE active), 0) AS ofe,
                   COALESCE(sum(ope) FILTER (WHERE active), 0) AS ope,
                   COALESCE(sum(op) FILTER (WHERE active AND bucket = '1-30'), 0) AS p1,
                   COALESCE(sum(op) FILTER (WHERE active AND bucket = '31-60'), 0) AS p2,
                   COALESCE(sum(op) FILTER (WHERE active AND bucket = '61-90'), 0) AS p3,
                   COALESCE(sum(op) FILTER (WHERE active AND bucket = '90+'), 0) AS p4,
                   sum(overdue) AS overdue, sum(due) AS due, sum(collected) AS collected,
                   sum(collections) AS collections,
                   COALESCE(sum(principal) FILTER (WHERE disbursed), 0) AS disbursed,
                   count(*) FILTER (WHERE disbursed) AS disbursed_n
              FROM f GROUP BY GROUPING SETS ((branch_id), (branch_id, agent_id))
        )
        INSERT INTO portfolio_snapshots (business_date, branch_id, agent_id, active_loans,
            active_customers, outstanding_principal, outstanding_interest, outstanding_fees,
            outstanding_penalties, par_1_30, par_31_60, par_61_90, par_90_plus, overdue_amount,
            due_amount, collected_amount, collections_count, disbursed_amount, disbursed_count)
        SELECT %(d)s, branch_id, CASE WHEN whole THEN NULL ELSE agent_id END, loans, customers,
               op, oi, ofe, ope, p1, p2, p3, p4, overdue, due, collected, collections,
               disbursed, disbursed_n
          FROM g WHERE whole OR agent_id IS NOT NULL
        ON CONFLICT (business_date, branch_id, agent_id) DO UPDATE
           SET active_loans = EXCLUDED.active_loans,
               outstanding_principal = EXCLUDED.outstanding_principal,
               par_1_30 = EXCLUDED.par_1_30, par_90_plus = EXCLUDED.par_90_plus
        """,
    ),
]


def baseline_run(url: str) -> float:
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute("SET work_mem = '64MB'")  # as COB sets it for each step
        conn.commit()
        start = time.perf_counter()
        for _, statement in BASELINE:
            conn.execute(statement, {"d": BUSINESS_DATE})  # type: ignore[arg-type]
            conn.commit()
        return time.perf_counter() - start


async def _cob(url: str) -> float:
    db = Database.connect(url, pool_size=2)
    try:
        # The baseline's connection is open before its clock starts: so is COB's pool.
        async with db.sessionmaker() as session:
            await session.execute(text("SELECT 1"))
        start = time.perf_counter()
        outcome = await cob_execute(db, business_date=BUSINESS_DATE)
        elapsed = time.perf_counter() - start
        assert outcome.steps_done == 5, outcome
        return elapsed
    finally:
        await db.dispose()


def cob_run(url: str) -> float:
    return asyncio.run(_cob(url))


def fingerprint(url: str) -> tuple[Any, ...]:
    """What both runs must agree on."""
    with psycopg.connect(libpq_url(url)) as conn:
        statuses = conn.execute(
            "SELECT status::text, count(*), sum(penalty_due) FROM loan_installments "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
        loans = conn.execute(
            "SELECT dpd_bucket::text, asset_class::text, count(*), sum(days_past_due), "
            "sum(outstanding_principal + outstanding_interest + outstanding_fees "
            "+ outstanding_penalties), count(npa_since), max(npa_since) FROM loans "
            "GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        charges = conn.execute(
            "SELECT charged_on, count(*), sum(amount) FROM loan_penalty_charges "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
        snapshots = conn.execute(
            "SELECT agent_id IS NULL, count(*), sum(active_loans), sum(active_customers), "
            "sum(outstanding_principal), sum(outstanding_penalties), sum(par_1_30), "
            "sum(par_31_60), sum(par_61_90), sum(par_90_plus), sum(overdue_amount), "
            "sum(due_amount), sum(collected_amount), sum(collections_count) "
            "FROM portfolio_snapshots WHERE business_date = %s GROUP BY 1 ORDER BY 1",
            (BUSINESS_DATE,),
        ).fetchall()
    return (tuple(statuses), tuple(loans), tuple(charges), tuple(snapshots))


def measure(template: str, installments: int, repeat: int) -> dict[str, Any]:
    loans = installments // PER_LOAN
    times: dict[str, list[float]] = {"baseline": [], "cob": []}
    prints: dict[str, tuple[Any, ...]] = {}
    for _ in range(repeat):
        for mode in ("baseline", "cob"):
            name = f"namma_bench_cob_{uuid.uuid4().hex[:8]}"
            with psycopg.connect(libpq_url(SERVER), autocommit=True) as conn:
                conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
            url = with_database(SERVER, name)
            try:
                started = time.perf_counter()
                portfolio_generate(url, loans)
                generated = time.perf_counter() - started
                elapsed = baseline_run(url) if mode == "baseline" else cob_run(url)
                times[mode].append(elapsed)
                prints[mode] = fingerprint(url)
                print(
                    f"  {installments:>9,} installments ({loans:,} loans): {mode:8} "
                    f"{elapsed:7.2f} s  ({installments / elapsed:>10,.0f} installments/s; "
                    f"generated in {generated:.1f} s)",
                    flush=True,
                )
            finally:
                drop_database(libpq_url(SERVER), name)
    if prints["baseline"] != prints["cob"]:
        print("  RESULTS DIFFER:", prints, file=sys.stderr)
        raise SystemExit(1)
    return {
        "installments": installments,
        "loans": loans,
        "baseline": min(times["baseline"]),
        "cob": min(times["cob"]),
        "charges": prints["cob"][2],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--scale",
        type=float,
        default=0.2,
        help="the largest portfolio: scale × 5,000,000 installments (1.0 = 100,000 loans)",
    )
    parser.add_argument(
        "--sizes",
        default="100000,1000000",
        help="further sizes in installments (comma-separated; the scaling uses the first two)",
    )
    parser.add_argument("--repeat", type=int, default=1, help="runs of each (the best counts)")
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",") if s} | {int(5_000_000 * args.scale)})
    print(f"Machine: {machine()}")
    print(f"Business date {BUSINESS_DATE.isoformat()}; {PER_LOAN} weekly installments a loan")
    template = f"namma_bench_cob_tpl_{uuid.uuid4().hex[:8]}"
    create_database(libpq_url(SERVER), template)
    try:
        migrate_upgrade(with_database(SERVER, template))
        results = [measure(template, size, args.repeat) for size in sizes]
    finally:
        drop_database(libpq_url(SERVER), template)

    print()
    print(
        "| installments | loans | baseline s | baseline inst/s | COB s | COB inst/s "
        "| COB / baseline |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['installments']:,} | {r['loans']:,} | {r['baseline']:.2f} | "
            f"{r['installments'] / r['baseline']:,.0f} | {r['cob']:.2f} | "
            f"{r['installments'] / r['cob']:,.0f} | {r['cob'] / r['baseline']:.2f} |"
        )
    print()
    worst = max(r["cob"] / r["baseline"] for r in results)
    print(f"COB / baseline, worst: {worst:.2f} (target ≤ 2): {'met' if worst <= 2 else 'NOT met'}")
    if len(results) >= 2:
        small, large = results[0], results[1]
        for who in ("cob", "baseline"):
            efficiency = (large["installments"] / small["installments"]) / (large[who] / small[who])
            print(
                f"Scaling efficiency {who} {small['installments']:,} → "
                f"{large['installments']:,}: {efficiency:.0%} (target ≥ 90 %)"
            )
    million = [r for r in results if r["installments"] == 1_000_000]
    if million:
        print(
            f"1,000,000 installments: COB {million[0]['cob']:.1f} s (target < 60 s): "
            f"{'met' if million[0]['cob'] < 60 else 'NOT met'}"
        )
    for r in results:
        print(f"Penalty charges at {r['installments']:,}: {r['charges']}")


if __name__ == "__main__":
    main()
