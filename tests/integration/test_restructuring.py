"""Restructuring (issue 22 point 2; D-195..D-198), through HTTP against real PostgreSQL: a
request with its preview, the maker never checks, an approval writes exactly the preview
(every loan of a village in one transaction), keeps the old schedule, flags the loan, posts
capitalised interest, audits and notifies. Expected numbers are worked out here with the
annuity formula, not by the money core."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from namma.cob.runner import cob_execute
from namma.finance import add_months
from namma.kit.db import transaction
from namma.ledger.queries import ledger_check, loan_ledger_balances
from namma.loans.service import today_india
from namma.models import (
    AccountKind,
    AgentAssignment,
    AuditEntry,
    Customer,
    KycStatus,
    Loan,
    LoanScheduleRevision,
    Notification,
)
from tests.factories import loan_active
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    MONTHLY_PRODUCT,
    collect,
    customer,
    installments_of,
    make_loan,
    settings,
)

D = Decimal
CENT = D("0.01")
BALANCE_AFTER_1 = D("92115.12")  # 100000 at 12 % × 12: after installment 1 (docs/money.md §9)
EMI = D("8884.88")


def annuity(principal: D, rate: D, n: int) -> D:
    """P·r·(1+r)ⁿ / ((1+r)ⁿ − 1), half-up to the paisa (the textbook EMI)."""
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        growth = (1 + rate) ** n
        return (principal * rate * growth / (growth - 1)).quantize(CENT, decimal.ROUND_HALF_UP)


MONTHLY_1 = D("0.01")


def interest(balance: D, rate: D = MONTHLY_1) -> D:
    return (balance * rate).quantize(CENT, decimal.ROUND_HALF_UP)


async def _product(client, world, bearer, *, code: str, moratorium: str = "carry"):  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/products",
        json={
            **MONTHLY_PRODUCT,
            "code": code,
            "terms": {"frequency": "monthly", "moratorium_interest": moratorium},
        },
        headers=await bearer(world.admin),
    )
    assert response.status_code == 201, response.text
    return response.json()


async def _villager(app, world, *, name: str, phone: str, village: str) -> uuid.UUID:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        row = Customer(
            branch_id=world.branch_a.id,
            name=name,
            phone=phone,
            village=village,
            kyc_status=KycStatus.VERIFIED,
            household_monthly_income=D("100000.00"),
        )
        session.add(row)
        await session.flush()
        session.add(AgentAssignment(customer_id=row.id, agent_id=world.agent_a.id))
        return row.id


async def _ledger_ok(app) -> None:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        result = await ledger_check(session)
    assert result.ok, result.problems()


def _row_tuples(rows):  # type: ignore[no-untyped-def]
    return [
        (r.number, r.due_date.isoformat(), str(r.principal_due), str(r.interest_due),
         str(r.fee_due), str(r.principal_due + r.interest_due + r.fee_due), str(r.balance_after))
        for r in rows
    ]  # fmt: skip


def _preview_tuples(rows):  # type: ignore[no-untyped-def]
    return [
        (r["number"], r["due_date"], r["principal"], r["interest"], r["fees"], r["total"],
         r["balance"])
        for r in rows
    ]  # fmt: skip


async def test_a_three_month_moratorium_for_a_village_restructures_its_loans_through_one_approval(  # type: ignore[no-untyped-def]
    app, client, world, bearer, customer
):
    """The story: flood in Hosur. The manager asks once for the village; the admin approves
    once; both Hosur loans get three months without installments (interest carried to the
    first installment after), the Anekal loan is untouched, and the ledger check passes."""
    product = await _product(client, world, bearer, code="IGL-V")
    second = await _villager(app, world, name="Savitri", phone="9100000101", village="  HOSUR ")
    other = await _villager(app, world, name="Girija", phone="9100000102", village="Anekal")
    loans = {}
    for who in (world.customer_a.id, second, other):
        loans[who] = await loan_active(
            app, client, bearer, product, customer_id=who, agent=world.agent_a,
            manager=world.manager_a,
        )  # fmt: skip
    agent = await bearer(world.agent_a)
    for loan_id in loans.values():  # installment 1 falls due today: paid
        paid = await collect(client, agent, loan_id, str(EMI))
        assert paid.status_code == 201, paid.text
    hosur = sorted([loans[world.customer_a.id], loans[second]])

    maker = await bearer(world.manager_a)
    asked = await client.post(
        "/api/restructurings",
        json={"village": "hosur", "kind": "moratorium", "periods": 3, "reason": "Flood, Nov 2026"},
        headers=maker,
    )
    assert asked.status_code == 201, asked.text
    request = asked.json()
    assert request["status"] == "pending" and request["loan_count"] == 2
    assert sorted(request["preview"]["loans"]) == hosur
    # Nothing changed yet.
    assert (await installments_of(app, hosur[0]))[-1].number == 12

    approved = await client.post(
        f"/api/restructurings/{request['id']}/approve", headers=await bearer(world.admin)
    )
    assert approved.status_code == 200, approved.text
    assert approved.json()["status"] == "approved"

    today = today_india()
    disbursed = add_months(today, -1)
    emi = annuity(BALANCE_AFTER_1, D("0.01"), 11)
    carried = interest(BALANCE_AFTER_1)
    for loan_id in hosur:
        rows = await installments_of(app, loan_id)
        assert [r.number for r in rows] == list(range(1, 16))
        for r in rows[1:4]:  # the moratorium: nothing due, interest earned and carried
            assert (r.principal_due, r.interest_due) == (D("0.00"), D("0.00"))
            assert r.interest_for_period == carried
            assert r.balance_after == BALANCE_AFTER_1
        first = rows[4]
        assert first.due_date == add_months(disbursed, 5)
        assert first.interest_due == 4 * carried  # its own period's and the three carried
        assert first.principal_due == emi - carried
        assert sum((r.principal_due for r in rows[1:]), D(0)) == BALANCE_AFTER_1
        assert rows[-1].due_date == add_months(disbursed, 15)
        answer = (await client.get(f"/api/loans/{loan_id}", headers=maker)).json()
        assert answer["restructured_on"] == today.isoformat()
        assert answer["restructure_reason"] == "Flood, Nov 2026"
        assert answer["installment_amount"] == str(emi)
        assert answer["next_due_on"] == first.due_date.isoformat()
    untouched = await client.get(f"/api/loans/{loans[other]}", headers=maker)
    assert untouched.json()["restructured_on"] is None
    assert len(await installments_of(app, loans[other])) == 12

    async with transaction(app.state.db) as session:
        revisions = list(
            await session.scalars(
                select(LoanScheduleRevision).where(
                    LoanScheduleRevision.restructure_id == uuid.UUID(request["id"])
                )
            )
        )
        assert len(revisions) == 2
        assert all(len(r.replaced) == 11 and r.from_number == 2 for r in revisions)
        assert {r.replaced[0]["principal_due"] for r in revisions} == {"7963.73"}
        notices = await session.scalar(
            select(func.count(func.distinct(Notification.loan_id))).where(
                Notification.template == "loan_restructured"
            )
        )
        assert notices == 2
        audited = await session.scalar(
            select(func.count()).where(AuditEntry.action == "loan.restructured")
        )
        assert audited == 2
    await _ledger_ok(app)


async def test_the_maker_cannot_check(app, client, world, bearer, customer):  # type: ignore[no-untyped-def]
    product = await _product(client, world, bearer, code="IGL-MC")
    loan_id = await make_loan(app, client, bearer, world, product)
    maker = await bearer(world.manager_a)
    asked = await client.post(
        "/api/restructurings",
        json={"loan_id": loan_id, "kind": "rate", "annual_rate": "10", "reason": "Hardship"},
        headers=maker,
    )
    assert asked.status_code == 201, asked.text
    request_id = asked.json()["id"]
    refused = await client.post(f"/api/restructurings/{request_id}/approve", headers=maker)
    assert refused.status_code == 403
    assert "another officer" in refused.text
    rejected = await client.post(
        f"/api/restructurings/{request_id}/reject", json={"reason": "no"}, headers=maker
    )
    assert rejected.status_code == 403
    # An agent cannot ask; a second request for the same loan waits for the first.
    agent = await client.post(
        "/api/restructurings",
        json={"loan_id": loan_id, "kind": "term", "installments": 20, "reason": "x"},
        headers=await bearer(world.agent_a),
    )
    assert agent.status_code == 403
    again = await client.post(
        "/api/restructurings",
        json={"loan_id": loan_id, "kind": "term", "installments": 20, "reason": "x"},
        headers=await bearer(world.admin),
    )
    assert again.status_code == 409
    assert (await installments_of(app, loan_id))[1].interest_due == interest(BALANCE_AFTER_1)
    checked = await client.post(
        f"/api/restructurings/{request_id}/reject",
        json={"reason": "Not eligible"},
        headers=await bearer(world.admin),
    )
    assert checked.status_code == 200 and checked.json()["status"] == "rejected"
    twice = await client.post(
        f"/api/restructurings/{request_id}/approve", headers=await bearer(world.admin)
    )
    assert twice.status_code == 409


async def test_the_preview_is_what_the_approval_writes(app, client, world, bearer, customer):  # type: ignore[no-untyped-def]
    product = await _product(client, world, bearer, code="IGL-PV")
    loan_id = await make_loan(app, client, bearer, world, product)
    before = await installments_of(app, loan_id)
    asked = await client.post(
        "/api/restructurings",
        json={"loan_id": loan_id, "kind": "rate", "annual_rate": "10", "reason": "Hardship"},
        headers=await bearer(world.manager_a),
    )
    assert asked.status_code == 201, asked.text
    preview = asked.json()["preview"]["loans"][loan_id]
    # Independently: 92115.12 over 11 months at 10 % a year.
    rate = D("10") / 1200
    assert preview["installment_after"] == str(annuity(BALANCE_AFTER_1, rate, 11))
    assert preview["rows"][0]["interest"] == str(interest(BALANCE_AFTER_1, rate))
    approved = await client.post(
        f"/api/restructurings/{asked.json()['id']}/approve", headers=await bearer(world.admin)
    )
    assert approved.status_code == 200, approved.text
    after = await installments_of(app, loan_id)
    assert _row_tuples(after[1:]) == _preview_tuples(preview["rows"])
    assert _row_tuples(after[:1]) == _row_tuples(before[:1])
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None and loan.annual_rate == D("10")
        revision = await session.scalar(
            select(LoanScheduleRevision).where(LoanScheduleRevision.loan_id == loan.id)
        )
        assert revision is not None and revision.policy == "restructure"
        assert [r["interest_due"] for r in revision.replaced] == [
            str(r.interest_due) for r in before[1:]
        ]
    await _ledger_ok(app)


async def test_a_restructured_standard_loan_is_provided_for_as_sub_standard(  # type: ignore[no-untyped-def]
    app, client, world, bearer, customer
):
    """RBI: a restructured standard asset is downgraded. The close of business before the
    restructuring provides 0.40 % (standard); the one after, 10 % (sub-standard), posting the
    difference; the loan's delinquency class stays what its days past due make it."""
    product = await _product(client, world, bearer, code="IGL-PR")
    loan_id = await make_loan(app, client, bearer, world, product)
    yesterday = today_india() - dt.timedelta(days=1)
    await cob_execute(app.state.db, business_date=yesterday)
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None
        assert (loan.provision_class.value, loan.provision_held) == ("standard", D("400.00"))

    asked = await client.post(
        "/api/restructurings",
        json={"loan_id": loan_id, "kind": "rate", "annual_rate": "10", "reason": "Hardship"},
        headers=await bearer(world.manager_a),
    )
    assert asked.status_code == 201, asked.text
    approved = await client.post(
        f"/api/restructurings/{asked.json()['id']}/approve", headers=await bearer(world.admin)
    )
    assert approved.status_code == 200, approved.text
    outcome = await cob_execute(app.state.db, business_date=yesterday, force=True)
    assert D(outcome.counts["provisions"]["provided"]) == D("9600.00")  # 10000.00 − 400.00
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None
        assert loan.outstanding_principal == D("100000.00")
        assert (loan.provision_class.value, loan.provision_held) == (
            "sub_standard",
            D("10000.00"),
        )
        assert loan.asset_class.value == "standard"
    await _ledger_ok(app)


