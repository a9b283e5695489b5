"""The collection sheet and bulk posting through HTTP against real PostgreSQL: contents and
grouping with exact amounts, scope per role, a sheet with good, bad and duplicate lines, a
re-sent sheet, lines out of order, and the same sheet sent twice at once."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from namma.audit.service import AuditActor
from namma.finance import add_months
from namma.kit.db import transaction
from namma.loans.service import loan_schedules_regenerate, today_india
from namma.models import (
    AgentAssignment,
    Collection,
    Customer,
    KycStatus,
    Loan,
    User,
)
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    assert_consistent,
    collect,
    product,
    settings,
)

D = Decimal


async def new_customer(app, world, *, name: str, phone: str, village: str | None, agent: User):  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        c = Customer(
            branch_id=agent.branch_id,
            name=name,
            phone=phone,
            village=village,
            kyc_status=KycStatus.VERIFIED,
            household_monthly_income=D("100000.00"),
        )
        session.add(c)
        await session.flush()
        session.add(AgentAssignment(customer_id=c.id, agent_id=agent.id))
        return c


async def verify(app, customer_id: uuid.UUID) -> None:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        row = await session.get(Customer, customer_id)
        assert row is not None
        row.kyc_status = KycStatus.VERIFIED
        row.household_monthly_income = D("100000.00")


async def loan_for(  # type: ignore[no-untyped-def]
    app,
    client,
    bearer,
    product,
    *,
    customer_id: uuid.UUID,
    agent: User,
    manager: User,
    amount: str,
    rate: str,
    months_back: int,
) -> str:
    """An active 12-month loan disbursed ``months_back`` months ago, its schedule written."""
    today = today_india()
    applied = await client.post(
        "/api/loans",
        json={
            "customer_id": str(customer_id),
            "product_id": product["id"],
            "amount": amount,
            "annual_rate": rate,
            "installments": 12,
        },
        headers=await bearer(agent),
    )
    assert applied.status_code == 201, applied.text
    loan_id = applied.json()["id"]
    headers = await bearer(manager)
    approved = await client.post(f"/api/loans/{loan_id}/approve", headers=headers)
    assert approved.status_code == 200, approved.text
    disbursed = await client.post(
        f"/api/loans/{loan_id}/disburse",
        json={"disbursed_on": today.isoformat(), "method": "cash"},
        headers=headers,
    )
    assert disbursed.status_code == 201, disbursed.text
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None
        loan.disbursed_on = add_months(today, -months_back)
    async with transaction(app.state.db) as session:
        # The schedule again, from the back-dated disbursement (nothing is paid on it yet).
        regenerated = await loan_schedules_regenerate(
            session, loan_ids=[uuid.UUID(loan_id)], actor=AuditActor.system()
        )
        assert not regenerated.skipped, regenerated.skipped
    return loan_id


@pytest.fixture
async def book(app, client, world, bearer, product):  # type: ignore[no-untyped-def]
    """Agent A: Kamala (Hosur) with a 100000 × 12 at 12 % loan three months old, 10000 paid;
    Gowri (Attibele) with 12000 × 12 at 0 % a month old. Agent A2: Rani (Hosur), same as
    Gowri. Branch MYS01: Latha's loan a month old."""
    await verify(app, world.customer_a.id)
    await verify(app, world.customer_b.id)
    gowri = await new_customer(
        app, world, name="Gowri", phone="9100000011", village="Attibele", agent=world.agent_a
    )
    rani = await new_customer(
        app, world, name="Rani", phone="9100000012", village="Hosur", agent=world.agent_a2
    )
    big = await loan_for(
        app, client, bearer, product, customer_id=world.customer_a.id, agent=world.agent_a,
        manager=world.manager_a, amount="100000.00", rate="12", months_back=3,
    )  # fmt: skip
    small = await loan_for(
        app, client, bearer, product, customer_id=gowri.id, agent=world.agent_a,
        manager=world.manager_a, amount="12000.00", rate="0", months_back=1,
    )  # fmt: skip
    other_agent = await loan_for(
        app, client, bearer, product, customer_id=rani.id, agent=world.agent_a2,
        manager=world.manager_a, amount="12000.00", rate="0", months_back=1,
    )  # fmt: skip
    other_branch = await loan_for(
        app, client, bearer, product, customer_id=world.customer_b.id, agent=world.agent_b,
        manager=world.manager_b, amount="12000.00", rate="0", months_back=1,
    )  # fmt: skip
    # 10000 pays installment 1 (8884.88) and 1115.12 of installment 2 (921.15 interest first).
    paid = await collect(client, await bearer(world.agent_a), big, "10000.00")
    assert paid.status_code == 201, paid.text
    return {
        "big": big,
        "small": small,
        "other_agent": other_agent,
        "other_branch": other_branch,
        "gowri": gowri,
        "rani": rani,
    }


