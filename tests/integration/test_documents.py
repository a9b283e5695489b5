"""Receipts and statements as PDF through HTTP against real PostgreSQL and the real job engine:
a receipt made by the job after a collection and downloaded by its customer (text read back with
pypdf: the receipt number and the exact amounts), hidden from everyone out of scope; a reversed
collection's receipt marked REVERSED; a statement whose figures equal those computed here from
the rows; jobs run twice leave one document; the monthly run's selection."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import re
import uuid
from decimal import Decimal
from typing import Any

import pypdf
import pytest
from sqlalchemy import func, select

from namma.collections.service import collection_record
from namma.documents import render, service
from namma.documents.queries import month_bounds
from namma.documents.tasks import previous_month
from namma.finance import add_months
from namma.jobs import job_app
from namma.kit.db import transaction
from namma.loans.service import today_india
from namma.models import (
    Collection,
    CollectionMethod,
    CollectionStatus,
    Document,
    DocumentKind,
    DocumentStatus,
    Loan,
)
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    collect,
    customer,
    make_loan,
    product,
    settings,
)
from tests.integration.test_loans import acting

D = Decimal


async def run_jobs() -> None:
    """Run every job waiting in the queue, then return (the real worker, in this process)."""
    await job_app.run_worker_async(wait=False, install_signal_handlers=False)


def pdf_text(content: bytes) -> str:
    reader = pypdf.PdfReader(io.BytesIO(content))
    return "\n".join(page.extract_text() for page in reader.pages)


async def documents(app, **where: Any) -> list[Document]:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        query = select(Document)
        for name, value in where.items():
            query = query.where(getattr(Document, name) == value)
        return list((await session.scalars(query)).all())


async def download(client, url: str, headers: dict[str, str]):  # type: ignore[no-untyped-def]
    response = await client.get(url, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    return response


# --- receipts ------------------------------------------------------------------------------------


async def test_receipt_is_made_by_the_job_and_downloaded_by_its_customer_only(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    posted = await collect(
        client, await bearer(world.agent_a), loan_id, "8884.88", method="upi", reference="UTR123"
    )
    assert posted.status_code == 201, posted.text
    body = posted.json()
    receipt_number = body["receipt_number"]
    collection_id = body["collection"]["id"]
    url = f"/api/collections/{collection_id}/receipt.pdf"
    kamala = await bearer(world.customer_user_a)

    # Asked for in the collection's transaction; not made yet.
    waiting = await client.get(url, headers=kamala)
    assert waiting.status_code == 202, waiting.text
    assert waiting.headers["retry-after"] == "2"
    assert waiting.json()["document"]["status"] == "pending"

    await run_jobs()
    response = await download(client, url, kamala)
    assert (
        response.headers["content-disposition"]
        == f'attachment; filename="receipt-{receipt_number}.pdf"'
    )
    text = pdf_text(response.content)
    # The golden first installment: 7884.88 principal + 1000.00 interest, 92115.12 left.
    for expected in (
        receipt_number,
        "PAYMENT RECEIPT",
        app.state.settings.lender_name,
        "Bengaluru East (BLR01)",
        "Kamala Customer",
        body["collection"]["loan_number"],
        "Amount received Rs. 8,884.88",
        "Rupees Eight Thousand Eight Hundred Eighty Four and Eighty Eight Paise Only",
        "Method UPI",
        "Reference UTR123",
        "Collected by Arun Agent",
        "7,884.88 1,000.00 0.00 0.00 8,884.88",
        "Principal outstanding after this payment: Rs. 92,115.12",
    ):
        assert expected in text, (expected, text)
    assert "REVERSED" not in text

    # The metadata matches the bytes served.
    [doc] = await documents(app, kind=DocumentKind.RECEIPT)
    assert doc.status is DocumentStatus.READY and doc.collection_id == uuid.UUID(collection_id)
    meta = await client.get(f"/api/documents/{doc.id}", headers=kamala)
    assert meta.status_code == 200
    assert meta.json()["sha256"] == hashlib.sha256(response.content).hexdigest()
    assert meta.json()["size"] == len(response.content)
    assert meta.json()["receipt_number"] == receipt_number
    same = await download(client, f"/api/documents/{doc.id}/pdf", kamala)
    assert same.content == response.content

    # Staff in scope see it; everyone else gets 404, as for an unknown id.
    for who in ("admin", "manager_a", "agent_a"):
        await download(client, url, await bearer(getattr(world, who)))
    for who in ("customer_user_b", "manager_b", "agent_b", "agent_a2"):
        headers = await bearer(getattr(world, who))
        for path in (url, f"/api/documents/{doc.id}", f"/api/documents/{doc.id}/pdf"):
            response = await client.get(path, headers=headers)
            assert response.status_code == 404, (who, path, response.text)
        listed = await client.get("/api/documents", headers=headers)
        assert listed.json()["documents"] == [], who
    mine = await client.get("/api/documents", params={"kind": "receipt"}, headers=kamala)
    assert [d["id"] for d in mine.json()["documents"]] == [str(doc.id)]
    unknown = await client.get(f"/api/documents/{uuid.uuid4()}/pdf", headers=kamala)
    assert unknown.status_code == 404


async def test_a_kannada_speaking_customer_gets_kannada_receipts_and_statements(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    """Labels, dates and ₹ amounts in Kannada, drawn with the shipped Noto font and shaped."""
    from namma.models import Customer

    async with transaction(app.state.db) as session:
        row = await session.get(Customer, world.customer_a.id)
        assert row is not None
        row.preferred_language = "kn"
    loan_id = await make_loan(app, client, bearer, world, product)
    posted = await collect(client, await bearer(world.agent_a), loan_id, "8884.88")
    assert posted.status_code == 201, posted.text
    kamala = await bearer(world.customer_user_a)
    month = today_india().strftime("%Y-%m")
    asked = await client.post(
        f"/api/customers/{world.customer_a.id}/statements", json={"month": month}, headers=kamala
    )
    assert asked.status_code == 202, asked.text
    await run_jobs()
    receipt = await download(
        client, f"/api/collections/{posted.json()['collection']['id']}/receipt.pdf", kamala
    )
    text = pdf_text(receipt.content)
    for expected in ("ಶಾಖೆ", "ನಗದು", "₹8,884.88", "₹92,115.12", "7,884.88", "Kamala Customer"):
        assert expected in text, (expected, text)
    assert "PAYMENT RECEIPT" not in text and "Rs." not in text
    statement = await download(client, f"/api/documents/{asked.json()['document_id']}/pdf", kamala)
    text = pdf_text(statement.content)
    for expected in ("₹8,884.88", "ಅಸಲು", "ಬಡ್ಡಿ"):
        assert expected in text, (expected, text)
    assert "ACCOUNT STATEMENT" not in text


async def test_a_reversed_collection_gets_its_receipt_marked_and_later_ones_remade(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    first = (await collect(client, agent, loan_id, "8884.88")).json()
    second = (await collect(client, agent, loan_id, "1000.00")).json()
    await run_jobs()
    admin = await bearer(world.admin)
    second_url = f"/api/collections/{second['collection']['id']}/receipt.pdf"
    before = pdf_text((await download(client, second_url, admin)).content)
    # Installment 2 is not due: the 1000.00 is held as an advance, the principal unchanged.
    assert "Principal outstanding after this payment: Rs. 92,115.12" in before
    assert "Held as advance" in before

    reason = "entered on the wrong loan"
    reversed_ = await client.post(
        f"/api/collections/{first['collection']['id']}/reverse",
        json={"reason": reason},
        headers=admin,
    )
    assert reversed_.status_code == 200, reversed_.text
    first_url = f"/api/collections/{first['collection']['id']}/receipt.pdf"
    assert (await client.get(first_url, headers=admin)).status_code == 202
    await run_jobs()

    text = pdf_text((await download(client, first_url, admin)).content)
    assert "REVERSED" in text and reason in text
    assert first["receipt_number"] in text
    assert "Principal outstanding after" not in text
    # The second payment now pays installment 1's interest (re-allocated by the reversal).
    after = pdf_text((await download(client, second_url, admin)).content)
    assert "0.00 1,000.00 0.00 0.00 1,000.00" in after
    assert "Principal outstanding after this payment: Rs. 1,00,000.00" in after
    assert len(await documents(app, kind=DocumentKind.RECEIPT)) == 2


async def test_sheet_postings_get_receipts_and_a_job_run_twice_makes_one(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    response = await client.post(
        "/api/collection-sheet/post",
        json={
            "lines": [
                {
                    "loan_id": loan_id,
                    "amount": "500.00",
                    "collected_on": today_india().isoformat(),
                    "client_id": "sheet-line-1",
                }
            ]
        },
        headers=await bearer(world.agent_a),
    )
    assert response.status_code == 200 and response.json()["posted"] == 1, response.text
    receipt_number = response.json()["lines"][0]["receipt_number"]
    # Asked for by the receipts job the posting enqueued, which then has it made.
    assert await documents(app, kind=DocumentKind.RECEIPT) == []
    await run_jobs()
    [doc] = await documents(app, kind=DocumentKind.RECEIPT)
    assert doc.status is DocumentStatus.READY
    # The same jobs again (a retry, a stalled worker's requeue): still one document.
    for _ in range(2):
        await job_app.configure_task("documents:receipt_generate").defer_async(
            collection_id=str(doc.collection_id)
        )
    [sent] = [
        job for job in await job_app.job_manager.list_jobs_async(task="collections:receipts_send")
    ]
    await job_app.configure_task("collections:receipts_send").defer_async(**sent.task_kwargs)
    await run_jobs()
    [made] = await documents(app, kind=DocumentKind.RECEIPT)
    assert made.id == doc.id and made.status is DocumentStatus.READY
    text = pdf_text(
        (
            await download(
                client, f"/api/documents/{doc.id}/pdf", await bearer(world.customer_user_a)
            )
        ).content
    )
    assert receipt_number in text and "Amount received Rs. 500.00" in text


# --- statements ----------------------------------------------------------------------------------


def _money(text: str, label: str) -> Decimal:
    """The amount after ``label`` ("Rs. 1,23,456.50") in the PDF's text."""
    text = " ".join(text.split())  # a long line may wrap
    match = re.search(re.escape(label) + r" Rs\. (-?[\d,]+\.\d\d)", text)
    assert match is not None, (label, text)
    return Decimal(match.group(1).replace(",", ""))


