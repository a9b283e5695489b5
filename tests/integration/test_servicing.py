"""Servicing after disbursement (issue 6 item 4 and the recoveries write-off promised): overdue
penalties charged by the set-based SQL and checked against the money core, waivers of interest,
fees and penalties (ledger memorandum, limits, replay), and recoveries on written-off loans."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from namma.collections.penalties import penalties_apply
from namma.finance import add_months, overdue_penalties
from namma.kit.db import transaction
from namma.ledger.queries import ledger_check
from namma.loans.service import loan_dues, today_india
from namma.models import (
    AccountKind,
    AuditEntry,
    Collection,
    JournalEntry,
    JournalLine,
    LedgerAccount,
    Loan,
    LoanInstallment,
    LoanPenaltyCharge,
    LoanProductVersion,
    LoanWaiver,
)
from namma.products.schemas import ProductTerms
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    MONTHLY_PRODUCT,
    collect,
    customer,
    make_loan,
    settings,
)

D = Decimal
ZERO = D("0.00")


async def _product(client, bearer, world, code: str, terms: dict[str, Any]) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    body = {**MONTHLY_PRODUCT, "code": code, "name": f"Product {code}", "terms": terms}
    response = await client.post("/api/products", json=body, headers=await bearer(world.admin))
    assert response.status_code == 201, response.text
    return response.json()


async def _installments(app, loan_id: str) -> list[LoanInstallment]:  # type: ignore[no-untyped-def]
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


async def _loan(app, loan_id: str) -> Loan:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None
        return loan


async def _apply(app, as_of: dt.date, loan_id: str | None = None):  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        return await penalties_apply(
            session, as_of=as_of, loan_id=uuid.UUID(loan_id) if loan_id else None
        )


async def _ledger(app, loan_id: str) -> dict[AccountKind, Decimal]:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        rows = await session.execute(
            select(LedgerAccount.kind, func.sum(JournalLine.debit - JournalLine.credit))
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .where(JournalLine.loan_id == uuid.UUID(loan_id))
            .group_by(LedgerAccount.kind)
        )
        return {k: D(v) for k, v in rows}


# --- penalties ------------------------------------------------------------------------------------

RULES = {
    "flat-once": {"basis": "flat", "value": "100", "recurrence": "once"},
    "flat-daily-grace-cap": {
        "basis": "flat",
        "value": "7.5",
        "recurrence": "daily",
        "grace_days": 5,
        "cap": "400.00",
    },
    "principal-daily": {
        "basis": "percent-of-overdue-principal",
        "value": "0.0833",
        "recurrence": "daily",
        "grace_days": 2,
    },
    "total-once-grace": {
        "basis": "percent-of-overdue-total",
        "value": "2",
        "recurrence": "once",
        "grace_days": 10,
    },
}


@pytest.mark.parametrize("rule", list(RULES))
async def test_penalties_equal_the_money_core_and_a_second_run_charges_nothing(
    app,
    client,
    world,
    bearer,
    customer,
    rule: str,
) -> None:  # type: ignore[no-untyped-def]
    product = await _product(
        client, bearer, world, f"PEN-{rule[:10]}".upper(), {"penalty": RULES[rule]}
    )
    today = today_india()
    # Disbursed four months and nine days ago: four installments are late by 9 to ~100 days.
    loan_id = await make_loan(
        app,
        client,
        bearer,
        world,
        product,
        disbursed_on=add_months(today, -4) - dt.timedelta(days=9),
    )
    # A partial payment: installment 1 gets part of its dues (smaller overdue base).
    assert (
        await collect(client, await bearer(world.agent_a), loan_id, "5000.00")
    ).status_code == 201
    before = await _installments(app, loan_id)
    async with transaction(app.state.db) as session:
        version = await session.get(
            LoanProductVersion, (await _loan(app, loan_id)).product_version_id
        )
        assert version is not None
        penalty = (
            ProductTerms.model_validate(version.terms)
            .loan_terms(
                principal=D("100000"), annual_rate=D("12"), installments=12, microfinance=False
            )
            .penalty
        )
    assert penalty is not None
    expected = {
        line.number: line.amount
        for line in overdue_penalties(penalty=penalty, dues=loan_dues(before), as_of=today)
    }
    assert expected, "the example must charge something"

    run = await _apply(app, today)
    after = await _installments(app, loan_id)
    charged = {i.number: i.penalty_due for i in after if i.penalty_due}
    assert charged == expected
    assert run.amount == sum(expected.values(), ZERO)
    loan = await _loan(app, loan_id)
    assert loan.outstanding_penalties == sum(expected.values(), ZERO)

    # The same date again: nothing more, and no second charge row.
    again = await _apply(app, today)
    assert again.installments == 0 and again.amount == ZERO
    assert {
        i.number: i.penalty_due for i in await _installments(app, loan_id) if i.penalty_due
    } == (expected)
    async with transaction(app.state.db) as session:
        rows = await session.scalar(
            select(func.count())
            .select_from(LoanPenaltyCharge)
            .where(LoanPenaltyCharge.loan_id == uuid.UUID(loan_id))
        )
    assert rows == len(expected)

    # Penalties are part of the payoff and of what a collection pays first (per installment).
    view = await client.get(
        f"/api/loans/{loan_id}/penalties", headers=await bearer(world.customer_user_a)
    )
    assert view.status_code == 200, view.text
    body = view.json()
    assert D(body["outstanding_penalties"]) == sum(expected.values(), ZERO)
    assert {c["installment_number"]: D(c["amount"]) for c in body["charges"]} == expected


async def test_daily_penalty_grows_each_day_and_a_skipped_day_is_caught_up(
    app,
    client,
    world,
    bearer,
    customer,
) -> None:  # type: ignore[no-untyped-def]
    product = await _product(
        client,
        bearer,
        world,
        "PEN-DAILY",
        {"penalty": {"basis": "flat", "value": "10", "recurrence": "daily", "grace_days": 2}},
    )
    today = today_india()
    # Installment 1 fell due 5 days ago.
    loan_id = await make_loan(
        app, client, bearer, world, product, disbursed_on=add_months(today, -1) - dt.timedelta(5)
    )
    due = today - dt.timedelta(days=5)
    assert (await _apply(app, due + dt.timedelta(days=2))).amount == ZERO  # within grace
    assert (await _apply(app, due + dt.timedelta(days=3))).amount == D("10.00")
    # Skipped day 4; day 5 charges up to the rule's total: 3 chargeable days = 30.00.
    assert (await _apply(app, due + dt.timedelta(days=5))).amount == D("20.00")
    first = (await _installments(app, loan_id))[0]
    assert first.penalty_due == D("30.00")
    # A collection pays the penalty first (default order), and it is penalty income.
    paid = await collect(client, await bearer(world.agent_a), loan_id, "30.00")
    assert paid.status_code == 201, paid.text
    assert D(paid.json()["collection"]["penalty"]) == D("30.00")
    assert (await _ledger(app, loan_id))[AccountKind.PENALTY_INCOME] == D("-30.00")


async def test_penalties_only_on_active_loans_with_a_rule(
    app,
    client,
    world,
    bearer,
    customer,
) -> None:  # type: ignore[no-untyped-def]
    plain = await _product(client, bearer, world, "NOPEN", {})
    today = today_india()
    loan_id = await make_loan(app, client, bearer, world, plain, disbursed_on=add_months(today, -3))
    run = await _apply(app, today, loan_id)
    assert run.installments == 0
    assert all(i.penalty_due == 0 for i in await _installments(app, loan_id))


# --- waivers --------------------------------------------------------------------------------------


async def test_a_waiver_takes_interest_off_the_oldest_dues_and_is_in_the_ledger_memo(
    app,
    client,
    world,
    bearer,
    customer,
) -> None:  # type: ignore[no-untyped-def]
    product = await _product(client, bearer, world, "WAIVE", {})
    today = today_india()
    loan_id = await make_loan(
        app, client, bearer, world, product, disbursed_on=add_months(today, -2)
    )
    rows = await _installments(app, loan_id)
    first, second = rows[0].interest_due, rows[1].interest_due
    amount = first + D("10.00")  # all of installment 1's interest and 10.00 of installment 2's
    manager = await bearer(world.manager_a)
    before = await _loan(app, loan_id)
    response = await client.post(
        f"/api/loans/{loan_id}/waivers",
        json={"component": "interest", "amount": str(amount), "reason": "Flood in the village"},
        headers=manager,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["waiver"]["lines"] == [
        {"number": 1, "amount": str(first)},
        {"number": 2, "amount": "10.00"},
    ]
    assert D(body["loan"]["outstanding_interest"]) == before.outstanding_interest - amount
    rows = await _installments(app, loan_id)
    assert (rows[0].interest_waived, rows[1].interest_waived) == (first, D("10.00"))
    assert rows[1].interest_due - rows[1].interest_waived == second - D("10.00")
    ledger = await _ledger(app, loan_id)
    assert ledger[AccountKind.WAIVERS_MEMO] == amount
    assert ledger[AccountKind.WAIVERS_MEMO_CONTRA] == -amount
    assert AccountKind.INTEREST_INCOME not in ledger  # nothing was ever recognised (cash basis)
    async with transaction(app.state.db) as session:
        audit = await session.scalar(
            select(AuditEntry)
            .where(AuditEntry.action == "loan.waived")
            .order_by(AuditEntry.id.desc())
        )
        assert audit is not None and audit.after["reason"] == "Flood in the village"
    listed = await client.get(f"/api/loans/{loan_id}/waivers", headers=await bearer(world.agent_a))
    assert [w["amount"] for w in listed.json()["waivers"]] == [str(amount)]

    # The payoff and the next collection see the waiver: installment 1 now owes no interest.
    paid = await collect(client, await bearer(world.agent_a), loan_id, str(rows[0].principal_due))
    assert paid.status_code == 201, paid.text
    assert paid.json()["allocation"][0]["interest"] == "0.00"
    assert paid.json()["allocation"][0]["principal"] == str(rows[0].principal_due)


async def test_a_retried_waiver_waives_once(app, client, world, bearer, customer) -> None:  # type: ignore[no-untyped-def]
    """A waiver is a money route: the same Idempotency-Key twice waives once and answers the
    first response again."""
    product = await _product(client, bearer, world, "WAIVE2", {})
    loan_id = await make_loan(
        app, client, bearer, world, product, disbursed_on=add_months(today_india(), -2)
    )
    headers = {**await bearer(world.manager_a), "Idempotency-Key": "waiver-1"}
    body = {"component": "interest", "amount": "25.00", "reason": "Crop failure"}
    first = await client.post(f"/api/loans/{loan_id}/waivers", json=body, headers=headers)
    again = await client.post(f"/api/loans/{loan_id}/waivers", json=body, headers=headers)
    assert first.status_code == again.status_code == 201, again.text
    assert again.content == first.content and again.headers["Idempotent-Replayed"] == "true"
    rows = await _installments(app, loan_id)
    assert sum((r.interest_waived for r in rows), D("0.00")) == D("25.00")
    assert (await _ledger(app, loan_id))[AccountKind.WAIVERS_MEMO] == D("25.00")


async def test_a_waiver_above_what_is_owed_is_refused_and_leaves_nothing(
    app,
    client,
    world,
    bearer,
    customer,
) -> None:  # type: ignore[no-untyped-def]
    product = await _product(client, bearer, world, "WAIVE2", {})
    today = today_india()
    loan_id = await make_loan(
        app, client, bearer, world, product, disbursed_on=add_months(today, -1)
    )
    owed = (await _installments(app, loan_id))[0].interest_due
    async with transaction(app.state.db) as session:
        entries = await session.scalar(select(func.count()).select_from(JournalEntry))
    manager = await bearer(world.manager_a)
    too_much = await client.post(
        f"/api/loans/{loan_id}/waivers",
        json={"component": "interest", "amount": str(owed + D("0.01")), "reason": "x"},
        headers=manager,
    )
    assert too_much.status_code == 422, too_much.text
    assert f"waive at most {owed}" in too_much.json()["error"]["details"][0]["message"]
    no_reason = await client.post(
        f"/api/loans/{loan_id}/waivers",
        json={"component": "fee", "amount": "1.00", "reason": "   "},
        headers=manager,
    )
    assert no_reason.status_code == 422
    nothing = await client.post(
        f"/api/loans/{loan_id}/waivers",
        json={"component": "penalty", "amount": "1.00", "reason": "none charged"},
        headers=manager,
    )
    assert nothing.status_code == 422
    agent = await client.post(
        f"/api/loans/{loan_id}/waivers",
        json={"component": "interest", "amount": "1.00", "reason": "x"},
        headers=await bearer(world.agent_a),
    )
    assert agent.status_code == 403
    async with transaction(app.state.db) as session:
        assert await session.scalar(select(func.count()).select_from(LoanWaiver)) == 0
        assert await session.scalar(select(func.count()).select_from(JournalEntry)) == entries
    assert (await _installments(app, loan_id))[0].interest_waived == ZERO


async def test_waiving_the_last_penalty_closes_the_loan_and_a_reversal_keeps_the_waiver(
    app,
    client,
    world,
    bearer,
    customer,
) -> None:  # type: ignore[no-untyped-def]
    product = await _product(
        client,
        bearer,
        world,
        "PEN-LAST",
        {
            "penalty": {"basis": "flat", "value": "50", "recurrence": "once"},
            # Penalties last, so that a payment of the schedule leaves only them.
            "allocation": {"order": ["principal", "interest", "fee", "penalty"]},
        },
    )
    today = today_india()
    loan_id = await make_loan(
        app,
        client,
        bearer,
        world,
        product,
        amount="10000.00",
        installments=1,
        disbursed_on=add_months(today, -1) - dt.timedelta(days=3),
    )
    await _apply(app, today)
    row = (await _installments(app, loan_id))[0]
    assert row.penalty_due == D("50.00")
    agent = await bearer(world.agent_a)
    scheduled = row.principal_due + row.interest_due
    paid = await collect(client, agent, loan_id, str(scheduled))
    assert paid.status_code == 201, paid.text
    assert paid.json()["loan"]["status"] == "active"
    assert paid.json()["loan"]["outstanding_penalties"] == "50.00"
    admin = await bearer(world.admin)
    waived = await client.post(
        f"/api/loans/{loan_id}/waivers",
        json={"component": "penalty", "amount": "50.00", "reason": "first delay, goodwill"},
        headers=admin,
    )
    assert waived.status_code == 201, waived.text
    assert waived.json()["loan"]["status"] == "closed"

    # Reversing the payment re-opens the loan; the waiver stays on the installment.
    reversed_ = await client.post(
        f"/api/collections/{paid.json()['collection']['id']}/reverse",
        json={"reason": "cheque bounced"},
        headers=admin,
    )
    assert reversed_.status_code == 200, reversed_.text
    assert reversed_.json()["loan"]["status"] == "active"
    row = (await _installments(app, loan_id))[0]
    assert (row.penalty_waived, row.principal_paid, row.interest_paid) == (D("50.00"), ZERO, ZERO)
    loan = await _loan(app, loan_id)
    assert (loan.outstanding_penalties, loan.outstanding_principal) == (ZERO, row.principal_due)
    async with transaction(app.state.db) as session:
        assert (await ledger_check(session)).ok


# --- recoveries -----------------------------------------------------------------------------------


async def test_money_received_on_a_written_off_loan_is_a_recovery(
    app,
    client,
    world,
    bearer,
    customer,
) -> None:  # type: ignore[no-untyped-def]
    product = await _product(client, bearer, world, "RECOV", {})
    today = today_india()
    loan_id = await make_loan(
        app, client, bearer, world, product, amount="10000.00", disbursed_on=add_months(today, -2)
    )
    admin = await bearer(world.admin)
    written = await client.post(
        f"/api/loans/{loan_id}/write-off", json={"reason": "migrated away"}, headers=admin
    )
    assert written.status_code == 200, written.text
    loan = await _loan(app, loan_id)
    headroom = D("10000.00") + loan.outstanding_interest + loan.outstanding_fees
    agent = await bearer(world.agent_a)

    first = await collect(client, agent, loan_id, "1500.00")
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["collection"]["recovery"] == "1500.00"
    assert body["collection"]["principal"] == "0.00" and body["allocation"] == []
    assert body["loan"]["status"] == "written_off"
    ledger = await _ledger(app, loan_id)
    assert ledger[AccountKind.RECOVERY_INCOME] == D("-1500.00")
    assert ledger[AccountKind.AGENT_CASH] == D("1500.00")
    assert ledger[AccountKind.LOAN_PORTFOLIO] == ZERO  # the write-off emptied it

    over = await collect(client, agent, loan_id, str(headroom - D("1500.00") + D("0.01")))
    assert over.status_code == 422, over.text
    assert str(headroom - D("1500.00")) in over.json()["error"]["details"][0]["message"]

    back = await client.post(
        f"/api/collections/{body['collection']['id']}/reverse",
        json={"reason": "wrong loan"},
        headers=admin,
    )
    assert back.status_code == 200, back.text
    assert back.json()["status"] == "reversed"
    ledger = await _ledger(app, loan_id)
    assert ledger.get(AccountKind.RECOVERY_INCOME, ZERO) == ZERO
    again = await client.post(
        f"/api/collections/{body['collection']['id']}/reverse",
        json={"reason": "twice"},
        headers=admin,
    )
    assert again.status_code == 409
    # After the reversal the whole headroom is available again.
    full = await collect(client, agent, loan_id, str(headroom))
    assert full.status_code == 201, full.text
    async with transaction(app.state.db) as session:
        recovered = await session.scalar(
            select(func.sum(Collection.recovery)).where(Collection.loan_id == uuid.UUID(loan_id))
        )
        assert recovered == headroom + D("1500.00")  # the reversed one stays, marked
        assert (await ledger_check(session)).ok


async def test_products_offer_the_rescheduling_excess_policies(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    """reduce-term and reduce-installment are accepted (D-163) and kept in the version's terms;
    an unknown policy is still a 422 on the field."""
    admin = await bearer(world.admin)
    for code, policy in (("RT", "reduce-term"), ("RI", "reduce-installment")):
        body = {**MONTHLY_PRODUCT, "code": code, "terms": {"allocation": {"excess": policy}}}
        response = await client.post("/api/products", json=body, headers=admin)
        assert response.status_code == 201, response.text
        shown = await client.get(f"/api/products/{response.json()['id']}", headers=admin)
        assert shown.json()["latest_version"]["terms"]["allocation"]["excess"] == policy
    body = {**MONTHLY_PRODUCT, "code": "XX", "terms": {"allocation": {"excess": "shorten"}}}
    response = await client.post("/api/products", json=body, headers=admin)
    assert response.status_code == 422, response.text
    assert "excess" in response.json()["error"]["details"][0]["field"]
