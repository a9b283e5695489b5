"""The agent's kept collection sheet (`collections.sheet.collection_sheet_kept`), with the
memory cache and with Redis: it is kept (a change made behind the application's back is not
seen), and whatever changes the agent's sheet through the application shows in the next one —
a collection (API sheet and page), a reversal, a reassignment (both agents), the close of
business — while other agents' kept sheets stay valid. A sheet kept under an older version (read
while a change was committing) is never served."""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
import zlib
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import update

from namma.cob.runner import cob_execute
from namma.kit.db import transaction
from namma.loans.cache import sheet_key, sheet_page_key, sheet_version_key
from namma.loans.service import today_india
from namma.models import LoanInstallment
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    collect,
    customer,
    make_loan,
    product,
)
from tests.integration.test_pages import sign_in

D = Decimal


@pytest.fixture(params=["memory", "redis"])
def settings(settings, request):  # type: ignore[no-untyped-def]
    update: dict[str, Any] = {"rate_limit_money": "10000/minute"}
    if request.param == "redis":
        update["redis_url"] = request.getfixturevalue("redis_url")
    return settings.model_copy(update=update)


def _lines(sheet: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        loan["loan_id"]: loan
        for group in sheet["groups"]
        for person in group["customers"]
        for loan in person["loans"]
    }


async def _sheet(client, headers) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = await client.get("/api/collection-sheet", headers=headers)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


async def _behind_the_back(app, loan_id: str, paid: str) -> None:  # type: ignore[no-untyped-def]
    """Mark installment 1 paid in the database directly: no invalidation (only a kept sheet
    hides it)."""
    async with transaction(app.state.db) as session:
        await session.execute(
            update(LoanInstallment)
            .where(LoanInstallment.loan_id == loan_id)
            .where(LoanInstallment.number == 1)
            .values(principal_paid=D(paid))
        )


async def test_a_collection_shows_in_the_next_sheet_and_page(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, customer
) -> None:
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    first = await _sheet(client, agent)
    assert _lines(first)[loan_id]["expected"] == "8884.88"
    kept = await app.state.cache.get(sheet_key(world.agent_a.id, today_india()))
    assert kept is not None and _lines(json.loads(kept["sheet"]))[loan_id]["expected"] == "8884.88"
    # Kept: a change made behind the application's back is not seen...
    await _behind_the_back(app, loan_id, "100.00")
    assert _lines(await _sheet(client, agent))[loan_id]["expected"] == "8884.88"
    # ...a collection is, at once (and so is the change above, read afresh with it).
    paid = await collect(client, agent, loan_id, "1000.00")
    assert paid.status_code == 201, paid.text
    after = _lines(await _sheet(client, agent))[loan_id]
    assert (after["expected"], after["installments"][0]["amount"]) == ("7784.88", "7784.88")
    # The page shows the same kept sheet.
    await sign_in(app, client, world.agent_a)
    page = await client.get("/agent/sheet")
    assert page.status_code == 200
    assert 'value="7784.88"' in page.text and 'value="8884.88"' not in page.text
    # Paid in full: off the sheet.
    rest = await collect(client, agent, loan_id, "7784.88")
    assert rest.status_code == 201, rest.text
    assert loan_id not in _lines(await _sheet(client, agent))