def _loans(sheet: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        loan["loan_id"]: loan
        for group in sheet["groups"]
        for customer in group["customers"]
        for loan in customer["loans"]
    }


async def test_agent_sheet_has_overdue_and_due_today_grouped_by_village(
    client, world, bearer, book
) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/api/collection-sheet", headers=await bearer(world.agent_a))
    assert response.status_code == 200, response.text
    sheet = response.json()
    assert sheet["date"] == today_india().isoformat()
    assert sheet["agent_id"] == str(world.agent_a.id)
    # Villages in order; Rani (agent A2) and Latha (other branch) are not on agent A's sheet.
    assert [g["village"] for g in sheet["groups"]] == ["Attibele", "Hosur"]
    attibele, hosur = sheet["groups"]
    assert [c["name"] for c in attibele["customers"]] == ["Gowri"]
    assert [c["name"] for c in hosur["customers"]] == ["Kamala Customer"]
    assert set(_loans(sheet)) == {book["big"], book["small"]}

    big = _loans(sheet)[book["big"]]
    # Installment 1 is paid (absent); 2 is overdue and partly paid; 3 falls due today.
    assert [i["installment_number"] for i in big["installments"]] == [2, 3]
    two, three = big["installments"]
    assert (two["status"], two["overdue"], two["amount"]) == ("overdue", True, "7769.76")
    assert (two["principal"], two["interest"]) == ("7769.76", "0.00")
    assert (three["overdue"], three["amount"]) == (False, "8884.88")
    assert (three["principal"], three["interest"]) == ("8043.37", "841.51")
    assert (big["overdue"], big["due_today"], big["expected"]) == ("7769.76", "8884.88", "16654.64")
    assert big["loan_number"].startswith("BLR01-")

    small = _loans(sheet)[book["small"]]
    assert [(i["installment_number"], i["amount"]) for i in small["installments"]] == [
        (1, "1000.00")
    ]
    assert (attibele["expected"], hosur["expected"]) == ("1000.00", "16654.64")
    assert (sheet["expected"], sheet["customers"], sheet["loans"]) == ("17654.64", 2, 2)


async def test_sheet_scope_per_role(client, world, bearer, book) -> None:  # type: ignore[no-untyped-def]
    manager = await bearer(world.manager_a)
    branch = (await client.get("/api/collection-sheet", headers=manager)).json()
    assert set(_loans(branch)) == {book["big"], book["small"], book["other_agent"]}
    assert branch["expected"] == "18654.64"
    hosur = next(g for g in branch["groups"] if g["village"] == "Hosur")
    assert [(c["name"], c["agent_name"]) for c in hosur["customers"]] == [
        ("Kamala Customer", "Arun Agent"),
        ("Rani", "Anita Agent"),
    ]
    one_agent = await client.get(
        "/api/collection-sheet", params={"agent_id": str(world.agent_a2.id)}, headers=manager
    )
    assert set(_loans(one_agent.json())) == {book["other_agent"]}
    # Another branch's agent or branch: 404, as if unknown.
    for params in ({"agent_id": str(world.agent_b.id)}, {"branch_id": str(world.branch_b.id)}):
        response = await client.get("/api/collection-sheet", params=params, headers=manager)
        assert response.status_code == 404, response.text
    # An agent asking for a colleague's sheet: 404.
    response = await client.get(
        "/api/collection-sheet",
        params={"agent_id": str(world.agent_a2.id)},
        headers=await bearer(world.agent_a),
    )
    assert response.status_code == 404
    admin = await bearer(world.admin)
    everything = (await client.get("/api/collection-sheet", headers=admin)).json()
    assert set(_loans(everything)) == {
        book["big"],
        book["small"],
        book["other_agent"],
        book["other_branch"],
    }
    mysuru = await client.get(
        "/api/collection-sheet", params={"branch_id": str(world.branch_b.id)}, headers=admin
    )
    assert set(_loans(mysuru.json())) == {book["other_branch"]}
    # 40 days back only installment 1 of the big loan was due, and it is paid: an empty sheet.
    early = await client.get(
        "/api/collection-sheet",
        params={"date": (today_india() - dt.timedelta(days=40)).isoformat()},
        headers=await bearer(world.agent_a),
    )
    assert early.status_code == 200
    assert (early.json()["groups"], early.json()["expected"]) == ([], "0.00")
    # Customers never see sheets.
    denied = await client.get("/api/collection-sheet", headers=await bearer(world.customer_user_a))
    assert denied.status_code == 403