async def test_capitalised_moratorium_interest_is_principal_owed_not_income(  # type: ignore[no-untyped-def]
    app, client, world, bearer, customer
):
    product = await _product(client, world, bearer, code="IGL-CAP", moratorium="capitalise")
    loan_id = await make_loan(app, client, bearer, world, product)
    paid = await collect(client, await bearer(world.agent_a), loan_id, str(EMI))
    assert paid.status_code == 201, paid.text
    asked = await client.post(
        "/api/restructurings",
        json={"loan_id": loan_id, "kind": "moratorium", "periods": 2, "reason": "Crop failure"},
        headers=await bearer(world.manager_a),
    )
    assert asked.status_code == 201, asked.text
    capitalised = 2 * interest(BALANCE_AFTER_1)
    assert asked.json()["preview"]["loans"][loan_id]["capitalised_interest"] == str(capitalised)
    approved = await client.post(
        f"/api/restructurings/{asked.json()['id']}/approve", headers=await bearer(world.admin)
    )
    assert approved.status_code == 200, approved.text
    rows = await installments_of(app, loan_id)
    grown = BALANCE_AFTER_1 + capitalised
    assert rows[3].principal_due == annuity(grown, D("0.01"), 11) - interest(grown)
    assert rows[3].interest_due == interest(grown)
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None and loan.outstanding_principal == grown
        balances = await loan_ledger_balances(session, loan.id)
    assert balances[AccountKind.LOAN_PORTFOLIO] == grown
    assert balances[AccountKind.INTEREST_CAPITALISED] == capitalised
    assert balances.get(AccountKind.INTEREST_INCOME) == interest(D("100000.00"))
    await _ledger_ok(app)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"kind": "moratorium", "periods": 0}, "periods"),
        ({"kind": "rate"}, "annual_rate"),
        ({"kind": "installment", "installment_amount": "900.00"}, "installment_amount"),
    ],
)
async def test_bad_requests_say_which_field(app, client, world, bearer, customer, body, field):  # type: ignore[no-untyped-def]
    product = await _product(client, world, bearer, code="IGL-BAD")
    loan_id = await make_loan(app, client, bearer, world, product)
    answer = await client.post(
        "/api/restructurings",
        json={"loan_id": loan_id, "reason": "x", **body},
        headers=await bearer(world.manager_a),
    )
    assert answer.status_code == 422, answer.text
    assert field in answer.text
    async with transaction(app.state.db) as session:
        assert await session.scalar(select(func.count()).select_from(LoanScheduleRevision)) == 0


