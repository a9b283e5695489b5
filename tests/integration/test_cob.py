"""Close of business (issue #7 item 1) against real PostgreSQL.

A portfolio of a few hundred loans is generated with a seeded random generator (every payment
pattern COB must tell apart: paid, partly paid, penalties only, interest or fees waived, paid in
advance; active, closed, written off, nothing paid yet, disbursed after the date; loans that were
NPA before), plus a few loans made and collected through the API. The expected result of COB is
computed here, in plain Python over the rows as generated (Decimal, exact), without calling the
code under test or the money core: installment statuses, penalties, balances, days past due,
buckets, RBI classes, NPA dates and the per-branch and per-agent snapshots. Then:

- a run gives exactly that, and a second (forced) run changes nothing;
- a run in a real worker process killed (SIGKILL) in step 2 or in step 5, then restarted (the
  stalled job requeued, a new worker), gives exactly that;
- a step that fails marks the run failed, and the next run resumes at that step, to exactly that;
- a run while another runs is refused (or waits, and then does nothing); the CLI and API say so;
- a collection posted during a step waits for COB's loan lock (no deadlock) and is counted;
- ``namma cob`` exit codes, the API and the hourly tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

import anyio.to_thread
import psycopg
import pytest
from sqlalchemy import insert
from typer.testing import CliRunner

from namma.cob.runner import CobBusyError, cob_execute
from namma.cob.tasks import cob_tick
from namma.config import get_settings
from namma.jobs import job_app
from namma.kit.db import libpq_url, transaction
from namma.kit.jobs import jobs_recover_stalled
from namma.loans.service import today_india
from namma.models import (
    AgentAssignment,
    Customer,
    Loan,
    LoanInstallment,
    LoanProductVersion,
    LoanTermsSnapshot,
)
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    MONTHLY_PRODUCT,
    collect,
    customer,
    make_loan,
    product,
    settings,
)

D = Decimal
ZERO = D("0.00")
CENT = D("0.01")
REPO_ROOT = Path(__file__).resolve().parents[2]

# The business date closed by the tests: yesterday, so that a loan disbursed today is "after".
BUSINESS_DATE = today_india() - dt.timedelta(days=1)

PENALTY_RULES: dict[str, dict[str, Any] | None] = {
    "PFLAT": {"basis": "flat", "value": "100", "recurrence": "once"},
    "PDAYCAP": {
        "basis": "flat",
        "value": "7.5",
        "recurrence": "daily",
        "grace_days": 5,
        "cap": "400.00",
    },
    "PPRIN": {
        "basis": "percent-of-overdue-principal",
        "value": "0.0833",
        "recurrence": "daily",
        "grace_days": 2,
    },
    "PTOTAL": {
        "basis": "percent-of-overdue-total",
        "value": "2",
        "recurrence": "once",
        "grace_days": 10,
    },
    "PNONE": None,
}


# --- the generated portfolio ------------------------------------------------------------------


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    """An amount between low and high rupees, in paise."""
    return D(rng.randint(low * 100, high * 100)) / 100


def _part(rng: random.Random, amount: Decimal) -> Decimal:
    """Some of ``amount`` (never all of a positive amount, never negative)."""
    if amount <= CENT:
        return ZERO
    return (amount * D(rng.randint(1, 99)) / 100).quantize(CENT, rounding="ROUND_DOWN")


async def portfolio_generate(app, world, *, loans: int = 260, seed: int = 20261205) -> None:  # type: ignore[no-untyped-def]
    """Loans with installments in every state, inserted directly (COB reads only the rows)."""
    rng = random.Random(seed)
    day = BUSINESS_DATE
    async with transaction(app.state.db) as session:
        versions: dict[str, LoanProductVersion] = {}
        for code in PENALTY_RULES:
            versions[code] = await _product_version(session, app, world, code)

        # Customers: most with an agent, some with none, some whose agent was replaced.
        customers: dict[str, list[uuid.UUID]] = {"A": [], "B": []}
        agents = {"A": [world.agent_a.id, world.agent_a2.id], "B": [world.agent_b.id]}
        for n in range(48):
            key = "A" if n % 3 else "B"
            branch = world.branch_a if key == "A" else world.branch_b
            c = Customer(
                branch_id=branch.id, name=f"Generated {n}", phone=f"98{n:08d}", village="Gen"
            )
            session.add(c)
            await session.flush()
            customers[key].append(c.id)
            roll = n % 8
            if roll == 0:
                continue  # no agent at all: counted in the branch row only
            if roll == 1:  # an ended assignment only
                session.add(
                    AgentAssignment(
                        customer_id=c.id, agent_id=agents[key][0], ended_at=dt.datetime.now(dt.UTC)
                    )
                )
                continue
            if roll == 2 and key == "A":  # reassigned: the current agent counts
                session.add(
                    AgentAssignment(
                        customer_id=c.id, agent_id=agents["A"][1], ended_at=dt.datetime.now(dt.UTC)
                    )
                )
            session.add(AgentAssignment(customer_id=c.id, agent_id=rng.choice(agents[key])))
        await session.flush()

        loan_rows: list[dict[str, Any]] = []
        installment_rows: list[dict[str, Any]] = []
        terms_rows: list[dict[str, Any]] = []
        for n in range(loans):
            key = "A" if rng.random() < 0.7 else "B"
            branch = world.branch_a if key == "A" else world.branch_b
            code = rng.choice(list(PENALTY_RULES))
            version = versions[code]
            kind = rng.choices(
                ["active", "closed", "written_off", "unpaid", "disbursed_on_d", "after_d"],
                weights=[84, 5, 4, 2, 3, 2],
            )[0]
            period = rng.choice([7, 14, 30])
            count = rng.randint(4, 16)
            if kind == "disbursed_on_d":
                disbursed = day
            elif kind == "after_d":
                disbursed = day + dt.timedelta(days=1)
            elif kind == "closed" and n % 2 == 0:
                disbursed = day - dt.timedelta(days=period * count)  # last installment due on D
            else:
                disbursed = day - dt.timedelta(days=rng.randint(1, 420))
            loan_id = uuid.uuid4()
            previous_class = rng.choices(
                ["standard", "sma_0", "sma_1", "npa"], weights=[60, 10, 10, 20]
            )[0]
            principal = ZERO
            behaviour = rng.choice(["good", "late", "late", "noisy"])
            stop = rng.randint(0, count)  # "late" payers paid up to here
            balance_rows: list[dict[str, Any]] = []
            start = disbursed
            for number in range(1, count + 1):
                due = disbursed + dt.timedelta(days=period * number)
                pd, idue = _money(rng, 500, 5000), _money(rng, 0, 800)
                fd = _money(rng, 10, 50) if rng.random() < 0.2 else ZERO
                principal += pd
                row = {
                    "id": uuid.uuid4(),
                    "loan_id": loan_id,
                    "branch_id": branch.id,
                    "number": number,
                    "due_date": due,
                    "period_start": start,
                    "principal_due": pd,
                    "interest_due": idue,
                    "fee_due": fd,
                    "interest_for_period": idue,
                    "balance_after": ZERO,
                    "penalty_due": ZERO,
                    "principal_paid": ZERO,
                    "interest_paid": ZERO,
                    "fee_paid": ZERO,
                    "penalty_paid": ZERO,
                    "interest_waived": ZERO,
                    "fee_waived": ZERO,
                    "penalty_waived": ZERO,
                    # Deliberately stale: COB must set every status as of the date.
                    "status": "due",
                    "paid_at": dt.datetime.now(dt.UTC) if rng.random() < 0.1 else None,
                }
                start = due
                past = due < day
                if past and rng.random() < 0.25:  # penalties charged on earlier days
                    row["penalty_due"] = _money(rng, 1, 150)
                    row["penalty_paid"] = (
                        _part(rng, row["penalty_due"]) if rng.random() < 0.5 else ZERO
                    )
                    if rng.random() < 0.3:
                        row["penalty_waived"] = row["penalty_due"] - row["penalty_paid"]
                if kind == "closed":
                    pay = "full"
                elif kind in ("unpaid", "disbursed_on_d", "after_d"):
                    pay = "none"
                elif behaviour == "good":
                    pay = "full" if past else rng.choice(["none", "none", "full", "part"])
                elif behaviour == "late":
                    pay = (
                        "full"
                        if number < stop
                        else "part"
                        if number == stop
                        else rng.choice(["none"] * 6 + ["penalty_only", "waived_interest"])
                    )
                else:
                    pay = rng.choice(["full", "part", "none", "penalty_only", "waived_interest"])
                if pay == "full":
                    row["principal_paid"], row["interest_paid"], row["fee_paid"] = pd, idue, fd
                    row["penalty_paid"] = row["penalty_due"] - row["penalty_waived"]
                elif pay == "part":
                    row["interest_paid"] = idue if rng.random() < 0.5 else _part(rng, idue)
                    row["principal_paid"] = _part(rng, pd)
                    row["fee_paid"] = fd if rng.random() < 0.5 else ZERO
                elif pay == "penalty_only":  # the schedule paid, a penalty still owed
                    row["principal_paid"], row["interest_paid"], row["fee_paid"] = pd, idue, fd
                    if row["penalty_due"] == row["penalty_paid"] + row["penalty_waived"]:
                        row["penalty_due"] += _money(rng, 5, 40)
                elif pay == "waived_interest":  # interest waived, principal paid, fee owed
                    row["interest_waived"] = idue
                    row["principal_paid"] = pd
                    row["fee_waived"] = fd if rng.random() < 0.5 else ZERO
                balance_rows.append(row)
            running = principal
            for row in balance_rows:
                running -= row["principal_due"]
                row["balance_after"] = running
            installment_rows.extend(balance_rows)
            status = {"closed": "closed", "written_off": "written_off"}.get(kind, "active")
            npa_since = (
                day - dt.timedelta(days=rng.randint(10, 200)) if previous_class == "npa" else None
            )
            terms_rows.append({"loan_id": loan_id, "terms": version.terms})
            loan_rows.append(
                {
                    "id": loan_id,
                    "loan_number": f"GEN-{n:05d}",
                    "branch_id": branch.id,
                    "customer_id": rng.choice(customers[key]),
                    "product_version_id": version.id,
                    "status": status,
                    "principal": principal,
                    "annual_rate": D("24"),
                    "installments": count,
                    "frequency": version.terms.get("frequency"),
                    "applied_by_id": world.agent_a.id,
                    "disbursed_on": disbursed,
                    # Stale balances, except the unpaid loan's (as set at disbursement).
                    "outstanding_principal": principal if kind == "unpaid" else ZERO,
                    "outstanding_penalties": _money(rng, 0, 9),
                    "days_past_due": rng.randint(0, 5),
                    "dpd_bucket": "1-30" if previous_class == "sma_0" else "current",
                    "asset_class": previous_class,
                    "npa_since": npa_since,
                }
            )
        await session.execute(insert(Loan.__table__), loan_rows)
        await session.execute(insert(LoanTermsSnapshot.__table__), terms_rows)
        await session.execute(insert(LoanInstallment.__table__), installment_rows)


async def _product_version(session, app, world, code: str) -> LoanProductVersion:  # type: ignore[no-untyped-def]
    from namma.models import LoanProduct
    from namma.products.schemas import ProductTerms

    rule = PENALTY_RULES[code]
    terms = ProductTerms.model_validate({"frequency": "weekly", "penalty": rule}).stored()
    product = LoanProduct(code=code, name=f"Generated {code}")
    session.add(product)
    await session.flush()
    limits = MONTHLY_PRODUCT["limits"]
    version = LoanProductVersion(
        product_id=product.id,
        version=1,
        terms=terms,
        min_principal=D(limits["min_principal"]),
        max_principal=D(limits["max_principal"]),
        min_rate=D(limits["min_rate"]),
        max_rate=D(limits["max_rate"]),
        default_rate=D(limits["default_rate"]),
        min_installments=limits["min_installments"],
        max_installments=limits["max_installments"],
    )
    session.add(version)
    await session.flush()
    return version


async def api_loans_with_collections(app, client, bearer, world, product) -> None:  # type: ignore[no-untyped-def]
    """Two loans made and collected through the API: collections on the date count, one the
    day before does not."""
    from namma.finance import add_months

    agent = await bearer(world.agent_a)
    three_months_ago = add_months(today_india(), -3)
    first = await make_loan(app, client, bearer, world, product, disbursed_on=three_months_ago)
    second = await make_loan(
        app, client, bearer, world, product, amount="20000.00", disbursed_on=three_months_ago
    )
    for loan_id, amount, on in (
        (first, "5000.00", BUSINESS_DATE),
        (first, "1234.56", BUSINESS_DATE),
        (second, "700.00", BUSINESS_DATE - dt.timedelta(days=1)),
        (second, "300.25", BUSINESS_DATE),
    ):
        response = await collect(client, agent, loan_id, amount, on=on)
        assert response.status_code == 201, response.text


# --- reading the rows, and the expected result computed independently --------------------------


@dataclass
class Inst:
    loan: str
    number: int
    due_date: dt.date
    principal_due: Decimal
    interest_due: Decimal
    fee_due: Decimal
    penalty_due: Decimal
    principal_paid: Decimal
    interest_paid: Decimal
    fee_paid: Decimal
    penalty_paid: Decimal
    interest_waived: Decimal
    fee_waived: Decimal
    penalty_waived: Decimal
    status: str
    paid_at: dt.datetime | None

    @property
    def owed_principal(self) -> Decimal:
        return self.principal_due - self.principal_paid

    @property
    def owed_interest(self) -> Decimal:
        return self.interest_due - self.interest_paid - self.interest_waived

    @property
    def owed_fee(self) -> Decimal:
        return self.fee_due - self.fee_paid - self.fee_waived

    @property
    def owed_penalty(self) -> Decimal:
        return self.penalty_due - self.penalty_paid - self.penalty_waived

    @property
    def owed(self) -> Decimal:
        return self.owed_principal + self.owed_interest + self.owed_fee + self.owed_penalty

    @property
    def in_arrears(self) -> bool:
        return self.owed_principal > 0 or self.owed_interest > 0 or self.owed_fee > 0


@dataclass
class LoanRow:
    number: str
    branch: str
    agent: str | None
    customer: uuid.UUID
    status: str
    disbursed_on: dt.date | None
    principal: Decimal
    penalty: dict[str, Any] | None
    outstanding: tuple[Decimal, Decimal, Decimal, Decimal]
    next_due_on: dt.date | None
    days_past_due: int
    dpd_bucket: str
    asset_class: str
    npa_since: dt.date | None


@dataclass
class State:
    branches: dict[str, bool]  # code → is_active
    loans: dict[str, LoanRow]
    installments: dict[tuple[str, int], Inst]
    charges: dict[tuple[str, int], tuple[dt.date, int, Decimal, Decimal]]
    collections: list[tuple[str, dt.date, str, Decimal]]  # loan, date, status, amount
    snapshots: dict[tuple[str, str | None], dict[str, Any]]


SNAPSHOT_FIELDS = (
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


def state_read(url: str) -> State:
    """Everything COB reads or writes, keyed by human names (loan number, branch code, agent
    e-mail), read with plain SQL."""
    with psycopg.connect(libpq_url(url)) as conn:
        branches = {
            code: active for code, active in conn.execute("SELECT code, is_active FROM branches")
        }
        loans = {}
        for row in conn.execute(
            """SELECT l.loan_number, b.code, u.email, l.customer_id, l.status::text,
                      l.disbursed_on, l.principal, t.terms -> 'penalty',
                      l.outstanding_principal, l.outstanding_interest, l.outstanding_fees,
                      l.outstanding_penalties, l.next_due_on, l.days_past_due,
                      l.dpd_bucket::text, l.asset_class::text, l.npa_since
                 FROM loans l JOIN branches b ON b.id = l.branch_id
                 JOIN loan_terms t ON t.loan_id = l.id
                 LEFT JOIN agent_assignments a
                        ON a.customer_id = l.customer_id AND a.ended_at IS NULL
                 LEFT JOIN users u ON u.id = a.agent_id"""
        ):
            loans[row[0]] = LoanRow(
                row[0], row[1], row[2], row[3], row[4], row[5], row[6], row[7],
                (row[8], row[9], row[10], row[11]), row[12], row[13], row[14], row[15], row[16],
            )  # fmt: skip
        installments = {}
        for row in conn.execute(
            """SELECT l.loan_number, i.number, i.due_date, i.principal_due, i.interest_due,
                      i.fee_due, i.penalty_due, i.principal_paid, i.interest_paid, i.fee_paid,
                      i.penalty_paid, i.interest_waived, i.fee_waived, i.penalty_waived,
                      i.status::text, i.paid_at
                 FROM loan_installments i JOIN loans l ON l.id = i.loan_id"""
        ):
            installments[(row[0], row[1])] = Inst(*row)
        charges = {
            (row[0], row[1]): tuple(row[2:])
            for row in conn.execute(
                """SELECT l.loan_number, c.installment_number, c.charged_on, c.days_overdue,
                          c.amount, c.total_after
                     FROM loan_penalty_charges c JOIN loans l ON l.id = c.loan_id"""
            )
        }
        collections = [
            tuple(row)
            for row in conn.execute(
                """SELECT l.loan_number, c.collected_on, c.status::text, c.amount
                     FROM collections c JOIN loans l ON l.id = c.loan_id"""
            )
        ]
        snapshots = {}
        columns = ", ".join(f"s.{c}" for c in SNAPSHOT_FIELDS)
        for row in conn.execute(
            f"""SELECT b.code, u.email, {columns}
                  FROM portfolio_snapshots s JOIN branches b ON b.id = s.branch_id
                  LEFT JOIN users u ON u.id = s.agent_id
                 WHERE s.business_date = %s""",
            (BUSINESS_DATE,),
        ):
            snapshots[(row[0], row[1])] = dict(zip(SNAPSHOT_FIELDS, row[2:], strict=True))
    return State(branches, loans, installments, charges, collections, snapshots)  # type: ignore[arg-type]


def _bucket(dpd: int) -> str:
    if dpd == 0:
        return "current"
    if dpd <= 30:
        return "1-30"
    if dpd <= 60:
        return "31-60"
    return "61-90" if dpd <= 90 else "90+"


def _asset_class(dpd: int, before: str) -> str:
    if dpd > 90 or (before == "npa" and dpd > 0):
        return "npa"
    if dpd == 0:
        return "standard"
    return "sma_0" if dpd <= 30 else "sma_1" if dpd <= 60 else "sma_2"


def _penalty_total(rule: dict[str, Any], inst: Inst, day: dt.date) -> Decimal:
    """What the rule has accrued on an installment in arrears by ``day`` (in total)."""
    chargeable = (day - inst.due_date).days - int(rule["grace_days"])
    if chargeable <= 0:
        return ZERO
    value = D(rule["value"])
    if rule["basis"] == "flat":
        amount = value
    elif rule["basis"] == "percent-of-overdue-principal":
        amount = inst.owed_principal * value / 100
    else:
        amount = (inst.owed_principal + inst.owed_interest) * value / 100
    if rule["recurrence"] == "daily":
        amount *= chargeable
    amount = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    if rule.get("cap") is not None and amount > D(rule["cap"]):
        amount = D(rule["cap"])
    return amount


def expected_after_cob(before: State, day: dt.date) -> State:
    """COB for ``day`` in plain Python, over the rows as they were before it."""
    loans = {k: LoanRow(**vars(v)) for k, v in before.loans.items()}
    installments = {k: Inst(**vars(v)) for k, v in before.installments.items()}
    charges = dict(before.charges)
    by_loan: dict[str, list[Inst]] = defaultdict(list)
    for inst in installments.values():
        by_loan[inst.loan].append(inst)

    def closes(loan: LoanRow) -> bool:  # the loans COB maintains
        return (
            loan.status == "active" and loan.disbursed_on is not None and loan.disbursed_on <= day
        )

    for number, loan in loans.items():
        if not closes(loan):
            continue
        rows = by_loan[number]
        # 1. statuses, as of the day (before penalties, which only touch rows in arrears).
        for inst in rows:
            paid = inst.principal_paid + inst.interest_paid + inst.fee_paid + inst.penalty_paid
            if inst.owed == 0:
                inst.status = "paid"
            else:
                inst.status = (
                    "overdue" if inst.due_date < day else "partly_paid" if paid > 0 else "due"
                )
                inst.paid_at = None
    for number, loan in loans.items():
        # 2. penalties on every active loan with a rule.
        if loan.status != "active" or not loan.penalty:
            continue
        for inst in by_loan[number]:
            if inst.due_date >= day or not inst.in_arrears:
                continue
            total = _penalty_total(loan.penalty, inst, day)
            if total > inst.penalty_due:
                charges[(number, inst.number)] = (
                    day,
                    (day - inst.due_date).days,
                    total - inst.penalty_due,
                    total,
                )
                inst.penalty_due = total
    for number, loan in loans.items():
        # 3. balances, days past due, bucket and class.
        rows = by_loan[number]
        if not closes(loan) or not rows:
            continue
        loan.outstanding = (
            sum((i.owed_principal for i in rows), ZERO),
            sum((i.owed_interest for i in rows), ZERO),
            sum((i.owed_fee for i in rows), ZERO),
            sum((i.owed_penalty for i in rows), ZERO),
        )
        loan.next_due_on = min((i.due_date for i in rows if i.owed > 0), default=None)
        late = [i.due_date for i in rows if i.due_date < day and i.in_arrears]
        dpd = (day - min(late)).days if late else 0
        before_class = loan.asset_class
        loan.days_past_due = dpd
        loan.dpd_bucket = _bucket(dpd)
        loan.asset_class = _asset_class(dpd, before_class)
        if loan.asset_class != "npa":
            loan.npa_since = None
        elif before_class != "npa" or loan.npa_since is None:
            # The day its days past due reached 91.
            loan.npa_since = day - dt.timedelta(days=max(dpd - 91, 0))

    # 5. snapshots per branch and per (branch, current agent).
    zero_row: dict[str, Any] = {
        f: 0 if f.endswith(("loans", "customers", "count")) else ZERO for f in SNAPSHOT_FIELDS
    }
    snapshots: dict[tuple[str, str | None], dict[str, Any]] = {}
    customers: dict[tuple[str, str | None], set[uuid.UUID]] = defaultdict(set)
    collected: dict[str, list[Decimal]] = defaultdict(list)
    for loan_number, on, status, amount in before.collections:
        if on == day and status == "posted":
            collected[loan_number].append(amount)
    for number, loan in loans.items():
        rows = by_loan[number]
        active = (
            loan.status == "active" and loan.disbursed_on is not None and loan.disbursed_on <= day
        )
        due = (
            sum(
                (i.principal_due + i.interest_due + i.fee_due for i in rows if i.due_date == day),
                ZERO,
            )
            if active or loan.status == "closed"
            else ZERO
        )
        overdue = sum((i.owed for i in rows if i.due_date < day), ZERO) if active else ZERO
        disbursed = loan.disbursed_on == day
        has_due_row = any(i.due_date == day for i in rows) and (active or loan.status == "closed")
        if not (active or has_due_row or number in collected or disbursed):
            continue
        for key in (
            ((loan.branch, None), (loan.branch, loan.agent))
            if loan.agent
            else ((loan.branch, None),)
        ):
            snap = snapshots.setdefault(key, dict(zero_row))
            if active:
                snap["active_loans"] += 1
                customers[key].add(loan.customer)
                for field, value in zip(
                    (
                        "outstanding_principal",
                        "outstanding_interest",
                        "outstanding_fees",
                        "outstanding_penalties",
                    ),
                    loan.outstanding,
                    strict=True,
                ):
                    snap[field] += value
                par = {
                    "1-30": "par_1_30",
                    "31-60": "par_31_60",
                    "61-90": "par_61_90",
                    "90+": "par_90_plus",
                }
                if loan.dpd_bucket in par:
                    snap[par[loan.dpd_bucket]] += loan.outstanding[0]
            snap["overdue_amount"] += overdue
            snap["due_amount"] += due
            snap["collected_amount"] += sum(collected[number], ZERO)
            snap["collections_count"] += len(collected[number])
            if disbursed:
                snap["disbursed_amount"] += loan.principal
                snap["disbursed_count"] += 1
    for key, members in customers.items():
        snapshots[key]["active_customers"] = len(members)
    for code, is_active in before.branches.items():
        if is_active and (code, None) not in snapshots:
            snapshots[(code, None)] = dict(zero_row)
    return State(before.branches, loans, installments, charges, before.collections, snapshots)


def assert_state_equal(actual: State, expected: State) -> None:
    """Field by field, so that a failure names the loan or row."""
    assert actual.installments.keys() == expected.installments.keys()
    wrong_inst = {
        k: (vars(actual.installments[k]), vars(v))
        for k, v in expected.installments.items()
        if vars(actual.installments[k]) != vars(v)
    }
    assert not wrong_inst, (
        f"{len(wrong_inst)} installments differ, e.g. {next(iter(wrong_inst.items()))}"
    )
    wrong_loans = {
        k: (vars(actual.loans[k]), vars(v))
        for k, v in expected.loans.items()
        if vars(actual.loans[k]) != vars(v)
    }
    assert not wrong_loans, (
        f"{len(wrong_loans)} loans differ, e.g. {next(iter(wrong_loans.items()))}"
    )
    assert actual.charges == expected.charges
    assert actual.snapshots.keys() == expected.snapshots.keys()
    for key, row in expected.snapshots.items():
        assert actual.snapshots[key] == row, key


def assert_covers_every_case(before: State, expected: State) -> None:
    """The generated portfolio really exercises what the test claims to check."""
    day = BUSINESS_DATE
    closed = {k: v for k, v in expected.loans.items() if v.status == "active"}
    assert {v.dpd_bucket for v in closed.values()} == {"current", "1-30", "31-60", "61-90", "90+"}
    assert {v.asset_class for v in closed.values()} == {
        "standard",
        "sma_0",
        "sma_1",
        "sma_2",
        "npa",
    }
    # NPA kept although the days past due fell to 90 or less; NPA left once nothing is late.
    assert any(v.asset_class == "npa" and 0 < v.days_past_due <= 90 for v in closed.values())
    assert any(
        before.loans[k].asset_class == "npa" and v.asset_class == "standard"
        for k, v in closed.items()
    )
    # A new NPA dated back to the day it crossed 90 days.
    assert any(
        before.loans[k].asset_class != "npa" and v.npa_since and v.npa_since < day
        for k, v in closed.items()
    )
    charged_rules = {
        (rule["basis"], rule["recurrence"], rule["grace_days"])
        for k, c in expected.charges.items()
        if c[0] == day and (rule := expected.loans[k[0]].penalty)
    }
    assert charged_rules == {
        (rule["basis"], rule["recurrence"], rule.get("grace_days", 0))
        for rule in PENALTY_RULES.values()
        if rule
    }
    statuses = {i.status for i in expected.installments.values()}
    assert statuses >= {"paid", "overdue", "partly_paid", "due"}
    # Written-off loans have installments in arrears that COB must not touch.
    assert any(
        expected.loans[i.loan].status == "written_off" and i.in_arrears and i.due_date < day
        for i in expected.installments.values()
    )
    snaps = expected.snapshots
    assert any(key[1] is None for key in snaps) and any(key[1] for key in snaps)
    assert all(
        sum(row[f] for row in snaps.values() if row is not None) > 0 for f in SNAPSHOT_FIELDS
    )


# --- fixtures and helpers ------------------------------------------------------------------------


@pytest.fixture
async def portfolio(app, client, world, bearer, product, customer) -> State:  # type: ignore[no-untyped-def]
    """The generated portfolio (and the API loans); returns the rows as they are before COB."""
    await api_loans_with_collections(app, client, bearer, world, product)
    await portfolio_generate(app, world)
    return state_read(app.state.settings.database_url)


async def _cob(app, *, force: bool = False, wait: float = 0.0):  # type: ignore[no-untyped-def]
    return await cob_execute(
        app.state.db, business_date=BUSINESS_DATE, force=force, wait_seconds=wait
    )


def _query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(libpq_url(url)) as conn:
        return list(conn.execute(sql, params))


async def _wait_for(predicate, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await anyio.to_thread.run_sync(predicate):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


@contextlib.contextmanager
def table_locked(url: str, table: str) -> Iterator[psycopg.Connection[Any]]:
    """Hold a lock that makes any writer of ``table`` wait (so a COB run stops at that step)."""
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(f"LOCK TABLE {table} IN SHARE MODE")
        try:
            yield conn
        finally:
            conn.rollback()


def _blocked_by(conn: psycopg.Connection[Any]) -> list[int]:
    """Backends waiting for a lock that ``conn`` holds."""
    with psycopg.connect(conn.info.dsn, password=conn.info.password or None) as probe:
        return [
            row[0]
            for row in probe.execute(
                "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                (conn.info.backend_pid,),
            )
        ]


# --- the acceptance ---------------------------------------------------------------------


async def test_cob_matches_values_computed_independently_and_a_second_run_changes_nothing(
    app, portfolio
):  # type: ignore[no-untyped-def]
    url = app.state.settings.database_url
    expected = expected_after_cob(portfolio, BUSINESS_DATE)
    assert_covers_every_case(portfolio, expected)

    outcome = await _cob(app)
    assert outcome.ran == (
        "advances",
        "installments",
        "penalties",
        "loans",
        "accrual",
        "provisions",
        "snapshots",
    )
    after = state_read(url)
    assert_state_equal(after, expected)
    charged_today = [c for c in expected.charges.values() if c[0] == BUSINESS_DATE]
    assert outcome.counts["penalties"]["installments"] == len(charged_today)
    assert D(outcome.counts["penalties"]["amount"]) == sum((c[2] for c in charged_today), ZERO)

    # Not forced: the date has completed, nothing runs.
    again = await _cob(app)
    assert again.already_completed and again.ran == ()
    # Forced: every step runs again, and changes nothing.
    forced = await _cob(app, force=True)
    assert forced.ran == outcome.ran
    assert forced.counts["advances"]["loans"] == 0
    assert forced.counts["installments"] == {"changed": {}}
    assert forced.counts["penalties"]["installments"] == 0
    assert forced.counts["loans"]["changed"] == 0
    assert (forced.counts["snapshots"]["written"], forced.counts["snapshots"]["removed"]) == (0, 0)
    assert_state_equal(state_read(url), expected)
    run = _query(url, "SELECT status::text, steps_done, attempts FROM cob_runs")
    assert forced.counts["provisions"]["entries"] == 0
    assert run == [("completed", 7, 2)]


@pytest.mark.slow
@pytest.mark.parametrize(
    ("stop_at", "steps_done"),
    [("loan_penalty_charges", 2), ("portfolio_snapshots", 6)],
    ids=["killed-in-step-3", "killed-in-step-7"],
)
async def test_a_worker_killed_halfway_and_restarted_gives_the_identical_result(
    app, client, world, bearer, portfolio, stop_at, steps_done
):  # type: ignore[no-untyped-def]
    url = app.state.settings.database_url
    expected = expected_after_cob(portfolio, BUSINESS_DATE)
    env = {
        **os.environ,
        "NAMMA_DATABASE_URL": url,
        "NAMMA_ENV": "test",
        "NAMMA_JOB_POLL_INTERVAL": "0.2",
        "NAMMA_STALLED_WORKER_SECONDS": "5",
        "NAMMA_COB_HOUR": "-1",
        "PYTHONPATH": str(REPO_ROOT),
    }
    env.pop("NAMMA_REDIS_URL", None)

    def worker() -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            [sys.executable, "-m", "namma", "worker", "--concurrency", "1"],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    # The step writing this table waits on this lock, the steps before it committed.
    with table_locked(url, stop_at) as locker:
        queued = await client.post(
            "/api/cob/runs",
            json={"business_date": BUSINESS_DATE.isoformat()},
            headers=await bearer(world.admin),
        )
        assert queued.status_code == 202, queued.text
        process = worker()
        try:
            await _wait_for(lambda: bool(_blocked_by(locker)), 30, f"COB to reach {stop_at}")
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        # The database notices a dead client only when it next talks to it: end its session as
        # a restarted database server would.
        for pid in _blocked_by(locker):
            locker.execute("SELECT pg_terminate_backend(%s)", (pid,))

    # Killed halfway: the steps before are committed, nothing of the one it was in.
    assert _query(url, "SELECT status::text, steps_done FROM cob_runs") == [("running", steps_done)]
    halfway = state_read(url)
    assert {k: i.status for k, i in halfway.installments.items()} == {
        k: i.status for k, i in expected.installments.items()
    }
    if steps_done == 2:
        assert halfway.charges == portfolio.charges
    else:
        assert halfway.charges == expected.charges
        assert {k: vars(v) for k, v in halfway.loans.items()} == {
            k: vars(v) for k, v in expected.loans.items()
        }
    assert halfway.snapshots == {}
    job = _query(url, "SELECT status::text FROM procrastinate_jobs WHERE task_name = 'cob:run'")
    assert job == [("doing",)]
    # The API shows the run as not running now (its lock died with the worker).
    runs = await client.get("/api/cob/runs", headers=await bearer(world.admin))
    assert runs.json()["running"] is False
    assert runs.json()["items"][0]["steps_done"] == steps_done

    # Restarted: the stalled job goes back to the queue, a new worker resumes at that step.
    await asyncio.sleep(2.5)
    assert await jobs_recover_stalled(job_app, seconds_since_heartbeat=2) == 1
    process = worker()
    try:
        await _wait_for(
            lambda: _query(url, "SELECT status::text FROM cob_runs") == [("completed",)],
            60,
            "the resumed COB to complete",
        )
    finally:
        process.terminate()
        process.wait(10)
    [run] = _query(url, "SELECT steps_done, attempts, counts FROM cob_runs")
    assert run[:2] == (7, 2)
    assert set(run[2]) == {
        "advances",
        "installments",
        "penalties",
        "loans",
        "accrual",
        "provisions",
        "snapshots",
    }
    assert_state_equal(state_read(url), expected)


async def test_a_failed_step_is_recorded_and_the_next_run_resumes_there(app, world):  # type: ignore[no-untyped-def]
    url = app.state.settings.database_url
    await portfolio_generate(app, world, loans=60, seed=7)
    before = state_read(url)
    expected = expected_after_cob(before, BUSINESS_DATE)
    # Bad data that only step 4 trips on: interest waived beyond what was due makes the loan's
    # outstanding interest negative (a CHECK constraint), on a late installment whose status
    # and penalty it does not change (principal still owed; no penalty on interest).
    target = next(
        i
        for i in before.installments.values()
        if before.loans[i.loan].status == "active"
        and (before.loans[i.loan].penalty or {}).get("basis", "flat") != "percent-of-overdue-total"
        and i.due_date < BUSINESS_DATE
        and i.owed_principal > 0
    )
    fix = "UPDATE loan_installments SET interest_waived = %s WHERE number = %s AND loan_id = "
    fix += "(SELECT id FROM loans WHERE loan_number = %s)"
    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(fix, (target.interest_due + 100000, target.number, target.loan))

    with pytest.raises(Exception, match="outstanding_not_negative"):
        await _cob(app)
    run = _query(url, "SELECT status::text, steps_done, error FROM cob_runs")
    assert run[0][:2] == ("failed", 3)
    assert run[0][2].startswith("step 4 (loans): ")

    with psycopg.connect(libpq_url(url)) as conn:
        conn.execute(fix, (target.interest_waived, target.number, target.loan))
    resumed = await _cob(app)
    assert resumed.resumed_at_step == 3
    assert resumed.ran == ("loans", "accrual", "provisions", "snapshots")
    assert _query(url, "SELECT status::text, steps_done, attempts, error FROM cob_runs") == [
        ("completed", 7, 2, None)
    ]
    assert_state_equal(state_read(url), expected)


async def test_one_run_at_a_time_a_second_is_refused_or_waits_and_then_does_nothing(
    app, client, world, bearer, portfolio
):  # type: ignore[no-untyped-def]
    url = app.state.settings.database_url
    expected = expected_after_cob(portfolio, BUSINESS_DATE)
    with table_locked(url, "portfolio_snapshots") as locker:
        first = asyncio.create_task(_cob(app))
        await _wait_for(lambda: bool(_blocked_by(locker)), 30, "the first run to reach step 5")
        # The run's lock is held by a connection of its own, named for operators.
        holders = _query(
            url,
            "SELECT a.application_name FROM pg_locks k JOIN pg_stat_activity a ON a.pid = k.pid "
            "WHERE k.locktype = 'advisory' AND k.granted AND k.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database())",
        )
        assert holders == [("namma-cob",)]
        # At once: refused, naming the date running.
        with pytest.raises(CobBusyError) as refused:
            await _cob(app)
        assert refused.value.running_date == BUSINESS_DATE
        # Through the API: 409, and nothing queued.
        queued = await client.post(
            "/api/cob/runs",
            json={"business_date": BUSINESS_DATE.isoformat(), "force": True},
            headers=await bearer(world.admin),
        )
        assert queued.status_code == 409, queued.text
        assert queued.json()["error"]["code"] == "cob_running"
        # The CLI, in its own process: exit 3.
        result = await _namma(url, "cob", "--date", BUSINESS_DATE.isoformat())
        assert result.returncode == 3, result.stderr
        assert "already running for" in result.stderr
        # Waiting: it gets the lock only when the first has finished ...
        second = asyncio.create_task(_cob(app, wait=30))
        await asyncio.sleep(0.5)
        assert not first.done() and not second.done()
    outcome = await first
    waited = await second
    assert outcome.ran[-1] == "snapshots"
    # ... and finds the date completed: nothing ran twice.
    assert waited.already_completed and waited.ran == ()
    assert _query(url, "SELECT attempts FROM cob_runs") == [(1,)]
    assert_state_equal(state_read(url), expected)


async def test_a_collection_posted_during_cob_waits_for_the_step_and_is_counted(
    app, client, world, bearer, product, customer
):  # type: ignore[no-untyped-def]
    from namma.finance import add_months

    url = app.state.settings.database_url
    loan_id = await make_loan(
        app, client, bearer, world, product, disbursed_on=add_months(today_india(), -3)
    )
    agent = await bearer(world.agent_a)
    # COB stops inside step 1, holding every active loan's row lock.
    with table_locked(url, "loan_installments") as locker:
        run = asyncio.create_task(_cob(app))
        await _wait_for(lambda: bool(_blocked_by(locker)), 30, "COB to reach step 1")
        posting = asyncio.create_task(collect(client, agent, loan_id, "2500.00", on=BUSINESS_DATE))
        [cob_pid] = _blocked_by(locker)

        def collection_waits_for_cob() -> bool:
            return bool(
                _query(
                    url,
                    "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                    cob_pid,
                )
            )

        await _wait_for(collection_waits_for_cob, 10, "the collection to wait for COB's lock")
        assert not posting.done()
    outcome = await run
    posted = await posting
    assert posted.status_code == 201, posted.text
    assert outcome.ran[-1] == "snapshots"

    # Whatever the interleaving, the loan's balances are its installments', its days past due
    # follow from them as of the date, and the day's snapshot counts the collection.
    state = state_read(url)
    [number] = [k for k, v in state.loans.items() if v.status == "active"]
    loan = state.loans[number]
    rows = [i for i in state.installments.values() if i.loan == number]
    assert loan.outstanding == (
        sum((i.owed_principal for i in rows), ZERO),
        sum((i.owed_interest for i in rows), ZERO),
        sum((i.owed_fee for i in rows), ZERO),
        sum((i.owed_penalty for i in rows), ZERO),
    )
    late = [i.due_date for i in rows if i.due_date < BUSINESS_DATE and i.in_arrears]
    assert loan.days_past_due == ((BUSINESS_DATE - min(late)).days if late else 0)
    assert loan.dpd_bucket == _bucket(loan.days_past_due)
    branch = state.snapshots[(world.branch_a.code, None)]
    assert (branch["collected_amount"], branch["collections_count"]) == (D("2500.00"), 1)


async def _namma(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NAMMA_DATABASE_URL": url, "NAMMA_ENV": "test"}
    env.pop("NAMMA_REDIS_URL", None)
    return await anyio.to_thread.run_sync(
        lambda: subprocess.run(
            [sys.executable, "-m", "namma", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
            cwd=REPO_ROOT,
        )
    )


# --- the command, the API, the tick -------------------------------------------------------


@pytest.fixture
def settings_cache_cleared() -> Iterator[None]:
    # `namma` reads the settings into a cache: leave none from this test's environment behind.
    yield
    get_settings.cache_clear()


def test_cli_exit_codes(
    clean_database: str, monkeypatch: pytest.MonkeyPatch, settings_cache_cleared: None
) -> None:
    from namma.cli import app as cli

    monkeypatch.setenv("NAMMA_DATABASE_URL", clean_database)
    monkeypatch.setenv("NAMMA_ENV", "test")
    monkeypatch.delenv("NAMMA_REDIS_URL", raising=False)
    runner = CliRunner()
    day = BUSINESS_DATE

    bad = runner.invoke(cli, ["cob", "--date", "2026-02-30"])
    assert bad.exit_code == 2
    assert "--date: '2026-02-30' is not a date (YYYY-MM-DD)" in bad.output

    future = runner.invoke(
        cli, ["cob", "--date", (today_india() + dt.timedelta(days=1)).isoformat()]
    )
    assert future.exit_code == 2
    assert "has not begun yet" in future.output

    done = runner.invoke(cli, ["cob", "--date", day.isoformat()])
    assert done.exit_code == 0, done.output
    assert f"Close of business for {day.isoformat()} completed." in done.output
    assert "snapshots: " in done.output

    again = runner.invoke(cli, ["cob", "--date", day.isoformat()])
    assert again.exit_code == 0
    assert "had already completed; nothing to do" in again.output

    earlier = runner.invoke(cli, ["cob", "--date", (day - dt.timedelta(days=3)).isoformat()])
    assert earlier.exit_code == 2
    assert "already ran for a later date" in earlier.output
    assert _query(clean_database, "SELECT business_date, status::text FROM cob_runs") == [
        (day, "completed")
    ]

    forced = runner.invoke(
        cli, ["cob", "--date", (day - dt.timedelta(days=3)).isoformat(), "--force"]
    )
    assert forced.exit_code == 0, forced.output


async def test_api_queues_a_run_and_refuses_bad_requests(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    future = (today_india() + dt.timedelta(days=1)).isoformat()
    refused = await client.post("/api/cob/runs", json={"business_date": future}, headers=admin)
    assert refused.status_code == 422
    bad = await client.post("/api/cob/runs", json={"business_date": "yesterday"}, headers=admin)
    assert bad.status_code == 422
    manager = await bearer(world.manager_a)
    forbidden = await client.post(
        "/api/cob/runs", json={"business_date": BUSINESS_DATE.isoformat()}, headers=manager
    )
    assert forbidden.status_code == 403

    # A completed date: 409, and so is an earlier one; forced, it is queued (once).
    await _cob(app)
    day = BUSINESS_DATE.isoformat()
    completed = await client.post("/api/cob/runs", json={"business_date": day}, headers=admin)
    assert completed.status_code == 409
    assert completed.json()["error"]["code"] == "cob_completed"
    earlier = (BUSINESS_DATE - dt.timedelta(days=3)).isoformat()
    out_of_order = await client.post(
        "/api/cob/runs", json={"business_date": earlier}, headers=admin
    )
    assert out_of_order.status_code == 409
    assert out_of_order.json()["error"]["code"] == "cob_out_of_order"
    queued = await client.post(
        "/api/cob/runs", json={"business_date": day, "force": True}, headers=admin
    )
    assert queued.status_code == 202, queued.text
    twice = await client.post(
        "/api/cob/runs", json={"business_date": day, "force": True}, headers=admin
    )
    assert twice.status_code == 409
    jobs = _query(
        app.state.settings.database_url,
        "SELECT id, args ->> 'business_date', args ->> 'force' FROM procrastinate_jobs "
        "WHERE task_name = 'cob:run'",
    )
    assert jobs == [(queued.json()["job_id"], day, "true")]

    listed = await client.get("/api/cob/runs", headers=manager)
    assert listed.status_code == 200
    assert listed.json()["running"] is False
    [run] = listed.json()["items"]
    assert (run["business_date"], run["status"], run["steps_done"]) == (day, "completed", 7)
    assert [s["done"] for s in run["steps"]] == [True] * 7
    customer = await bearer(world.customer_user_a)
    assert (await client.get("/api/cob/runs", headers=customer)).status_code == 403


async def test_hourly_tick_queues_today_once_from_the_configured_hour(app, world) -> None:  # type: ignore[no-untyped-def]
    from namma.kit.clock import INDIA

    url = app.state.settings.database_url
    day = today_india()
    hour = get_settings().cob_hour  # what the tick reads
    if hour < 1:
        pytest.skip("NAMMA_COB_HOUR is set to 0 or off here")
    before = dt.datetime.combine(day, dt.time(hour - 1, 0), tzinfo=INDIA)
    at = dt.datetime.combine(day, dt.time(hour, 0), tzinfo=INDIA)
    assert (await cob_tick(job_app, at=before, db=app.state.db)).startswith("not yet")
    assert await cob_tick(job_app, at=at, db=app.state.db) == f"queued {day.isoformat()}"
    assert await cob_tick(job_app, at=at, db=app.state.db) == f"{day.isoformat()} already queued"
    jobs = _query(
        url, "SELECT args ->> 'business_date' FROM procrastinate_jobs WHERE task_name = 'cob:run'"
    )
    assert jobs == [(day.isoformat(),)]
    # The tick itself runs on the hour, India time (the engine's cron is UTC; India is +5:30).
    periodic = {p.task.name: p.cron for p in job_app.periodic_registry.periodic_tasks.values()}
    assert periodic["cob:tick"] == "30 * * * *"
    # Today completed (by hand, say): the tick does nothing more.
    await cob_execute(app.state.db, business_date=day)
    assert await cob_tick(job_app, at=at, db=app.state.db) == f"{day.isoformat()} already completed"
