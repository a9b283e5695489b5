"""The field agent's pages through HTTP against real PostgreSQL: the dashboard and the sheet show
the services' figures (the sheet's expected amount prefilled in each line's form), a payment
recorded with the form is posted once per client id and answered with its receipt, customers
and loans are in the agent's scope only (another agent's are 404 pages, another role gets 403),
onboarding and the loan application (with its live preview from the money core) go through the
services, the hand-over through its confirmation step; the service worker and the manifest are
served with headers right for them."""

from __future__ import annotations

import datetime as dt
import gzip
import re
import uuid
from decimal import Decimal

from sqlalchemy import func, select, update

from namma.customers.kyc import verhoeff_check_digit
from namma.kit.db import transaction
from namma.loans.service import today_india
from namma.models import (
    AgentAssignment,
    CashHandover,
    Collection,
    Customer,
    InstallmentStatus,
    Loan,
    LoanStatus,
)
from tests.factories import loan_row
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    customer,
    make_loan,
    product,
    settings,
)
from tests.integration.test_pages import csrf_of, is_html, sign_in


async def test_the_sheet_lists_todays_dues_by_village_with_the_expected_amount_prefilled(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, customer
) -> None:
    loan_id = await make_loan(app, client, bearer, world, product)
    api = (await client.get("/api/collection-sheet", headers=await bearer(world.agent_a))).json()
    [line] = [loan for g in api["groups"] for c in g["customers"] for loan in c["loans"]]
    assert line["expected"] == "8884.88"  # installment 1 of 100000 at 12 % over 12, due today
    await sign_in(app, client, world.agent_a)
    page = await client.get("/agent/sheet")
    assert page.status_code == 200 and is_html(page)
    assert page.headers["x-namma-user"] == str(world.agent_a.id)
    assert page.headers["cache-control"] == "no-store"
    html = page.text
    assert f'id="line-{loan_id}"' in html
    assert f'id="amount-{loan_id}" name="amount" type="text"' in html
    assert 'value="8884.88"' in html and "₹8,884.88" in html
    assert "Today’s demand" in html and 'data-sheet-date="' in html
    assert world.customer_a.village is None or world.customer_a.village in html
    assert 'rel="manifest" href="/agent.webmanifest"' in html and "agent.js" in html
    assert f'data-user="{world.agent_a.id}"' in html and 'hx-boost="false"' in html
    # Another agent of the branch sees none of it; a manager is not an agent (403 page).
    await sign_in(app, client, world.agent_a2)
    other = await client.get("/agent/sheet")
    assert other.status_code == 200 and loan_id not in other.text
    await sign_in(app, client, world.manager_a)
    assert (await client.get("/agent/sheet")).status_code == 403


async def test_a_late_line_says_how_late_in_the_readers_language(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, customer
) -> None:
    """The badge is made once per number of days late for the whole sheet (not per line)."""
    loan_id = await make_loan(app, client, bearer, world, product)
    async with transaction(app.state.db) as session:
        await session.execute(
            update(Loan).where(Loan.id == uuid.UUID(loan_id)).values(days_past_due=3)
        )
    await sign_in(app, client, world.agent_a)
    page = await client.get("/agent/sheet", headers={"Accept-Language": "en"})
    assert '<span class="badge badge-overdue">3 days late</span>' in page.text
    kannada = await client.get("/agent/sheet", headers={"Accept-Language": "kn"})
    assert '<span class="badge badge-overdue">3 ದಿನಗಳು ತಡವಾಗಿದೆ</span>' in kannada.text


async def test_a_payment_recorded_with_the_form_posts_once_and_shows_its_receipt(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, customer
) -> None:
    loan_id = await make_loan(app, client, bearer, world, product)
    csrf = await sign_in(app, client, world.agent_a)
    client_id = str(uuid.uuid4())
    form = {
        "csrf_token": csrf,
        "loan_id": loan_id,
        "amount": "3000.50",
        "method": "cash",
        "reference": "",
        "client_id": client_id,
    }
    first = await client.post("/agent/collect", data=form)
    assert first.status_code == 303, first.text
    again = await client.post("/agent/collect", data=form)  # a double tap, or a retry
    assert again.status_code == 303 and again.headers["location"] == first.headers["location"]
    async with transaction(app.state.db) as session:
        rows = (
            await session.scalars(select(Collection).where(Collection.client_id == client_id))
        ).all()
    assert len(rows) == 1 and rows[0].amount == Decimal("3000.50")
    receipt = await client.get(first.headers["location"])
    assert receipt.status_code == 200
    assert rows[0].receipt_number in receipt.text and "₹3,000.50" in receipt.text
    # UPI without its reference: refused with the reason, nothing recorded.
    bad = await client.post(
        "/agent/collect", data={**form, "method": "upi", "client_id": str(uuid.uuid4())}
    )
    assert bad.status_code == 422 and "reference" in bad.text
    # Another agent: the loan is not theirs (the reason says so), the receipt is a 404 page.
    csrf_b = await sign_in(app, client, world.agent_a2)
    moved = await client.post(
        "/agent/collect", data={**form, "csrf_token": csrf_b, "client_id": str(uuid.uuid4())}
    )
    assert moved.status_code == 422 and "not on your list" in moved.text
    assert (await client.get(first.headers["location"])).status_code == 404
    async with transaction(app.state.db) as session:
        count = await session.scalar(select(func.count()).select_from(Collection))
    assert count == 1
    # Without the form's token nothing happens.
    await sign_in(app, client, world.agent_a)
    refused = await client.post(
        "/agent/collect", data={**form, "csrf_token": "x", "client_id": str(uuid.uuid4())}
    )
    assert refused.status_code == 403


