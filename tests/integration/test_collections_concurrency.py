"""Collections under load, and the origin's defects not covered in test_collections.py.

- 200 clients post collections to 50 loans at once (issue 6, acceptance "concurrency"): no lost
  update, no double allocation, every installment's paid parts add up, receipts gapless, and
  the ledger check passes. (20 clients on one loan: test_collections.py.)
- Origin defect 2 (``principalPaid``/``interestPaid`` never filled in) and the part of defect 13
  about guessing rows by date (reversing the middle one of three same-day collections).
"""

from __future__ import annotations

import asyncio
import random
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select

from namma.finance import add_months
from namma.kit.db import transaction
from namma.ledger.queries import ledger_check
from namma.loans.service import today_india
from namma.models import (
    Collection,
    CollectionAllocation,
    CollectionStatus,
    Customer,
    Loan,
    LoanInstallment,
)
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    assert_consistent,
    collect,
    customer,
    installments_of,
    make_loan,
    product,
)

D = Decimal
LOANS = 50
CLIENTS = 200


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    # All 200 at once in one process, many from one user: the database's concurrency is what
    # is tested here, not the money rate limit nor the process's bound on requests in progress
    # (D-206, tested against a real server).
    return settings.model_copy(
        update={"rate_limit_money": "10000/minute", "server_concurrency": CLIENTS * 2}
    )


@pytest.fixture
async def rich_customer(app, customer):  # type: ignore[no-untyped-def]
    """Customer A, with an income that affords fifty loans at once (microfinance rule)."""
    async with transaction(app.state.db) as session:
        row = await session.get(Customer, customer.id)
        assert row is not None
        row.household_monthly_income = D("99999999.00")
    return customer


@pytest.mark.slow
async def test_two_hundred_clients_on_fifty_loans(
    app,
    client,
    world,
    bearer,
    product,
    rich_customer,
) -> None:  # type: ignore[no-untyped-def]
    loans = []
    for _ in range(LOANS):
        loans.append(
            await make_loan(app, client, bearer, world, product, amount="20000.00", installments=6)
        )
    agent = await bearer(world.agent_a)
    manager = await bearer(world.manager_a)
    rng = random.Random(20260601)
    # Four collections per loan, 1.00–5000.00 each: at most 20000.00, below the payoff of
    # 20200.00 (all principal + installment 1's interest, due today), so none is refused.
    posts = [
        (loans[n % LOANS], D(rng.randint(100, 500_000)) / 100, agent if n % 3 else manager)
        for n in range(CLIENTS)
    ]
    rng.shuffle(posts)
    responses = await asyncio.gather(
        *(collect(client, who, loan_id, f"{amount:.2f}") for loan_id, amount, who in posts)
    )
    assert [r.status_code for r in responses] == [201] * CLIENTS, [
        r.text for r in responses if r.status_code != 201
    ]
    # Receipts: 200 distinct, gapless in the branch.
    receipts = sorted(r.json()["receipt_number"] for r in responses)
    assert [int(r.rsplit("-", 1)[1]) for r in receipts] == list(range(1, CLIENTS + 1))

    expected: dict[str, Decimal] = {}
    for loan_id, amount, _ in posts:
        expected[loan_id] = expected.get(loan_id, D(0)) + amount
    async with transaction(app.state.db) as session:
        for loan_id in loans:
            lid = uuid.UUID(loan_id)
            loan = await session.get(Loan, lid)
            assert loan is not None
            rows = (
                await session.scalars(
                    select(LoanInstallment)
                    .where(LoanInstallment.loan_id == lid)
                    .order_by(LoanInstallment.number)
                )
            ).all()
            # No lost update: everything posted is on the installments (beyond installment 1,
            # due today, held as an advance) and the loan.
            paid = [r.principal_paid + r.interest_paid + r.fee_paid + r.penalty_paid for r in rows]
            assert sum(paid, D(0)) + loan.advance_balance == expected[loan_id]
            assert expected[loan_id] == loan.total_collected
            assert all(p == 0 for p in paid[1:])
            # No double allocation: nothing paid beyond what is due, and installments filled
            # oldest first (every installment before the last one touched is fully paid).
            for r in rows:
                assert r.principal_paid <= r.principal_due and r.interest_paid <= r.interest_due
            touched = [i for i, p in enumerate(paid) if p > 0]
            for r in rows[: touched[-1]]:
                assert (r.principal_paid, r.interest_paid) == (r.principal_due, r.interest_due)
            # Each installment's paid parts are the sum of the allocation rows that point at it.
            allocated = (
                await session.execute(
                    select(
                        CollectionAllocation.installment_number,
                        CollectionAllocation.principal,
                        CollectionAllocation.interest,
                    )
                    .join(Collection, Collection.id == CollectionAllocation.collection_id)
                    .where(Collection.loan_id == lid)
                    .where(Collection.status == CollectionStatus.POSTED)
                )
            ).all()
            for r in rows:
                mine = [(p, i) for n, p, i in allocated if n == r.number]
                assert sum((p for p, _ in mine), D(0)) == r.principal_paid
                assert sum((i for _, i in mine), D(0)) == r.interest_paid
            assert loan.outstanding_principal == sum(
                (r.principal_due - r.principal_paid for r in rows), D(0)
            )
        check = await ledger_check(session)
        assert check.ok, check.problems()
    for loan_id in loans[:5]:
        await assert_consistent(app, loan_id)