async def test_the_sheet_pages_lines_are_kept_per_version_and_language_with_fresh_keys(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, customer
) -> None:
    """The page's lines are rendered once per sheet version and language, and each village once
    per content (D-223); each request still gets its session's CSRF token and a new client id
    per form."""
    loan_id = await make_loan(app, client, bearer, world, product)
    csrf = await sign_in(app, client, world.agent_a)
    today, cache = today_india(), app.state.cache

    def forms(html: str) -> tuple[set[str], list[str]]:
        tokens = set(re.findall(r'name="csrf_token" value="([^"]*)"', html))
        return tokens, re.findall(r'name="client_id" value="([^"]*)"', html)

    first = await client.get("/agent/sheet", headers={"Accept-Language": "en"})
    assert first.status_code == 200 and 'value="8884.88"' in first.text
    kept = await cache.get(sheet_page_key(world.agent_a.id, today, "en"))
    assert kept is not None and kept["version"] == await cache.get(
        sheet_version_key(world.agent_a.id)
    )
    # Kept: a change behind the application's back is not seen; the forms' keys are new.
    await _behind_the_back(app, loan_id, "100.00")
    second = await client.get("/agent/sheet", headers={"Accept-Language": "en"})
    assert 'value="8884.88"' in second.text and "<!--" not in second.text
    (tokens_1, ids_1), (tokens_2, ids_2) = forms(first.text), forms(second.text)
    assert tokens_1 == tokens_2 == {csrf}
    assert len(ids_2) == 1 and set(ids_1).isdisjoint(ids_2)
    # Another language is rendered on its own (from the same kept sheet).
    kannada = await client.get("/agent/sheet", headers={"Accept-Language": "kn"})
    assert "<dt>ನಿರೀಕ್ಷಿತ</dt>" in kannada.text and 'value="8884.88"' in kannada.text
    assert await cache.get(sheet_page_key(world.agent_a.id, today, "kn")) is not None
    # A page not kept (here: kept under another version) is made again from its villages,
    # each kept by its content: an unchanged village is not rendered again...
    key = sheet_page_key(world.agent_a.id, today, "en")
    entry = await cache.get(key)
    [village_key] = entry["villages"]
    kept_village = base64.b64encode(zlib.compress(b"<section>kept village</section>")).decode()
    await cache.set(village_key, kept_village, 60)
    await cache.set(key, {**entry, "version": "before-the-change"}, 60)
    third = await client.get("/agent/sheet", headers={"Accept-Language": "en"})
    assert "<section>kept village</section>" in third.text and "line-" not in third.text
    assert (await cache.get(key))["version"] == entry["version"]
    # ...a changed one is: the collection's new line, whatever was kept for the old one.
    paid = await collect(client, await bearer(world.agent_a), loan_id, "1000.00")
    assert paid.status_code == 201, paid.text
    fourth = await client.get("/agent/sheet", headers={"Accept-Language": "en"})
    assert 'value="7784.88"' in fourth.text and 'value="8884.88"' not in fourth.text
    assert "kept village" not in fourth.text and (await cache.get(key))["villages"] != [village_key]


async def test_an_agents_collection_puts_its_line_into_the_kept_sheet(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, customer
) -> None:
    """D-223: not read afresh — a change behind the application's back on another loan stays
    unseen — yet the collected loan's line and every total are what a fresh read gives."""
    collected = await make_loan(app, client, bearer, world, product)
    other = await make_loan(app, client, bearer, world, product)
    agent, cache = await bearer(world.agent_a), app.state.cache
    version_key = sheet_version_key(world.agent_a.id)
    before = await _sheet(client, agent)
    assert (before["loans"], before["expected"]) == (2, "17769.76")
    version = await cache.get(version_key)
    await _behind_the_back(app, other, "100.00")
    paid = await collect(client, agent, collected, "1000.00")
    assert paid.status_code == 201, paid.text
    assert await cache.get(version_key) != version
    after = await _sheet(client, agent)
    lines = _lines(after)
    assert (lines[collected]["expected"], lines[other]["expected"]) == ("7884.88", "8884.88")
    assert after["expected"] == "16769.76" and after["groups"][0]["expected"] == "16769.76"
    # The same as a fresh read (once the change behind the back is undone).
    await _behind_the_back(app, other, "0.00")
    await cache.set(version_key, "read-afresh", 60)
    assert await _sheet(client, agent) == after
    # Paid in full: the line goes, as a fresh read would drop it.
    rest = await collect(client, agent, collected, "7884.88")
    assert rest.status_code == 201, rest.text
    last = await _sheet(client, agent)
    assert list(_lines(last)) == [other] and (last["loans"], last["expected"]) == (1, "8884.88")


async def test_a_managers_collection_renews_the_sheet_by_a_full_read(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, customer
) -> None:
    collected = await make_loan(app, client, bearer, world, product)
    other = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    await _sheet(client, agent)
    await _behind_the_back(app, other, "100.00")
    paid = await collect(client, await bearer(world.manager_a), collected, "1000.00")
    assert paid.status_code == 201, paid.text
    lines = _lines(await _sheet(client, agent))
    assert (lines[collected]["expected"], lines[other]["expected"]) == ("7884.88", "8784.88")


