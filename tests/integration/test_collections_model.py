"""A hypothesis state machine against a plain reference model (issue 6, acceptance "property").

Random sequences of disbursements, collections (small, exactly the amount due now, exactly the
payoff — a pre-closure — and one paisa above the payoff, which must be refused), reversals (also
of an already reversed collection, which must be refused) run through the HTTP API; after every
step each loan's balances, installment states and ledger lines must agree with the model, and
money is conserved: per loan, cash collected = reduction in the loan portfolio + income, and
over the whole ledger Σ debits = Σ credits (the ledger check passes at the end of each example).
Waivers of interest and fees (a Manager's, spread oldest first over the installments due by
today; one paisa more than is owed must be refused) stay on the installments through reversals
and replays, and each is in the ledger's memorandum accounts.

The model (`LoanModel`) is independent of the application: plain Decimal bookkeeping of what
each installment owes and what each payment pays, per the default allocation (oldest
installment first; within it penalty, fee, interest, principal; money beyond the dues is held
as an advance, which a pre-closure uses). Its only input from the application is the schedule
(each installment's due date, period start, principal, interest and fee as the money core wrote
them). The payoff it
expects on a date: all unpaid principal, what is unpaid on installments due on or before the
date, and interest accrued pro rata in the current period less interest paid in advance;
future interest is waived. All collections are dated today (in India) and loans are disbursed
0–3 months back (the API's back-dating window is a week; the disbursement date is moved back
in the database before the schedule is written, as test_collections.py does).

Async and hypothesis: the machine is synchronous. The test (async, on pytest-asyncio's loop)
runs the whole machine in a worker thread (`asyncio.to_thread`), and each rule hands its
coroutine back to that loop with `asyncio.run_coroutine_threadsafe(...).result()`. So the app,
its database pool and the ASGI client all stay on the one loop that created them, while the
loop is free to serve them because the test itself is only awaiting the thread.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import Coroutine
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hsettings
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import func, select

from namma.audit.service import AuditActor
from namma.finance import add_months
from namma.kit.db import transaction
from namma.ledger.queries import ledger_check
from namma.loans.service import loan_schedules_regenerate, today_india
from namma.models import (
    AccountKind,
    AgentAssignment,
    Customer,
    JournalLine,
    KycStatus,
    LedgerAccount,
    Loan,
    LoanInstallment,
)
from tests.integration.test_collections import product  # noqa: F401  (fixture)

D = Decimal
ZERO = D("0.00")
CENT = D("0.01")
MAX_LOANS = 3
CASH_KINDS = (AccountKind.AGENT_CASH, AccountKind.BRANCH_CASH, AccountKind.BANK)
INCOME_KINDS = (AccountKind.INTEREST_INCOME, AccountKind.FEE_INCOME, AccountKind.PENALTY_INCOME)
PARTS = ("penalty", "fee", "interest", "principal")  # the default order within an installment


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    # Hundreds of loans and collections from one user per test; the limits are tested elsewhere.
    return settings.model_copy(
        update={"rate_limit_money": "100000/minute", "rate_limit_writes": "100000/minute"}
    )


# --- the reference model ------------------------------------------------------------------------


@dataclass
class Inst:
    number: int
    due_date: dt.date
    period_start: dt.date
    interest_for_period: Decimal
    due: dict[str, Decimal]
    paid: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(PARTS, ZERO))
    # Waived by a pre-closure (replayed with the collections) and by a Manager (kept).
    waived: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(PARTS, ZERO))
    manual: dict[str, Decimal] = field(default_factory=lambda: dict.fromkeys(PARTS, ZERO))

    def owed(self, part: str) -> Decimal:
        return self.due[part] - self.paid[part] - self.waived[part] - self.manual[part]

    @property
    def total_owed(self) -> Decimal:
        return sum((self.owed(p) for p in PARTS), ZERO)

    @property
    def total_paid(self) -> Decimal:
        return sum(self.paid.values(), ZERO)

    def status(self, today: dt.date, refreshed: bool = True) -> str:
        if self.total_owed == 0:
            return "paid"
        if not refreshed:
            return "due"
        if self.due_date < today:
            return "overdue"
        return "partly_paid" if self.total_paid > 0 else "due"


@dataclass
class Coll:
    id: str
    amount: Decimal
    preclosure: bool
    posted: bool = True


class Refused(Exception):
    """What the model expects the API to refuse, with the status code."""

    def __init__(self, status: int) -> None:
        self.status = status


@dataclass
class LoanModel:
    id: str
    principal: Decimal
    net_disbursed: Decimal
    rows: list[Inst]
    status: str = "active"
    collections: list[Coll] = field(default_factory=list)
    waivers: list[Decimal] = field(default_factory=list)
    # Money beyond the dues, held as an advance (a liability) until installments fall due.
    advance: Decimal = ZERO
    # Days past due and "overdue" are denormalised whenever the loan's money changes, from the
    # schedule's writing on (a back-dated disbursement's late installments start overdue).
    refreshed: bool = True

    # what is owed
    def scheduled(self) -> Decimal:
        return sum((i.total_owed for i in self.rows), ZERO)

    def due_now(self, on: dt.date) -> Decimal:
        return sum((i.total_owed for i in self.rows if i.due_date <= on), ZERO)

    def _accrued(self, on: dt.date) -> Decimal:
        """Interest earned in the current period up to ``on`` (pro rata for its elapsed days),
        less interest already paid in advance on future installments."""
        earned = ZERO
        advance = ZERO
        for i in self.rows:
            if i.due_date <= on:
                continue
            advance += i.paid["interest"]
            if i.period_start < on:
                elapsed = (on - i.period_start).days
                length = (i.due_date - i.period_start).days
                earned += (i.interest_for_period * elapsed / length).quantize(CENT, ROUND_HALF_UP)
        return max(ZERO, earned - advance)

    def payoff(self, on: dt.date) -> Decimal:
        total = sum((i.owed("principal") + i.owed("penalty") for i in self.rows), ZERO)
        total += sum(
            (i.owed("interest") + i.owed("fee") for i in self.rows if i.due_date <= on), ZERO
        )
        accrued = self._accrued(on)
        for i in self.rows:
            if i.due_date > on:
                take = min(accrued, i.owed("interest"))
                accrued -= take
                total += take
        return total

    # what a payment does
    def _allocate(self, amount: Decimal, on: dt.date) -> None:
        """Pay what is due by ``on``, oldest first; hold the rest as an advance."""
        left = amount
        for i in self.rows:
            if i.due_date > on:
                continue
            for part in PARTS:
                take = min(left, i.owed(part))
                i.paid[part] += take
                left -= take
        self.advance += left

    def _settle(self, on: dt.date) -> None:
        accrued = self._accrued(on)
        for i in self.rows:
            if i.due_date <= on:
                for part in PARTS:
                    i.paid[part] += i.owed(part)
                continue
            i.paid["principal"] += i.owed("principal")
            i.paid["penalty"] += i.owed("penalty")
            take = min(accrued, i.owed("interest"))
            accrued -= take
            i.paid["interest"] += take
            i.waived["interest"] += i.owed("interest")
            i.waived["fee"] += i.owed("fee")

    def _apply(self, c: Coll, on: dt.date) -> bool:
        """Apply one collection; True if it pre-closed the loan."""
        payoff = self.payoff(on)
        if c.preclosure and c.amount + self.advance == payoff and payoff < self.scheduled():
            self._settle(on)  # the advance held pays its part
            self.advance = ZERO
            return True
        if c.amount + self.advance > payoff:
            raise Refused(409)
        self._allocate(c.amount, on)
        return False

    def collect(self, amount: Decimal, on: dt.date, cid: str) -> None:
        if self.status != "active":
            raise Refused(409)
        payoff = self.payoff(on)
        if amount + self.advance > payoff:
            raise Refused(422)
        preclosure = amount + self.advance == payoff and payoff < self.scheduled()
        c = Coll(cid, amount, preclosure)
        self._apply(c, on)
        self.collections.append(c)
        self.refreshed = True
        if preclosure:
            self.status = "preclosed"
        elif self.scheduled() == 0:
            self.status = "closed"

    def reverse(self, c: Coll, on: dt.date) -> None:
        """Mark ``c`` reversed and replay the rest in order (all dated ``on``)."""
        if not c.posted:
            raise Refused(409)
        saved = [(dict(i.paid), dict(i.waived)) for i in self.rows]
        flags = [x.preclosure for x in self.collections]
        held = self.advance
        self.advance = ZERO
        for i in self.rows:
            i.paid = dict.fromkeys(PARTS, ZERO)
            i.waived = dict.fromkeys(PARTS, ZERO)
        preclosed = False
        try:
            for x in self.collections:
                if x.posted and x is not c:
                    preclosed = self._apply(x, on)
                    x.preclosure = preclosed
        except Refused:
            for i, (paid, waived) in zip(self.rows, saved, strict=True):
                i.paid, i.waived = paid, waived
            for x, flag in zip(self.collections, flags, strict=True):
                x.preclosure = flag
            self.advance = held
            raise
        c.posted = False
        self.refreshed = True
        if self.scheduled() == 0:
            self.status = "preclosed" if preclosed else "closed"
        else:
            self.status = "active"

    def waive(self, part: str, amount: Decimal, on: dt.date) -> None:
        """A Manager's waiver of ``part`` over the installments due by ``on``, oldest first."""
        if self.status != "active":
            raise Refused(409)
        rows = [i for i in self.rows if i.due_date <= on]
        if amount > sum((i.owed(part) for i in rows), ZERO):
            raise Refused(422)
        left = amount
        for i in rows:
            take = min(left, i.owed(part))
            i.manual[part] += take
            left -= take
        self.waivers.append(amount)
        if self.scheduled() == 0:
            self.status = "closed"

    # the loan's balances, as the application denormalises them
    def balances(self, today: dt.date) -> dict[str, Any]:
        unpaid = [i for i in self.rows if i.total_owed > 0]
        arrears = [
            i.due_date
            for i in self.rows
            if i.due_date < today and i.owed("principal") + i.owed("interest") + i.owed("fee") > 0
        ]
        return {
            "status": self.status,
            "outstanding_principal": sum((i.owed("principal") for i in self.rows), ZERO),
            "outstanding_interest": sum((i.owed("interest") for i in self.rows), ZERO),
            "outstanding_fees": sum((i.owed("fee") for i in self.rows), ZERO),
            "outstanding_penalties": sum((i.owed("penalty") for i in self.rows), ZERO),
            "total_collected": sum((c.amount for c in self.collections if c.posted), ZERO),
            "advance_balance": self.advance,
            "next_due_on": min((i.due_date for i in unpaid), default=None),
            "days_past_due": (today - min(arrears)).days if arrears and self.refreshed else 0,
        }

    def paid_total(self, part: str) -> Decimal:
        return sum((i.paid[part] for i in self.rows), ZERO)