async def test_dashboard_customers_customer_and_loan_pages_in_scope(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, customer
) -> None:
    loan_id = await make_loan(app, client, bearer, world, product)
    await sign_in(app, client, world.agent_a)
    dashboard = await client.get("/agent")
    assert dashboard.status_code == 200 and 'id="agent-today"' in dashboard.text
    assert "₹8,884.88" in dashboard.text  # today's demand
    assert "Cash in hand" in dashboard.text and 'id="pending-stat"' in dashboard.text
    listed = await client.get("/agent/customers")
    assert listed.status_code == 200 and world.customer_a.name in listed.text
    found = await client.get("/agent/customers", params={"q": world.customer_a.name[:4]})
    assert f"/agent/customers/{world.customer_a.id}" in found.text
    none = await client.get("/agent/customers", params={"q": "zzzz-nobody"})
    assert f"/agent/customers/{world.customer_a.id}" not in none.text
    part = await client.get(
        "/agent/customers", params={"q": "zzzz"}, headers={"HX-Request": "true"}
    )
    assert part.text.lstrip().startswith('<div id="results">')
    detail = await client.get(f"/agent/customers/{world.customer_a.id}")
    assert detail.status_code == 200 and f"/agent/loans/{loan_id}" in detail.text
    loan = await client.get(f"/agent/loans/{loan_id}")
    assert loan.status_code == 200
    assert len(re.findall(r'<tr class="installment-', loan.text)) == 12
    await sign_in(app, client, world.agent_b)
    for path in (f"/agent/customers/{world.customer_a.id}", f"/agent/loans/{loan_id}"):
        response = await client.get(path)
        assert response.status_code == 404 and is_html(response), path
    assert world.customer_a.name not in (await client.get("/agent/customers")).text


async def test_onboarding_a_customer_and_applying_with_a_live_preview(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product
) -> None:
    csrf = await sign_in(app, client, world.agent_a)
    page = await client.get("/agent/customers/new")
    assert page.status_code == 200 and 'name="kyc_number"' in page.text
    fields = {
        "csrf_token": csrf_of(page.text),
        "name": "Test Borrower",
        "phone": "9812345670",
        "date_of_birth": "1990-04-15",
        "village": "Hoskote",
        "household_monthly_income": "30000",
        "kyc_document_type": "aadhaar",
        "kyc_number": "",
        "preferred_language": "kn",
    }
    missing = await client.post("/agent/customers/new", data=fields)
    assert missing.status_code == 422 and 'id="f-kyc_number-error"' in missing.text
    assert 'value="Test Borrower"' in missing.text  # what was typed comes back
    created = await client.post(
        "/agent/customers/new",
        data={**fields, "kyc_number": "23456789012" + verhoeff_check_digit("23456789012")},
    )
    assert created.status_code == 303, created.text
    new_id = created.headers["location"].rsplit("/", 1)[1]
    async with transaction(app.state.db) as session:
        row = await session.get(Customer, uuid.UUID(new_id))
        assert row is not None and row.village == "Hoskote"
        row.kyc_status = row.kyc_status.__class__("verified")
    shown = await client.get(created.headers["location"])
    assert shown.status_code == 200 and "Test Borrower" in shown.text
    form = await client.get(f"/agent/customers/{new_id}/apply")
    assert form.status_code == 200 and product["id"] in form.text
    preview = await client.post(
        f"/agent/customers/{new_id}/apply/preview",
        data={
            "csrf_token": csrf,
            "product_id": product["id"],
            "amount": "100000",
            "installments": "12",
            "annual_rate": "12",
        },
        headers={"HX-Request": "true"},
    )
    assert preview.status_code == 200 and "<html" not in preview.text
    assert "₹8,884.88" in preview.text  # the money core's installment
    assert 'id="preview-apr"' in preview.text
    assert preview.text.count("<tr><td") == 12
    wrong = await client.post(
        f"/agent/customers/{new_id}/apply/preview",
        data={"csrf_token": csrf, "product_id": product["id"], "amount": "100000"},
        headers={"HX-Request": "true"},
    )
    assert 'id="preview-errors"' in wrong.text
    applied = await client.post(
        f"/agent/customers/{new_id}/apply",
        data={
            "csrf_token": csrf,
            "product_id": product["id"],
            "amount": "20000",
            "installments": "12",
        },
    )
    assert applied.status_code in (303, 422), applied.text
    if applied.status_code == 303:
        loan_page = await client.get(applied.headers["location"])
        assert loan_page.status_code == 200 and "₹20,000.00" in loan_page.text