async def test_statement_figures_equal_those_computed_from_the_rows(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    """A month with a disbursement, collections before and in it, and a reversal."""
    today = today_india()
    start, end = month_bounds(today)
    # Loan 1: disbursed two months before the month, paid once before it and twice in it
    # (one of those reversed). Loan 2: disbursed in the month, paid once.
    old_loan = await make_loan(
        app, client, bearer, world, product, disbursed_on=add_months(start, -2)
    )
    new_loan = await make_loan(
        app, client, bearer, world, product, amount="20000.00", installments=6, disbursed_on=start
    )

    async def record(loan_id: str, amount: str, on: dt.date) -> uuid.UUID:
        async with transaction(app.state.db) as session:
            result = await collection_record(
                session,
                principal=acting(world.agent_a),
                loan_id=uuid.UUID(loan_id),
                amount=D(amount),
                collected_on=on,
                method=CollectionMethod.CASH,
                reference=None,
                remarks=None,
                client_id=None,
                backdate_days=400,
            )
            return result.collection.id

    await record(old_loan, "8884.88", start - dt.timedelta(days=5))
    await record(old_loan, "8884.88", start)
    mistaken = await record(old_loan, "2500.00", today)
    await record(new_loan, "3000.00", today)
    reversed_ = await client.post(
        f"/api/collections/{mistaken}/reverse",
        json={"reason": "counted twice"},
        headers=await bearer(world.admin),
    )
    assert reversed_.status_code == 200, reversed_.text

    kamala = await bearer(world.customer_user_a)
    month = f"{start:%Y-%m}"
    asked = await client.post(
        f"/api/customers/{world.customer_a.id}/statements", json={"month": month}, headers=kamala
    )
    assert asked.status_code == 202, asked.text
    document_id = asked.json()["document_id"]
    pdf_url = f"/api/documents/{document_id}/pdf"
    assert (await client.get(pdf_url, headers=kamala)).status_code == 202
    await run_jobs()
    response = await download(client, pdf_url, kamala)
    assert response.headers["content-disposition"] == (
        f'attachment; filename="statement-{month}-Kamala-Customer.pdf"'
    )
    text = pdf_text(response.content)

    # The same figures, computed here from the rows.
    async with transaction(app.state.db) as session:
        loans = list(
            (
                await session.scalars(
                    select(Loan)
                    .where(Loan.customer_id == world.customer_a.id)
                    .order_by(Loan.disbursed_on)
                )
            ).all()
        )
        rows = list(
            (
                await session.scalars(
                    select(Collection)
                    .where(Collection.loan_id.in_([loan.id for loan in loans]))
                    .order_by(Collection.collected_on, Collection.seq)
                )
            ).all()
        )
    standing = [c for c in rows if c.status is CollectionStatus.POSTED]
    opening = sum(
        (
            loan.principal
            - sum(
                (c.principal for c in standing if c.loan_id == loan.id and c.collected_on < start),
                D(0),
            )
            for loan in loans
            if loan.disbursed_on < start
        ),
        D(0),
    )
    disbursed = sum((loan.principal for loan in loans if loan.disbursed_on >= start), D(0))
    in_month = [c for c in standing if start <= c.collected_on <= end]
    collected = sum((c.amount for c in in_month), D(0))
    repaid = sum((c.principal for c in in_month), D(0))
    closing = opening + disbursed - repaid
    assert (opening, disbursed) == (D("92115.12"), D("20000.00"))
    assert closing == sum((loan.outstanding_principal for loan in loans), D(0))

    assert _money(text, "Opening principal outstanding") == opening
    assert _money(text, "Disbursed") == disbursed
    assert _money(text, "Collected") == collected == D("11884.88")
    assert _money(text, "of which principal") == repaid
    assert _money(text, "interest") == sum((c.interest for c in in_month), D(0))
    assert _money(text, "Closing principal outstanding") == closing
    # Every collection of the month is listed with its split; the reversed one marked.
    for c in rows:
        line = " ".join(
            [
                render.day(c.collected_on),
                c.receipt_number,
                "Cash",
                *(
                    render.group_indian(v)
                    for v in (c.amount, c.principal, c.interest, c.fee, c.penalty)
                ),
            ]
        )
        if c.collected_on < start:
            assert c.receipt_number not in text
        elif c.status is CollectionStatus.REVERSED:
            assert line + " REVERSED" in text, (line, text)
        else:
            assert line in text and line + " REVERSED" not in text, (line, text)
    old, new = loans
    assert f"Loan {old.loan_number}" in text and f"Loan {new.loan_number}" in text
    # Loan 1's second installment fell due on the 1st.
    assert f"2 {render.day(start)} 8,884.88" in text
    assert render.day(start - dt.timedelta(days=5)) not in text

    # Asked for again (and the job run twice): still one statement for the month.
    again = await client.post(
        f"/api/customers/{world.customer_a.id}/statements",
        json={"month": month},
        headers=await bearer(world.agent_a),
    )
    assert again.status_code == 202 and again.json()["document_id"] == document_id
    await job_app.configure_task("documents:statement_generate").defer_async(
        document_id=document_id
    )
    await run_jobs()
    statements = await documents(app, kind=DocumentKind.STATEMENT)
    assert [str(d.id) for d in statements] == [document_id]
    assert statements[0].status is DocumentStatus.READY
    assert pdf_text((await download(client, pdf_url, kamala)).content).count("REVERSED") == 1


async def test_statement_requests_are_checked_and_scoped(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    kamala = await bearer(world.customer_user_a)
    url = f"/api/customers/{world.customer_a.id}/statements"
    for month in ("2026-13", "26-10", "October"):
        response = await client.post(url, json={"month": month}, headers=kamala)
        assert response.status_code == 422, (month, response.text)
        assert response.json()["error"]["details"][0]["field"] == "month"
    next_month = add_months(today_india().replace(day=1), 1)
    future = await client.post(url, json={"month": f"{next_month:%Y-%m}"}, headers=kamala)
    assert future.status_code == 422 and "has not begun" in future.text
    month = f"{today_india():%Y-%m}"
    for who in ("customer_user_b", "manager_b", "agent_b", "agent_a2"):
        response = await client.post(
            url, json={"month": month}, headers=await bearer(getattr(world, who))
        )
        assert response.status_code == 404, (who, response.text)
    assert await documents(app) == []

    # A month without loans still gets a statement, saying so.
    quiet = await client.post(url, json={"month": "2025-01"}, headers=kamala)
    assert quiet.status_code == 202
    await run_jobs()
    text = pdf_text(
        (
            await download(client, f"/api/documents/{quiet.json()['document_id']}/pdf", kamala)
        ).content
    )
    assert "January 2025" in text and "No loan was active in this period." in text


async def test_monthly_run_selects_customers_with_a_loan_active_in_the_month(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    start, _ = month_bounds(today_india())
    await make_loan(app, client, bearer, world, product, disbursed_on=start)
    assert previous_month(int(dt.datetime(2026, 11, 1, 1, 0, tzinfo=dt.UTC).timestamp())) == (
        dt.date(2026, 10, 1)
    )
    # The month before the loan: nobody. The loan's month: customer A only (B has no loan).
    async with transaction(app.state.db) as session:
        assert await service.statements_monthly(session, period_start=add_months(start, -1)) == 0
    for expected in (1, 0):  # a second run while the first one's job waits adds nothing
        async with transaction(app.state.db) as session:
            assert await service.statements_monthly(session, period_start=start) == expected
    await run_jobs()
    async with transaction(app.state.db) as session:
        assert await service.statements_monthly(session, period_start=start) == 1  # made again
    await run_jobs()
    [doc] = await documents(app, kind=DocumentKind.STATEMENT)
    assert doc.customer_id == world.customer_a.id and doc.status is DocumentStatus.READY
    assert doc.requested_by_id is None
    async with transaction(app.state.db) as session:
        count = await session.scalar(select(func.count()).select_from(Document))
    assert count == 1


def test_rupees_use_indian_grouping_and_words() -> None:
    assert render.rupees(D("1234.5")) == "Rs. 1,234.50"
    assert render.rupees(D("123456.00")) == "Rs. 1,23,456.00"
    assert render.rupees(D("12345678.9")) == "Rs. 1,23,45,678.90"
    assert render.rupees(D("999.99")) == "Rs. 999.99"
    assert render.rupees(D("-1500")) == "-Rs. 1,500.00"
    assert render.amount_in_words(D("100001.05")) == "Rupees One Lakh One and Five Paise Only"
    assert render.pdf_text("Kamala – ಕಮಲ ₹") == "Kamala - ??? Rs."


@pytest.mark.parametrize("month", ["2026-02", "2024-02", "2026-12"])
def test_month_bounds(month: str) -> None:
    start = dt.date.fromisoformat(month + "-01")
    first, last = month_bounds(start)
    assert first == start and (last + dt.timedelta(days=1)).day == 1 and last.month == start.month


async def test_a_receipt_that_cannot_be_made_records_why_and_fails_on_the_last_attempt(
    app, client, world, bearer, product, customer, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from namma.documents import service as documents_service
    from namma.documents import tasks as document_tasks

    loan_id = await make_loan(app, client, bearer, world, product)
    posted = await collect(client, await bearer(world.agent_a), loan_id, "500.00")
    assert posted.status_code == 201, posted.text

    async def broken(session, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("font missing")

    monkeypatch.setattr(documents_service, "receipt_generate", broken)
    # First attempt: the error is recorded, the document stays pending (a retry will come).
    await run_jobs()
    [doc] = await documents(app, kind=DocumentKind.RECEIPT)
    assert (doc.status, doc.error) == (DocumentStatus.PENDING, "RuntimeError: font missing")
    # The last attempt: the document is failed, with the reason.
    monkeypatch.setattr(document_tasks, "_last_attempt", lambda context: True)
    await job_app.configure_task("documents:receipt_generate").defer_async(
        collection_id=str(doc.collection_id)
    )
    await run_jobs()
    [doc] = await documents(app, kind=DocumentKind.RECEIPT)
    assert (doc.status, doc.error) == (DocumentStatus.FAILED, "RuntimeError: font missing")