async def test_origin_defect_2_installments_record_paid_principal_and_interest(
    app,
    client,
    world,
    bearer,
    product,
    customer,
) -> None:  # type: ignore[no-untyped-def]
    """Origin defect 2: `EMISchedule.principalPaid` and `interestPaid` were never filled in.
    Here every collection writes what it paid on each installment, per component."""
    # Disbursed two months ago: installments 1 and 2 are due (money beyond the dues would be
    # held as an advance, not put on an installment).
    loan_id = await make_loan(
        app, client, bearer, world, product, disbursed_on=add_months(today_india(), -2)
    )
    agent = await bearer(world.agent_a)
    assert (await collect(client, agent, loan_id, "8884.88")).status_code == 201
    assert (await collect(client, agent, loan_id, "1500.00")).status_code == 201
    rows = await installments_of(app, loan_id)
    assert (rows[0].principal_paid, rows[0].interest_paid) == (D("7884.88"), D("1000.00"))
    assert rows[0].status.value == "paid" and rows[0].paid_at is not None
    # Installment 2: its own interest first (921.15), then 578.85 of principal.
    assert (rows[1].interest_paid, rows[1].principal_paid) == (D("921.15"), D("578.85"))
    assert rows[1].status.value == "partly_paid" and rows[1].paid_at is None
    assert all(r.principal_paid == r.interest_paid == 0 for r in rows[2:])
    await assert_consistent(app, loan_id)


async def test_origin_defect_13_reversing_the_middle_collection_undoes_only_it(
    app,
    client,
    world,
    bearer,
    product,
    customer,
) -> None:  # type: ignore[no-untyped-def]
    """Origin defect 13: a delete "unpaid" every schedule row paid on or after the collection's
    date, so removing one of three same-day payments undid all three. Here reversing the middle
    one takes off exactly its amount; the other two stay posted and re-allocate oldest first."""
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    first = (await collect(client, agent, loan_id, "3000.00")).json()
    middle = (await collect(client, agent, loan_id, "4000.00")).json()
    last = (await collect(client, agent, loan_id, "5000.00")).json()
    admin = await bearer(world.admin)
    reversed_ = await client.post(
        f"/api/collections/{middle['collection']['id']}/reverse",
        json={"reason": "duplicate entry"},
        headers=admin,
    )
    assert reversed_.status_code == 200, reversed_.text
    assert reversed_.json()["loan"]["total_collected"] == "8000.00"
    assert reversed_.json()["loan"]["status"] == "active"
    rows = await installments_of(app, loan_id)
    paid = [r.principal_paid + r.interest_paid for r in rows]
    # 8000 on installment 1 (8884.88 due): 1000.00 interest, 7000.00 principal; nothing beyond.
    assert (rows[0].interest_paid, rows[0].principal_paid) == (D("1000.00"), D("7000.00"))
    assert paid[1:] == [D(0)] * (len(rows) - 1)
    for c in (first, last):
        got = await client.get(f"/api/collections/{c['collection']['id']}", headers=admin)
        assert got.json()["status"] == "posted"
    await assert_consistent(app, loan_id)
