"""Agent cash hand-over through HTTP against real PostgreSQL: the agent declares, the branch
counts (maker-checker: never the declarer); expected from the day's posted cash collections (UPI
and reversed ones excluded), exact, short and excess counts with their journal lines, the ledger
check, one hand-over per agent and date, scope and the list."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from namma.kit.db import transaction
from namma.ledger.queries import ledger_check
from namma.loans.service import today_india
from namma.models import AccountKind, AuditEntry, JournalLine, LedgerAccount
from tests.integration.test_collection_sheet import loan_for, verify
from tests.integration.test_collections import collect, product, settings  # noqa: F401

D = Decimal


@pytest.fixture
async def loans(app, client, world, bearer, product):  # type: ignore[no-untyped-def]
    """Customer A's 12000 × 12 at 0 % loan (agent A), three months old, and customer B's
    (agent B, branch MYS01)."""
    await verify(app, world.customer_a.id)
    await verify(app, world.customer_b.id)
    a = await loan_for(
        app, client, bearer, product, customer_id=world.customer_a.id, agent=world.agent_a,
        manager=world.manager_a, amount="12000.00", rate="0", months_back=3,
    )  # fmt: skip
    b = await loan_for(
        app, client, bearer, product, customer_id=world.customer_b.id, agent=world.agent_b,
        manager=world.manager_b, amount="12000.00", rate="0", months_back=3,
    )  # fmt: skip
    return {"a": a, "b": b}


async def _legs(app, entry_id: int) -> set[tuple[str, str, str]]:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        rows = await session.execute(
            select(LedgerAccount.kind, JournalLine.debit, JournalLine.credit)
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .where(JournalLine.entry_id == entry_id)
        )
        return {(kind.value, str(debit), str(credit)) for kind, debit, credit in rows}


async def _agent_cash(app, agent_id: uuid.UUID) -> Decimal:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        rows = await session.execute(
            select(JournalLine.debit, JournalLine.credit)
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .where(LedgerAccount.kind == AccountKind.AGENT_CASH)
            .where(LedgerAccount.agent_id == agent_id)
        )
        return sum((debit - credit for debit, credit in rows), D("0.00"))


async def _ledger_ok(app) -> None:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        check = await ledger_check(session)
        assert check.ok, check.problems()


async def _handover(client, headers: dict[str, str], **body: Any):  # type: ignore[no-untyped-def]
    if isinstance(body.get("business_date"), dt.date):
        body["business_date"] = body["business_date"].isoformat()
    return await client.post("/api/cash-handovers", json=body, headers=headers)


async def _count(client, headers, handover_id: str, amount: str, key=None, **extra: Any):  # type: ignore[no-untyped-def]
    more = {"Idempotency-Key": key} if key else {}
    return await client.post(
        f"/api/cash-handovers/{handover_id}/count",
        json={"amount_counted": amount, **extra},
        headers={**headers, **more},
    )


async def _received(client, declarer, counter, **body: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """Declared by ``declarer`` and counted by ``counter`` (the amount declared)."""
    declared = await _handover(client, declarer, **body)
    assert declared.status_code == 201, declared.text
    assert declared.json()["status"] == "pending"
    counted = await _count(client, counter, declared.json()["id"], body["amount_deposited"])
    assert counted.status_code == 200, counted.text
    result: dict[str, Any] = counted.json()
    return result


async def test_exact_hand_over_moves_the_day_cash_to_the_branch(
    app, client, world, bearer, loans
) -> None:  # type: ignore[no-untyped-def]
    agent = await bearer(world.agent_a)
    today = today_india()
    for amount in ("1000.00", "1234.56"):
        assert (await collect(client, agent, loans["a"], amount)).status_code == 201
    # Not in the day's cash: a UPI payment, a reversed collection, yesterday's cash.
    upi = await collect(client, agent, loans["a"], "500.00", method="upi", reference="UPI1")
    assert upi.status_code == 201
    wrong = await collect(client, agent, loans["a"], "700.00")
    reversed_ = await client.post(
        f"/api/collections/{wrong.json()['collection']['id']}/reverse",
        json={"reason": "typed twice"},
        headers=await bearer(world.admin),
    )
    assert reversed_.status_code == 200, reversed_.text
    yesterday = await collect(client, agent, loans["a"], "300.00", on=today - dt.timedelta(days=1))
    assert yesterday.status_code == 201
    assert await _agent_cash(app, world.agent_a.id) == D("2534.56")

    # The agent declares their own hand-over (no agent_id needed): pending, nothing posted.
    response = await _handover(
        client, agent, business_date=today, amount_deposited="2234.56", remarks="counted twice"
    )
    assert response.status_code == 201, response.text
    d = response.json()
    assert (d["status"], d["amount_declared"], d["amount_deposited"], d["difference"]) == (
        "pending",
        "2234.56",
        None,
        None,
    )
    assert d["journal_entry_id"] is None and d["result"] is None
    assert await _agent_cash(app, world.agent_a.id) == D("2534.56")
    # An agent cannot count (no permission), not even their own.
    assert (await _count(client, agent, d["id"], "2234.56")).status_code == 403
    # The manager counts it.
    manager = await bearer(world.manager_a)
    counted = await _count(client, manager, d["id"], "2234.56", remarks="two bundles")
    assert counted.status_code == 200, counted.text
    h = counted.json()
    assert (h["status"], h["counted_by_id"], h["count_remarks"], h["recorded_by_id"]) == (
        "received",
        str(world.manager_a.id),
        "two bundles",
        str(world.agent_a.id),
    )
    assert (h["expected"], h["amount_deposited"], h["difference"], h["result"]) == (
        "2234.56",
        "2234.56",
        "0.00",
        "exact",
    )
    assert (h["collections"], h["agent_id"], h["branch_id"]) == (
        2,
        str(world.agent_a.id),
        str(world.branch_a.id),
    )
    assert await _legs(app, h["journal_entry_id"]) == {
        ("branch_cash", "2234.56", "0.00"),
        ("agent_cash", "0.00", "2234.56"),
    }
    assert await _agent_cash(app, world.agent_a.id) == D("300.00")  # yesterday's, still held
    await _ledger_ok(app)
    async with transaction(app.state.db) as session:
        audit = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "cash_handover.recorded")
        )
        assert audit is not None and audit.entity_id == h["id"]
    # Counted once: a second count is a 409.
    assert (await _count(client, manager, d["id"], "2234.56")).status_code == 409

    # A second hand-over of the same agent and date: 409, nothing posted.
    again = await _handover(
        client, await bearer(world.manager_a), agent_id=str(world.agent_a.id),
        business_date=today, amount_deposited="2234.56",
    )  # fmt: skip
    assert again.status_code == 409, again.text
    assert again.json()["error"]["details"]["cash_handover_id"] == h["id"]


async def test_shortfall_and_excess_are_posted_to_cash_shortage(
    app, client, world, bearer, loans
) -> None:  # type: ignore[no-untyped-def]
    today = today_india()
    yesterday = today - dt.timedelta(days=1)
    a = await bearer(world.agent_a)
    b = await bearer(world.agent_b)
    assert (await collect(client, a, loans["a"], "1000.00", on=yesterday)).status_code == 201
    assert (await collect(client, b, loans["b"], "1000.00")).status_code == 201

    # Short: agent A declares 900 against 1000; the manager counts 900.
    s = await _received(
        client, a, await bearer(world.manager_a),
        business_date=yesterday, amount_deposited="900.00", remarks="100 short",
    )  # fmt: skip
    assert (s["expected"], s["difference"], s["result"]) == ("1000.00", "-100.00", "short")
    assert await _legs(app, s["journal_entry_id"]) == {
        ("branch_cash", "900.00", "0.00"),
        ("cash_shortage", "100.00", "0.00"),
        ("agent_cash", "0.00", "1000.00"),
    }
    # Excess: the admin declares agent B's 1050 against 1000; B's manager counts it.
    e = await _received(
        client, await bearer(world.admin), await bearer(world.manager_b),
        agent_id=str(world.agent_b.id), business_date=today, amount_deposited="1050.00",
    )  # fmt: skip
    assert (e["expected"], e["difference"], e["result"]) == ("1000.00", "50.00", "excess")
    assert await _legs(app, e["journal_entry_id"]) == {
        ("branch_cash", "1050.00", "0.00"),
        ("agent_cash", "0.00", "1000.00"),
        ("cash_shortage", "0.00", "50.00"),
    }
    assert await _agent_cash(app, world.agent_a.id) == D("0.00")
    assert await _agent_cash(app, world.agent_b.id) == D("0.00")
    await _ledger_ok(app)

    # The list, scoped: the manager sees their branch; the admin both; an agent their own.
    manager_list = await client.get("/api/cash-handovers", headers=await bearer(world.manager_a))
    assert [x["id"] for x in manager_list.json()["cash_handovers"]] == [s["id"]]
    admin = await bearer(world.admin)
    everything = (await client.get("/api/cash-handovers", headers=admin)).json()
    assert [x["id"] for x in everything["cash_handovers"]] == [e["id"], s["id"]]
    assert (everything["expected"], everything["difference"]) == ("2000.00", "-50.00")
    one_day = await client.get(
        "/api/cash-handovers", params={"date": today.isoformat()}, headers=admin
    )
    assert [x["id"] for x in one_day.json()["cash_handovers"]] == [e["id"]]
    own = await client.get("/api/cash-handovers", headers=b)
    assert [x["id"] for x in own.json()["cash_handovers"]] == [e["id"]]


async def test_hand_over_scope_and_input(app, client, world, bearer, loans) -> None:  # type: ignore[no-untyped-def]
    today = today_india()
    # An agent for a colleague, a manager for another branch's agent: as if unknown (404).
    for who, agent in ((world.agent_a, world.agent_a2), (world.manager_a, world.agent_b)):
        response = await _handover(
            client, await bearer(who), agent_id=str(agent.id), business_date=today,
            amount_deposited="10.00",
        )  # fmt: skip
        assert response.status_code == 404, response.text
    listed = await client.get(
        "/api/cash-handovers",
        params={"agent_id": str(world.agent_b.id)},
        headers=await bearer(world.manager_a),
    )
    assert listed.status_code == 404
    manager = await bearer(world.manager_a)
    # A manager must name the agent; a future date; nothing collected and nothing deposited.
    cases = [
        ({"business_date": today, "amount_deposited": "10.00"}, "agent_id"),
        (
            {
                "agent_id": str(world.agent_a.id),
                "business_date": today + dt.timedelta(days=1),
                "amount_deposited": "10.00",
            },
            "business_date",
        ),
        (
            {"agent_id": str(world.agent_a.id), "business_date": today, "amount_deposited": "0"},
            "amount_deposited",
        ),
        (
            {
                "agent_id": str(world.agent_a.id),
                "business_date": today,
                "amount_deposited": "-5.00",
            },
            "amount_deposited",
        ),
    ]
    for body, field in cases:
        response = await _handover(client, manager, **body)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["field"] == field
    # Customers have no hand-overs.
    customer = await bearer(world.customer_user_a)
    assert (await client.get("/api/cash-handovers", headers=customer)).status_code == 403
    denied = await _handover(client, customer, business_date=today, amount_deposited="1.00")
    assert denied.status_code == 403
    # A deposit with no collections that day is all excess, recorded.
    response = await _received(
        client, manager, await bearer(world.admin), agent_id=str(world.agent_a2.id),
        business_date=today, amount_deposited="20.00",
    )  # fmt: skip
    assert (response["expected"], response["difference"]) == ("0.00", "20.00")
    await _ledger_ok(app)


async def test_two_hand_overs_at_once_one_wins(app, client, world, bearer, loans) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    agent = await bearer(world.agent_a)
    assert (await collect(client, agent, loans["a"], "1000.00")).status_code == 201
    manager = await bearer(world.manager_a)
    body = {
        "agent_id": str(world.agent_a.id),
        "business_date": today_india().isoformat(),
        "amount_deposited": "1000.00",
    }
    responses = await asyncio.gather(
        *(client.post("/api/cash-handovers", json=body, headers=manager) for _ in range(4))
    )
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert await _agent_cash(app, world.agent_a.id) == D("1000.00")  # declared, not counted
    await _ledger_ok(app)


# --- reversal ---------------------------------------------------------------------------------


async def _reverse(client, headers, handover_id: str, reason: str = "counted wrong", key=None):  # type: ignore[no-untyped-def]
    extra = {"Idempotency-Key": key} if key else {}
    return await client.post(
        f"/api/cash-handovers/{handover_id}/reverse",
        json={"reason": reason},
        headers={**headers, **extra},
    )


async def test_reversal_frees_the_date_for_a_corrected_hand_over(
    app, client, world, bearer, loans
) -> None:  # type: ignore[no-untyped-def]
    today = today_india()
    agent = await bearer(world.agent_a)
    manager = await bearer(world.manager_a)
    assert (await collect(client, agent, loans["a"], "1000.00")).status_code == 201
    admin = await bearer(world.admin)
    w = await _received(
        client, manager, admin, agent_id=str(world.agent_a.id), business_date=today,
        amount_deposited="900.00",
    )  # fmt: skip
    assert w["status"] == "received" and w["reversed_at"] is None
    assert await _agent_cash(app, world.agent_a.id) == D("0.00")

    response = await _reverse(client, manager, w["id"], "  the second bundle was not counted  ")
    assert response.status_code == 200, response.text
    r = response.json()
    assert (r["id"], r["status"], r["reversal_reason"]) == (
        w["id"],
        "reversed",
        "the second bundle was not counted",
    )
    assert r["reversed_by_id"] == str(world.manager_a.id) and r["reversed_at"]
    # The mirror image: the cash is back with the agent, the shortage undone.
    assert await _legs(app, r["reversal_entry_id"]) == {
        ("branch_cash", "0.00", "900.00"),
        ("cash_shortage", "0.00", "100.00"),
        ("agent_cash", "1000.00", "0.00"),
    }
    assert await _agent_cash(app, world.agent_a.id) == D("1000.00")
    await _ledger_ok(app)
    async with transaction(app.state.db) as session:
        audit = await session.scalar(
            select(AuditEntry).where(AuditEntry.action == "cash_handover.reversed")
        )
        assert audit is not None and audit.entity_id == w["id"]

    # Once only: a second reversal is a 409 and posts nothing.
    again = await _reverse(client, await bearer(world.admin), w["id"])
    assert again.status_code == 409, again.text
    assert again.json()["error"]["details"]["reversal_entry_id"] == r["reversal_entry_id"]

    # The date is free again (the unique index covers standing hand-overs only) …
    c = await _received(
        client, manager, admin, agent_id=str(world.agent_a.id), business_date=today,
        amount_deposited="1000.00",
    )  # fmt: skip
    assert (c["expected"], c["difference"], c["result"]) == ("1000.00", "0.00", "exact")
    assert await _agent_cash(app, world.agent_a.id) == D("0.00")
    # … for one standing hand-over: a third is refused, naming the corrected one.
    third = await _handover(
        client, manager, agent_id=str(world.agent_a.id), business_date=today,
        amount_deposited="1000.00",
    )  # fmt: skip
    assert third.status_code == 409
    assert third.json()["error"]["details"]["cash_handover_id"] == c["id"]
    await _ledger_ok(app)

    # Both listed; the totals count the standing one only.
    listed = (await client.get("/api/cash-handovers", headers=manager)).json()
    assert {x["id"]: x["status"] for x in listed["cash_handovers"]} == {
        w["id"]: "reversed",
        c["id"]: "received",
    }
    assert (listed["expected"], listed["amount_deposited"], listed["difference"]) == (
        "1000.00",
        "1000.00",
        "0.00",
    )


async def test_reversal_scope_and_input(app, client, world, bearer, loans) -> None:  # type: ignore[no-untyped-def]
    today = today_india()
    for who, loan, amount in ((world.agent_a, "a", "500.00"), (world.agent_b, "b", "700.00")):
        assert (await collect(client, await bearer(who), loans[loan], amount)).status_code == 201
    admin = await bearer(world.admin)
    a = await _handover(
        client, admin, agent_id=str(world.agent_a.id), business_date=today,
        amount_deposited="500.00",
    )  # fmt: skip
    b = await _handover(
        client, admin, agent_id=str(world.agent_b.id), business_date=today,
        amount_deposited="700.00",
    )  # fmt: skip
    assert a.status_code == b.status_code == 201
    a_id, b_id = a.json()["id"], b.json()["id"]

    # Agents and customers lack the permission (403), even for their own hand-over.
    for who in (world.agent_a, world.customer_user_a):
        assert (await _reverse(client, await bearer(who), a_id)).status_code == 403
    assert (
        await client.post(f"/api/cash-handovers/{a_id}/reverse", json={"reason": "x"})
    ).status_code == 401
    # A manager of another branch, or an unknown id: as if it did not exist.
    manager_a = await bearer(world.manager_a)
    assert (await _reverse(client, manager_a, b_id)).status_code == 404
    assert (await _reverse(client, manager_a, str(uuid.uuid4()))).status_code == 404
    # A reason is required.
    for reason in ("", "   "):
        response = await _reverse(client, manager_a, a_id, reason)
        assert response.status_code == 422, response.text
        assert response.json()["error"]["details"][0]["field"].endswith("reason")
    # Nothing happened so far; the admin reverses another branch's hand-over.
    listed = (await client.get("/api/cash-handovers", headers=admin)).json()
    assert all(x["status"] == "pending" for x in listed["cash_handovers"])
    assert (await _count(client, await bearer(world.manager_b), b_id, "700.00")).status_code == 200
    assert await _agent_cash(app, world.agent_b.id) == D("0.00")
    assert (await _reverse(client, admin, b_id)).status_code == 200
    assert (await _reverse(client, await bearer(world.manager_b), b_id)).status_code == 409
    assert await _agent_cash(app, world.agent_b.id) == D("700.00")
    await _ledger_ok(app)


# --- idempotency ------------------------------------------------------------------------------


async def test_ten_identical_hand_overs_at_once_record_one(
    app, client, world, bearer, loans
) -> None:  # type: ignore[no-untyped-def]
    import asyncio

    from sqlalchemy import func

    from namma.models import CashHandover, JournalEntry

    agent = await bearer(world.agent_a)
    assert (await collect(client, agent, loans["a"], "1000.00")).status_code == 201
    key = str(uuid.uuid4())
    body = {"business_date": today_india().isoformat(), "amount_deposited": "1000"}
    responses = await asyncio.gather(
        *(
            client.post("/api/cash-handovers", json=body, headers={**agent, "Idempotency-Key": key})
            for _ in range(10)
        )
    )
    assert [r.status_code for r in responses] == [201] * 10, [r.text for r in responses]
    assert len({r.content for r in responses}) == 1  # byte for byte
    assert sum(r.headers.get("Idempotent-Replayed") == "true" for r in responses) == 9
    async with transaction(app.state.db) as session:
        assert await session.scalar(select(func.count()).select_from(CashHandover)) == 1
        kinds = (await session.scalars(select(JournalEntry.kind))).all()
        assert sorted(kinds).count("cash_handover") == 0  # declared: nothing posted yet
    assert await _agent_cash(app, world.agent_a.id) == D("1000.00")

    # "1000" and "1000.00" are the same request; another amount under the key is refused.
    same = await client.post(
        "/api/cash-handovers",
        json={**body, "amount_deposited": "1000.00"},
        headers={**agent, "Idempotency-Key": key},
    )
    assert same.status_code == 201 and same.content == responses[0].content
    other = await client.post(
        "/api/cash-handovers",
        json={**body, "amount_deposited": "999.00"},
        headers={**agent, "Idempotency-Key": key},
    )
    assert other.status_code == 422
    assert other.json()["error"]["details"][0]["field"] == "Idempotency-Key"
    # Without the key a retry is still harmless: 409 naming the hand-over.
    plain = await client.post("/api/cash-handovers", json=body, headers=agent)
    assert plain.status_code == 409
    assert plain.json()["error"]["details"]["cash_handover_id"] == responses[0].json()["id"]

    # A refused request leaves its key free: the corrected request may reuse it.
    manager = await bearer(world.manager_a)
    key2 = str(uuid.uuid4())
    refused = await _handover(
        client, {**manager, "Idempotency-Key": key2},
        agent_id=str(world.agent_a2.id), business_date=today_india(), amount_deposited="0",
    )  # fmt: skip
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["field"] == "amount_deposited"
    accepted = await _handover(
        client, {**manager, "Idempotency-Key": key2},
        agent_id=str(world.agent_a2.id), business_date=today_india(), amount_deposited="20.00",
    )  # fmt: skip
    assert accepted.status_code == 201, accepted.text

    # The count with a key: ten at once, one journal, the same answer.
    handover_id = responses[0].json()["id"]
    ckey = str(uuid.uuid4())
    counts = await asyncio.gather(
        *(_count(client, manager, handover_id, "1000.00", key=ckey) for _ in range(10))
    )
    assert [r.status_code for r in counts] == [200] * 10, [r.text for r in counts]
    assert len({r.content for r in counts}) == 1
    async with transaction(app.state.db) as session:
        kinds = (await session.scalars(select(JournalEntry.kind))).all()
        assert kinds.count("cash_handover") == 1
    assert await _agent_cash(app, world.agent_a.id) == D("0.00")

    # The reversal with a key: ten at once, one reversal, the same answer.
    rkey = str(uuid.uuid4())
    reversals = await asyncio.gather(
        *(_reverse(client, manager, handover_id, "recount", key=rkey) for _ in range(10))
    )
    assert [r.status_code for r in reversals] == [200] * 10, [r.text for r in reversals]
    assert len({r.content for r in reversals}) == 1
    assert reversals[0].json()["status"] == "reversed"
    async with transaction(app.state.db) as session:
        kinds = (await session.scalars(select(JournalEntry.kind))).all()
        assert kinds.count("cash_handover.reversal") == 1
    assert await _agent_cash(app, world.agent_a.id) == D("1000.00")
    # Another reason under the same key: 422; without a key: 409.
    changed = await _reverse(client, manager, handover_id, "another reason", key=rkey)
    assert changed.status_code == 422
    assert (await _reverse(client, manager, handover_id, "recount")).status_code == 409
    await _ledger_ok(app)


# --- the count: maker-checker, scope, input ---------------------------------------------------


async def test_the_declarer_never_counts_and_the_count_is_scoped(
    app, client, world, bearer, loans
) -> None:  # type: ignore[no-untyped-def]
    today = today_india()
    agent = await bearer(world.agent_a)
    assert (await collect(client, agent, loans["a"], "800.00")).status_code == 201
    manager = await bearer(world.manager_a)
    # The manager declares on the agent's behalf: that manager may not count it (403) …
    declared = await _handover(
        client, manager, agent_id=str(world.agent_a.id), business_date=today,
        amount_deposited="800.00",
    )  # fmt: skip
    assert declared.status_code == 201, declared.text
    h = declared.json()
    refused = await _count(client, manager, h["id"], "750.00")
    assert refused.status_code == 403, refused.text
    assert "another officer" in refused.json()["error"]["message"]
    # … another branch's manager does not see it; an unknown id is the same 404.
    other = await bearer(world.manager_b)
    assert (await _count(client, other, h["id"], "750.00")).status_code == 404
    assert (await _count(client, manager, str(uuid.uuid4()), "750.00")).status_code == 404
    # Bad amounts: 422 by field, nothing posted.
    admin = await bearer(world.admin)
    for amount in ("-1.00", "abc", ""):
        bad = await _count(client, admin, h["id"], amount)
        assert bad.status_code == 422, bad.text
        assert bad.json()["error"]["details"][0]["field"].endswith("amount_counted")
    assert await _agent_cash(app, world.agent_a.id) == D("800.00")
    # The admin counts 750: a shortage of 50 on agent A's hand-over, posted to cash_shortage.
    counted = await _count(client, admin, h["id"], "750.00")
    assert counted.status_code == 200, counted.text
    c = counted.json()
    assert (c["amount_declared"], c["amount_deposited"], c["difference"], c["result"]) == (
        "800.00",
        "750.00",
        "-50.00",
        "short",
    )
    assert c["agent_id"] == str(world.agent_a.id)
    assert await _legs(app, c["journal_entry_id"]) == {
        ("branch_cash", "750.00", "0.00"),
        ("cash_shortage", "50.00", "0.00"),
        ("agent_cash", "0.00", "800.00"),
    }
    await _ledger_ok(app)
    # Listed by state, with the totals of the received ones.
    pending = await client.get("/api/cash-handovers", params={"status": "pending"}, headers=admin)
    assert pending.json()["cash_handovers"] == [] and pending.json()["pending"] == 0
    received = (
        await client.get("/api/cash-handovers", params={"status": "received"}, headers=admin)
    ).json()
    assert [x["id"] for x in received["cash_handovers"]] == [h["id"]]
    assert received["difference"] == "-50.00"
    # A reversed hand-over is never counted.
    assert (await _reverse(client, admin, h["id"])).status_code == 200
    assert (await _count(client, manager, h["id"], "800.00")).status_code == 409


async def test_the_database_refuses_a_count_by_the_declarer(
    app, client, world, bearer, loans
) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text
    from sqlalchemy.exc import IntegrityError

    agent = await bearer(world.agent_a)
    assert (await collect(client, agent, loans["a"], "100.00")).status_code == 201
    h = await _received(
        client, agent, await bearer(world.manager_a),
        business_date=today_india(), amount_deposited="100.00",
    )  # fmt: skip
    with pytest.raises(IntegrityError, match="counter_not_declarer"):
        async with transaction(app.state.db) as session:
            await session.execute(
                text("UPDATE cash_handovers SET counted_by_id = recorded_by_id WHERE id = :id"),
                {"id": h["id"]},
            )