async def test_a_reversal_puts_the_dues_back_on_the_sheet(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, customer
) -> None:
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    paid = await collect(client, agent, loan_id, "8884.88")
    assert paid.status_code == 201, paid.text
    assert loan_id not in _lines(await _sheet(client, agent))
    reversed_ = await client.post(
        f"/api/collections/{paid.json()['collection']['id']}/reverse",
        json={"reason": "counted twice"},
        headers=await bearer(world.admin),
    )
    assert reversed_.status_code == 200, reversed_.text
    assert _lines(await _sheet(client, agent))[loan_id]["expected"] == "8884.88"


async def test_a_reassignment_moves_the_line_between_both_agents_kept_sheets(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, customer
) -> None:
    loan_id = await make_loan(app, client, bearer, world, product)
    arun, anita = await bearer(world.agent_a), await bearer(world.agent_a2)
    assert loan_id in _lines(await _sheet(client, arun))
    assert loan_id not in _lines(await _sheet(client, anita))
    moved = await client.put(
        f"/api/customers/{world.customer_a.id}/agent",
        json={"agent_id": str(world.agent_a2.id), "reason": "Route change"},
        headers=await bearer(world.manager_a),
    )
    assert moved.status_code == 200, moved.text
    assert loan_id not in _lines(await _sheet(client, arun))
    assert _lines(await _sheet(client, anita))[loan_id]["expected"] == "8884.88"


async def test_a_collection_leaves_other_agents_kept_sheets_alone(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, customer
) -> None:
    loan_id = await make_loan(app, client, bearer, world, product)
    arun, anita, bala = (
        await bearer(world.agent_a),
        await bearer(world.agent_a2),
        await bearer(world.agent_b),
    )
    for headers in (arun, anita, bala):
        await _sheet(client, headers)
    cache = app.state.cache
    others = [sheet_version_key(world.agent_a2.id), sheet_version_key(world.agent_b.id)]
    before = [await cache.get(key) for key in others]
    arun_before = await cache.get(sheet_version_key(world.agent_a.id))
    assert (await collect(client, arun, loan_id, "100.00")).status_code == 201
    assert [await cache.get(key) for key in others] == before
    assert await cache.get(sheet_version_key(world.agent_a.id)) not in (None, arun_before)
    # The other agents' kept sheets are still served.
    for agent in (world.agent_a2, world.agent_b):
        kept = await cache.get(sheet_key(agent.id, today_india()))
        assert kept is not None and kept["version"] == await cache.get(sheet_version_key(agent.id))


async def test_a_sheet_kept_under_an_older_version_is_not_served(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, customer
) -> None:
    """As a sheet read just before a collection committed, and stored just after it."""
    await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    fresh = await _sheet(client, agent)
    stale = {**fresh, "expected": "1.00"}
    cache = app.state.cache
    await cache.set(sheet_version_key(world.agent_a.id), "after-the-change", 60)
    key = sheet_key(world.agent_a.id, today_india())
    await cache.set(key, {"version": "before-the-change", "sheet": json.dumps(stale)}, 60)
    assert (await _sheet(client, agent))["expected"] == "8884.88"
    assert (await cache.get(key))["version"] == "after-the-change"


async def test_the_close_of_business_renews_every_agents_sheet(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, customer
) -> None:
    loan_id = await make_loan(app, client, bearer, world, product)
    for agent in (world.agent_a, world.agent_b):
        await _sheet(client, await bearer(agent))
    cache = app.state.cache
    before = {
        a.id: await cache.get(sheet_version_key(a.id)) for a in (world.agent_a, world.agent_b)
    }
    await cob_execute(
        app.state.db, business_date=today_india() - dt.timedelta(days=1), cache=cache, force=True
    )
    for agent_id, version in before.items():
        assert await cache.get(sheet_version_key(agent_id)) not in (None, version)
    assert _lines(await _sheet(client, await bearer(world.agent_a)))[loan_id]


async def test_a_managers_collection_renews_the_customers_agents_sheet(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, customer
) -> None:
    """An agent's own collection names their sheet directly (their scope makes them the
    customer's agent); anyone else's looks the customer's agent up before the commit."""
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    assert _lines(await _sheet(client, agent))[loan_id]["expected"] == "8884.88"
    paid = await collect(client, await bearer(world.manager_a), loan_id, "1000.00")
    assert paid.status_code == 201, paid.text
    assert _lines(await _sheet(client, agent))[loan_id]["expected"] == "7884.88"
