"""The typed answers of the loan and collection routes (`loans.schemas`, `collections.schemas`):
every route declares its 2xx body in the API reference, and the JSON keeps its shape — field
names, money as strings with two places, moments as before — pinned here."""

from __future__ import annotations

import json
import uuid

from sqlalchemy import select

from namma.kit.db import transaction
from namma.loans.service import today_india
from namma.models import IdempotencyKey
from tests.integration.test_collections import (  # noqa: F401 (fixtures)
    collect,
    customer,
    make_loan,
    product,
    settings,
)

COLLECTION_KEYS = [
    "id",
    "receipt_number",
    "loan_id",
    "loan_number",
    "customer_id",
    "branch_id",
    "collected_by_id",
    "amount",
    "principal",
    "interest",
    "fee",
    "penalty",
    "recovery",
    "advance",
    "prepaid_principal",
    "collected_on",
    "method",
    "reference",
    "remarks",
    "client_id",
    "preclosure",
    "status",
    "reversed_at",
    "reversed_by_id",
    "reversal_reason",
    "journal_entry_id",
    "reversal_entry_id",
    "created_at",
    "allocation",
    "rescheduled",
]
LOAN_BALANCE_KEYS = [
    "id",
    "loan_number",
    "status",
    "outstanding_principal",
    "outstanding_interest",
    "outstanding_fees",
    "outstanding_penalties",
    "total_collected",
    "advance_balance",
    "next_due_on",
    "days_past_due",
    "closed_at",
]
LOAN_KEYS = [
    "id",
    "loan_number",
    "status",
    "customer",
    "branch_id",
    "product_version_id",
    "principal",
    "annual_rate",
    "installments",
    "frequency",
    "purpose",
    "applied_by_id",
    "applied_at",
    "decided_by_id",
    "decided_at",
    "rejection_reason",
    "disbursed_on",
    "disbursement_method",
    "disbursement_reference",
    "net_disbursed",
    "installment_amount",
    "total_interest",
    "apr_percent",
    "schedule_status",
    "outstanding_principal",
    "outstanding_interest",
    "outstanding_fees",
    "outstanding_penalties",
    "total_collected",
    "advance_balance",
    "interest_receivable",
    "interest_suspense",
    "next_due_on",
    "days_past_due",
    "write_off_reason",
    "refinances_id",
    "restructured_on",
    "restructure_reason",
]


async def test_a_collections_answer_keeps_its_shape_and_is_stored_as_sent(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    key = str(uuid.uuid4())
    response = await collect(
        client, await bearer(world.agent_a), loan_id, "100", key=key, remarks="Centre"
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert list(body) == ["receipt_number", "collection", "allocation", "loan"]
    assert list(body["collection"]) == COLLECTION_KEYS
    assert list(body["loan"]) == LOAN_BALANCE_KEYS
    assert body["collection"]["amount"] == "100.00"  # money: a string with two places
    assert body["collection"]["created_at"].endswith("+00:00")  # isoformat, as ever
    assert [list(line)[-1] for line in body["allocation"]] == ["installment_status"]
    # The answer is stored exactly as sent: the replay is these bytes.
    async with transaction(app.state.db) as session:
        stored = await session.scalar(
            select(IdempotencyKey.response_body).where(IdempotencyKey.key == key)
        )
    assert stored is not None and stored.encode() == response.content
    assert json.loads(stored) == body

    manager = await bearer(world.manager_a)
    loan = (await client.get(f"/api/loans/{loan_id}", headers=manager)).json()
    assert list(loan) == [*LOAN_KEYS, "charges"]
    assert loan["annual_rate"] == "12.0000" and loan["principal"] == "100000.00"
    listed = (await client.get(f"/api/loans?customer_id={customer.id}", headers=manager)).json()
    assert list(listed["loans"][0]) == LOAN_KEYS
    quote = (await client.get(f"/api/loans/{loan_id}/preclosure", headers=manager)).json()
    assert quote["as_of"] == today_india().isoformat() and quote["total"].count(".") == 1


async def test_every_loan_and_collection_route_declares_its_answer(app, client) -> None:  # type: ignore[no-untyped-def]
    spec = (await client.get("/api/openapi.json")).json()
    checked = 0
    for path, operations in spec["paths"].items():
        if not path.startswith(("/api/loans", "/api/collections", "/api/collection-sheet")):
            continue
        if path.endswith(".pdf"):  # documents, not JSON
            continue
        for method, operation in operations.items():
            success = {k: v for k, v in operation["responses"].items() if k.startswith("2")}
            assert success, (method, path)
            for status, answer in success.items():
                schema = answer.get("content", {}).get("application/json", {}).get("schema", {})
                assert "$ref" in schema, (method, path, status, answer)
                checked += 1
    assert checked >= 20
