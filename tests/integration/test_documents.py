"""Receipts and statements as PDF through HTTP against real PostgreSQL and the real job engine:
a receipt rendered on its first download (no job renders it) and kept, downloaded by its
customer (text read back with pypdf: the receipt number and the exact amounts), hidden from
everyone out of scope; two first downloads at once make one document; a reversed collection's
receipt rendered again, marked REVERSED; a statement whose figures equal those computed here
from the rows; jobs run twice leave one document; the monthly run's selection."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import re
import time
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
    Notification,
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


class RenderCount:
    """``render.receipt_pdf`` counting its calls (slowed down, to widen a race)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, delay: float = 0.0) -> None:
        self.calls = 0
        self.delay = delay
        self.real = render.receipt_pdf
        monkeypatch.setattr(render, "receipt_pdf", self)

    def __call__(self, data: Any) -> bytes:
        self.calls += 1
        time.sleep(self.delay)  # in the worker thread, as the real rendering
        return self.real(data)


async def jobs_of(prefix: str) -> list[str]:
    return [
        job.task_name
        for job in await job_app.job_manager.list_jobs_async()
        if job.task_name.startswith(prefix)
    ]


async def test_receipt_is_rendered_on_first_download_and_downloaded_by_its_customer_only(
    app, client, world, bearer, product, customer, monkeypatch
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

    # The collection enqueues its receipt message, and no PDF: no document, no render job.
    renders = RenderCount(monkeypatch)
    await run_jobs()
    assert await jobs_of("documents:") == []
    assert await jobs_of("collections:receipts_send") == ["collections:receipts_send"]
    assert await documents(app, kind=DocumentKind.RECEIPT) == []
    assert renders.calls == 0
    async with transaction(app.state.db) as session:
        messages = await session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(Notification.collection_id == uuid.UUID(collection_id))
            .where(Notification.template == "receipt")
        )
    assert messages == 1

    # The first download renders and stores it.
    response = await download(client, url, kamala)
    assert renders.calls == 1
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

    # Later downloads, by either address and by staff, are served from storage: no render.
    same = await download(client, f"/api/documents/{doc.id}/pdf", kamala)
    assert same.content == response.content
    assert (await download(client, url, kamala)).content == response.content
    for who in ("admin", "manager_a", "agent_a"):
        await download(client, url, await bearer(getattr(world, who)))
    assert renders.calls == 1
    assert len(await documents(app, kind=DocumentKind.RECEIPT)) == 1

    # Everyone else gets 404, as for an unknown id.
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
    assert renders.calls == 1


