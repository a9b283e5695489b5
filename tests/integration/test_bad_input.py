"""Bad input is a 422 naming the field, never a 500 and never a partial write (issue 16, item 6),
through HTTP against real PostgreSQL: control characters, surrogates and text-direction
overrides in any text field; dates outside 1900-2100 and numbers as dates; integers beyond
bigint and `true` as an integer; money in other scripts' digits; implausible products, capital
and first due dates; a non-UTF-8 request id. The same against a running server:
tests/e2e/test_hardening_serve.py and the contract test."""

from __future__ import annotations

import datetime as dt
import json
import typing
import uuid
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel
from sqlalchemy import func, select

from namma.finance import add_months
from namma.kit.apitypes import RequestModel
from namma.kit.db import transaction
from namma.loans.service import today_india
from namma.models import Collection, Customer, Investment, JournalEntry
from tests.integration.test_authorization_matrix import api_routes
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    MONTHLY_PRODUCT,
    customer,
    make_loan,
    product,
    settings,
)

D = Decimal
REFUSED = [
    "a\u0000b",
    "bell\u0007",
    "esc\u001b[31m",
    "del\u007f",
    "c1\u0085",
    "rtl\u202eevil",
    "iso\u2066x",
]

CUSTOMER = {
    "name": "Savitha",
    "phone": "98450 12345",
    "date_of_birth": "1990-04-15",
    "village": "Hosur",
    "household_monthly_income": "20000.00",
    "kyc_document_type": "voter_id",
    "kyc_number": "ABC1234567",
}


def _fields(response: Any) -> list[str]:
    assert response.status_code == 422, response.text
    return [d["field"] for d in response.json()["error"]["details"]]


def _raw(body: dict[str, Any]) -> str:
    # json.dumps escapes a lone surrogate as "\ud800": what a client can send.
    return json.dumps(body)


async def _count(app: Any, model: type) -> int:  # type: ignore[type-arg]
    async with transaction(app.state.db) as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


def _models(annotation: Any) -> list[type[BaseModel]]:
    found: list[type[BaseModel]] = []
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        found.append(annotation)
        for field in annotation.model_fields.values():
            found += _models(field.annotation)
    for arg in typing.get_args(annotation):
        found += _models(arg)
    return found


def test_every_request_body_is_a_request_model(app) -> None:  # type: ignore[no-untyped-def]
    """One rule for every body: each body model (and each model it nests) is a RequestModel."""
    bodies = 0
    for (_, path), route in api_routes(app).items():
        for param in route.dependant.body_params:
            for model in _models(param.field_info.annotation):
                bodies += 1
                assert issubclass(model, RequestModel), f"{path}: {model.__name__}"
    assert bodies > 30


@pytest.mark.parametrize("text", REFUSED)
async def test_control_characters_in_any_text_field_are_a_422_naming_it(
    app, client, world, bearer, text: str
) -> None:  # type: ignore[no-untyped-def]
    headers = await bearer(world.agent_a)
    before = await _count(app, Customer)
    for field in ("name", "village", "address", "kyc_number"):
        response = await client.post(
            "/api/customers", json={**CUSTOMER, field: text}, headers=headers
        )
        assert _fields(response) == [field]
        message = response.json()["error"]["details"][0]["message"]
        assert message.startswith("Must not contain the invisible or control character U+")
    assert await _count(app, Customer) == before