async def test_a_village_approval_writes_every_loan_or_none(app, client, world, bearer, customer):  # type: ignore[no-untyped-def]
    """One loan of the village changes after the request (it is written off): the approval is
    a 409 naming it, and no loan of the village is restructured."""
    product = await _product(client, world, bearer, code="IGL-ALL")
    second = await _villager(app, world, name="Savitri", phone="9100000103", village="Hosur")
    first_loan = await make_loan(app, client, bearer, world, product)
    second_loan = await loan_active(
        app, client, bearer, product, customer_id=second, agent=world.agent_a,
        manager=world.manager_a,
    )  # fmt: skip
    before = {k: _row_tuples(await installments_of(app, k)) for k in (first_loan, second_loan)}
    asked = await client.post(
        "/api/restructurings",
        json={"village": "Hosur", "kind": "term", "installments": 20, "reason": "Drought"},
        headers=await bearer(world.manager_a),
    )
    assert asked.status_code == 201, asked.text
    assert asked.json()["loan_count"] == 2
    admin = await bearer(world.admin)
    gone = await client.post(
        f"/api/loans/{second_loan}/write-off", json={"reason": "Deceased"}, headers=admin
    )
    assert gone.status_code == 200, gone.text
    async with transaction(app.state.db) as session:
        number = await session.scalar(
            select(Loan.loan_number).where(Loan.id == uuid.UUID(second_loan))
        )
    approved = await client.post(f"/api/restructurings/{asked.json()['id']}/approve", headers=admin)
    assert approved.status_code == 409, approved.text
    assert number in approved.text and "nothing was restructured" in approved.text
    assert _row_tuples(await installments_of(app, first_loan)) == before[first_loan]
    async with transaction(app.state.db) as session:
        assert await session.scalar(select(func.count()).select_from(LoanScheduleRevision)) == 0
        flagged = await session.scalar(
            select(func.count()).where(Loan.restructured_on.is_not(None))
        )
        assert flagged == 0
    pending = await client.get("/api/restructurings", headers=admin)
    assert [r["status"] for r in pending.json()["requests"]] == ["pending"]
    await _ledger_ok(app)