async def test_out_of_scope_first_downloads_make_no_receipt(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    posted = await collect(client, await bearer(world.agent_a), loan_id, "500.00")
    collection_id = posted.json()["collection"]["id"]
    for who in ("customer_user_b", "manager_b", "agent_b"):
        response = await client.get(
            f"/api/collections/{collection_id}/receipt.pdf",
            headers=await bearer(getattr(world, who)),
        )
        assert response.status_code == 404, (who, response.text)
    assert await documents(app, kind=DocumentKind.RECEIPT) == []


async def test_two_first_downloads_at_once_make_one_document_rendered_once(
    app, client, world, bearer, product, customer, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    posted = await collect(client, await bearer(world.agent_a), loan_id, "8884.88")
    url = f"/api/collections/{posted.json()['collection']['id']}/receipt.pdf"
    kamala, arun = await bearer(world.customer_user_a), await bearer(world.agent_a)
    renders = RenderCount(monkeypatch, delay=0.3)

    first, second = await asyncio.gather(
        client.get(url, headers=kamala), client.get(url, headers=arun)
    )
    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    assert first.content == second.content
    assert renders.calls == 1
    [doc] = await documents(app, kind=DocumentKind.RECEIPT)
    assert doc.status is DocumentStatus.READY


async def test_two_first_renders_in_their_own_transactions_make_one_document(
    app, client, world, bearer, product, customer, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """The same race below HTTP: two transactions both find no receipt and both try to make it;
    the unique (kind, collection) row and its lock leave one document, rendered once."""
    loan_id = await make_loan(app, client, bearer, world, product)
    posted = await collect(client, await bearer(world.agent_a), loan_id, "500.00")
    collection_id = uuid.UUID(posted.json()["collection"]["id"])
    renders = RenderCount(monkeypatch, delay=0.3)

    async def make() -> uuid.UUID:
        async with transaction(app.state.db) as session:
            doc = await service.receipt_ready(
                session, collection_id=collection_id, lender_name="L", grievance_contact="G"
            )
            return doc.id

    ids = await asyncio.gather(make(), make(), make())
    assert len(set(ids)) == 1
    assert renders.calls == 1
    assert len(await documents(app, kind=DocumentKind.RECEIPT)) == 1


async def test_a_job_of_the_retired_receipt_task_does_nothing_and_succeeds(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    """Jobs enqueued under `documents:receipt_generate` before receipts were rendered on
    download still run (as no-ops) when a new worker meets them."""
    loan_id = await make_loan(app, client, bearer, world, product)
    posted = await collect(client, await bearer(world.agent_a), loan_id, "500.00")
    collection_id = posted.json()["collection"]["id"]
    await job_app.configure_task("documents:receipt_generate").defer_async(
        collection_id=collection_id, request_id="before-the-upgrade"
    )
    await run_jobs()
    [job] = await job_app.job_manager.list_jobs_async(task="documents:receipt_generate")
    assert job.status == "succeeded"
    assert await documents(app, kind=DocumentKind.RECEIPT) == []


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
    app, client, world, bearer, product, customer, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    first = (await collect(client, agent, loan_id, "8884.88")).json()
    second = (await collect(client, agent, loan_id, "1000.00")).json()
    third = (await collect(client, agent, loan_id, "200.00")).json()
    admin = await bearer(world.admin)
    first_url = f"/api/collections/{first['collection']['id']}/receipt.pdf"
    second_url = f"/api/collections/{second['collection']['id']}/receipt.pdf"
    before = pdf_text((await download(client, first_url, admin)).content)
    assert "REVERSED" not in before
    before = pdf_text((await download(client, second_url, admin)).content)
    # Installment 2 is not due: the 1000.00 is held as an advance, the principal unchanged.
    assert "Principal outstanding after this payment: Rs. 92,115.12" in before
    assert "Held as advance" in before
    renders = RenderCount(monkeypatch)

    reason = "entered on the wrong loan"
    reversed_ = await client.post(
        f"/api/collections/{first['collection']['id']}/reverse",
        json={"reason": reason},
        headers=admin,
    )
    assert reversed_.status_code == 200, reversed_.text
    # The stored receipts it changed are dropped (no job renders them); the third, never
    # downloaded, still has none.
    stored = {d.collection_id: d for d in await documents(app, kind=DocumentKind.RECEIPT)}
    assert set(stored) == {
        uuid.UUID(first["collection"]["id"]),
        uuid.UUID(second["collection"]["id"]),
    }
    for doc in stored.values():
        assert (doc.status, doc.sha256, doc.size) == (DocumentStatus.PENDING, None, None)
    await run_jobs()
    assert await jobs_of("documents:") == []
    assert renders.calls == 0

    # The next download renders the reversed one anew ...
    text = pdf_text((await download(client, first_url, admin)).content)
    assert "REVERSED" in text and reason in text
    assert first["receipt_number"] in text
    assert "Principal outstanding after" not in text
    # ... and the later one, which now pays installment 1's interest (re-allocated).
    after = pdf_text((await download(client, second_url, admin)).content)
    assert "0.00 1,000.00 0.00 0.00 1,000.00" in after
    assert "Principal outstanding after this payment: Rs. 1,00,000.00" in after
    assert renders.calls == 2
    # The same rows, ready again; a second download renders nothing.
    again = {d.collection_id: d for d in await documents(app, kind=DocumentKind.RECEIPT)}
    assert {c: d.id for c, d in again.items()} == {c: d.id for c, d in stored.items()}
    assert all(d.status is DocumentStatus.READY for d in again.values())
    await download(client, first_url, admin)
    assert renders.calls == 2
    # The third, never downloaded, is rendered on its first download (after the reversal).
    third_text = pdf_text(
        (
            await download(
                client, f"/api/collections/{third['collection']['id']}/receipt.pdf", admin
            )
        ).content
    )
    assert third["receipt_number"] in third_text


async def test_a_first_download_during_a_reversal_waits_for_it_and_shows_it_reversed(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    """A reversal in flight (the collection and loan FOR UPDATE) is waited for by the new
    receipt row's foreign keys, so the receipt stored is the reversed one, not one its reversal
    could no longer mark (the row did not exist when the reversal ran)."""
    from namma.collections.service import collection_reverse

    loan_id = await make_loan(app, client, bearer, world, product)
    posted = (await collect(client, await bearer(world.agent_a), loan_id, "8884.88")).json()
    collection_id = uuid.UUID(posted["collection"]["id"])

    async def first_download() -> bytes:
        async with transaction(app.state.db) as session:
            doc = await service.receipt_ready(
                session, collection_id=collection_id, lender_name="L", grievance_contact="G"
            )
            assert doc.content is not None
            return doc.content

    async with transaction(app.state.db) as session:
        await collection_reverse(
            session, principal=acting(world.admin), collection_id=collection_id, reason="twice"
        )
        rendering = asyncio.create_task(first_download())
        await asyncio.sleep(0.5)
        assert not rendering.done()  # waiting for the reversal's locks
    text = pdf_text(await rendering)
    assert "REVERSED" in text and "twice" in text
    [doc] = await documents(app, kind=DocumentKind.RECEIPT)
    assert doc.status is DocumentStatus.READY


async def test_a_receipt_dropped_by_a_reversal_renders_from_its_document_address(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    posted = (await collect(client, await bearer(world.agent_a), loan_id, "8884.88")).json()
    kamala, admin = await bearer(world.customer_user_a), await bearer(world.admin)
    await download(client, f"/api/collections/{posted['collection']['id']}/receipt.pdf", kamala)
    [doc] = await documents(app, kind=DocumentKind.RECEIPT)
    reversed_ = await client.post(
        f"/api/collections/{posted['collection']['id']}/reverse",
        json={"reason": "counted twice"},
        headers=admin,
    )
    assert reversed_.status_code == 200, reversed_.text
    meta = await client.get(f"/api/documents/{doc.id}", headers=kamala)
    assert meta.json()["status"] == "pending"
    text = pdf_text((await download(client, f"/api/documents/{doc.id}/pdf", kamala)).content)
    assert "REVERSED" in text and "counted twice" in text
    assert (await client.get(f"/api/documents/{doc.id}", headers=kamala)).json()["status"] == (
        "ready"
    )


async def test_the_customer_s_pages_render_a_receipt_on_first_opening_and_after_a_reversal(
    app, client, world, bearer, product, customer, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.test_pages import sign_in

    loan_id = await make_loan(app, client, bearer, world, product)
    posted = (await collect(client, await bearer(world.agent_a), loan_id, "8884.88")).json()
    collection_id = posted["collection"]["id"]
    renders = RenderCount(monkeypatch)
    await sign_in(app, client, world.customer_user_a)
    empty = await client.get("/customer/documents")
    assert "The receipt of each payment opens from the Payments page." in empty.text

    # Payments → the receipt: made on this first opening, then its page, ready at once.
    opened = await client.get(f"/customer/payments/{collection_id}/receipt")
    assert opened.status_code == 303, opened.text
    assert renders.calls == 1
    [doc] = await documents(app, kind=DocumentKind.RECEIPT)
    assert opened.headers["location"] == f"/customer/documents/{doc.id}"
    page = await client.get(opened.headers["location"])
    assert page.status_code == 200 and 'id="download"' in page.text
    assert "every 2s" not in page.text  # nothing to wait for
    pdf = await client.get(f"/customer/documents/{doc.id}/pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    assert renders.calls == 1

    # Reversed: the list says it is made when opened; opening it renders it, marked REVERSED.
    reversed_ = await client.post(
        f"/api/collections/{collection_id}/reverse",
        json={"reason": "counted twice"},
        headers=await bearer(world.admin),
    )
    assert reversed_.status_code == 200, reversed_.text
    await sign_in(app, client, world.customer_user_a)
    listed = await client.get("/customer/documents")
    assert "Made when opened" in listed.text and f"/customer/documents/{doc.id}/pdf" in listed.text
    again = await client.get(f"/customer/documents/{doc.id}/pdf")
    assert again.status_code == 200 and again.headers["content-type"] == "application/pdf"
    assert "REVERSED" in pdf_text(again.content)
    assert renders.calls == 2
    ready = await client.get(f"/customer/documents/{doc.id}")
    assert 'id="download"' in ready.text


async def test_sheet_postings_get_receipt_messages_and_their_receipts_on_download(
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
    line = response.json()["lines"][0]
    receipt_number = line["receipt_number"]
    await run_jobs()
    # The receipts job again (a retry, a stalled worker's requeue): still no document.
    [sent] = await job_app.job_manager.list_jobs_async(task="collections:receipts_send")
    await job_app.configure_task("collections:receipts_send").defer_async(**sent.task_kwargs)
    await run_jobs()
    assert await documents(app, kind=DocumentKind.RECEIPT) == []
    assert await jobs_of("documents:") == []
    async with transaction(app.state.db) as session:
        collection_id = await session.scalar(
            select(Collection.id).where(Collection.receipt_number == receipt_number)
        )
    text = pdf_text(
        (
            await download(
                client,
                f"/api/collections/{collection_id}/receipt.pdf",
                await bearer(world.customer_user_a),
            )
        ).content
    )
    assert receipt_number in text and "Amount received Rs. 500.00" in text
    [made] = await documents(app, kind=DocumentKind.RECEIPT)
    assert made.status is DocumentStatus.READY


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


async def test_a_statement_that_cannot_be_made_records_why_and_fails_on_the_last_attempt(
    app, client, world, bearer, product, customer, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    from namma.documents import service as documents_service
    from namma.documents import tasks as document_tasks

    kamala = await bearer(world.customer_user_a)
    asked = await client.post(
        f"/api/customers/{world.customer_a.id}/statements",
        json={"month": "2025-01"},
        headers=kamala,
    )
    assert asked.status_code == 202, asked.text
    document_id = asked.json()["document_id"]

    async def broken(session, **kwargs):  # type: ignore[no-untyped-def]
        raise RuntimeError("font missing")

    monkeypatch.setattr(documents_service, "statement_generate", broken)
    # First attempt: the error is recorded, the document stays pending (a retry will come).
    await run_jobs()
    [doc] = await documents(app, kind=DocumentKind.STATEMENT)
    assert (doc.status, doc.error) == (DocumentStatus.PENDING, "RuntimeError: font missing")
    # The last attempt: the document is failed, with the reason; its PDF answers 409.
    monkeypatch.setattr(document_tasks, "_last_attempt", lambda context: True)
    await job_app.configure_task("documents:statement_generate").defer_async(
        document_id=document_id
    )
    await run_jobs()
    [doc] = await documents(app, kind=DocumentKind.STATEMENT)
    assert (doc.status, doc.error) == (DocumentStatus.FAILED, "RuntimeError: font missing")
    failed = await client.get(f"/api/documents/{document_id}/pdf", headers=kamala)
    assert failed.status_code == 409, failed.text
