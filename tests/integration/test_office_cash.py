"""The back office's collections and cash hand-overs through HTTP against real PostgreSQL: the
list (status, search by receipt or loan number, dates, CSV), the receipt with its split and the
re-allocation a reversal caused, the reversal (permission, reason by field, confirmation, once
on a double submit), the hand-over list by state and the count (maker-checker: the declarer's
button is disabled and the service refuses; shortage posted once), and the branch scope."""

from __future__ import annotations

import csv
import io
import re
import uuid
from decimal import Decimal

from sqlalchemy import select

from namma.kit.db import transaction
from namma.loans.service import today_india
from namma.models import CashHandover, Collection, CollectionStatus, JournalEntry
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    collect,
    customer,
    make_loan,
    product,
    settings,
)
from tests.integration.test_office_loans import count, ledger_ok
from tests.integration.test_pages import csrf_of, sign_in

D = Decimal
KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


async def grant_reverse(client, bearer, world) -> None:  # type: ignore[no-untyped-def]
    granted = await client.put(
        f"/api/staff/{world.manager_a.id}/permissions",
        headers=await bearer(world.admin),
        json={"permissions": ["collection:reverse"]},
    )
    assert granted.status_code == 200, granted.text


async def test_the_collections_list_search_csv_and_scope(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    first = (await collect(client, agent, loan_id, "1000.00")).json()["collection"]
    second = (await collect(client, agent, loan_id, "2000.00")).json()["collection"]
    await sign_in(app, client, world.manager_a)
    page = await client.get("/office/collections")
    assert page.status_code == 200
    assert first["receipt_number"] in page.text and second["receipt_number"] in page.text
    assert "₹2,000.00" in page.text
    found = await client.get("/office/collections", params={"q": first["receipt_number"].lower()})
    assert first["receipt_number"] in found.text and second["receipt_number"] not in found.text
    reversed_only = await client.get("/office/collections", params={"status": "reversed"})
    assert "No collections match." in reversed_only.text
    future = await client.get("/office/collections", params={"from": "2100-01-01"})
    assert "No collections match." in future.text
    download = await client.get("/office/collections", params={"format": "csv"})
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["receipt_number", "loan_number", "collected_on", "amount"]
    assert sorted(r[3] for r in rows[1:]) == ["1000.00", "2000.00"]

    # The receipt's PDF: rendered on this first download (no job ran).
    receipt = await client.get(f"/office/collections/{first['id']}/receipt")
    assert receipt.status_code == 200, receipt.text
    assert receipt.headers["content-type"] == "application/pdf"

    await sign_in(app, client, world.manager_b)
    assert first["receipt_number"] not in (await client.get("/office/collections")).text
    assert (await client.get(f"/office/collections/{first['id']}")).status_code == 404
    assert (await client.get(f"/office/collections/{first['id']}/receipt")).status_code == 404


async def test_reversal_needs_the_permission_a_reason_and_a_confirmation_and_happens_once(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    first = (await collect(client, agent, loan_id, "5000.00")).json()["collection"]
    second = (await collect(client, agent, loan_id, "5000.00")).json()["collection"]
    csrf = await sign_in(app, client, world.manager_a)
    page = await client.get(f"/office/collections/{first['id']}")
    assert page.status_code == 200 and 'id="allocation"' in page.text
    # Without the grant: disabled with the reason; a forged post is the 403 page.
    assert 'aria-describedby="why-reverse"' in page.text
    forged = await client.post(
        f"/office/collections/{first['id']}/reverse", data={"csrf_token": csrf, "reason": "x"}
    )
    assert forged.status_code == 403

    await grant_reverse(client, bearer, world)
    csrf = await sign_in(app, client, world.manager_a)
    page = await client.get(f"/office/collections/{first['id']}")
    key = KEY.search(page.text)
    assert key is not None
    form = {"csrf_token": csrf_of(page.text), "idempotency_key": key.group(1)}
    empty = await client.post(f"/office/collections/{first['id']}/reverse", data=form)
    assert empty.status_code == 422 and 'id="f-reason-error"' in empty.text
    asked = await client.post(
        f"/office/collections/{first['id']}/reverse", data={**form, "reason": "Typed twice"}
    )
    assert asked.status_code == 200 and 'id="confirm-title"' in asked.text
    async with transaction(app.state.db) as session:
        row = await session.get(Collection, uuid.UUID(first["id"]))
        assert row is not None and row.status is CollectionStatus.POSTED
    confirmed = {**form, "reason": "Typed twice", "confirmed": "yes"}
    for _ in range(2):
        done = await client.post(f"/office/collections/{first['id']}/reverse", data=confirmed)
        assert done.status_code == 303, done.text
    assert await count(app, JournalEntry, kind="collection.reversal") == 1
    shown = await client.get(f"/office/collections/{first['id']}")
    assert "Typed twice" in shown.text and "This collection is already reversed." in shown.text
    # The later collection was re-allocated onto the first installment: shown on its receipt.
    later = await client.get(f"/office/collections/{second['id']}")
    assert 'id="reallocations"' in later.text and "re-allocated after a reversal" in later.text
    await ledger_ok(app)


async def test_hand_overs_by_state_and_the_count_with_a_shortage(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    assert (await collect(client, agent, loan_id, "3000.00")).status_code == 201
    declared = await client.post(
        "/api/cash-handovers",
        json={"business_date": today_india().isoformat(), "amount_deposited": "3000.00"},
        headers=agent,
    )
    assert declared.status_code == 201
    h_id = declared.json()["id"]
    # Declared by the manager on agent A2's behalf: that manager may not count it.
    own = await client.post(
        "/api/cash-handovers",
        json={
            "agent_id": str(world.agent_a2.id),
            "business_date": today_india().isoformat(),
            "amount_deposited": "50.00",
        },
        headers=await bearer(world.manager_a),
    )
    assert own.status_code == 201
    csrf = await sign_in(app, client, world.manager_a)
    listed = await client.get("/office/handovers")
    assert listed.status_code == 200 and 'id="handovers"' in listed.text
    assert "₹3,050.00" in listed.text  # pending total, from the service
    mine = await client.get(f"/office/handovers/{own.json()['id']}")
    assert 'aria-describedby="why-count"' in mine.text
    assert "another officer must count the cash" in mine.text
    refused = await client.post(
        f"/office/handovers/{own.json()['id']}/count",
        data={"csrf_token": csrf, "idempotency_key": str(uuid.uuid4()),
              "amount_counted": "50.00", "confirmed": "yes"},
    )  # fmt: skip
    assert refused.status_code == 422 and "another officer must count the cash" in refused.text
    inbox = await client.get("/office/inbox")
    assert f"/office/handovers/{h_id}" in inbox.text

    page = await client.get(f"/office/handovers/{h_id}")
    form = {"csrf_token": csrf_of(page.text), "idempotency_key": KEY.search(page.text).group(1)}  # type: ignore[union-attr]
    bad = await client.post(
        f"/office/handovers/{h_id}/count", data={**form, "amount_counted": "-5"}
    )
    assert bad.status_code == 422 and 'id="f-amount_counted-error"' in bad.text
    asked = await client.post(
        f"/office/handovers/{h_id}/count", data={**form, "amount_counted": "2900.00"}
    )
    assert asked.status_code == 200 and "Record this count?" in asked.text
    for _ in range(2):
        done = await client.post(
            f"/office/handovers/{h_id}/count",
            data={**form, "amount_counted": "2900.00", "confirmed": "yes"},
        )
        assert done.status_code == 303, done.text
    shown = await client.get(f"/office/handovers/{h_id}")
    assert "-₹100.00" in shown.text or "−₹100.00" in shown.text or "₹-100.00" in shown.text
    assert await count(app, JournalEntry, kind="cash_handover") == 1
    async with transaction(app.state.db) as session:
        h = await session.scalar(select(CashHandover).where(CashHandover.id == uuid.UUID(h_id)))
        assert h is not None and h.difference == D("-100.00")
        assert h.counted_by_id == world.manager_a.id
    received = await client.get("/office/handovers", params={"status": "received"})
    assert f"/office/handovers/{h_id}" in received.text
    await ledger_ok(app)

    # Another branch's manager: not listed, a 404 page.
    await sign_in(app, client, world.manager_b)
    assert f"/office/handovers/{h_id}" not in (await client.get("/office/handovers?status=")).text
    assert (await client.get(f"/office/handovers/{h_id}")).status_code == 404