async def _capitalised_loan(app, client, world, bearer):  # type: ignore[no-untyped-def]
    """An active loan (100000 at 12 % × 12, installment 1 paid) given a two-month moratorium
    whose interest is capitalised; returns (loan id, interest capitalised)."""
    product = await _product(client, world, bearer, code="IGL-REL", moratorium="capitalise")
    loan_id = await make_loan(app, client, bearer, world, product)
    paid = await collect(client, await bearer(world.agent_a), loan_id, str(EMI))
    assert paid.status_code == 201, paid.text
    asked = await client.post(
        "/api/restructurings",
        json={"loan_id": loan_id, "kind": "moratorium", "periods": 2, "reason": "Crop failure"},
        headers=await bearer(world.manager_a),
    )
    assert asked.status_code == 201, asked.text
    approved = await client.post(
        f"/api/restructurings/{asked.json()['id']}/approve", headers=await bearer(world.admin)
    )
    assert approved.status_code == 200, approved.text
    return loan_id, 2 * interest(BALANCE_AFTER_1)


async def _balances(app, loan_id: str):  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        return await loan_ledger_balances(session, uuid.UUID(loan_id))


async def test_capitalised_interest_is_income_when_the_loan_is_paid_off(  # type: ignore[no-untyped-def]
    app, client, world, bearer, customer
):
    """Repaid last: a pre-closure today takes the whole principal, capitalised part included;
    the liability goes to interest income. Reversing the pre-closure books it back."""
    loan_id, capitalised = await _capitalised_loan(app, client, world, bearer)
    agent = await bearer(world.agent_a)
    quote = await client.get(f"/api/loans/{loan_id}/preclosure", headers=agent)
    assert quote.status_code == 200, quote.text
    payable = D(quote.json()["payable"])
    income_before = (await _balances(app, loan_id))[AccountKind.INTEREST_INCOME]
    closed = await collect(client, agent, loan_id, str(payable))
    assert closed.status_code == 201, closed.text
    after = await _balances(app, loan_id)
    assert after.get(AccountKind.INTEREST_CAPITALISED, D(0)) == 0
    assert after[AccountKind.LOAN_PORTFOLIO] == 0
    collected_interest = D(closed.json()["collection"]["interest"])
    assert after[AccountKind.INTEREST_INCOME] == income_before + collected_interest + capitalised
    await _ledger_ok(app)
    reversed_ = await client.post(
        f"/api/collections/{closed.json()['collection']['id']}/reverse",
        json={"reason": "Cheque bounced"},
        headers=await bearer(world.admin),
    )
    assert reversed_.status_code == 200, reversed_.text
    again = await _balances(app, loan_id)
    assert again[AccountKind.INTEREST_CAPITALISED] == capitalised
    assert again[AccountKind.INTEREST_INCOME] == income_before
    await _ledger_ok(app)