async def test_the_hand_over_declares_the_days_cash_after_a_confirmation(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, customer
) -> None:
    loan_id = await make_loan(app, client, bearer, world, product)
    csrf = await sign_in(app, client, world.agent_a)
    paid = await client.post(
        "/agent/collect",
        data={
            "csrf_token": csrf,
            "loan_id": loan_id,
            "amount": "1000.00",
            "method": "cash",
            "client_id": str(uuid.uuid4()),
        },
    )
    assert paid.status_code == 303
    page = await client.get("/agent/handover")
    assert page.status_code == 200 and "₹1,000.00" in page.text
    today = re.search(r'name="business_date" type="date" value="([0-9-]+)"', page.text)
    assert today
    data = {"csrf_token": csrf, "business_date": today.group(1), "amount_deposited": "1000.00"}
    ask = await client.post("/agent/handover", data=data)
    assert ask.status_code == 200 and 'name="confirmed" value="yes"' in ask.text
    async with transaction(app.state.db) as session:
        assert await session.scalar(select(func.count()).select_from(CashHandover)) == 0
    done = await client.post("/agent/handover", data={**data, "confirmed": "yes"})
    assert done.status_code == 303
    async with transaction(app.state.db) as session:
        [handover] = (await session.scalars(select(CashHandover))).all()
    # A declaration: the branch counts it (issue 16 item 11); nothing is posted until then.
    assert handover.amount_declared == Decimal("1000.00") and handover.difference is None
    twice = await client.post("/agent/handover", data={**data, "confirmed": "yes"})
    assert twice.status_code == 422 and 'id="form-errors"' in twice.text


async def test_the_service_worker_and_manifest_are_served_for_the_agent_app(client) -> None:  # type: ignore[no-untyped-def]
    worker = await client.get("/sw.js")
    assert worker.status_code == 200
    assert worker.headers["content-type"].startswith("text/javascript")
    assert "no-store" in worker.headers["cache-control"]
    assert worker.headers["service-worker-allowed"] == "/agent"
    assert "/api/" not in re.sub(r"//.*", "", worker.text)  # the worker names no API route
    manifest = await client.get("/agent.webmanifest")
    assert manifest.status_code == 200
    assert manifest.headers["content-type"].startswith("application/manifest+json")
    assert manifest.json()["scope"] == "/agent"


async def test_the_sheet_of_400_loans_downloads_in_under_200_kb_compressed(  # type: ignore[no-untyped-def]
    app, client, world, bearer
) -> None:
    """An agent with 400 customers, each with a loan owing an overdue and today's installment:
    the sheet page (and the API's sheet) compressed as a proxy would (gzip) stay under 200 KB."""
    today = today_india()
    async with transaction(app.state.db) as session:
        people = [
            Customer(
                branch_id=world.branch_a.id,
                name=f"Borrower {n:03d} Shivakumaraswamy",
                phone=f"98{n:08d}",
                village=f"Village {n % 12:02d}",
            )
            for n in range(400)
        ]
        session.add_all(people)
        await session.flush()
        session.add_all(
            AgentAssignment(customer_id=c.id, agent_id=world.agent_a.id) for c in people
        )
        ids = [c.id for c in people]
    for n, customer_id in enumerate(ids):
        await loan_row(
            app,
            world,
            customer_id,
            status=LoanStatus.ACTIVE,
            number=f"BLR01-2026-{n:06d}",
            installments=[
                (today - dt.timedelta(days=7), "650.00", InstallmentStatus.DUE),
                (today, "650.00", InstallmentStatus.DUE),
            ],
        )
    await sign_in(app, client, world.agent_a)
    page = await client.get("/agent/sheet")
    assert page.status_code == 200
    assert page.text.count('class="card sheet-line"') == 400
    api = await client.get("/api/collection-sheet", headers=await bearer(world.agent_a))
    assert api.json()["loans"] == 400
    for body in (page.content, api.content):
        assert len(gzip.compress(body, compresslevel=1)) < 200 * 1024, len(body)
