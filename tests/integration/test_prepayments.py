"""Money beyond today's dues under the excess policies ``reduce-term`` and
``reduce-installment`` (issue 19 item 3; D-163..D-165), through HTTP against real PostgreSQL:
the prepaid principal leaves the portfolio (no advance is held), the installments still to fall
due are rewritten by the money core in the same transaction, the API answer says what it did,
and a reversal puts the schedule back exactly. The ledger check passes after each."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select

from namma.collections import prepayments
from namma.finance import ExcessPolicy, generate_schedule, reschedule_after_prepayment
from namma.kit.db import transaction
from namma.kit.errors import ConflictError
from namma.loans.service import loan_terms_of, today_india
from namma.models import (
    AccountKind,
    JournalLine,
    LedgerAccount,
    Loan,
    LoanInstallment,
    LoanProductVersion,
    LoanScheduleRevision,
)
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    MONTHLY_PRODUCT,
    assert_consistent,
    collect,
    customer,
    installments_of,
    make_loan,
    settings,
)

D = Decimal
EMI = D("8884.88")  # 100000 at 12 % over 12 months


async def _product(client, world, bearer, policy: str):  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/products",
        json={
            **MONTHLY_PRODUCT,
            "code": f"P-{policy[7:11].upper()}",
            "terms": {"frequency": "monthly", "allocation": {"excess": policy}},
        },
        headers=await bearer(world.admin),
    )
    assert response.status_code == 201, response.text
    assert response.json()["latest_version"]["terms"]["allocation"]["excess"] == policy
    return response.json()


def _scheduled(rows: list[LoanInstallment]) -> list[tuple[object, ...]]:
    return [
        (
            r.number,
            r.due_date,
            r.period_start,
            r.principal_due,
            r.interest_due,
            r.fee_due,
            r.interest_for_period,
            r.balance_after,
        )
        for r in rows
    ]


async def _expected(app, loan_id: str, paid_through: int, balance: D, policy: ExcessPolicy):  # type: ignore[no-untyped-def]
    """The money core's schedule after the prepayment, from the loan's own terms."""
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None and loan.disbursed_on is not None
        version = await session.get(LoanProductVersion, loan.product_version_id)
        assert version is not None
        schedule = generate_schedule(loan_terms_of(loan, version), disbursed_on=loan.disbursed_on)
    return reschedule_after_prepayment(
        schedule=schedule, paid_through=paid_through, balance=balance, policy=policy
    )


async def _portfolio_and_advances(app, entry_id: int) -> dict[str, D]:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        rows = await session.execute(
            select(LedgerAccount.kind, JournalLine.credit - JournalLine.debit)
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .where(JournalLine.entry_id == entry_id)
        )
        return {k.value: net for k, net in rows}


async def _revisions(app, loan_id: str) -> list[LoanScheduleRevision]:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        return list(
            await session.scalars(
                select(LoanScheduleRevision).where(
                    LoanScheduleRevision.loan_id == uuid.UUID(loan_id)
                )
            )
        )


async def _one_prepayment(app, client, world, bearer, policy: ExcessPolicy):  # type: ignore[no-untyped-def]
    """Installment 1 falls due today; the customer pays it and 20,000 more."""
    product = await _product(client, world, bearer, policy.value)
    loan_id = await make_loan(app, client, bearer, world, product)
    original = await installments_of(app, loan_id)
    agent = await bearer(world.agent_a)
    posted = await collect(client, agent, loan_id, str(EMI + D("20000.00")))
    assert posted.status_code == 201, posted.text
    return loan_id, original, posted.json(), agent


async def test_reduce_term_keeps_the_installment_and_shortens_the_loan(
    app, client, world, bearer, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id, original, body, agent = await _one_prepayment(
        app, client, world, bearer, ExcessPolicy.REDUCE_TERM
    )
    first = original[0]
    balance = first.balance_after - D("20000.00")
    expected = await _expected(app, loan_id, 1, balance, ExcessPolicy.REDUCE_TERM)
    collection = body["collection"]
    assert D(collection["prepaid_principal"]) == D("20000.00")
    assert D(collection["principal"]) == first.principal_due + D("20000.00")
    assert D(collection["interest"]) == first.interest_due
    assert D(collection["advance"]) == 0
    assert [a["installment_number"] for a in body["allocation"]] == [1]
    assert body["collection"]["rescheduled"] == {
        "policy": "reduce-term",
        "prepaid_principal": "20000.00",
        "installments_before": 12,
        "installments_after": len(expected.rows),
        "installment_before": "8884.88",
        "installment_after": "8884.88",
    }
    assert len(expected.rows) < 12
    assert D(body["loan"]["outstanding_principal"]) == balance
    assert D(body["loan"]["advance_balance"]) == 0
    # The schedule: installment 1 as it was, then the money core's rows, the last one smaller.
    rows = await installments_of(app, loan_id)
    assert _scheduled(rows)[0] == _scheduled(original)[0]
    assert [
        (r.number, r.due_date, r.principal_due, r.interest_due, r.balance_after) for r in rows[1:]
    ] == [(r.number, r.due_date, r.principal, r.interest, r.balance) for r in expected.rows[1:]]
    assert all(r.principal_due + r.interest_due == EMI for r in rows[1:-1])
    assert rows[-1].principal_due + rows[-1].interest_due < EMI
    # The ledger: the prepaid principal leaves the portfolio; no advance is held.
    split = await _portfolio_and_advances(app, collection["journal_entry_id"])
    assert split[AccountKind.LOAN_PORTFOLIO.value] == first.principal_due + D("20000.00")
    assert split[AccountKind.INTEREST_INCOME.value] == first.interest_due
    assert AccountKind.CUSTOMER_ADVANCES.value not in split
    await assert_consistent(app, loan_id)

    # The reversal puts the schedule back exactly; the loan owes what it did before.
    reversed_ = await client.post(
        f"/api/collections/{collection['id']}/reverse",
        json={"reason": "counted twice"},
        headers=await bearer(world.admin),
    )
    assert reversed_.status_code == 200, reversed_.text
    assert D(reversed_.json()["loan"]["outstanding_principal"]) == D("100000.00")
    assert _scheduled(await installments_of(app, loan_id)) == _scheduled(original)
    assert await _revisions(app, loan_id) == []
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None and loan.installment_amount == EMI
    await assert_consistent(app, loan_id)

    # Paying again after the reversal rewrites it again, the same way.
    again = await collect(client, agent, loan_id, str(EMI + D("20000.00")))
    assert again.status_code == 201, again.text
    assert again.json()["collection"]["rescheduled"]["installments_after"] == len(expected.rows)
    await assert_consistent(app, loan_id)


async def test_reduce_installment_keeps_the_count_and_lowers_each(
    app, client, world, bearer, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id, original, body, _ = await _one_prepayment(
        app, client, world, bearer, ExcessPolicy.REDUCE_INSTALLMENT
    )
    balance = original[0].balance_after - D("20000.00")
    expected = await _expected(app, loan_id, 1, balance, ExcessPolicy.REDUCE_INSTALLMENT)
    lower = expected.installment_amount
    assert lower < EMI
    assert body["collection"]["rescheduled"] == {
        "policy": "reduce-installment",
        "prepaid_principal": "20000.00",
        "installments_before": 12,
        "installments_after": 12,
        "installment_before": "8884.88",
        "installment_after": str(lower),
    }
    rows = await installments_of(app, loan_id)
    assert len(rows) == 12
    assert all(r.principal_due + r.interest_due == lower for r in rows[1:-1])
    assert sum((r.principal_due for r in rows[1:]), D(0)) == balance
    assert D(body["loan"]["outstanding_principal"]) == balance
    await assert_consistent(app, loan_id)
    # The loan's schedule as the API gives it shows the new installments.
    schedule = await client.get(
        f"/api/loans/{loan_id}/schedule", headers=await bearer(world.agent_a)
    )
    assert schedule.status_code == 200, schedule.text
    assert len(schedule.json()["installments"]) == 12

    reversed_ = await client.post(
        f"/api/collections/{body['collection']['id']}/reverse",
        json={"reason": "wrong loan"},
        headers=await bearer(world.admin),
    )
    assert reversed_.status_code == 200, reversed_.text
    assert _scheduled(await installments_of(app, loan_id)) == _scheduled(original)
    await assert_consistent(app, loan_id)


async def test_reversing_an_earlier_payment_replays_a_later_prepayment(
    app, client, world, bearer, customer
) -> None:  # type: ignore[no-untyped-def]
    """Two installments are due (the loan was disbursed two months ago). A pays installment 1;
    B pays installment 2 and prepays 10,000. Reversing A replays B as of its date: it now pays
    installments 1 and 2 and prepays only what is left (1,115.12), and the schedule is rewritten
    for that; reversing B too puts the original schedule back."""
    product = await _product(client, world, bearer, "reduce-term")
    today = today_india()
    loan_id = await make_loan(
        app, client, bearer, world, product, disbursed_on=_months_before(today, 2)
    )
    original = await installments_of(app, loan_id)
    assert original[1].due_date == today
    agent = await bearer(world.agent_a)
    a = (await collect(client, agent, loan_id, str(EMI))).json()
    b = (await collect(client, agent, loan_id, str(EMI + D("10000.00")))).json()
    assert b["collection"]["rescheduled"]["prepaid_principal"] == "10000.00"
    await assert_consistent(app, loan_id)

    manager = await bearer(world.admin)
    first = await client.post(
        f"/api/collections/{a['collection']['id']}/reverse",
        json={"reason": "bounced"},
        headers=manager,
    )
    assert first.status_code == 200, first.text
    async with transaction(app.state.db) as session:
        from namma.models import Collection

        replayed = await session.get(Collection, uuid.UUID(b["collection"]["id"]))
        assert replayed is not None
        assert replayed.prepaid_principal == D("10000.00") - EMI
    revisions = await _revisions(app, loan_id)
    assert [r.prepaid_principal for r in revisions] == [D("10000.00") - EMI]
    balance = original[1].balance_after - (D("10000.00") - EMI)
    expected = await _expected(app, loan_id, 2, balance, ExcessPolicy.REDUCE_TERM)
    rows = await installments_of(app, loan_id)
    assert [(r.number, r.principal_due, r.interest_due) for r in rows] == [
        (r.number, r.principal, r.interest) for r in expected.rows
    ]
    await assert_consistent(app, loan_id)

    second = await client.post(
        f"/api/collections/{b['collection']['id']}/reverse",
        json={"reason": "bounced too"},
        headers=manager,
    )
    assert second.status_code == 200, second.text
    assert _scheduled(await installments_of(app, loan_id)) == _scheduled(original)
    assert await _revisions(app, loan_id) == []
    await assert_consistent(app, loan_id)


async def test_a_prepayment_of_all_the_principal_is_a_preclosure(
    app, client, world, bearer, customer
) -> None:  # type: ignore[no-untyped-def]
    """Installment 1 fell due ten days ago: its dues and every rupee of principal left is less
    than the payoff (ten days of interest have accrued since), and is refused, not taken as a
    prepayment that would close the loan without that interest."""
    product = await _product(client, world, bearer, "reduce-installment")
    disbursed_on = _months_before(today_india(), 1) - dt.timedelta(days=10)
    loan_id = await make_loan(app, client, bearer, world, product, disbursed_on=disbursed_on)
    rows = await installments_of(app, loan_id)
    agent = await bearer(world.agent_a)
    everything = rows[0].principal_due + rows[0].interest_due + rows[0].balance_after
    response = await collect(client, agent, loan_id, str(everything))
    assert response.status_code == 422, response.text
    assert "collect the payoff amount" in response.json()["error"]["message"]
    assert _scheduled(await installments_of(app, loan_id)) == _scheduled(rows)
    await assert_consistent(app, loan_id)


def _months_before(day: dt.date, months: int) -> dt.date:
    from namma.finance import add_months

    return add_months(day, -months)


async def test_the_receipt_the_agents_receipt_and_the_schedule_say_what_it_did(
    app, client, world, bearer, customer
) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.test_documents import download, pdf_text, run_jobs
    from tests.integration.test_pages import sign_in

    loan_id, _, body, agent = await _one_prepayment(
        app, client, world, bearer, ExcessPolicy.REDUCE_TERM
    )
    count = body["collection"]["rescheduled"]["installments_after"]
    said = f"prepaid: term reduced to {count} installments"
    # The receipt (PDF), as the customer downloads it.
    await run_jobs()
    url = f"/api/collections/{body['collection']['id']}/receipt.pdf"
    text = " ".join(
        pdf_text((await download(client, url, await bearer(world.customer_user_a))).content).split()
    )
    assert f"Rs. 20,000.00 {said}" in text, text
    # The collection as the API gives it, and the loan's schedule.
    shown = await client.get(f"/api/collections/{body['collection']['id']}", headers=agent)
    assert shown.json()["rescheduled"]["installments_after"] == count
    schedule = (await client.get(f"/api/loans/{loan_id}/schedule", headers=agent)).json()
    revisions = [
        (r["receipt_number"], r["policy"], r["prepaid_principal"]) for r in schedule["rescheduled"]
    ]
    assert revisions == [(body["receipt_number"], "reduce-term", "20000.00")]
    assert len(schedule["installments"]) == count
    # The agent's on-screen receipt and the loan's schedule, on the pages.
    await sign_in(app, client, world.agent_a)
    receipt = await client.get(f"/agent/collections/{body['collection']['id']}")
    assert receipt.status_code == 200 and 'id="prepaid"' in receipt.text
    assert f"₹20,000.00 {said}" in receipt.text
    loan_page = await client.get(f"/agent/loans/{loan_id}")
    assert 'id="rescheduled"' in loan_page.text and said in loan_page.text
    await sign_in(app, client, world.manager_a)
    office = await client.get(f"/office/loans/{loan_id}?tab=schedule")
    assert office.status_code == 200 and said in office.text
    office_receipt = await client.get(f"/office/collections/{body['collection']['id']}")
    assert said in office_receipt.text


async def test_the_admin_offers_a_policy_on_the_product_page_and_its_preview_shows_it(
    app, client, world
) -> None:  # type: ignore[no-untyped-def]
    from namma.finance import generate_schedule
    from namma.kit.clock import today_india as clock_today
    from namma.products.schemas import ProductTerms
    from tests.integration.test_office_admin_pages import PRODUCT_FORM
    from tests.integration.test_pages import csrf_of, sign_in

    await sign_in(app, client, world.admin)
    form = await client.get("/office/products/new")
    assert 'name="excess"' in form.text and "reduce-installment" in form.text
    made = await client.post(
        "/office/products/new",
        data={"csrf_token": csrf_of(form.text), **PRODUCT_FORM, "excess": "reduce-installment"},
    )
    assert made.status_code == 303, made.text
    url = str(made.headers["location"])
    page = await client.get(url)
    assert "Prepays principal: the same installments, each lower" in page.text
    preview = await client.get(f"{url}/preview?principal=10000&annual_rate=24&installments=26")
    assert preview.status_code == 200, preview.text
    terms = ProductTerms.model_validate(
        {
            "frequency": "weekly",
            "fees": [
                {
                    "name": "Processing fee",
                    "timing": "disbursement",
                    "basis": "percent",
                    "value": "1",
                }
            ],
            "allocation": {"excess": "reduce-installment"},
        }
    ).loan_terms(principal=D("10000"), annual_rate=D("24"), installments=26, microfinance=True)
    schedule = generate_schedule(terms, disbursed_on=clock_today())
    example = reschedule_after_prepayment(
        schedule=schedule,
        paid_through=1,
        balance=schedule.rows[0].balance - schedule.installment_amount,
        policy=ExcessPolicy.REDUCE_INSTALLMENT,
    )
    assert 'id="preview-excess"' in preview.text
    assert f"26 installments of ₹{example.installment_amount:,.2f}" in preview.text, preview.text
    # A new version may change it; the comparison names it.
    new = await client.get(f"{url}/versions/new")
    assert 'name="excess"' in new.text


async def test_a_sheet_line_beyond_the_dues_prepays_through_the_same_service(
    app, client, world, bearer, customer
) -> None:  # type: ignore[no-untyped-def]
    """The bulk sheet post goes through the same collection service: its line prepays and
    rewrites the schedule, and a re-sent sheet replays the line without a second rewrite."""
    product = await _product(client, world, bearer, "reduce-installment")
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    line = {
        "loan_id": loan_id,
        "amount": str(EMI + D("5000.00")),
        "collected_on": today_india().isoformat(),
        "method": "cash",
        "client_id": str(uuid.uuid4()),
    }
    for _ in range(2):
        response = await client.post(
            "/api/collection-sheet/post", json={"lines": [line]}, headers=agent
        )
        assert response.status_code == 200, response.text
        posted = response.json()["lines"][0]
        assert posted["status"] == 201, posted
        assert posted["body"]["collection"]["rescheduled"]["prepaid_principal"] == "5000.00"
    assert len(await _revisions(app, loan_id)) == 1
    rows = await installments_of(app, loan_id)
    assert len(rows) == 12
    assert rows[1].principal_due + rows[1].interest_due < EMI
    await assert_consistent(app, loan_id)


async def test_two_prepayments_chain_and_a_pre_closure_uses_the_new_rows(
    app, client, world, bearer, customer
) -> None:  # type: ignore[no-untyped-def]
    """P1 pays installment 1 and prepays; P2 (the same day, nothing due any more) prepays all of
    it, on P1's rows. Reversing P1 restores the original rows and replays P2 on them: P2 now pays
    installment 1 first and prepays the rest. The pre-closure quote then follows the rewritten
    rows, and paying it closes the loan with the books balanced."""
    product = await _product(client, world, bearer, "reduce-term")
    loan_id = await make_loan(app, client, bearer, world, product)
    original = await installments_of(app, loan_id)
    agent = await bearer(world.agent_a)
    p1 = (await collect(client, agent, loan_id, str(EMI + D("10000.00")))).json()
    p2 = (await collect(client, agent, loan_id, "15000.00")).json()
    assert p2["collection"]["prepaid_principal"] == "15000.00"
    assert (
        p2["collection"]["rescheduled"]["installments_before"]
        == (p1["collection"]["rescheduled"]["installments_after"])
    )
    assert D(p2["loan"]["outstanding_principal"]) == original[0].balance_after - D("25000.00")
    assert len(await _revisions(app, loan_id)) == 2
    await assert_consistent(app, loan_id)

    reversed_ = await client.post(
        f"/api/collections/{p1['collection']['id']}/reverse",
        json={"reason": "wrong customer"},
        headers=await bearer(world.admin),
    )
    assert reversed_.status_code == 200, reversed_.text
    prepaid = D("15000.00") - EMI
    revisions = await _revisions(app, loan_id)
    assert [r.prepaid_principal for r in revisions] == [prepaid]
    expected = await _expected(
        app, loan_id, 1, original[0].balance_after - prepaid, ExcessPolicy.REDUCE_TERM
    )
    rows = await installments_of(app, loan_id)
    assert [(r.number, r.principal_due, r.interest_due, r.balance_after) for r in rows] == [
        (r.number, r.principal, r.interest, r.balance) for r in expected.rows
    ]
    assert rows[0].principal_paid == original[0].principal_due
    await assert_consistent(app, loan_id)

    quote = await client.get(f"/api/loans/{loan_id}/preclosure", headers=agent)
    assert quote.status_code == 200, quote.text
    assert D(quote.json()["principal"]) == original[0].balance_after - prepaid
    closing = await collect(client, agent, loan_id, quote.json()["payable"])
    assert closing.status_code == 201, closing.text
    assert closing.json()["loan"]["status"] == "preclosed"
    assert closing.json()["collection"]["rescheduled"] is None
    await assert_consistent(app, loan_id)


async def test_an_installment_named_by_history_cannot_be_dropped_by_a_shorter_term(
    app, client, world, bearer, customer
) -> None:  # type: ignore[no-untyped-def]
    """A reduce-term prepayment deletes the installments it no longer needs, unless a payment,
    an advance or a penalty names one (history stays): then 409, in one statement for all."""
    loan_id, _, _, _ = await _one_prepayment(app, client, world, bearer, ExcessPolicy.REDUCE_TERM)
    rows = await installments_of(app, loan_id)
    paid, last = rows[0], rows[-1]  # installment 1 carries the collection's allocation
    async with transaction(app.state.db) as session:
        await prepayments.dropped_check(session, [last])  # nothing names it: may go
        with pytest.raises(ConflictError, match="named by an earlier"):
            await prepayments.dropped_check(session, [last, paid])
