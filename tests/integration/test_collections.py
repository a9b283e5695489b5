"""Collections through HTTP against real PostgreSQL: the golden allocation, partial and advance
payments, closure, pre-closure, idempotency (also under concurrency), 20 concurrent collections
on one loan, reversal with re-allocation, and the origin's defects (interest-first allocation,
delete instead of reverse, customers posting collections)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from namma.finance import add_months
from namma.kit.db import transaction
from namma.loans.service import today_india
from namma.models import (
    AccountKind,
    AdvanceApplication,
    AuditEntry,
    Collection,
    Customer,
    JournalEntry,
    JournalLine,
    KycStatus,
    LedgerAccount,
    Loan,
    LoanInstallment,
    LoanStatus,
)
from tests.factories import loan_active

MONTHLY_PRODUCT = {
    "code": "IGL-M",
    "name": "Individual, monthly",
    "terms": {"frequency": "monthly"},
    "limits": {
        "min_principal": "5000.00",
        "max_principal": "200000.00",
        "min_rate": "0",
        "max_rate": "26",
        "default_rate": "12",
        "min_installments": 1,
        "max_installments": 24,
    },
}
D = Decimal


@pytest.fixture
def settings(settings):  # type: ignore[no-untyped-def]
    # Many money requests from one user in one test; the limit itself is tested elsewhere.
    return settings.model_copy(update={"rate_limit_money": "10000/minute"})


@pytest.fixture
async def product(client, world, bearer):  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/products", json=MONTHLY_PRODUCT, headers=await bearer(world.admin)
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
async def customer(app, world):  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        row = await session.get(Customer, world.customer_a.id)
        assert row is not None
        row.kyc_status = KycStatus.VERIFIED
        row.household_monthly_income = D("100000.00")
    return world.customer_a


async def make_loan(  # type: ignore[no-untyped-def]
    app,
    client,
    bearer,
    world,
    product,
    *,
    amount: str = "100000.00",
    installments: int = 12,
    rate: str = "12",
    disbursed_on: dt.date | None = None,
) -> str:
    """An active loan of customer A (agent A, manager A) with its schedule written, disbursed on
    ``disbursed_on`` (default: a month ago, so that installment 1 falls due today)."""
    return await loan_active(
        app, client, bearer, product, customer_id=world.customer_a.id, agent=world.agent_a,
        manager=world.manager_a, amount=amount, installments=installments, rate=rate,
        disbursed_on=disbursed_on,
    )  # fmt: skip


async def collect(  # type: ignore[no-untyped-def]
    client,
    headers: dict[str, str],
    loan_id: str,
    amount: str,
    *,
    on: dt.date | None = None,
    key: str | None = None,
    **extra: Any,
):
    body = {"loan_id": loan_id, "amount": amount, **extra}
    if on is not None:
        body["collected_on"] = on.isoformat()
    return await client.post(
        "/api/collections",
        json=body,
        headers={**headers, "Idempotency-Key": key or str(uuid.uuid4())},
    )


async def installments_of(app, loan_id: str) -> list[LoanInstallment]:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        return list(
            (
                await session.scalars(
                    select(LoanInstallment)
                    .where(LoanInstallment.loan_id == uuid.UUID(loan_id))
                    .order_by(LoanInstallment.number)
                )
            ).all()
        )


async def assert_consistent(app, loan_id: str) -> None:  # type: ignore[no-untyped-def]
    """Σ installment paid parts = Σ posted collections less what they hold as an advance and the
    principal they prepaid, plus the advances applied; Σ posted collections = the loan's total
    collected; the advance held = Σ held less Σ applied; each collection's allocation rows add
    up to its amount less its advance and its prepaid principal; and the ledger check passes."""
    from namma.collections.service import loan_balances_refresh  # noqa: F401
    from namma.ledger.queries import ledger_check
    from namma.models import CollectionAllocation, CollectionStatus

    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None
        rows = (
            await session.scalars(select(LoanInstallment).where(LoanInstallment.loan_id == loan.id))
        ).all()
        paid = sum(
            (r.principal_paid + r.interest_paid + r.fee_paid + r.penalty_paid for r in rows),
            D(0),
        )
        posted = (
            await session.scalars(
                select(Collection)
                .where(Collection.loan_id == loan.id)
                .where(Collection.status == CollectionStatus.POSTED)
            )
        ).all()
        applied = (
            await session.scalars(
                select(AdvanceApplication).where(AdvanceApplication.loan_id == loan.id)
            )
        ).all()
        applied_total = sum((a.principal + a.interest + a.fee + a.penalty for a in applied), D(0))
        held = sum((c.advance for c in posted), D(0))
        prepaid = sum((c.prepaid_principal for c in posted), D(0))
        assert paid == sum((c.amount for c in posted), D(0)) - held - prepaid + applied_total
        assert sum((c.amount for c in posted), D(0)) == loan.total_collected
        assert loan.advance_balance == held - applied_total
        for c in posted:
            parts = (
                await session.scalars(
                    select(CollectionAllocation).where(CollectionAllocation.collection_id == c.id)
                )
            ).all()
            assert sum((a.principal + a.interest + a.fee + a.penalty for a in parts), D(0)) == (
                c.amount - c.advance - c.prepaid_principal
            )
        assert loan.outstanding_principal == sum(
            (r.principal_due - r.principal_paid for r in rows), D(0)
        )
        # The overdue amount kept with the balances: what the installments due before the day
        # they are for still owe, every component (D-179).
        if loan.status is LoanStatus.ACTIVE:
            assert loan.balances_as_of is not None
            assert loan.overdue_amount == sum(
                (
                    (r.principal_due - r.principal_paid)
                    + (r.interest_due - r.interest_paid - r.interest_waived)
                    + (r.fee_due - r.fee_paid - r.fee_waived)
                    + (r.penalty_due - r.penalty_paid - r.penalty_waived)
                    for r in rows
                    if r.due_date < loan.balances_as_of
                ),
                D(0),
            ), (loan.overdue_amount, loan.balances_as_of)
        check = await ledger_check(session)
        assert check.ok, check.problems()


# --- the golden flow -----------------------------------------------------------------------


async def test_first_installment_pays_its_own_interest_and_principal(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    """Origin defect 1: it allocated against the loan's preloaded total interest (6618.53 of
    8884.88 to interest). Here installment 1 gets exactly 7884.88 + 1000.00."""
    loan_id = await make_loan(app, client, bearer, world, product)
    today = today_india()
    response = await collect(client, await bearer(world.agent_a), loan_id, "8884.88", on=today)
    assert response.status_code == 201, response.text
    body = response.json()
    year = today.year
    assert re.fullmatch(rf"BLR01-R-{year}-000001", body["receipt_number"])
    assert body["allocation"] == [
        {
            "installment_number": 1,
            "due_date": today.isoformat(),
            "principal": "7884.88",
            "interest": "1000.00",
            "fee": "0.00",
            "penalty": "0.00",
            "total": "8884.88",
            "interest_waived": "0.00",
            "fee_waived": "0.00",
            "penalty_waived": "0.00",
            "installment_status": "paid",
        }
    ]
    collection = body["collection"]
    assert (collection["principal"], collection["interest"]) == ("7884.88", "1000.00")
    assert collection["status"] == "posted" and collection["method"] == "cash"
    loan = body["loan"]
    assert loan["outstanding_principal"] == "92115.12"
    assert loan["outstanding_interest"] == "5618.53"  # 6618.53 scheduled − 1000.00
    assert loan["total_collected"] == "8884.88"
    assert loan["next_due_on"] == add_months(today, 1).isoformat()
    assert loan["status"] == "active" and loan["days_past_due"] == 0

    async with transaction(app.state.db) as session:
        entry = await session.get(JournalEntry, collection["journal_entry_id"])
        assert entry is not None and entry.kind == "collection"
        lines = (
            await session.execute(
                select(
                    LedgerAccount.kind,
                    LedgerAccount.agent_id,
                    JournalLine.debit,
                    JournalLine.credit,
                )
                .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
                .where(JournalLine.entry_id == entry.id)
            )
        ).all()
        assert sorted((k.value, a, d, c) for k, a, d, c in lines) == sorted(
            [
                (AccountKind.AGENT_CASH.value, world.agent_a.id, D("8884.88"), D("0.00")),
                (AccountKind.LOAN_PORTFOLIO.value, None, D("0.00"), D("7884.88")),
                (AccountKind.INTEREST_INCOME.value, None, D("0.00"), D("1000.00")),
            ]
        )
        audit = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "collection.recorded")
        )
        assert audit is not None and audit.entity_id == collection["id"]
        agent_cash = await session.scalar(
            select(LedgerAccount.id).where(
                LedgerAccount.kind == AccountKind.AGENT_CASH,
                LedgerAccount.agent_id == world.agent_a.id,
            )
        )
    # The agent's cash statement names the receipt of the line (the entry's memo names the loan).
    statement = await client.get(
        f"/api/ledger/accounts/{agent_cash}/statement", headers=await bearer(world.manager_a)
    )
    assert statement.status_code == 200, statement.text
    [line] = statement.json()["lines"]
    assert line["receipt_number"] == body["receipt_number"]
    assert line["debit"] == "8884.88"
    assert line["memo"] == f"Collection on {collection['loan_number']}"
    # Read back, in scope.
    got = await client.get(
        f"/api/collections/{collection['id']}", headers=await bearer(world.customer_user_a)
    )
    assert got.status_code == 200 and got.json()["receipt_number"] == body["receipt_number"]
    other = await client.get(
        f"/api/collections/{collection['id']}", headers=await bearer(world.manager_b)
    )
    assert other.status_code == 404
    await assert_consistent(app, loan_id)


async def test_partial_then_advance_payments(app, client, world, bearer, product, customer) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    partial = await collect(client, agent, loan_id, "1500.00")
    assert partial.status_code == 201, partial.text
    line = partial.json()["allocation"][0]
    # Per installment: interest before principal.
    assert (line["interest"], line["principal"], line["installment_status"]) == (
        "1000.00",
        "500.00",
        "partly_paid",
    )
    # 10000 more: the rest of installment 1 (7384.88); the other 2615.12 is held as an advance
    # (a liability) for installment 2, which is not touched until it falls due.
    advance = await collect(client, agent, loan_id, "10000.00")
    assert advance.status_code == 201, advance.text
    body = advance.json()
    lines = body["allocation"]
    assert [(x["installment_number"], x["principal"], x["interest"]) for x in lines] == [
        (1, "7384.88", "0.00"),
    ]
    assert [x["installment_status"] for x in lines] == ["paid"]
    assert body["collection"]["advance"] == "2615.12"
    assert body["loan"]["advance_balance"] == "2615.12"
    rows = await installments_of(app, loan_id)
    assert rows[1].principal_paid == D("0.00") and rows[1].interest_paid == D("0.00")
    assert body["loan"]["next_due_on"] == rows[1].due_date.isoformat()
    await assert_consistent(app, loan_id)


async def test_last_payment_closes_the_loan(app, client, world, bearer, product, customer) -> None:  # type: ignore[no-untyped-def]
    """A 3-month loan whose last installment falls due today: paying everything scheduled is
    exactly the payoff on that day, and closes the loan (closed, not pre-closed)."""
    today = today_india()
    loan_id = await make_loan(
        app,
        client,
        bearer,
        world,
        product,
        amount="30000.00",
        installments=3,
        disbursed_on=add_months(today, -3),
    )
    rows = await installments_of(app, loan_id)
    owed = sum((r.principal_due + r.interest_due for r in rows), D(0))
    manager = await bearer(world.manager_a)
    quote = (await client.get(f"/api/loans/{loan_id}/preclosure", headers=manager)).json()
    assert D(quote["total"]) == owed == D(quote["scheduled_remaining"])
    assert quote["waived_interest"] == "0.00"
    # The loan is 2 installments overdue before paying.
    assert (await client.get(f"/api/loans/{loan_id}", headers=manager)).json()["status"] == "active"
    paid = await collect(client, manager, loan_id, str(owed))
    assert paid.status_code == 201, paid.text
    body = paid.json()
    assert body["loan"]["status"] == "closed"
    assert body["loan"]["outstanding_principal"] == "0.00"
    assert body["loan"]["next_due_on"] is None and body["loan"]["days_past_due"] == 0
    assert body["collection"]["preclosure"] is False
    assert {x["installment_status"] for x in body["allocation"]} == {"paid"}
    # A manager's cash goes to the branch's cash.
    async with transaction(app.state.db) as session:
        kinds = (
            await session.scalars(
                select(LedgerAccount.kind)
                .join(JournalLine, JournalLine.account_id == LedgerAccount.id)
                .where(JournalLine.entry_id == body["collection"]["journal_entry_id"])
                .where(JournalLine.debit > 0)
            )
        ).all()
        assert kinds == [AccountKind.BRANCH_CASH]
    again = await collect(client, manager, loan_id, "1.00")
    assert again.status_code == 409
    await assert_consistent(app, loan_id)


async def test_paying_the_payoff_precloses_and_more_is_refused(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    today = today_india()
    quote = await client.get(
        f"/api/loans/{loan_id}/preclosure", params={"as_of": today.isoformat()}, headers=agent
    )
    assert quote.status_code == 200, quote.text
    q = quote.json()
    # On installment 1's due date: all principal + installment 1's interest; the rest waived.
    assert (q["principal"], q["overdue_interest"], q["accrued_interest"]) == (
        "100000.00",
        "1000.00",
        "0.00",
    )
    assert q["total"] == "101000.00"
    assert q["waived_interest"] == "5618.53"
    too_much = await collect(client, agent, loan_id, "101000.01")
    assert too_much.status_code == 422
    assert "101000.00" in too_much.json()["error"]["message"]
    paid = await collect(client, agent, loan_id, "101000.00")
    assert paid.status_code == 201, paid.text
    body = paid.json()
    assert body["loan"]["status"] == "preclosed"
    assert body["collection"]["preclosure"] is True
    assert (body["collection"]["principal"], body["collection"]["interest"]) == (
        "100000.00",
        "1000.00",
    )
    assert body["loan"]["outstanding_interest"] == "0.00"
    waived = sum(D(x["interest_waived"]) for x in body["allocation"])
    assert waived == D("5618.53")
    await assert_consistent(app, loan_id)


async def test_bad_input_and_customers_cannot_record(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    """Origin defect 7: customers could record collections on their own loans."""
    loan_id = await make_loan(app, client, bearer, world, product)
    own = await collect(client, await bearer(world.customer_user_a), loan_id, "100.00")
    assert own.status_code == 403
    agent = await bearer(world.agent_a)
    today = today_india()
    cases = [
        ({"amount": "0.00"}, "amount"),
        ({"amount": "-5.00"}, "amount"),
        ({"amount": 100}, "amount"),  # a JSON number
        ({"amount": "1.001"}, "amount"),
        ({"collected_on": (today + dt.timedelta(days=1)).isoformat()}, "collected_on"),
        ({"collected_on": (today - dt.timedelta(days=8)).isoformat()}, "collected_on"),
        ({"method": "upi"}, "reference"),
    ]
    for override, field in cases:
        body = {"loan_id": loan_id, "amount": "100.00", **override}
        response = await client.post(
            "/api/collections", json=body, headers={**agent, "Idempotency-Key": str(uuid.uuid4())}
        )
        assert response.status_code == 422, (override, response.text)
        assert response.json()["error"]["details"][0]["field"] == field, override
    no_key = await client.post(
        "/api/collections", json={"loan_id": loan_id, "amount": "100.00"}, headers=agent
    )
    assert no_key.status_code == 422
    # Another branch's agent: as if the loan did not exist.
    assert (
        await collect(client, await bearer(world.agent_b), loan_id, "100.00")
    ).status_code == 404
    # Back-dated within the window, by UPI with its reference: fine.
    ok = await collect(
        client,
        agent,
        loan_id,
        "100.00",
        on=today - dt.timedelta(days=7),
        method="upi",
        reference="UPI-123",
    )
    assert ok.status_code == 201, ok.text
    async with transaction(app.state.db) as session:
        assert await session.scalar(select(func.count()).select_from(Collection)) == 1


# --- idempotency -----------------------------------------------------------------------------


async def test_same_request_ten_times_at_once_has_one_effect(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    key = str(uuid.uuid4())
    responses = await asyncio.gather(
        *(collect(client, agent, loan_id, "2000.00", key=key) for _ in range(10))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1  # byte for byte the same body
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in responses) == 9
    async with transaction(app.state.db) as session:
        assert await session.scalar(select(func.count()).select_from(Collection)) == 1
        entries = await session.scalar(
            select(func.count()).select_from(JournalEntry).where(JournalEntry.kind == "collection")
        )
        assert entries == 1
    # Later, the same key with the same body: the same answer; with another body: 422.
    later = await collect(client, agent, loan_id, "2000.00", key=key)
    assert later.status_code == 201 and later.content == responses[0].content
    different = await collect(client, agent, loan_id, "2001.00", key=key)
    assert different.status_code == 422
    assert different.json()["error"]["details"][0]["field"] == "Idempotency-Key"
    # The client id works as the key for an offline device; a second use is harmless.
    body = {"loan_id": loan_id, "amount": "300.00", "client_id": "phone-7:42"}
    first = await client.post("/api/collections", json=body, headers=agent)
    second = await client.post("/api/collections", json=body, headers=agent)
    assert first.status_code == second.status_code == 201
    assert first.content == second.content
    await assert_consistent(app, loan_id)


async def test_a_failed_request_leaves_the_key_free(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    key = str(uuid.uuid4())
    refused = await collect(client, agent, loan_id, "500000.00", key=key)
    assert refused.status_code == 422
    ok = await collect(client, agent, loan_id, "500.00", key=key)
    assert ok.status_code == 201


# --- concurrency -----------------------------------------------------------------------------


async def test_twenty_concurrent_collections_on_one_loan(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    """No lost update: the loan row lock makes each collection allocate against the state the
    previous one left (without it, they allocate against the same state and pay the same
    installment twice — the paid parts then disagree with the collections)."""
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    manager = await bearer(world.manager_a)
    responses = await asyncio.gather(
        *(collect(client, agent if n % 2 else manager, loan_id, "1234.56") for n in range(20))
    )
    assert [r.status_code for r in responses] == [201] * 20, [r.text for r in responses]
    receipts = sorted(r.json()["receipt_number"] for r in responses)
    assert len(set(receipts)) == 20 and receipts[-1].endswith("-000020")
    rows = await installments_of(app, loan_id)
    paid = sum((r.principal_paid + r.interest_paid for r in rows), D(0))
    # Allocated in order: installment 1 (due today) is paid; the rest of the 24691.20 is held
    # as an advance for the installments still to fall due.
    assert paid == D("8884.88")
    assert [r.status.value for r in rows[:3]] == ["paid", "due", "due"]
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None
        assert loan.advance_balance == D("1234.56") * 20 - D("8884.88")
    await assert_consistent(app, loan_id)


# --- reversal --------------------------------------------------------------------------------


async def test_reversing_the_first_payment_reallocates_the_second(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    """Origin defect 13: it deleted the collection and guessed which rows to unpay. Here the
    collection stays, reversed, and the later payment now pays the oldest installment."""
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    first = (await collect(client, agent, loan_id, "8884.88")).json()
    second = (await collect(client, agent, loan_id, "1000.00")).json()
    # Installment 2 is not due: the money is held as an advance.
    assert second["allocation"] == []
    assert (second["collection"]["advance"], second["loan"]["advance_balance"]) == (
        "1000.00",
        "1000.00",
    )

    # Agents cannot reverse; a manager needs the grant; an admin can.
    cid = first["collection"]["id"]
    reason = {"reason": "entered on the wrong loan"}
    assert (
        await client.post(f"/api/collections/{cid}/reverse", json=reason, headers=agent)
    ).status_code == 403
    manager = await bearer(world.manager_a)
    assert (
        await client.post(f"/api/collections/{cid}/reverse", json=reason, headers=manager)
    ).status_code == 403
    admin = await bearer(world.admin)
    reversed_ = await client.post(f"/api/collections/{cid}/reverse", json=reason, headers=admin)
    assert reversed_.status_code == 200, reversed_.text
    body = reversed_.json()
    assert body["status"] == "reversed" and body["reversal_reason"] == reason["reason"]
    assert body["loan"]["total_collected"] == "1000.00"
    assert body["loan"]["outstanding_principal"] == "100000.00"

    again = await client.post(f"/api/collections/{cid}/reverse", json=reason, headers=admin)
    assert again.status_code == 409

    # The second payment now pays installment 1's interest.
    later = (
        await client.get(f"/api/collections/{second['collection']['id']}", headers=admin)
    ).json()
    assert later["status"] == "posted"
    assert [
        (x["installment_number"], x["interest"], x["principal"]) for x in later["allocation"]
    ] == [(1, "1000.00", "0.00")]
    assert (later["interest"], later["principal"], later["advance"]) == (
        "1000.00",
        "0.00",
        "0.00",
    )
    rows = await installments_of(app, loan_id)
    assert rows[0].interest_paid == D("1000.00") and rows[1].interest_paid == D("0.00")
    # Both stay visible in the list.
    listed = (
        await client.get("/api/collections", params={"loan_id": loan_id}, headers=admin)
    ).json()
    assert [c["status"] for c in listed["collections"]] == ["posted", "reversed"]
    async with transaction(app.state.db) as session:
        kinds = (
            await session.scalars(
                select(JournalEntry.kind)
                .where(JournalEntry.loan_id == uuid.UUID(loan_id))
                .order_by(JournalEntry.id)
            )
        ).all()
        assert kinds[-2:] == ["collection.reversal", "collection.reallocation"]
    await assert_consistent(app, loan_id)


async def test_reversing_a_closing_payment_reopens_the_loan(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    paid = (await collect(client, agent, loan_id, "101000.00")).json()
    assert paid["loan"]["status"] == "preclosed"
    admin = await bearer(world.admin)
    reversed_ = await client.post(
        f"/api/collections/{paid['collection']['id']}/reverse",
        json={"reason": "cheque bounced"},
        headers=admin,
    )
    assert reversed_.status_code == 200, reversed_.text
    loan = reversed_.json()["loan"]
    assert loan["status"] == "active" and loan["closed_at"] is None
    assert (loan["outstanding_principal"], loan["outstanding_interest"]) == (
        "100000.00",
        "6618.53",
    )
    rows = await installments_of(app, loan_id)
    assert all(r.interest_waived == 0 and r.principal_paid == 0 for r in rows)
    assert rows[0].status.value == "due" and rows[1].status.value == "due"
    # It can be paid again.
    again = await collect(client, agent, loan_id, "8884.88")
    assert again.status_code == 201
    await assert_consistent(app, loan_id)


async def test_matrix_style_scope_of_the_list(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    await collect(client, await bearer(world.agent_a), loan_id, "100.00")
    await collect(client, await bearer(world.manager_a), loan_id, "200.00")
    count = {}
    for who in (
        "admin",
        "manager_a",
        "agent_a",
        "agent_a2",
        "customer_user_a",
        "customer_user_b",
        "manager_b",
    ):
        response = await client.get("/api/collections", headers=await bearer(getattr(world, who)))
        assert response.status_code == 200
        count[who] = len(response.json()["collections"])
    assert count == {
        "admin": 2,
        "manager_a": 2,
        "agent_a": 1,  # their own collections only
        "agent_a2": 0,
        "customer_user_a": 2,
        "customer_user_b": 0,
        "manager_b": 0,
    }


async def test_reversing_a_reallocated_collection_takes_all_of_it_off_the_books(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    """Found by the state machine: after reversing the first of two payments, the second is
    re-allocated (a reallocation journal); reversing the second must then take off its
    current split, not only what its original entry posted."""
    from namma.ledger.queries import ledger_check

    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    admin = await bearer(world.admin)
    first = (await collect(client, agent, loan_id, "8884.88")).json()
    second = (await collect(client, agent, loan_id, "1000.00")).json()
    reason = {"reason": "test"}
    for paid in (first, second):
        response = await client.post(
            f"/api/collections/{paid['collection']['id']}/reverse", json=reason, headers=admin
        )
        assert response.status_code == 200, response.text
    loan = (await client.get(f"/api/loans/{loan_id}", headers=admin)).json()
    assert loan["outstanding_principal"] == "100000.00" and loan["total_collected"] == "0.00"
    async with transaction(app.state.db) as session:
        result = await ledger_check(session)
        assert result.ok, result.problems()