async def _count(app, **where: Any) -> int:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        query = select(func.count()).select_from(Collection)
        for name, value in where.items():
            query = query.where(getattr(Collection, name) == value)
        return int(await session.scalar(query) or 0)


def _line(loan_id: str, amount: str, client_id: str, on: dt.date | None = None) -> dict[str, Any]:
    return {
        "loan_id": loan_id,
        "amount": amount,
        "collected_on": (on or today_india()).isoformat(),
        "method": "cash",
        "client_id": client_id,
    }


async def test_bulk_posting_reports_each_line_and_posts_the_good_ones_once(
    app, client, world, bearer, book
) -> None:  # type: ignore[no-untyped-def]
    headers = await bearer(world.agent_a)
    before = await _count(app)
    lines = [
        _line(book["small"], "1000.00", "sheet-1"),
        _line(book["big"], "99999999.00", "sheet-2"),  # above the payoff
        _line(str(uuid.uuid4()), "100.00", "sheet-3"),  # unknown loan
        _line(book["other_agent"], "1000.00", "sheet-4"),  # agent A2's customer
        _line(book["small"], "1000.00", "sheet-1"),  # the first line again
        {**_line(book["big"], "100.00", "sheet-6"), "amount": "12.345"},  # does not parse
        _line(book["big"], "16654.64", "sheet-7"),
        {**_line(book["big"], "5.00", "sheet-1")},  # client id of line 0, another collection
    ]
    response = await client.post(
        "/api/collection-sheet/post", json={"lines": lines}, headers=headers
    )
    assert response.status_code == 200, response.text
    result = response.json()
    statuses = [line["status"] for line in result["lines"]]
    assert statuses == [201, 422, 404, 404, 201, 422, 201, 422]
    first, above, unknown, scope, dup, unparsed, big, clash = result["lines"]
    assert "payoff" in above["body"]["error"]["message"]
    assert unknown["body"]["error"]["code"] == scope["body"]["error"]["code"] == "not_found"
    assert dup["duplicate_of"] == 0 and dup["replayed"] is True
    assert dup["receipt_number"] == first["receipt_number"] is not None
    assert unparsed["body"]["error"]["details"][0]["field"] == "lines.5.amount"
    assert clash["body"]["error"]["details"][0]["field"] == "client_id"
    assert big["body"]["loan"]["days_past_due"] == 0
    assert (result["posted"], result["replayed"], result["failed"]) == (2, 1, 5)
    assert result["amount_posted"] == "17654.64"
    assert await _count(app) == before + 2
    assert await _count(app, client_id="sheet-1") == 1

    # Re-sending the whole sheet: the same receipts, nothing new.
    again = await client.post("/api/collection-sheet/post", json={"lines": lines}, headers=headers)
    assert again.status_code == 200
    replay = again.json()
    assert [line["status"] for line in replay["lines"]] == statuses
    assert [line["receipt_number"] for line in replay["lines"]] == [
        line["receipt_number"] for line in result["lines"]
    ]
    assert replay["lines"][0]["body"] == first["body"]
    assert (replay["posted"], replay["replayed"]) == (0, 3)
    assert await _count(app) == before + 2

    # The same collection sent alone (client id, no header) replays too.
    alone = await client.post("/api/collections", json=lines[0], headers=headers)
    assert alone.status_code == 201 and alone.json() == first["body"]
    # A refused line left its client id free: corrected, it posts.
    fixed = await client.post(
        "/api/collection-sheet/post",
        json={"lines": [_line(book["other_agent"], "1000.00", "sheet-4")]},
        headers=await bearer(world.agent_a2),
    )
    assert fixed.json()["lines"][0]["status"] == 201
    for loan in (book["small"], book["big"], book["other_agent"]):
        await assert_consistent(app, loan)


