"""What a first-time user hit (issue 16, items 10, 12 and 13), through HTTP against real
PostgreSQL: a reversed collection's notice to the customer (English and Kannada); India dates on
documents and a statement's next due; a disbursement that takes cash or the bank below zero
(warned, or refused by a setting) and the demo's opening capital; loan numbers as people type
them; 403s that name the missing permission; page errors that are pages."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select

from namma.demo import demo_load
from namma.documents import service as documents
from namma.documents.queries import month_bounds
from namma.finance import add_months
from namma.kit.db import transaction
from namma.ledger.queries import trial_balance
from namma.loans.numbers import loan_number_normalise
from namma.loans.service import today_india
from namma.models import (
    AccountKind,
    Customer,
    Loan,
    Notification,
    NotificationChannel,
)
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    MONTHLY_PRODUCT,
    collect,
    customer,
    make_loan,
    product,
    settings,
)
from tests.integration.test_documents import pdf_text, run_jobs

D = Decimal


async def _loan_number(app, loan_id: str) -> str:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None
        return loan.loan_number


# --- 10: the reversal notice, India dates, the next due ------------------------------------


@pytest.mark.parametrize("language", ["en", "kn"])
async def test_a_reversed_collection_sends_the_customer_a_reversal_notice(
    app, client, world, bearer, product, customer, language: str
) -> None:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        row = await session.get(Customer, customer.id)
        assert row is not None
        row.preferred_language = language
    loan_id = await make_loan(app, client, bearer, world, product)
    posted = await collect(client, await bearer(world.agent_a), loan_id, "1500.00")
    assert posted.status_code == 201, posted.text
    receipt = posted.json()["receipt_number"]
    collection_id = posted.json()["collection"]["id"]
    reversed_ = await client.post(
        f"/api/collections/{collection_id}/reverse",
        json={"reason": "entered twice"},
        headers=await bearer(world.admin),
    )
    assert reversed_.status_code == 200, reversed_.text
    async with transaction(app.state.db) as session:
        rows = (
            await session.scalars(
                select(Notification).where(Notification.template == "collection_reversed")
            )
        ).all()
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None
        owed = (
            loan.outstanding_principal
            + loan.outstanding_interest
            + loan.outstanding_fees
            + loan.outstanding_penalties
        )
    [sms] = [r for r in rows if r.channel is NotificationChannel.SMS]
    assert sms.collection_id == uuid.UUID(collection_id)
    assert sms.language == language
    today = today_india().strftime("%d-%m-%Y")
    assert receipt in sms.body and "1,500.00" in sms.body and today in sms.body
    assert f"{owed:,}"[-6:] in sms.body  # what the loan owes now (Indian grouping aside)
    if language == "kn":
        assert "ಹಿಂತಿರುಗಿಸಲಾಗಿದೆ" in sms.body
    else:
        assert "was reversed" in sms.body
    # Reversed again (a retry that reaches the service): 409, and no second notice.
    again = await client.post(
        f"/api/collections/{collection_id}/reverse",
        json={"reason": "entered twice"},
        headers=await bearer(world.admin),
    )
    assert again.status_code == 409


async def test_documents_are_dated_in_india_time(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    """A receipt made at 20:00 UTC on 6 December is made at 01:30 on 7 December in India."""
    loan_id = await make_loan(app, client, bearer, world, product)
    posted = await collect(client, await bearer(world.agent_a), loan_id, "500.00")
    assert posted.status_code == 201, posted.text
    async with transaction(app.state.db) as session:
        document = await documents.receipt_ready(
            session,
            collection_id=uuid.UUID(posted.json()["collection"]["id"]),
            lender_name="Lender",
            grievance_contact="Grievances",
            now=dt.datetime(2026, 12, 6, 20, 0, tzinfo=dt.UTC),
        )
        content = document.content
    assert content is not None
    text = pdf_text(content)
    assert "07 Dec 2026 01:30 IST" in text, text
    assert "UTC" not in text


async def test_a_statement_s_next_due_is_the_oldest_unpaid_installment(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    """Disbursed three months before this month's start and never paid: installments 1-3 are
    overdue; the statement of last month says the next due is installment 1, not the first
    installment after the month."""
    today = today_india()
    start, _ = month_bounds(today)
    disbursed = add_months(start, -3)
    loan_id = await make_loan(app, client, bearer, world, product, disbursed_on=disbursed)
    schedule = (
        await client.get(f"/api/loans/{loan_id}/schedule", headers=await bearer(world.admin))
    ).json()["installments"]
    first = dt.date.fromisoformat(schedule[0]["due_date"])
    month = f"{add_months(start, -1):%Y-%m}"
    kamala = await bearer(world.customer_user_a)
    asked = await client.post(
        f"/api/customers/{world.customer_a.id}/statements", json={"month": month}, headers=kamala
    )
    assert asked.status_code == 202, asked.text
    await run_jobs()
    response = await client.get(f"/api/documents/{asked.json()['document_id']}/pdf", headers=kamala)
    assert response.status_code == 200, response.text
    text = pdf_text(response.content)
    assert f"Next due: Rs. 8,884.88 on {first:%d %b %Y}" in text, text


# --- 12: a disbursement that takes cash or the bank below zero ------------------------------


async def _applied_and_approved(client, world, bearer, product, customer) -> str:  # type: ignore[no-untyped-def]
    applied = await client.post(
        "/api/loans",
        json={
            "customer_id": str(customer.id),
            "product_id": product["id"],
            "amount": "20000.00",
            "installments": 12,
        },
        headers=await bearer(world.agent_a),
    )
    assert applied.status_code == 201, applied.text
    loan_id = applied.json()["id"]
    approved = await client.post(
        f"/api/loans/{loan_id}/approve", headers=await bearer(world.manager_a)
    )
    assert approved.status_code == 200, approved.text
    return str(loan_id)


async def test_a_disbursement_below_zero_cash_warns_and_with_cash_does_not(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    manager = await bearer(world.manager_a)
    today = today_india().isoformat()
    loan_id = await _applied_and_approved(client, world, bearer, product, customer)
    response = await client.post(
        f"/api/loans/{loan_id}/disburse",
        json={"disbursed_on": today, "method": "cash"},
        headers=manager,
    )
    assert response.status_code == 201, response.text
    [warning] = response.json()["warnings"]
    assert warning["code"] == "account_below_zero"
    assert warning["account"] == "branch_cash"
    assert warning["balance_after"] == "-20000.00"
    assert "below zero" in warning["message"]
    # With the cash there (capital held at the branch), no warning.
    invested = await client.post(
        "/api/capital/investments",
        json={
            "amount": "100000.00",
            "source": "Owners",
            "method": "cash",
            "branch_id": str(world.branch_a.id),
        },
        headers={**await bearer(world.admin), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert invested.status_code == 201, invested.text
    second = await _applied_and_approved(client, world, bearer, product, customer)
    response = await client.post(
        f"/api/loans/{second}/disburse",
        json={"disbursed_on": today, "method": "cash"},
        headers=manager,
    )
    assert response.status_code == 201, response.text
    assert response.json()["warnings"] == []
    # A bank disbursement with an empty bank account warns about the bank.
    third = await _applied_and_approved(client, world, bearer, product, customer)
    response = await client.post(
        f"/api/loans/{third}/disburse",
        json={"disbursed_on": today, "method": "bank_transfer", "reference": "UTR1"},
        headers=manager,
    )
    assert [w["account"] for w in response.json()["warnings"]] == ["bank"]


async def test_the_setting_refuses_a_disbursement_below_zero(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    app.state.settings = app.state.settings.model_copy(update={"disbursement_below_zero": "refuse"})
    loan_id = await _applied_and_approved(client, world, bearer, product, customer)
    response = await client.post(
        f"/api/loans/{loan_id}/disburse",
        json={"disbursed_on": today_india().isoformat(), "method": "cash"},
        headers=await bearer(world.manager_a),
    )
    assert response.status_code == 409, response.text
    assert response.json()["error"]["details"] == {
        "account": "branch_cash",
        "balance_after": "-20000.00",
    }
    loan = await client.get(f"/api/loans/{loan_id}", headers=await bearer(world.manager_a))
    assert loan.json()["status"] == "approved"  # nothing was paid out


async def test_the_demo_books_start_with_capital_and_no_cash_is_below_zero(app) -> None:  # type: ignore[no-untyped-def]
    await demo_load(app.state.db)
    async with transaction(app.state.db) as session:
        balances = await trial_balance(session)
    cash = [
        row
        for row in balances.rows
        if row.kind in (AccountKind.BRANCH_CASH, AccountKind.AGENT_CASH, AccountKind.BANK)
    ]
    assert cash and all(row.balance >= 0 for row in cash), [(row.code, row.balance) for row in cash]
    capital = [row for row in balances.rows if row.kind is AccountKind.CAPITAL]
    assert capital[0].balance == D("700000.00")


# --- 13: loan numbers, 403s, messages, page errors ------------------------------------------


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("BLR01-2026-000007", "BLR01-2026-000007"),
        ("blr01-2026-7", "BLR01-2026-000007"),
        (" BLR01 2026 000007 ", "BLR01-2026-000007"),
        ("BLR01/2026/7", "BLR01-2026-000007"),
        ("blr01.2026.0000007", "BLR01-2026-000007"),
        ("Kamala", None),
        ("2026-7", None),
    ],
)
def test_loan_numbers_as_people_type_them(typed: str, stored: str | None) -> None:
    assert loan_number_normalise(typed) == stored


async def test_collections_the_sheet_and_search_take_the_loan_number_as_typed(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    number = await _loan_number(app, loan_id)
    code, year, sequence = number.split("-")
    typed = f"{code.lower()} {year} {int(sequence)}"
    agent = await bearer(world.agent_a)
    posted = await client.post(
        "/api/collections",
        json={"loan_number": typed, "amount": "100.00", "client_id": "by-number-1"},
        headers=agent,
    )
    assert posted.status_code == 201, posted.text
    assert posted.json()["collection"]["loan_id"] == loan_id
    # Neither, or both: 422 naming the loan number.
    for body in ({"amount": "1.00"}, {"loan_id": loan_id, "loan_number": number, "amount": "1.00"}):
        response = await client.post(
            "/api/collections", json={**body, "client_id": str(uuid.uuid4())}, headers=agent
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["field"] == "loan_number"
    # Another branch's agent: the number names no loan of theirs (404, as an unknown one).
    response = await client.post(
        "/api/collections",
        json={"loan_number": number, "amount": "1.00", "client_id": "other-1"},
        headers=await bearer(world.agent_b),
    )
    assert response.status_code == 404, response.text

    today = today_india().isoformat()
    sheet = await client.post(
        "/api/collection-sheet/post",
        json={
            "lines": [
                {"loan_number": typed, "amount": "50.00", "collected_on": today, "client_id": "s1"},
                {"loan_number": "BLR01-2026-999999", "amount": "50.00", "collected_on": today,
                 "client_id": "s2"},
            ]
        },
        headers=agent,
    )  # fmt: skip
    assert sheet.status_code == 200, sheet.text
    good, unknown = sheet.json()["lines"]
    assert (good["status"], good["loan_id"]) == (201, loan_id)
    assert unknown["status"] == 404

    found = await client.get("/api/customers", params={"q": typed}, headers=agent)
    assert [c["id"] for c in found.json()["customers"]] == [str(world.customer_a.id)]


async def test_a_403_names_the_missing_permission(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/products", json=MONTHLY_PRODUCT, headers=await bearer(world.agent_a)
    )
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["details"] == {"permission": "product:manage"}
    assert error["message"] == (
        "This needs the permission product:manage, which your account does not have."
    )


async def test_a_page_s_403_names_the_permission_in_the_person_s_language(
    app, client, world, bearer
) -> None:  # type: ignore[no-untyped-def]
    from namma.web.forms import message_translate
    from namma.web.i18n import language_use

    language_use("kn")
    try:
        text = message_translate(
            "This needs the permission product:manage, which your account does not have."
        )
    finally:
        language_use("en")
    assert "product:manage" in text and "permission" not in text


async def test_html_pages_never_show_a_json_error(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    """A browser's request (Accept: text/html) to a page with bad input, to an unknown page, or
    with a NUL in the address gets a page, never the API's JSON body."""
    headers = {**await bearer(world.customer_user_a), "Accept": "text/html"}
    for path in (
        f"/loans/{uuid.uuid4()}/kfs",
        "/loans/not-a-uuid/kfs",
        "/customer/payments?after=%00",
        "/no-such-page",
    ):
        response = await client.get(path, headers=headers)
        assert response.headers["content-type"].startswith("text/html"), (path, response.text)
        assert '{"error"' not in response.text, path