# --- the machine --------------------------------------------------------------------------------


class Harness:
    """What the machine needs from the test: the loop, the app, the client and the actors."""

    def __init__(self, loop, app, client, world, product_, headers) -> None:  # type: ignore[no-untyped-def]
        self.loop = loop
        self.app = app
        self.client = client
        self.world = world
        self.product = product_
        self.headers = headers

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=120)


async def _new_customer(h: Harness) -> uuid.UUID:
    async with transaction(h.app.state.db) as session:
        c = Customer(
            branch_id=h.world.branch_a.id,
            name="Model Customer",
            phone="8" + str(uuid.uuid4().int)[:9],
            village="Hosur",
            kyc_status=KycStatus.VERIFIED,
            household_monthly_income=D("10000000.00"),
        )
        session.add(c)
        await session.flush()
        session.add(AgentAssignment(customer_id=c.id, agent_id=h.world.agent_a.id))
        return c.id


async def _disburse(
    h: Harness, *, amount: Decimal, installments: int, rate: str, months_ago: int
) -> LoanModel:
    customer_id = await _new_customer(h)
    applied = await h.client.post(
        "/api/loans",
        json={
            "customer_id": str(customer_id),
            "product_id": h.product["id"],
            "amount": f"{amount:.2f}",
            "annual_rate": rate,
            "installments": installments,
        },
        headers=h.headers["agent"],
    )
    assert applied.status_code == 201, applied.text
    loan_id = applied.json()["id"]
    manager = h.headers["manager"]
    approved = await h.client.post(f"/api/loans/{loan_id}/approve", headers=manager)
    assert approved.status_code == 200, approved.text
    today = today_india()
    disbursed = await h.client.post(
        f"/api/loans/{loan_id}/disburse",
        json={"disbursed_on": today.isoformat(), "method": "cash"},
        headers=manager,
    )
    assert disbursed.status_code == 201, disbursed.text
    async with transaction(h.app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None
        loan.disbursed_on = add_months(today, -months_ago)
    async with transaction(h.app.state.db) as session:
        # The schedule again, from the back-dated disbursement (nothing is paid on it yet).
        regenerated = await loan_schedules_regenerate(
            session, loan_ids=[uuid.UUID(loan_id)], actor=AuditActor.system()
        )
        assert not regenerated.skipped, regenerated.skipped
    async with transaction(h.app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None
        schedule = (
            await session.scalars(
                select(LoanInstallment)
                .where(LoanInstallment.loan_id == loan.id)
                .order_by(LoanInstallment.number)
            )
        ).all()
        rows = [
            Inst(
                number=r.number,
                due_date=r.due_date,
                period_start=r.period_start,
                interest_for_period=r.interest_for_period,
                due={
                    "principal": r.principal_due,
                    "interest": r.interest_due,
                    "fee": r.fee_due,
                    "penalty": r.penalty_due,
                },
            )
            for r in schedule
        ]
        assert sum((r.due["principal"] for r in rows), ZERO) == amount
        return LoanModel(loan_id, amount, loan.net_disbursed or amount, rows)


async def _observed(h: Harness, model: LoanModel) -> dict[str, Any]:
    """The loan as the database has it, and its ledger lines by account kind."""
    lid = uuid.UUID(model.id)
    async with transaction(h.app.state.db) as session:
        loan = await session.get(Loan, lid)
        assert loan is not None
        rows = (
            await session.scalars(
                select(LoanInstallment)
                .where(LoanInstallment.loan_id == lid)
                .order_by(LoanInstallment.number)
            )
        ).all()
        ledger = dict(
            (
                await session.execute(
                    select(LedgerAccount.kind, func.sum(JournalLine.debit - JournalLine.credit))
                    .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
                    .where(JournalLine.loan_id == lid)
                    .group_by(LedgerAccount.kind)
                )
            ).all()
        )
        return {
            "balances": {
                "status": loan.status.value,
                "outstanding_principal": loan.outstanding_principal,
                "outstanding_interest": loan.outstanding_interest,
                "outstanding_fees": loan.outstanding_fees,
                "outstanding_penalties": loan.outstanding_penalties,
                "total_collected": loan.total_collected,
                "advance_balance": loan.advance_balance,
                "next_due_on": loan.next_due_on,
                "days_past_due": loan.days_past_due,
            },
            "installments": [
                (
                    r.number,
                    {
                        "principal": r.principal_paid,
                        "interest": r.interest_paid,
                        "fee": r.fee_paid,
                        "penalty": r.penalty_paid,
                    },
                    {"interest": r.interest_waived, "fee": r.fee_waived},
                    r.status.value,
                )
                for r in rows
            ],
            "ledger": {k: D(v) for k, v in ledger.items()},
        }


class CollectionsMachine(RuleBasedStateMachine):
    h: Harness  # set on the subclass made by the test

    def __init__(self) -> None:
        super().__init__()
        self.loans: list[LoanModel] = []
        self.today = today_india()

    def _disburse(self, amount: int, installments: int, rate: str, months_ago: int) -> None:
        loan = self.h.run(
            _disburse(
                self.h,
                amount=D(amount),
                installments=installments,
                rate=rate,
                months_ago=min(months_ago, installments),
            )
        )
        self.loans.append(loan)

    @initialize(
        amount=st.sampled_from([5000, 12000, 30000, 100000]),
        installments=st.sampled_from([1, 2, 3, 6, 12]),
        rate=st.sampled_from(["0", "12", "24"]),
        months_ago=st.integers(0, 3),
    )
    def first_loan(self, amount: int, installments: int, rate: str, months_ago: int) -> None:
        self._disburse(amount, installments, rate, months_ago)

    @precondition(lambda self: len(self.loans) < MAX_LOANS)
    @rule(
        amount=st.sampled_from([5000, 12000, 30000, 100000]),
        installments=st.sampled_from([1, 2, 3, 6, 12]),
        rate=st.sampled_from(["0", "12", "24"]),
        months_ago=st.integers(0, 3),
    )
    def disburse(self, amount: int, installments: int, rate: str, months_ago: int) -> None:
        self._disburse(amount, installments, rate, months_ago)

    @rule(
        which=st.integers(0, MAX_LOANS - 1),
        kind=st.sampled_from(["small"] * 4 + ["due_now"] * 2 + ["payoff", "above_payoff"]),
        cents=st.integers(1, 2_500_000),
        who=st.sampled_from(["agent", "manager", "manager_upi"]),
    )
    def collect(self, which: int, kind: str, cents: int, who: str) -> None:
        loan = self.loans[which % len(self.loans)]
        payoff = loan.payoff(self.today)
        amount = {
            "small": D(cents) / 100,
            "due_now": loan.due_now(self.today),
            "payoff": payoff,
            "above_payoff": payoff + CENT,
        }[kind]
        if amount <= 0:
            amount = CENT
        body: dict[str, Any] = {"loan_id": loan.id, "amount": f"{amount:.2f}"}
        headers = self.h.headers["agent" if who == "agent" else "manager"]
        if who == "manager_upi":
            body |= {"method": "upi", "reference": f"UPI-{cents}"}
        response = self.h.run(
            self.h.client.post(
                "/api/collections",
                json=body,
                headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
            )
        )
        try:
            expected = 201
            cid = response.json()["collection"]["id"] if response.status_code == 201 else ""
            loan.collect(amount, self.today, cid)
        except Refused as refused:
            expected = refused.status
        assert response.status_code == expected, (kind, str(amount), payoff, response.text)
        if expected == 201:
            assert response.json()["collection"]["preclosure"] is loan.collections[-1].preclosure

    @rule(which=st.integers(0, MAX_LOANS - 1), pick=st.integers(0, 50), again=st.booleans())
    def reverse(self, which: int, pick: int, again: bool) -> None:
        """Reverse a posted collection, or (now and then) one already reversed: 409."""
        loan = self.loans[which % len(self.loans)]
        posted = [c for c in loan.collections if c.posted]
        candidates = loan.collections if again or not posted else posted
        if not candidates:
            return
        c = candidates[pick % len(candidates)]
        response = self.h.run(
            self.h.client.post(
                f"/api/collections/{c.id}/reverse",
                json={"reason": "model: reversed"},
                headers=self.h.headers["admin"],
            )
        )
        try:
            expected = 200
            loan.reverse(c, self.today)
        except Refused as refused:
            expected = refused.status
        assert response.status_code == expected, response.text

    @rule(
        which=st.integers(0, MAX_LOANS - 1),
        part=st.sampled_from(["interest", "fee"]),
        kind=st.sampled_from(["part", "part", "all", "above"]),
        cents=st.integers(1, 500_000),
    )
    def waive(self, which: int, part: str, kind: str, cents: int) -> None:
        """A Manager waives part of, all of, or a paisa more than the interest or fees due."""
        loan = self.loans[which % len(self.loans)]
        owed = sum((i.owed(part) for i in loan.rows if i.due_date <= self.today), ZERO)
        amount = {
            "part": min(owed, D(cents) / 100),
            "all": owed,
            "above": owed + CENT,
        }[kind]
        if amount <= 0:
            amount = CENT
        response = self.h.run(
            self.h.client.post(
                f"/api/loans/{loan.id}/waivers",
                json={"component": part, "amount": f"{amount:.2f}", "reason": "model: waiver"},
                headers=self.h.headers["manager"],
            )
        )
        try:
            expected = 201
            loan.waive(part, amount, self.today)
        except Refused as refused:
            expected = refused.status
        assert response.status_code == expected, (kind, str(amount), response.text)

    @invariant()
    def agrees_with_the_model(self) -> None:
        for loan in self.loans:
            seen = self.h.run(_observed(self.h, loan))
            assert seen["balances"] == loan.balances(self.today), loan.id
            expected_rows = [
                (
                    i.number,
                    i.paid,
                    {
                        "interest": i.waived["interest"] + i.manual["interest"],
                        "fee": i.waived["fee"] + i.manual["fee"],
                    },
                    i.status(self.today, loan.refreshed),
                )
                for i in loan.rows
            ]
            assert seen["installments"] == expected_rows, loan.id
            # The ledger, per loan: the portfolio holds the unpaid principal, income accounts
            # what was paid of interest, fees and penalties, cash what was collected.
            ledger = seen["ledger"]
            portfolio = ledger.get(AccountKind.LOAN_PORTFOLIO, ZERO)
            assert portfolio == loan.balances(self.today)["outstanding_principal"]
            income = {k: -ledger.get(k, ZERO) for k in INCOME_KINDS}
            deducted = loan.principal - loan.net_disbursed  # fees kept at disbursement
            assert income[AccountKind.INTEREST_INCOME] == loan.paid_total("interest")
            assert income[AccountKind.FEE_INCOME] == loan.paid_total("fee") + deducted
            assert income[AccountKind.PENALTY_INCOME] == loan.paid_total("penalty")
            cash = sum((ledger.get(k, ZERO) for k in CASH_KINDS), ZERO) + loan.net_disbursed
            collected = loan.balances(self.today)["total_collected"]
            assert cash == collected
            # The advance held is a liability tagged with the loan.
            advance = -ledger.get(AccountKind.CUSTOMER_ADVANCES, ZERO)
            assert advance == loan.advance
            # Conservation: cash collected = reduction in receivables + income + advance held.
            assert cash == (
                (loan.principal - portfolio) + sum(income.values(), ZERO) - deducted + advance
            )
            assert sum(ledger.values(), ZERO) == 0
            # Every waiver is in the memorandum pair, tagged with the loan.
            assert ledger.get(AccountKind.WAIVERS_MEMO, ZERO) == sum(loan.waivers, ZERO)
            assert ledger.get(AccountKind.WAIVERS_MEMO_CONTRA, ZERO) == -sum(loan.waivers, ZERO)

    def teardown(self) -> None:
        ours = [loan.id for loan in self.loans]

        async def check() -> None:
            async with transaction(self.h.app.state.db) as session:
                result = await ledger_check(session)
                # Only this example's loans: an earlier failed example must not fail every
                # later one (shrinking would never end).
                mine = [m.describe() for m in result.loan_mismatches if str(m.loan_id) in ours] + [
                    u.describe() for u in result.unbalanced
                ]
                assert not mine, mine
                total = (
                    await session.execute(
                        select(func.sum(JournalLine.debit), func.sum(JournalLine.credit))
                    )
                ).one()
                assert total[0] == total[1]

        if self.loans:
            self.h.run(check())


@pytest.mark.slow
async def test_collections_agree_with_the_reference_model(
    app,
    client,
    world,
    bearer,
    product,
) -> None:  # type: ignore[no-untyped-def]
    headers = {
        "agent": await bearer(world.agent_a),
        "manager": await bearer(world.manager_a),
        "admin": await bearer(world.admin),
    }
    harness = Harness(asyncio.get_running_loop(), app, client, world, product, headers)

    class Machine(CollectionsMachine):
        h = harness

    await asyncio.to_thread(
        run_state_machine_as_test,
        Machine,
        settings=hsettings(
            max_examples=40,
            stateful_step_count=10,
            deadline=None,
            database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