async def test_a_lone_surrogate_is_a_422_even_in_a_field_s_name(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    headers = {**await bearer(world.agent_a), "Content-Type": "application/json"}
    response = await client.post(
        "/api/customers", content=_raw({**CUSTOMER, "name": "x\ud800y"}), headers=headers
    )
    assert _fields(response) == ["name"]
    assert "U+D800" in response.json()["error"]["details"][0]["message"]
    # A key that is not text: a 422 whose answer is itself valid JSON text (no lone surrogate).
    response = await client.post(
        "/api/customers", content=_raw({**CUSTOMER, "\ud800": 1}), headers=headers
    )
    assert response.status_code == 422
    response.content.decode("utf-8")  # strict: raises on a surrogate
    assert "\ud800" not in response.text


async def test_tabs_and_new_lines_are_text(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/customers",
        json={**CUSTOMER, "address": "2nd cross,\r\n\tGandhi Nagar"},
        headers=await bearer(world.agent_a),
    )
    assert response.status_code == 201, response.text


async def test_a_collection_with_a_nul_is_a_422_and_posts_nothing(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    headers = await bearer(world.agent_a)
    before = await _count(app, Collection)
    for field in ("client_id", "remarks", "reference"):
        body = {"loan_id": loan_id, "amount": "100.00", "client_id": "ok-1", field: "x\u0000"}
        response = await client.post("/api/collections", json=body, headers=headers)
        assert _fields(response) == [field]
    assert await _count(app, Collection) == before


async def test_a_sheet_line_with_a_nul_fails_alone(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    today = today_india().isoformat()
    line = {"loan_id": loan_id, "amount": "100.00", "collected_on": today}
    lines = [
        {**line, "client_id": "sheet\u0000line"},
        {**line, "client_id": "good-1"},
        {**line, "client_id": "bad-remark", "remarks": "x\u202ey"},
    ]
    headers = {**await bearer(world.agent_a), "Content-Type": "application/json"}
    response = await client.post(
        "/api/collection-sheet/post", content=_raw({"lines": lines}), headers=headers
    )
    assert response.status_code == 200, response.text
    bad, good, remark = response.json()["lines"]
    assert (bad["status"], good["status"], remark["status"]) == (422, 201, 422)
    assert bad["client_id"] is None  # not echoed: it is not text
    assert bad["body"]["error"]["details"][0]["field"] == "lines.0.client_id"
    assert remark["body"]["error"]["details"][0]["field"] == "lines.2.remarks"
    assert remark["client_id"] == "bad-remark"
    assert good["receipt_number"] is not None


@pytest.mark.parametrize("day", ["9999-12-31", "0001-01-01", "1899-12-31", "2101-01-01"])
async def test_dates_outside_1900_to_2100_are_a_422(
    app, client, world, bearer, product, customer, day: str
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    headers = await bearer(world.agent_a)
    response = await client.post(
        "/api/collections",
        json={"loan_id": loan_id, "amount": "10.00", "collected_on": day},
        headers={**headers, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert _fields(response) == ["collected_on"]
    assert "between 1900-01-01 and 2100-12-31" in response.text
    admin = await bearer(world.admin)
    entries = await _count(app, JournalEntry)
    response = await client.post(
        "/api/capital/investments",
        json={"amount": "1000.00", "source": "Owners", "invested_on": day},
        headers={**admin, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert _fields(response) == ["invested_on"]
    assert await _count(app, JournalEntry) == entries
    response = await client.get(f"/api/ledger/trial-balance?as_of={day}", headers=admin)
    assert _fields(response) == ["as_of"]


@pytest.mark.parametrize("value", [1_700_000_000, 20261125, 1.5, True])
async def test_a_number_is_not_a_date(app, client, world, bearer, value: object) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/capital/investments",
        json={"amount": "1000.00", "source": "Owners", "invested_on": value},
        headers={**await bearer(world.admin), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert _fields(response) == ["invested_on"]


@pytest.mark.parametrize("value", ["1700000000", "20261125", "2026-11-25T00:00:00", "25-11-2026"])
async def test_a_number_is_not_a_date_in_a_query_string(
    app, client, world, bearer, value: str
) -> None:  # type: ignore[no-untyped-def]
    headers = await bearer(world.manager_a)
    response = await client.get(f"/api/collection-sheet?date={value}", headers=headers)
    assert _fields(response) == ["date"]
    response = await client.get(f"/api/reports/portfolio-summary?to={value}", headers=headers)
    assert _fields(response) == ["to"]


@pytest.mark.parametrize("value", ["1700000000", "1700000000.5", "0"])
async def test_a_number_is_not_a_moment_in_a_query_string(
    app, client, world, bearer, value: str
) -> None:  # type: ignore[no-untyped-def]
    """Pydantic reads a number as seconds since 1970: `?since=1700000000` is refused instead."""
    response = await client.get(f"/api/audit?since={value}", headers=await bearer(world.admin))
    assert _fields(response) == ["since"]


async def test_integers_beyond_bigint_in_query_strings_are_a_422(
    app, client, world, bearer
) -> None:  # type: ignore[no-untyped-def]
    headers = await bearer(world.admin)
    huge = 2**64
    for path, field in (
        (f"/api/audit?before_id={huge}", "before_id"),
        (f"/api/collections?after={huge}", "after"),
        (f"/api/ledger/accounts/{uuid.uuid4()}/statement?after_line_id={huge}", "after_line_id"),
    ):
        response = await client.get(path, headers=headers)
        assert _fields(response) == [field], path
    response = await client.get("/api/audit?since=9999-01-01T00:00:00", headers=headers)
    assert _fields(response) == ["since"]
    response = await client.get("/api/customers?q=%00", headers=headers)
    assert _fields(response) == ["q"]


async def test_true_is_not_an_integer(app, client, world, bearer, product, customer) -> None:  # type: ignore[no-untyped-def]
    body = {"customer_id": str(customer.id), "product_id": product["id"], "amount": "10000.00"}
    headers = await bearer(world.agent_a)
    for value in (True, False):
        response = await client.post(
            "/api/loans", json={**body, "installments": value}, headers=headers
        )
        assert _fields(response) == ["installments"]
        assert response.json()["error"]["details"][0]["message"] == (
            "Must be an integer, not true or false"
        )
    response = await client.post("/api/loans", json={**body, "installments": 12}, headers=headers)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("amount", ["१००.००", "١٠٠", "１００", "1٠0.00", "100.00\u0000"])
async def test_money_is_written_in_ascii_digits(
    app, client, world, bearer, product, customer, amount: str
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    response = await client.post(
        "/api/collections",
        json={"loan_id": loan_id, "amount": amount},
        headers={**await bearer(world.agent_a), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert _fields(response) == ["amount"]
    message = response.json()["error"]["details"][0]["message"]
    assert not message.startswith("Value error")


async def test_money_is_trimmed_alike_everywhere(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    """Spaces around an amount are trimmed (a pasted "  500.00 "), in every money field; spaces
    inside one are refused."""
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    response = await client.post(
        "/api/collections",
        json={"loan_id": loan_id, "amount": " 500.00\t"},
        headers={**agent, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.text
    assert response.json()["collection"]["amount"] == "500.00"
    response = await client.post(
        "/api/collections",
        json={"loan_id": loan_id, "amount": "5 00.00"},
        headers={**agent, "Idempotency-Key": str(uuid.uuid4())},
    )
    assert _fields(response) == ["amount"]
    limits = {**MONTHLY_PRODUCT["limits"], "max_principal": " 300000.00 "}  # type: ignore[dict-item]
    response = await client.post(
        "/api/products",
        json={**MONTHLY_PRODUCT, "code": "TRIM-1", "limits": limits},
        headers=await bearer(world.admin),
    )
    assert response.status_code == 201, response.text
    assert response.json()["latest_version"]["limits"]["max_principal"] == "300000.00"


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        ({"installment_multiple": "5000"}, "terms.installment_multiple"),
        ({"penalty": {"basis": "flat", "value": "10000000000000"}}, "terms.penalty"),
        (
            {"fees": [{"name": "f", "timing": "installment", "basis": "flat", "value": "1e15"}]},
            "terms.fees.0.value",
        ),
        ({"first_due_grace_days": 400}, "terms.first_due_grace_days"),
    ],
)
async def test_implausible_products_are_a_422(app, client, world, bearer, terms, field) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/products",
        json={**MONTHLY_PRODUCT, "code": "ODD-1", "terms": terms},
        headers=await bearer(world.admin),
    )
    assert field in _fields(response)


async def test_an_implausible_investment_is_a_422(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/capital/investments",
        json={"amount": "999999999999999999.99", "source": "Owners"},
        headers={**await bearer(world.admin), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert _fields(response) == ["amount"]
    assert await _count(app, Investment) == 0


async def test_the_first_due_date_is_at_most_a_period_and_the_grace_after_disbursement(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    """The product's default grace is 30 days: a monthly loan applied for today may fall due
    first one month and 30 days from today, not a day later; disbursed later than applied for,
    its first due date may no longer fit (the disbursement is refused, naming its date)."""
    today = today_india()
    latest = add_months(today, 1) + dt.timedelta(days=30)
    body = {
        "customer_id": str(customer.id),
        "product_id": product["id"],
        "amount": "10000.00",
        "installments": 12,
    }
    agent = await bearer(world.agent_a)
    response = await client.post(
        "/api/loans",
        json={**body, "first_due_on": (latest + dt.timedelta(days=1)).isoformat()},
        headers=agent,
    )
    assert _fields(response) == ["first_due_on"]
    assert latest.isoformat() in response.json()["error"]["message"]
    response = await client.post(
        "/api/loans", json={**body, "first_due_on": latest.isoformat()}, headers=agent
    )
    assert response.status_code == 201, response.text
    loan_id = response.json()["id"]
    manager = await bearer(world.manager_a)
    assert (await client.post(f"/api/loans/{loan_id}/approve", headers=manager)).status_code == 200
    response = await client.post(
        f"/api/loans/{loan_id}/disburse",
        json={"disbursed_on": (today - dt.timedelta(days=2)).isoformat(), "method": "cash"},
        headers=manager,
    )
    assert _fields(response) == ["disbursed_on"]
    response = await client.post(
        f"/api/loans/{loan_id}/disburse",
        json={"disbursed_on": today.isoformat(), "method": "cash"},
        headers=manager,
    )
    assert response.status_code == 201, response.text
    schedule = (await client.get(f"/api/loans/{loan_id}/schedule", headers=manager)).json()
    assert schedule["installments"][0]["due_date"] == latest.isoformat()


async def test_a_request_id_that_is_not_text_gets_a_new_one(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    headers = await bearer(world.admin)
    response = await client.get(
        "/api/products", headers=[*headers.items(), ("X-Request-ID", b"\xff\xfe\x00abc")]
    )
    assert response.status_code == 200, response.text
    assert len(response.headers["X-Request-ID"]) == 32
    response = await client.get("/api/products", headers={**headers, "X-Request-ID": "abc-123"})
    assert response.headers["X-Request-ID"] == "abc-123"


async def test_validation_messages_never_begin_with_value_error(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/capital/investments",
        json={"amount": 12.5, "source": "Owners"},
        headers={**await bearer(world.admin), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert _fields(response) == ["amount"]
    message = response.json()["error"]["details"][0]["message"]
    assert message == 'Must be a decimal string such as "12500.00", not a JSON number'
