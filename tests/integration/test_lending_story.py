"""The whole lending story through the API, as the people who do it: head office sets up a
branch, its staff and a product; an agent onboards a borrower and applies; the manager checks
and approves; the loan is paid out; schedule, journal, audit trail and KFS are all there."""

from __future__ import annotations

import re
from decimal import Decimal

import httpx
from sqlalchemy import select

from namma.customers.kyc import verhoeff_check_digit
from namma.jobs import job_app
from namma.kit.db import transaction
from namma.ledger.queries import ledger_check
from namma.loans.service import today_india
from namma.models import AccountKind, AuditEntry, JournalEntry, JournalLine, LedgerAccount
from tests.integration.test_loans import WEEKLY_PRODUCT


async def _login(client: httpx.AsyncClient, login: str, password: str) -> dict[str, str]:
    response = await client.post(
        "/api/auth/login", json={"login": login, "password": password, "token_delivery": "body"}
    )
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


async def _first_login(
    client: httpx.AsyncClient, login: str, temporary: str, chosen: str
) -> dict[str, str]:
    """New staff log in with the temporary password, must change it, then log in again."""
    headers = await _login(client, login, temporary)
    assert (await client.get("/api/customers", headers=headers)).json()["error"]["code"] == (
        "password_change_required"
    )
    changed = await client.post(
        "/api/auth/password",
        headers=headers,
        json={"current_password": temporary, "new_password": chosen},
    )
    assert changed.status_code == 204
    return await _login(client, login, chosen)


async def test_from_branch_to_disbursed_loan(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)

    branch = await client.post(
        "/api/branches", json={"code": "TMK01", "name": "Tumakuru"}, headers=admin
    )
    assert branch.status_code == 201, branch.text
    branch_id = branch.json()["id"]
    manager = await client.post(
        "/api/staff",
        json={
            "name": "Tara Manager",
            "role": "manager",
            "branch_id": branch_id,
            "email": "tara@example.com",
            "password": "temporary password 1",
        },
        headers=admin,
    )
    assert manager.status_code == 201, manager.text
    as_manager = await _first_login(
        client, "tara@example.com", "temporary password 1", "tara's own passphrase"
    )
    agent = await client.post(
        "/api/staff",
        json={
            "name": "Tejas Agent",
            "role": "agent",
            "phone": "9123456780",
            "password": "temporary password 2",
        },
        headers=as_manager,
    )
    assert agent.status_code == 201, agent.text
    assert agent.json()["branch_id"] == branch_id  # a manager's agents join the manager's branch
    as_agent = await _first_login(
        client, "9123456780", "temporary password 2", "tejas's own passphrase"
    )

    product = await client.post("/api/products", json=WEEKLY_PRODUCT, headers=admin)
    assert product.status_code == 201, product.text

    aadhaar = "73924658201"
    onboarded = await client.post(
        "/api/customers",
        json={
            "name": "Yashoda N.",
            "phone": "9988776655",
            "date_of_birth": "1986-04-12",
            "village": "Gubbi",
            "address": "Near the temple, Gubbi",
            "household_monthly_income": "18000.00",
            "kyc_document_type": "aadhaar",
            "kyc_number": aadhaar + verhoeff_check_digit(aadhaar),
        },
        headers=as_agent,
    )
    assert onboarded.status_code == 201, onboarded.text
    customer = onboarded.json()
    assert customer["kyc"]["number_masked"].endswith(verhoeff_check_digit(aadhaar)[-1])
    assert aadhaar not in onboarded.text  # the number itself is never echoed back

    applied = await client.post(
        "/api/loans",
        json={
            "customer_id": customer["id"],
            "product_id": product.json()["id"],
            "amount": "30000.00",
            "installments": 52,
            "purpose": "Two milch cows",
        },
        headers=as_agent,
    )
    assert applied.status_code == 201, applied.text
    loan = applied.json()
    assert re.fullmatch(rf"TMK01-{today_india().year}-000001", loan["loan_number"])

    # The agent who applied cannot approve; KYC must be verified before approval.
    assert (
        await client.post(f"/api/loans/{loan['id']}/approve", headers=as_agent)
    ).status_code == 403
    unverified = await client.post(f"/api/loans/{loan['id']}/approve", headers=as_manager)
    assert (
        unverified.status_code == 409
        and unverified.json()["error"]["details"]["kyc_status"] == "pending"
    )
    kyc = await client.post(
        f"/api/customers/{customer['id']}/kyc", json={"decision": "verified"}, headers=as_manager
    )
    assert kyc.status_code == 200, kyc.text
    assert (
        await client.post(f"/api/loans/{loan['id']}/approve", headers=as_manager)
    ).status_code == 200

    kfs = await client.get(f"/api/loans/{loan['id']}/kfs", headers=as_agent)
    assert kfs.status_code == 200
    assert kfs.json()["net_disbursed"] == "29700.00"

    disbursed = await client.post(
        f"/api/loans/{loan['id']}/disburse",
        json={"disbursed_on": today_india().isoformat(), "method": "cash"},
        headers=as_manager,
    )
    assert disbursed.status_code == 201, disbursed.text
    await job_app.run_worker_async(wait=False, install_signal_handlers=False)  # EMI Gen
    detail = (await client.get(f"/api/loans/{loan['id']}", headers=as_agent)).json()
    assert detail["status"] == "active" and detail["schedule_status"] == "generated"
    schedule = (await client.get(f"/api/loans/{loan['id']}/schedule", headers=as_agent)).json()
    assert len(schedule["installments"]) == 52
    assert sum(Decimal(i["principal"]) for i in schedule["installments"]) == Decimal("30000.00")

    # The customer shows the loan and its next due date.
    shown = (await client.get(f"/api/customers/{customer['id']}", headers=as_agent)).json()
    assert [item["loan_number"] for item in shown["loans"]] == [loan["loan_number"]]

    async with transaction(app.state.db) as session:
        legs = (
            await session.execute(
                select(LedgerAccount.kind, JournalLine.debit, JournalLine.credit)
                .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
                .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
                .where(JournalEntry.loan_id == loan["id"])
            )
        ).all()
        assert sorted(legs) == sorted(
            [
                (AccountKind.LOAN_PORTFOLIO, Decimal("30000.00"), Decimal("0.00")),
                (AccountKind.FEE_INCOME, Decimal("0.00"), Decimal("300.00")),
                (AccountKind.BRANCH_CASH, Decimal("0.00"), Decimal("29700.00")),
            ]
        )
        trail = (await session.scalars(select(AuditEntry.action).order_by(AuditEntry.id))).all()
        for action in (
            "branch.created",
            "staff.created",
            "product.created",
            "customer.created",
            "loan.applied",
            "customer.kyc_verified",
            "loan.approved",
            "loan.disbursed",
        ):
            assert action in trail, (action, trail)
        assert (await ledger_check(session)).ok
