"""Customers through the API: onboarding, duplicates, validation, KYC decisions, closing, search
with keyset pagination, detail with dues, and who sees whom."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import uuid
from decimal import Decimal
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from sqlalchemy import select

from namma.customers.kyc import verhoeff_check_digit
from namma.kit.clock import today_india
from namma.kit.db import transaction
from namma.models import (
    AgentAssignment,
    AuditEntry,
    Customer,
    InstallmentStatus,
    Loan,
    LoanStatus,
    User,
    UserPermission,
)
from tests.factories import loan_row

_serial = itertools.count(1)


def aadhaar(seed: int | None = None) -> str:
    n = next(_serial) if seed is None else seed
    base = f"{2 + n % 8}{n:010d}"
    return base + verhoeff_check_digit(base)


def phone(n: int) -> str:
    return f"98{n:08d}"


def body(**overrides: Any) -> dict[str, Any]:
    n = next(_serial)
    data: dict[str, Any] = {
        "name": f"Savitha {n}",
        "phone": phone(n),
        "date_of_birth": "1988-06-01",
        "address": "12, 3rd Cross, Hosur Road",
        "village": "Hosur",
        "household_monthly_income": "18500.00",
        "kyc_document_type": "aadhaar",
        "kyc_number": aadhaar(),
    }
    data.update(overrides)
    return data


def fields(response: httpx.Response) -> list[str]:
    return [d["field"] for d in response.json()["error"]["details"]]


async def create(
    client: httpx.AsyncClient, headers: dict[str, str], **overrides: Any
) -> httpx.Response:
    return await client.post("/api/customers", json=body(**overrides), headers=headers)


async def audit_actions(app, entity_id: str) -> list[str]:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        rows = await session.scalars(
            select(AuditEntry.action)
            .where(AuditEntry.entity_id == entity_id)
            .order_by(AuditEntry.id)
        )
        return list(rows.all())


make_loan = loan_row  # a minimal loan row straight in the ORM


# --- onboarding ---------------------------------------------------------------------------------


async def test_agent_onboards_becomes_the_agent_and_finds_the_customer(  # type: ignore[no-untyped-def]
    app, client, world, bearer
) -> None:
    agent = await bearer(world.agent_a)
    number = aadhaar()
    response = await create(
        client,
        agent,
        name="Parvathi Gowda",
        phone="+91 98450 11111",
        email="Parvathi@Example.com",
        kyc_number=f"{number[:4]} {number[4:8]} {number[8:]}",
        household_monthly_income="12500",
    )
    assert response.status_code == 201, response.text
    customer = response.json()
    assert customer["branch_id"] == str(world.branch_a.id)
    assert customer["phone"] == "9845011111"
    assert customer["email"] == "parvathi@example.com"
    assert customer["household_monthly_income"] == "12500.00"
    assert customer["agent"] == {"id": str(world.agent_a.id), "name": world.agent_a.name}
    assert customer["kyc"]["status"] == "pending"
    assert customer["kyc"]["number_masked"] == "XXXXXXXX" + number[-4:]
    assert customer["status"] == "active" and customer["has_portal_login"] is False
    assert customer["loans"] == [] and customer["next_due"] is None
    assert customer["overdue_amount"] == "0.00"
    assert number not in response.text and number[:8] not in response.text

    found = await client.get("/api/customers", params={"q": "parvathi"}, headers=agent)
    assert found.status_code == 200
    assert [c["id"] for c in found.json()["customers"]] == [customer["id"]]
    assert await audit_actions(app, customer["id"]) == ["customer.created"]
    async with transaction(app.state.db) as session:
        stored = await session.get(Customer, uuid.UUID(customer["id"]))
        assert stored is not None and stored.created_by_id == world.agent_a.id
        assert stored.kyc_number_hash and number not in stored.kyc_number_hash
        audit = await session.scalar(
            select(AuditEntry).where(AuditEntry.entity_id == customer["id"])
        )
        assert audit is not None and number not in str(audit.after)


async def test_manager_and_admin_onboard_into_a_branch(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    manager = await bearer(world.manager_a)
    made = await create(client, manager)
    assert made.status_code == 201, made.text
    assert made.json()["branch_id"] == str(world.branch_a.id)
    assert made.json()["agent"] is None
    other = await create(client, manager, branch_id=str(world.branch_b.id))
    assert other.status_code == 403

    admin = await bearer(world.admin)
    missing = await create(client, admin)
    assert missing.status_code == 422 and fields(missing) == ["branch_id"]
    unknown = await create(client, admin, branch_id=str(uuid.uuid4()))
    assert unknown.status_code == 422 and fields(unknown) == ["branch_id"]
    placed = await create(client, admin, branch_id=str(world.branch_b.id))
    assert placed.status_code == 201 and placed.json()["branch_id"] == str(world.branch_b.id)

    customer = await bearer(world.customer_user_a)
    assert (await create(client, customer)).status_code == 403


async def test_portal_login_for_the_customer(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    agent = await bearer(world.agent_a)
    weak = await create(client, agent, portal_password="password")
    assert weak.status_code == 422 and fields(weak) == ["portal_password"]
    made = await create(
        client, agent, phone="9845022222", portal_password="a long enough portal pass"
    )
    assert made.status_code == 201, made.text
    assert made.json()["has_portal_login"] is True
    login = await client.post(
        "/api/auth/login",
        json={
            "login": "98450 22222",
            "password": "a long enough portal pass",
            "token_delivery": "body",
        },
    )
    assert login.status_code == 200, login.text
    assert login.json()["user"]["role"] == "customer"
    async with transaction(app.state.db) as session:
        user = await session.scalar(select(User).where(User.phone == "9845022222"))
        assert user is not None and user.must_change_password
        # Change the password, then the customer reads their own record.
        user.must_change_password = False
    me = await bearer(user)
    own = await client.get(f"/api/customers/{made.json()['id']}", headers=me)
    assert own.status_code == 200

    # A staff member's phone cannot become a customer's portal login.
    clash = await create(
        client, agent, phone=world.agent_a2.phone, portal_password="a long enough portal pass"
    )
    assert clash.status_code == 409


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"kyc_number": "2341 2341 2340"}, "kyc_number"),  # wrong Verhoeff check digit
        ({"kyc_number": "1234 5678 9012"}, "kyc_number"),
        ({"kyc_document_type": "pan", "kyc_number": "ABCDE12345"}, "kyc_number"),
        ({"kyc_document_type": "library_card"}, "kyc_document_type"),
        ({"household_monthly_income": 12500}, "household_monthly_income"),
        ({"household_monthly_income": 12500.5}, "household_monthly_income"),
        ({"household_monthly_income": "12500.005"}, "household_monthly_income"),
        ({"household_monthly_income": "-1.00"}, "household_monthly_income"),
        ({"household_monthly_income": "1e5"}, "household_monthly_income"),
        ({"phone": "12345"}, "phone"),
        ({"phone": "someone@example.com"}, "phone"),
        ({"email": "not an email"}, "email"),
        ({"date_of_birth": "2999-01-01"}, "date_of_birth"),
        ({"date_of_birth": "2015-01-01"}, "date_of_birth"),
        ({"date_of_birth": "1900-01-01"}, "date_of_birth"),
        ({"date_of_birth": "01/06/1988"}, "date_of_birth"),
        ({"date_of_birth": 582000000}, "date_of_birth"),
        ({"name": "   "}, "name"),
        ({"village": " "}, "village"),
        ({"kyc_status": "verified"}, "kyc_status"),  # no mass assignment
        ({"branch_id": "not-a-uuid"}, "branch_id"),
    ],
)
async def test_bad_input_names_the_field(client, world, bearer, overrides, field) -> None:  # type: ignore[no-untyped-def]
    response = await create(client, await bearer(world.agent_a), **overrides)
    assert response.status_code == 422, response.text
    assert field in fields(response)


async def test_age_bounds_are_inclusive(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    agent = await bearer(world.agent_a)
    today = today_india()
    eighteen = today.replace(year=today.year - 18) - dt.timedelta(days=1)
    assert (await create(client, agent, date_of_birth=eighteen.isoformat())).status_code == 201
    young = today.replace(year=today.year - 17)
    assert (await create(client, agent, date_of_birth=young.isoformat())).status_code == 422


# --- duplicates ---------------------------------------------------------------------------------


async def test_duplicate_phone_is_a_conflict(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    agent = await bearer(world.agent_a)
    assert (await create(client, agent, phone="9845033333")).status_code == 201
    again = await create(client, agent, phone="+91-98450-33333")
    assert again.status_code == 409, again.text
    fixture_phone = await create(client, agent, phone=world.customer_b.phone)
    assert fixture_phone.status_code == 409
    assert "customer_id" not in (fixture_phone.json()["error"]["details"] or {})


async def test_duplicate_aadhaar_is_a_conflict_naming_only_visible_customers(  # type: ignore[no-untyped-def]
    client, world, bearer
) -> None:
    number = aadhaar()
    first = await create(client, await bearer(world.agent_a), kyc_number=number)
    assert first.status_code == 201
    spaced = f"{number[:4]} {number[4:8]}-{number[8:]}"

    same_branch = await create(client, await bearer(world.manager_a), kyc_number=spaced)
    assert same_branch.status_code == 409
    assert same_branch.json()["error"]["details"] == {"customer_id": first.json()["id"]}

    elsewhere = await create(client, await bearer(world.agent_b), kyc_number=spaced)
    assert elsewhere.status_code == 409
    assert first.json()["id"] not in elsewhere.text
    assert elsewhere.json()["error"]["details"] is None

    # The same digits as another document type are a different document.
    other_type = await create(
        client, await bearer(world.agent_a), kyc_document_type="ration_card", kyc_number=number
    )
    assert other_type.status_code == 201


# --- reading and scope --------------------------------------------------------------------------


async def test_scope_of_each_role(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    a, b = str(world.customer_a.id), str(world.customer_b.id)

    async def ids(user: User) -> set[str]:
        response = await client.get("/api/customers", headers=await bearer(user))
        assert response.status_code == 200
        return {c["id"] for c in response.json()["customers"]}

    assert await ids(world.admin) == {a, b}
    assert await ids(world.manager_a) == {a}
    assert await ids(world.manager_b) == {b}
    assert await ids(world.agent_a) == {a}
    assert await ids(world.agent_a2) == set()
    assert await ids(world.customer_user_a) == {a}

    for user, visible, hidden in [
        (world.manager_b, b, a),
        (world.agent_a, a, b),
        (world.customer_user_a, a, b),
        (world.customer_user_b, b, a),
    ]:
        headers = await bearer(user)
        assert (await client.get(f"/api/customers/{visible}", headers=headers)).status_code == 200
        assert (await client.get(f"/api/customers/{hidden}", headers=headers)).status_code == 404
    admin = await bearer(world.admin)
    missing = await client.get(f"/api/customers/{uuid.uuid4()}", headers=admin)
    assert missing.status_code == 404


async def test_search_by_name_phone_and_loan_number_with_filters(  # type: ignore[no-untyped-def]
    app, client, world, bearer
) -> None:
    manager = await bearer(world.manager_a)
    made = await create(
        client, manager, name="Yellamma Naik", phone="9845044444", village="Attibele"
    )
    assert made.status_code == 201
    customer_id = made.json()["id"]
    await make_loan(
        app, world, uuid.UUID(customer_id), status=LoanStatus.APPLIED, number="BLR01-2026-000042"
    )

    async def search(**params: Any) -> list[str]:
        response = await client.get("/api/customers", params=params, headers=manager)
        assert response.status_code == 200, response.text
        return [c["id"] for c in response.json()["customers"]]

    assert await search(q="LLAMM") == [customer_id]
    assert await search(q="50444") == [customer_id]
    assert await search(q="+91 98450 44444") == [customer_id]
    assert await search(q="blr01-2026-000042") == [customer_id]
    assert await search(q="BLR01-2026-00004") == []  # loan numbers match exactly
    assert await search(q="100%_") == []
    assert await search(q="Yellamma", village="attibele") == [customer_id]
    assert await search(q="Yellamma", village="Hosur") == []
    assert await search(q="Yellamma", kyc_status="pending") == [customer_id]
    assert await search(q="Yellamma", kyc_status="verified") == []
    assert await search(q="Yellamma", status="active") == [customer_id]
    assert await search(agent_id=str(world.agent_a.id)) == [str(world.customer_a.id)]
    # Another branch's manager cannot find it by any key.
    other = await bearer(world.manager_b)
    for q in ("Yellamma", "9845044444", "BLR01-2026-000042"):
        response = await client.get("/api/customers", params={"q": q}, headers=other)
        assert response.json()["customers"] == []

    bad_cursor = await client.get("/api/customers", params={"after": "garbage!"}, headers=manager)
    assert bad_cursor.status_code == 422 and fields(bad_cursor) == ["after"]
    bad_limit = await client.get("/api/customers", params={"limit": 0}, headers=manager)
    assert bad_limit.status_code == 422 and fields(bad_limit) == ["limit"]


async def test_keyset_pagination_walks_everything_once(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    names = ["Zeenat", "amma", "Bhagya", "Bhagya", "Chandra", "Devi"] * 4 + ["Élise", "O'Neil"]
    async with transaction(app.state.db) as session:
        session.add_all(
            Customer(branch_id=world.branch_a.id, name=n, phone=f"97{i:08d}", village="Hosur")
            for i, n in enumerate(names)
        )
    admin = await bearer(world.admin)
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 7}
        if after:
            params["after"] = after
        response = await client.get("/api/customers", params=params, headers=admin)
        assert response.status_code == 200, response.text
        page = response.json()
        assert len(page["customers"]) <= 7
        seen += [c["id"] for c in page["customers"]]
        pages += 1
        after = page["next"]
        if after is None:
            break
    assert len(seen) == len(set(seen)) == len(names) + 2  # plus the world's two customers
    assert pages == 4

    capped = await client.get("/api/customers", params={"limit": 500}, headers=admin)
    assert capped.status_code == 200 and len(capped.json()["customers"]) == len(seen)


async def test_detail_shows_loans_next_due_and_overdue(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    today = today_india()
    week = dt.timedelta(days=7)
    customer = world.customer_a.id
    await make_loan(
        app,
        world,
        customer,
        status=LoanStatus.ACTIVE,
        number="BLR01-2026-000001",
        installments=[
            (today - 3 * week, "500.00", InstallmentStatus.PAID),
            (today - 2 * week, "500.00", InstallmentStatus.PARTLY_PAID),  # 400.00 left
            (today - week, "500.00", InstallmentStatus.OVERDUE),
            (today + week, "500.00", InstallmentStatus.DUE),
        ],
    )
    await make_loan(
        app,
        world,
        customer,
        status=LoanStatus.ACTIVE,
        number="BLR01-2026-000002",
        installments=[(today - 2 * week, "250.50", InstallmentStatus.DUE)],
    )
    # Installments of a loan that is not active do not count.
    await make_loan(
        app,
        world,
        customer,
        status=LoanStatus.WRITTEN_OFF,
        number="BLR01-2026-000003",
        installments=[(today - 4 * week, "999.00", InstallmentStatus.DUE)],
    )
    response = await client.get(f"/api/customers/{customer}", headers=await bearer(world.agent_a))
    assert response.status_code == 200, response.text
    detail = response.json()
    assert {loan["loan_number"] for loan in detail["loans"]} == {
        "BLR01-2026-000001",
        "BLR01-2026-000002",
        "BLR01-2026-000003",
    }
    loan = next(x for x in detail["loans"] if x["loan_number"] == "BLR01-2026-000001")
    assert loan["principal"] == "20000.00" and loan["status"] == "active"
    assert detail["next_due"] == {
        "due_on": (today - 2 * week).isoformat(),
        "amount": "650.50",  # 400.00 + 250.50
    }
    assert detail["overdue_amount"] == "1150.50"  # 400.00 + 500.00 + 250.50
    assert detail["counts"] == {
        "loans": 3,
        "open_loans": 2,
        "active_loans": 2,
        "overdue_installments": 3,
    }


# --- update -------------------------------------------------------------------------------------


async def test_update_changes_only_the_fields_sent(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    agent = await bearer(world.agent_a)
    made = (await create(client, agent, email="old@example.com")).json()
    url = f"/api/customers/{made['id']}"
    response = await client.patch(
        url,
        json={"phone": "0 98450 55555", "household_monthly_income": "20000.50", "address": None},
        headers=agent,
    )
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated["phone"] == "9845055555"
    assert updated["household_monthly_income"] == "20000.50"
    assert updated["address"] is None
    assert updated["email"] == "old@example.com" and updated["name"] == made["name"]
    assert await audit_actions(app, made["id"]) == ["customer.created", "customer.updated"]

    for payload, field in [
        ({"branch_id": str(world.branch_b.id)}, "branch_id"),
        ({"kyc_status": "verified"}, "kyc_status"),
        ({"name": None}, "name"),
        ({"household_monthly_income": 5}, "household_monthly_income"),
        ({"phone": "555"}, "phone"),
    ]:
        bad = await client.patch(url, json=payload, headers=agent)
        assert bad.status_code == 422, (payload, bad.text)
        assert field in fields(bad)
    taken = await client.patch(url, json={"phone": world.customer_a.phone}, headers=agent)
    assert taken.status_code == 409
    unchanged = await client.patch(url, json={}, headers=agent)
    assert unchanged.status_code == 200
    assert await audit_actions(app, made["id"]) == ["customer.created", "customer.updated"]
    hidden = await client.patch(
        f"/api/customers/{world.customer_b.id}", json={"village": "X"}, headers=agent
    )
    assert hidden.status_code == 404


# --- KYC decision -------------------------------------------------------------------------------


async def test_kyc_verify_once_and_rejection_needs_a_reason(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    agent = await bearer(world.agent_a)
    first = (await create(client, agent)).json()
    second = (await create(client, agent)).json()
    manager = await bearer(world.manager_a)

    refused = await client.post(
        f"/api/customers/{first['id']}/kyc", json={"decision": "verified"}, headers=agent
    )
    assert refused.status_code == 403
    elsewhere = await client.post(
        f"/api/customers/{first['id']}/kyc",
        json={"decision": "verified"},
        headers=await bearer(world.manager_b),
    )
    assert elsewhere.status_code == 404

    verified = await client.post(
        f"/api/customers/{first['id']}/kyc", json={"decision": "verified"}, headers=manager
    )
    assert verified.status_code == 200, verified.text
    kyc = verified.json()["kyc"]
    assert kyc["status"] == "verified" and kyc["decided_by_id"] == str(world.manager_a.id)
    assert kyc["decided_at"] is not None
    again = await client.post(
        f"/api/customers/{first['id']}/kyc",
        json={"decision": "rejected", "reason": "changed my mind"},
        headers=manager,
    )
    assert again.status_code == 409
    assert again.json()["error"]["details"] == {"kyc_status": "verified"}

    for reason in (None, "   "):
        no_reason = await client.post(
            f"/api/customers/{second['id']}/kyc",
            json={"decision": "rejected", "reason": reason},
            headers=manager,
        )
        assert no_reason.status_code == 422 and fields(no_reason) == ["reason"]
    bad_decision = await client.post(
        f"/api/customers/{second['id']}/kyc", json={"decision": "pending"}, headers=manager
    )
    assert bad_decision.status_code == 422 and fields(bad_decision) == ["decision"]
    rejected = await client.post(
        f"/api/customers/{second['id']}/kyc",
        json={"decision": "rejected", "reason": "Photo does not match"},
        headers=await bearer(world.admin),
    )
    assert rejected.status_code == 200
    assert rejected.json()["kyc"]["rejection_reason"] == "Photo does not match"
    assert await audit_actions(app, first["id"]) == ["customer.created", "customer.kyc_verified"]
    assert await audit_actions(app, second["id"]) == ["customer.created", "customer.kyc_rejected"]


# --- closing ------------------------------------------------------------------------------------


async def test_close_refused_with_an_open_loan_then_allowed(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    customer = world.customer_a.id
    url = f"/api/customers/{customer}/close"
    loan_id = await make_loan(
        app, world, customer, status=LoanStatus.ACTIVE, number="BLR01-2026-000007"
    )
    manager = await bearer(world.manager_a)
    assert (await client.post(url, json={"reason": "moved"}, headers=manager)).status_code == 403
    async with transaction(app.state.db) as session:
        session.add(
            UserPermission(
                user_id=world.manager_a.id,
                permission="customer:close",
                granted_by_id=world.admin.id,
            )
        )
    manager = await bearer(world.manager_a)
    blocked = await client.post(url, json={"reason": "Moved to Chennai"}, headers=manager)
    assert blocked.status_code == 409
    assert blocked.json()["error"]["details"] == {"open_loans": ["BLR01-2026-000007"]}
    no_reason = await client.post(url, json={"reason": ""}, headers=manager)
    assert no_reason.status_code == 422 and fields(no_reason) == ["reason"]
    elsewhere = await client.post(
        f"/api/customers/{world.customer_b.id}/close", json={"reason": "x"}, headers=manager
    )
    assert elsewhere.status_code == 404

    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, loan_id)
        assert loan is not None
        loan.status = LoanStatus.CLOSED
        loan.outstanding_principal = Decimal("0.00")
    closed = await client.post(url, json={"reason": "Moved to Chennai"}, headers=manager)
    assert closed.status_code == 200, closed.text
    assert closed.json()["status"] == "closed"
    assert closed.json()["closed_reason"] == "Moved to Chennai"
    assert closed.json()["agent"] is None
    assert len(closed.json()["loans"]) == 1  # history kept

    again = await client.post(url, json={"reason": "again"}, headers=manager)
    assert again.status_code == 409
    read = await client.get(f"/api/customers/{customer}", headers=await bearer(world.admin))
    assert read.status_code == 200 and read.json()["status"] == "closed"
    edit = await client.patch(
        f"/api/customers/{customer}", json={"village": "Chennai"}, headers=manager
    )
    assert edit.status_code == 409
    # The agent no longer serves (nor sees) the customer; the assignment is ended, not deleted.
    agent_view = await client.get(f"/api/customers/{customer}", headers=await bearer(world.agent_a))
    assert agent_view.status_code == 404
    async with transaction(app.state.db) as session:
        rows = (
            await session.scalars(
                select(AgentAssignment).where(AgentAssignment.customer_id == customer)
            )
        ).all()
        assert len(rows) == 1 and rows[0].ended_at is not None
    assert (await audit_actions(app, str(customer)))[-1] == "customer.closed"


async def test_assignment_routes_still_work_for_new_customers(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    made = (await create(client, await bearer(world.agent_a))).json()
    manager = await bearer(world.manager_a)
    moved = await client.put(
        f"/api/customers/{made['id']}/agent",
        json={"agent_id": str(world.agent_a2.id), "reason": "Route change"},
        headers=manager,
    )
    assert moved.status_code == 200, moved.text
    detail = await client.get(f"/api/customers/{made['id']}", headers=await bearer(world.agent_a2))
    assert detail.status_code == 200 and detail.json()["agent"]["id"] == str(world.agent_a2.id)
    gone = await client.get(f"/api/customers/{made['id']}", headers=await bearer(world.agent_a))
    assert gone.status_code == 404


# --- hostile input never reaches the database as an error ---------------------------------------

NASTY = [
    "\\u0000",
    "\\ud800",
    "a\\u0000b",
    "%_\\\\",
    "' OR 1=1 --",
    "\\ud83d\\ude00" * 200,
    " " * 50,
]


@pytest.mark.parametrize("value", NASTY)
async def test_hostile_strings_are_4xx_not_5xx(client, world, bearer, value) -> None:  # type: ignore[no-untyped-def]
    agent = await bearer(world.agent_a)
    headers = {**agent, "Content-Type": "application/json"}
    for field in ("name", "email", "address", "village", "kyc_number", "phone"):
        data = body()
        data.pop(field, None)
        raw = json.dumps(data)[:-1] + f', "{field}": "{value}"}}'
        response = await client.post("/api/customers", content=raw.encode(), headers=headers)
        assert response.status_code in (201, 422), (field, response.text)
    decoded = json.loads(f'"{value}"')
    for param in ("q", "village", "after"):
        query = quote(decoded.encode("utf-8", "surrogatepass"))
        response = await client.get(f"/api/customers?{param}={query}", headers=agent)
        assert response.status_code in (200, 422), (param, response.text)
    url = f"/api/customers/{world.customer_a.id}"
    for field in ("name", "email", "address", "village"):
        response = await client.patch(
            url, content=f'{{"{field}": "{value}"}}'.encode(), headers=headers
        )
        assert response.status_code in (200, 409, 422), (field, response.text)