async def test_a_write_off_releases_capitalised_interest_against_the_loss(  # type: ignore[no-untyped-def]
    app, client, world, bearer, customer
):
    loan_id, _capitalised = await _capitalised_loan(app, client, world, bearer)
    gone = await client.post(
        f"/api/loans/{loan_id}/write-off",
        json={"reason": "Migrated"},
        headers=await bearer(world.admin),
    )
    assert gone.status_code == 200, gone.text
    after = await _balances(app, loan_id)
    assert after.get(AccountKind.INTEREST_CAPITALISED, D(0)) == 0
    # Only the money lent and not repaid is a loss: 92115.12, not 92115.12 + capitalised.
    assert after[AccountKind.WRITE_OFF_EXPENSE] == BALANCE_AFTER_1
    await _ledger_ok(app)


async def test_the_key_facts_statement_stays_the_signed_one(app, client, world, bearer, customer):  # type: ignore[no-untyped-def]
    product = await _product(client, world, bearer, code="IGL-KFS")
    loan_id = await make_loan(app, client, bearer, world, product)
    headers = await bearer(world.manager_a)
    before = (await client.get(f"/api/loans/{loan_id}/kfs", headers=headers)).json()
    asked = await client.post(
        "/api/restructurings",
        json={"loan_id": loan_id, "kind": "rate", "annual_rate": "9", "reason": "Hardship"},
        headers=headers,
    )
    assert asked.status_code == 201, asked.text
    approved = await client.post(
        f"/api/restructurings/{asked.json()['id']}/approve", headers=await bearer(world.admin)
    )
    assert approved.status_code == 200, approved.text
    after = (await client.get(f"/api/loans/{loan_id}/kfs", headers=headers)).json()
    assert after == before
    assert D(after["annual_rate_percent"]) == 12
    loan = (await client.get(f"/api/loans/{loan_id}", headers=headers)).json()
    assert D(loan["annual_rate"]) == 9


