"""Restructuring through the back-office pages (issue 22 point 2): the loan page's form asks,
the request's page shows the new schedule beside the current one, the maker sees no approve
button and is refused if they post anyway, another officer approves from the inbox's link and
the loan page shows the flag. In Kannada too."""

from __future__ import annotations

import re
import uuid

from namma.kit.db import transaction
from namma.loans.service import today_india
from namma.models import LoanRestructureRequest
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    customer,
    installments_of,
    make_loan,
    product,
    settings,
)
from tests.integration.test_pages import sign_in

REQUEST = re.compile(r"/office/restructurings/([0-9a-f-]{36})")


async def test_ask_preview_and_approve_through_the_pages(
    app, client, world, bearer, product, customer
):  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    csrf = await sign_in(app, client, world.manager_a)
    page = await client.get(f"/office/loans/{loan_id}")
    assert page.status_code == 200 and 'id="action-restructure"' in page.text
    bad = await client.post(
        f"/office/loans/{loan_id}/restructure",
        data={"csrf_token": csrf, "kind": "moratorium", "periods": "0", "reason": "Flood"},
    )
    assert bad.status_code == 422 and 'id="action-restructure"' in bad.text
    asked = await client.post(
        f"/office/loans/{loan_id}/restructure",
        data={"csrf_token": csrf, "kind": "moratorium", "periods": "3", "reason": "Flood"},
    )
    assert asked.status_code == 303, asked.text
    found = REQUEST.search(asked.headers["location"])
    assert found
    request_id = found.group(1)
    preview = await client.get(f"/office/restructurings/{request_id}")
    assert preview.status_code == 200
    assert (
        'class="grid schedule-now"' in preview.text and 'class="grid schedule-new"' in preview.text
    )
    assert "another officer must decide it" in preview.text and 'id="approve"' not in preview.text
    refused = await client.post(
        f"/office/restructurings/{request_id}/approve", data={"csrf_token": csrf}
    )
    assert refused.status_code == 409
    assert len(await installments_of(app, loan_id)) == 12

    csrf = await sign_in(app, client, world.admin)
    inbox = await client.get("/office/inbox")
    assert f"/office/restructurings/{request_id}" in inbox.text
    page = await client.get(f"/office/restructurings/{request_id}")
    assert 'id="approve"' in page.text
    approved = await client.post(
        f"/office/restructurings/{request_id}/approve", data={"csrf_token": csrf}
    )
    assert approved.status_code == 303
    assert len(await installments_of(app, loan_id)) == 15
    after = await client.get(f"/office/restructurings/{request_id}")
    assert "Schedule before" in after.text and 'id="restructuring-status"' in after.text
    loan_page = await client.get(f"/office/loans/{loan_id}")
    assert "Restructured on" in loan_page.text
    async with transaction(app.state.db) as session:
        made = await session.get(LoanRestructureRequest, uuid.UUID(request_id))
        assert made is not None and made.status == "approved"
        assert made.decided_on == today_india()


async def test_village_relief_form_and_kannada(app, client, world, bearer, product, customer):  # type: ignore[no-untyped-def]
    await make_loan(app, client, bearer, world, product)
    csrf = await sign_in(app, client, world.manager_a)
    listing = await client.get("/office/restructurings")
    assert listing.status_code == 200 and 'id="village-relief"' in listing.text
    nobody = await client.post(
        "/office/restructurings",
        data={"csrf_token": csrf, "village": "Nowhere", "kind": "term", "installments": "20",
              "reason": "Flood"},
    )  # fmt: skip
    assert nobody.status_code == 422 and "No active loan in the village" in nobody.text
    asked = await client.post(
        "/office/restructurings",
        data={"csrf_token": csrf, "village": "hosur", "kind": "term", "installments": "20",
              "reason": "Flood"},
    )  # fmt: skip
    assert asked.status_code == 303, asked.text
    client.cookies.set("lang", "kn")
    page = await client.get(asked.headers["location"], headers={"Accept-Language": "kn"})
    assert page.status_code == 200
    assert any("\u0c80" <= ch <= "\u0cff" for ch in page.text)


async def test_a_moratorium_row_says_nothing_is_due(app, client, world, bearer, product, customer):  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    asked = await client.post(
        "/api/restructurings",
        json={"loan_id": loan_id, "kind": "moratorium", "periods": 2, "reason": "Flood"},
        headers=await bearer(world.manager_a),
    )
    assert asked.status_code == 201, asked.text
    approved = await client.post(
        f"/api/restructurings/{asked.json()['id']}/approve", headers=await bearer(world.admin)
    )
    assert approved.status_code == 200, approved.text
    await sign_in(app, client, world.manager_a)
    page = await client.get(f"/office/loans/{loan_id}?tab=schedule")
    assert page.text.count("Nothing due (moratorium)") == 2
