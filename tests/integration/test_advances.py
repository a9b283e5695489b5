"""Money beyond today's dues (issue 19 item 3), through HTTP against real PostgreSQL: held as an
advance (a liability, ``customer_advances``), applied by the close of business as installments
fall due, shown on the collection, the loan, the pre-closure quote and the receipt (English and
Kannada); the limits (the payoff less the advance held; a product that refuses excess); a
pre-closure that uses the advance; reversals before and after the
advance was applied. The ledger check passes after each."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import select

from namma.cob.runner import cob_execute
from namma.kit.db import transaction
from namma.ledger.queries import ledger_check
from namma.loans.service import today_india
from namma.models import (
    AccountKind,
    AdvanceApplication,
    Customer,
    JournalEntry,
    JournalLine,
    LedgerAccount,
    Loan,
    LoanStatus,
)
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    MONTHLY_PRODUCT,
    assert_consistent,
    collect,
    customer,
    installments_of,
    make_loan,
    product,
    settings,
)
from tests.integration.test_documents import download, pdf_text, run_jobs

D = Decimal
WEEKLY_PRODUCT = {
    **MONTHLY_PRODUCT,
    "code": "JLG-W",
    "name": "Group, weekly",
    "terms": {"frequency": "weekly"},
}


async def _product(client, world, bearer, body):  # type: ignore[no-untyped-def]
    response = await client.post("/api/products", json=body, headers=await bearer(world.admin))
    assert response.status_code == 201, response.text
    return response.json()


async def _weekly_loan(app, client, world, bearer):  # type: ignore[no-untyped-def]
    """A weekly loan disbursed two weeks ago: installment 1 fell due a week ago (inside the
    back-dating window), installment 2 falls due today."""
    weekly = await _product(client, world, bearer, WEEKLY_PRODUCT)
    today = today_india()
    loan_id = await make_loan(
        app,
        client,
        bearer,
        world,
        weekly,
        amount="10000.00",
        installments=10,
        disbursed_on=today - dt.timedelta(days=14),
    )
    rows = await installments_of(app, loan_id)
    assert rows[0].due_date == today - dt.timedelta(days=7) and rows[1].due_date == today
    return loan_id, rows


async def _entry_lines(app, entry_id: int) -> list[tuple[str, Decimal, Decimal]]:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        rows = await session.execute(
            select(LedgerAccount.kind, JournalLine.debit, JournalLine.credit)
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .where(JournalLine.entry_id == entry_id)
        )
        return sorted((k.value, d, c) for k, d, c in rows)


async def _loan(app, loan_id: str) -> Loan:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None
        return loan


async def test_two_installments_paid_on_the_first_due_date_leave_the_second_paid_after_cob(
    app, client, world, bearer, customer
) -> None:  # type: ignore[no-untyped-def]
    """The acceptance story: on installment 1's due date the customer pays two installments.
    Installment 1 is paid; the rest is held as an advance (a liability), not put on
    installment 2. The close of business of the day installment 2 falls due applies it:
    installment 2 is paid, the advance is gone, and the ledger check accepts every entry. The
    receipt says the money is held as an advance."""
    loan_id, rows = await _weekly_loan(app, client, world, bearer)
    first, second = rows[0], rows[1]
    emi = first.principal_due + first.interest_due
    assert second.principal_due + second.interest_due == emi
    agent = await bearer(world.agent_a)

    posted = await collect(client, agent, loan_id, str(emi * 2), on=first.due_date)
    assert posted.status_code == 201, posted.text
    body = posted.json()
    assert [a["installment_number"] for a in body["allocation"]] == [1]
    assert body["allocation"][0]["installment_status"] == "paid"
    collection = body["collection"]
    assert D(collection["advance"]) == emi
    assert D(collection["principal"]) + D(collection["interest"]) == emi
    assert D(body["loan"]["advance_balance"]) == emi
    assert body["loan"]["next_due_on"] == second.due_date.isoformat()
    # The journal: cash in; installment 1's principal and interest; the rest a liability.
    assert await _entry_lines(app, collection["journal_entry_id"]) == sorted(
        [
            (AccountKind.AGENT_CASH.value, emi * 2, D("0.00")),
            (AccountKind.LOAN_PORTFOLIO.value, D("0.00"), first.principal_due),
            (AccountKind.INTEREST_INCOME.value, D("0.00"), first.interest_due),
            (AccountKind.CUSTOMER_ADVANCES.value, D("0.00"), emi),
        ]
    )
    # Installment 2 is untouched until it falls due; the loan and the API show the advance.
    rows = await installments_of(app, loan_id)
    assert rows[1].principal_paid == 0 and rows[1].interest_paid == 0
    shown = await client.get(f"/api/loans/{loan_id}", headers=agent)
    assert D(shown.json()["advance_balance"]) == emi
    await assert_consistent(app, loan_id)

    # The close of business of installment 1's date has nothing to apply the advance to.
    early = await cob_execute(app.state.db, business_date=first.due_date)
    assert early.counts["advances"]["loans"] == 0
    assert (await _loan(app, loan_id)).advance_balance == emi

    # The close of business of the day installment 2 falls due applies it.
    outcome = await cob_execute(app.state.db, business_date=second.due_date)
    assert outcome.counts["advances"] == {
        "loans": 1,
        "installments": 1,
        "applied": str(emi),
        "closed": 0,
    }
    rows = await installments_of(app, loan_id)
    assert rows[1].status.value == "paid"
    assert (rows[1].principal_paid, rows[1].interest_paid) == (
        second.principal_due,
        second.interest_due,
    )
    loan = await _loan(app, loan_id)
    assert loan.advance_balance == 0 and loan.days_past_due == 0
    assert loan.next_due_on == rows[2].due_date
    assert loan.outstanding_principal == D("10000.00") - first.principal_due - second.principal_due
    async with transaction(app.state.db) as session:
        [application] = (
            await session.scalars(
                select(AdvanceApplication).where(AdvanceApplication.loan_id == loan.id)
            )
        ).all()
        assert (application.installment_number, application.applied_on) == (2, second.due_date)
        entry = await session.get(JournalEntry, application.journal_entry_id)
        assert entry is not None and entry.kind == "advance.applied"
        assert entry.entry_date == second.due_date
        check = await ledger_check(session)
        assert check.ok, check.problems()
    assert await _entry_lines(app, application.journal_entry_id) == sorted(
        [
            (AccountKind.CUSTOMER_ADVANCES.value, emi, D("0.00")),
            (AccountKind.LOAN_PORTFOLIO.value, D("0.00"), second.principal_due),
            (AccountKind.INTEREST_INCOME.value, D("0.00"), second.interest_due),
        ]
    )
    # A second run of the date applies nothing more.
    again = await cob_execute(app.state.db, business_date=second.due_date, force=True)
    assert again.counts["advances"]["loans"] == 0
    await assert_consistent(app, loan_id)

    # The receipt says so, in English ...
    await run_jobs()
    url = f"/api/collections/{collection['id']}/receipt.pdf"
    text = pdf_text((await download(client, url, await bearer(world.customer_user_a))).content)
    money = f"{emi:,.2f}"
    for expected in (
        "Held as advance",
        f"Rs. {money} paid in advance: it pays your next installments as they fall due",
    ):
        assert expected in " ".join(text.split()), (expected, text)


async def test_a_kannada_receipt_says_the_money_is_held_as_an_advance(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        row = await session.get(Customer, world.customer_a.id)
        assert row is not None
        row.preferred_language = "kn"
    loan_id = await make_loan(app, client, bearer, world, product)
    posted = await collect(client, await bearer(world.agent_a), loan_id, "10000.00")
    assert posted.status_code == 201, posted.text
    assert posted.json()["collection"]["advance"] == "1115.12"
    await run_jobs()
    receipt = await download(
        client,
        f"/api/collections/{posted.json()['collection']['id']}/receipt.pdf",
        await bearer(world.customer_user_a),
    )
    text = pdf_text(receipt.content)
    for expected in ("ಮುಂಗಡವಾಗಿ ಇರಿಸಲಾಗಿದೆ", "₹1,115.12", "ಮುಂಗಡವಾಗಿ ಪಾವತಿಸಲಾಗಿದೆ"):
        assert expected in text, (expected, text)


async def test_limits_the_payoff_less_the_advance_and_a_preclosure_uses_the_advance(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    """Installment 1 (8884.88) falls due today; the payoff today is 101000.00. After 5000.00
    held as an advance, at most 96000.00 can be collected, and exactly that pre-closes the
    loan, using the advance (Dr advances, no liability left)."""
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    held = await collect(client, agent, loan_id, "13884.88")
    assert held.status_code == 201, held.text
    assert held.json()["collection"]["advance"] == "5000.00"

    quote = (await client.get(f"/api/loans/{loan_id}/preclosure", headers=agent)).json()
    assert (quote["total"], quote["advance_held"], quote["payable"]) == (
        "92115.12",
        "5000.00",
        "87115.12",
    )
    too_much = await collect(client, agent, loan_id, "87115.13")
    assert too_much.status_code == 422, too_much.text
    error = too_much.json()["error"]
    assert error["details"][0]["field"] == "amount"
    assert "87115.12" in error["message"] and "advance of 5000.00" in error["message"]
    assert (await _loan(app, loan_id)).advance_balance == D("5000.00")  # nothing changed

    paid = await collect(client, agent, loan_id, "87115.12")
    assert paid.status_code == 201, paid.text
    body = paid.json()
    assert body["loan"]["status"] == "preclosed" and body["collection"]["preclosure"] is True
    assert body["collection"]["advance"] == "-5000.00"
    assert body["collection"]["principal"] == "92115.12"
    assert body["loan"]["advance_balance"] == "0.00"
    assert body["loan"]["total_collected"] == "101000.00"
    lines = await _entry_lines(app, body["collection"]["journal_entry_id"])
    assert (AccountKind.CUSTOMER_ADVANCES.value, D("5000.00"), D("0.00")) in lines
    await assert_consistent(app, loan_id)


async def test_a_product_that_refuses_excess(app, client, world, bearer, customer) -> None:  # type: ignore[no-untyped-def]
    refusing = await _product(
        client,
        world,
        bearer,
        {**MONTHLY_PRODUCT, "code": "NOADV", "terms": {"allocation": {"excess": "refuse"}}},
    )
    loan_id = await make_loan(app, client, bearer, world, refusing)
    agent = await bearer(world.agent_a)
    more = await collect(client, agent, loan_id, "8884.89")
    assert more.status_code == 422, more.text
    assert more.json()["error"]["details"][0]["field"] == "amount"
    assert "excess is refused" in more.json()["error"]["message"]
    assert (await collect(client, agent, loan_id, "8884.88")).status_code == 201
    await assert_consistent(app, loan_id)


async def test_reversing_a_collection_whose_advance_is_still_held(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    paid = (await collect(client, agent, loan_id, "10000.00")).json()
    assert paid["loan"]["advance_balance"] == "1115.12"
    reversed_ = await client.post(
        f"/api/collections/{paid['collection']['id']}/reverse",
        json={"reason": "counted twice"},
        headers=await bearer(world.admin),
    )
    assert reversed_.status_code == 200, reversed_.text
    loan = reversed_.json()["loan"]
    assert (loan["advance_balance"], loan["total_collected"]) == ("0.00", "0.00")
    assert loan["outstanding_principal"] == "100000.00"
    await assert_consistent(app, loan_id)


async def test_reversing_a_collection_after_its_advance_was_applied(
    app, client, world, bearer, customer
) -> None:  # type: ignore[no-untyped-def]
    """The advance was applied to installment 2 by the close of business; reversing the
    collection takes both off: installment 2 is owed again (an ``advance.reapplication`` entry
    moves what the application credited back out of the portfolio and income), the advance
    held is 0, and a later collection replayed after it holds its own excess again."""
    loan_id, rows = await _weekly_loan(app, client, world, bearer)
    first, second = rows[0], rows[1]
    emi = first.principal_due + first.interest_due
    agent = await bearer(world.agent_a)
    double = (await collect(client, agent, loan_id, str(emi * 2), on=first.due_date)).json()
    await cob_execute(app.state.db, business_date=second.due_date)
    assert (await installments_of(app, loan_id))[1].status.value == "paid"
    # A later small payment, held as an advance (installment 3 is not due).
    later = (await collect(client, agent, loan_id, "100.00")).json()
    assert later["collection"]["advance"] == "100.00"

    admin = await bearer(world.admin)
    reversed_ = await client.post(
        f"/api/collections/{double['collection']['id']}/reverse",
        json={"reason": "wrong customer"},
        headers=admin,
    )
    assert reversed_.status_code == 200, reversed_.text
    rows = await installments_of(app, loan_id)
    # The later 100.00 now pays installment 1 (due a week ago): interest first.
    assert rows[0].interest_paid == first.interest_due
    assert rows[0].principal_paid == D("100.00") - first.interest_due
    assert rows[1].principal_paid == 0 and rows[1].interest_paid == 0
    loan = reversed_.json()["loan"]
    assert loan["advance_balance"] == "0.00" and loan["total_collected"] == "100.00"
    replayed = await client.get(f"/api/collections/{later['collection']['id']}", headers=admin)
    assert replayed.json()["advance"] == "0.00"
    assert replayed.json()["interest"] == str(first.interest_due)
    async with transaction(app.state.db) as session:
        kinds = (
            await session.scalars(
                select(JournalEntry.kind)
                .where(JournalEntry.loan_id == uuid.UUID(loan_id))
                .order_by(JournalEntry.id)
            )
        ).all()
        assert "advance.reapplication" in kinds and "collection.reallocation" in kinds
        applications = (
            await session.scalars(
                select(AdvanceApplication).where(AdvanceApplication.loan_id == uuid.UUID(loan_id))
            )
        ).all()
        assert applications == []  # nothing was applied once the advance is gone
    await assert_consistent(app, loan_id)


async def test_the_collection_sheet_asks_only_what_the_advance_does_not_cover(
    app, client, world, bearer, customer
) -> None:  # type: ignore[no-untyped-def]
    """On installment 2's due date (before the close of business applies the advance) the
    sheet does not ask the agent to collect again what is already held."""
    loan_id, rows = await _weekly_loan(app, client, world, bearer)
    first = rows[0]
    emi = first.principal_due + first.interest_due
    agent = await bearer(world.agent_a)
    paid = await collect(client, agent, loan_id, str(emi + D("100.00")), on=first.due_date)
    assert paid.status_code == 201, paid.text
    assert paid.json()["collection"]["advance"] == "100.00"

    sheet = (await client.get("/api/collection-sheet", headers=agent)).json()
    [line] = [
        loan
        for group in sheet["groups"]
        for person in group["customers"]
        for loan in person["loans"]
        if loan["loan_id"] == loan_id
    ]
    assert (line["due_today"], line["advance"]) == (str(emi), "100.00")
    assert line["expected"] == str(emi - D("100.00"))

    # Paid in full in advance: nothing to collect today, the loan is off the sheet.
    more = await collect(client, agent, loan_id, str(emi - D("100.00")), on=first.due_date)
    assert more.status_code == 201, more.text
    sheet = (await client.get("/api/collection-sheet", headers=agent)).json()
    listed = [
        loan["loan_id"]
        for group in sheet["groups"]
        for person in group["customers"]
        for loan in person["loans"]
    ]
    assert loan_id not in listed
    await assert_consistent(app, loan_id)


async def test_the_customers_loan_page_shows_the_advance_held(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.test_pages import sign_in

    loan_id = await make_loan(app, client, bearer, world, product)
    paid = await collect(client, await bearer(world.agent_a), loan_id, "10000.00")
    assert paid.status_code == 201, paid.text
    await sign_in(app, client, world.customer_user_a)
    page = await client.get(f"/customer/loans/{loan_id}")
    assert page.status_code == 200
    assert "Paid in advance" in page.text
    assert '<span class="stat-value" id="advance-balance">₹1,115.12</span>' in page.text


async def test_the_office_pre_closure_collects_what_is_payable_when_an_advance_is_held(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    """The back office's settle step shows the advance and collects the payoff less it (the
    most a collection may be while an advance is held), which pre-closes the loan."""
    from tests.integration.test_pages import sign_in

    loan_id = await make_loan(app, client, bearer, world, product)
    held = await collect(client, await bearer(world.agent_a), loan_id, "13884.88")
    assert held.status_code == 201 and held.json()["collection"]["advance"] == "5000.00"
    csrf = await sign_in(app, client, world.manager_a)
    settle = {"csrf_token": csrf, "idempotency_key": str(uuid.uuid4()), "method": "cash"}
    step = await client.post(f"/office/loans/{loan_id}/preclose", data=settle)
    assert step.status_code == 200
    assert "Advance used" in step.text and "₹87,115.12" in step.text
    done = await client.post(
        f"/office/loans/{loan_id}/preclose", data={**settle, "confirmed": "yes"}
    )
    assert done.status_code == 303, done.text
    loan = await _loan(app, loan_id)
    assert loan.status is LoanStatus.PRECLOSED and loan.advance_balance == D("0.00")
    await assert_consistent(app, loan_id)