async def test_the_overdue_report_shows_the_restructuring(app, client, world, bearer, customer):  # type: ignore[no-untyped-def]
    """Disbursed two months ago, nothing paid: installments 1 and 2 stay owed (overdue) after
    a restructuring of the rest; the defaulter list shows the loan with its restructuring
    day."""
    product = await _product(client, world, bearer, code="IGL-OD")
    loan_id = await make_loan(
        app, client, bearer, world, product, disbursed_on=add_months(today_india(), -2)
    )
    asked = await client.post(
        "/api/restructurings",
        json={"loan_id": loan_id, "kind": "term", "installments": 15, "reason": "Illness"},
        headers=await bearer(world.manager_a),
    )
    assert asked.status_code == 201, asked.text
    assert asked.json()["preview"]["loans"][loan_id]["from_number"] == 3
    approved = await client.post(
        f"/api/restructurings/{asked.json()['id']}/approve", headers=await bearer(world.admin)
    )
    assert approved.status_code == 200, approved.text
    number = approved.json()["preview"]["loans"][loan_id]["loan_number"]
    report = await client.get("/api/reports/overdue", headers=await bearer(world.admin))
    assert report.status_code == 200, report.text
    [row] = [r for r in report.json()["rows"] if r["loan_number"] == number]
    assert row["restructured_on"] == today_india().isoformat()
    assert row["days_past_due"] > 0
    await _ledger_ok(app)


async def test_a_village_request_leaves_out_what_cannot_be_restructured(  # type: ignore[no-untyped-def]
    app, client, world, bearer, customer
):
    """A new rate of 12 % for the village: the loan already at 12 % is left out with why, the
    14 % one is in."""
    product = await _product(client, world, bearer, code="IGL-SK")
    second = await _villager(app, world, name="Savitri", phone="9100000104", village="Hosur")
    at_12 = await make_loan(app, client, bearer, world, product)
    at_14 = await loan_active(
        app, client, bearer, product, customer_id=second, agent=world.agent_a,
        manager=world.manager_a, rate="14",
    )  # fmt: skip
    asked = await client.post(
        "/api/restructurings",
        json={"village": "Hosur", "kind": "rate", "annual_rate": "12", "reason": "Relief"},
        headers=await bearer(world.manager_a),
    )
    assert asked.status_code == 201, asked.text
    preview = asked.json()["preview"]
    assert list(preview["loans"]) == [at_14]
    [(number, why)] = preview["skipped"].items()
    assert "already is 12" in why
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(at_12))
        assert loan is not None and loan.loan_number == number


async def test_a_new_restructuring_starts_a_new_year_of_probation(  # type: ignore[no-untyped-def]
    app, client, world, bearer, customer
):
    """A loan restructured before and upgraded since (D-210) is restructured again: the
    approval clears the upgrade, so the loan is sub-standard again until a new year performs."""
    product = await _product(client, world, bearer, code="IGL-AGAIN")
    loan_id = await make_loan(app, client, bearer, world, product)
    today = today_india()
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None
        loan.restructured_on = add_months(today, -14)
        loan.restructure_upgraded_on = add_months(today, -2)
    asked = await client.post(
        "/api/restructurings",
        json={"loan_id": loan_id, "kind": "rate", "annual_rate": "10", "reason": "Flood"},
        headers=await bearer(world.manager_a),
    )
    assert asked.status_code == 201, asked.text
    approved = await client.post(
        f"/api/restructurings/{asked.json()['id']}/approve", headers=await bearer(world.admin)
    )
    assert approved.status_code == 200, approved.text
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None
        assert (loan.restructured_on, loan.restructure_upgraded_on) == (today, None)