async def test_lines_out_of_order_are_applied_by_date(app, client, world, bearer, book) -> None:  # type: ignore[no-untyped-def]
    headers = await bearer(world.agent_a)
    today = today_india()
    yesterday = today - dt.timedelta(days=1)
    # The later collection is listed first; the earlier one is applied first.
    response = await client.post(
        "/api/collection-sheet/post",
        json={
            "lines": [
                _line(book["big"], "8884.88", "late", today),
                _line(book["big"], "7769.76", "early", yesterday),
            ]
        },
        headers=headers,
    )
    assert [line["status"] for line in response.json()["lines"]] == [201, 201]
    async with transaction(app.state.db) as session:
        rows = (
            await session.scalars(
                select(Collection)
                .where(Collection.client_id.in_(["late", "early"]))
                .order_by(Collection.seq)
            )
        ).all()
    assert [c.client_id for c in rows] == ["early", "late"]
    # A sheet arriving after a later one still posts (within the back-dating window).
    later = await client.post(
        "/api/collection-sheet/post",
        json={"lines": [_line(book["small"], "1000.00", "today-small", today)]},
        headers=headers,
    )
    earlier = await client.post(
        "/api/collection-sheet/post",
        json={
            "lines": [_line(book["small"], "500.00", "older-small", today - dt.timedelta(days=2))]
        },
        headers=headers,
    )
    assert later.json()["lines"][0]["status"] == earlier.json()["lines"][0]["status"] == 201
    sheet = (await client.get("/api/collection-sheet", headers=headers)).json()
    # Everything due on both loans is paid: nothing left on the sheet.
    assert sheet["groups"] == [] and sheet["expected"] == "0.00"
    await assert_consistent(app, book["big"])
    await assert_consistent(app, book["small"])


async def test_the_same_sheet_twice_at_once_posts_once(app, client, world, bearer, book) -> None:  # type: ignore[no-untyped-def]
    headers = await bearer(world.agent_a)
    lines = [
        _line(book["small"], "400.00", "race-1"),
        _line(book["big"], "1000.00", "race-2"),
        _line(book["small"], "300.00", "race-3"),
    ]
    before = await _count(app)
    responses = await asyncio.gather(
        *(
            client.post("/api/collection-sheet/post", json={"lines": lines}, headers=headers)
            for _ in range(4)
        )
    )
    assert [r.status_code for r in responses] == [200] * 4
    receipts = {tuple(line["receipt_number"] for line in r.json()["lines"]) for r in responses}
    assert len(receipts) == 1 and None not in next(iter(receipts))
    assert sum(r.json()["posted"] for r in responses) == 3
    assert await _count(app) == before + 3
    await assert_consistent(app, book["small"])
    await assert_consistent(app, book["big"])


async def test_sheets_and_single_collections_at_once_do_not_deadlock(
    app, client, world, bearer, book
) -> None:  # type: ignore[no-untyped-def]
    """Lines on the same loans in opposite orders, from two users, with single collections in
    between: every line posts (locks are taken in one order)."""
    agent = await bearer(world.agent_a)
    manager = await bearer(world.manager_a)
    requests = []
    for n in range(3):
        requests.append(
            client.post(
                "/api/collection-sheet/post",
                json={
                    "lines": [
                        _line(book["small"], "10.00", f"a-{n}-1"),
                        _line(book["big"], "10.00", f"a-{n}-2"),
                    ]
                },
                headers=agent,
            )
        )
        requests.append(
            client.post(
                "/api/collection-sheet/post",
                json={
                    "lines": [
                        _line(book["big"], "10.00", f"m-{n}-1"),
                        _line(book["small"], "10.00", f"m-{n}-2"),
                    ]
                },
                headers=manager,
            )
        )
        requests.append(collect(client, manager, book["small"], "10.00"))
    responses = await asyncio.gather(*requests)
    for r in responses:
        assert r.status_code in (200, 201), r.text
        if r.status_code == 200:
            assert [line["status"] for line in r.json()["lines"]] == [201, 201], r.text
    await assert_consistent(app, book["small"])
    await assert_consistent(app, book["big"])
