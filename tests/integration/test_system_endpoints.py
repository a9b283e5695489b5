"""Health, readiness, metrics, request ids and the one JSON error body."""

from __future__ import annotations

import psycopg
from fastapi import FastAPI
from pydantic import BaseModel, Field

from namma.kit.db import libpq_url
from namma.kit.errors import ConflictError, InvalidInputError, NotFoundError


async def test_health_is_ok(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_ready_checks_every_dependency(client) -> None:  # type: ignore[no-untyped-def]
    response = await client.get("/ready")
    assert response.status_code == 200, response.text
    checks = response.json()["checks"]
    assert set(checks) == {"database", "migrations", "cache", "jobs"}
    assert all(check["ok"] for check in checks.values())
    assert checks["migrations"]["current"] == checks["migrations"]["head"]


async def test_ready_reports_a_database_behind_on_migrations(client, clean_database) -> None:  # type: ignore[no-untyped-def]
    with psycopg.connect(libpq_url(clean_database), autocommit=True) as conn:
        (current,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        conn.execute("UPDATE alembic_version SET version_num = 'a1b2c3d4e5f6'")
    try:
        response = await client.get("/ready")
        assert response.status_code == 503
        body = response.json()
        assert body["status"] == "not_ready"
        assert body["checks"]["migrations"]["ok"] is False
        assert body["checks"]["database"]["ok"] is True
    finally:
        with psycopg.connect(libpq_url(clean_database), autocommit=True) as conn:
            conn.execute("UPDATE alembic_version SET version_num = %s", (current,))


async def test_request_id_is_echoed_or_made(client) -> None:  # type: ignore[no-untyped-def]
    given = await client.get("/health", headers={"X-Request-ID": "field-42"})
    assert given.headers["x-request-id"] == "field-42"
    made = await client.get("/health", headers={"X-Request-ID": "bad id with spaces"})
    assert made.headers["x-request-id"] != "bad id with spaces"
    assert len(made.headers["x-request-id"]) == 32


async def test_metrics_count_requests_by_route_template(client) -> None:  # type: ignore[no-untyped-def]
    await client.get("/health")
    await client.get("/health")
    text = (await client.get("/metrics")).text
    assert 'namma_http_requests_total{method="GET",route="/health",status="200"} 2.0' in text
    assert "namma_http_request_duration_seconds_bucket" in text


class _Payment(BaseModel):
    amount: str = Field(pattern=r"^\d+\.\d{2}$")
    method: str


def _add_error_routes(app: FastAPI) -> None:
    async def validated(body: _Payment) -> dict[str, str]:
        return {"ok": body.amount}

    async def missing() -> None:
        raise NotFoundError("Loan not found")

    async def conflict() -> None:
        raise ConflictError("Loan is closed", details={"status": "closed"})

    async def rule() -> None:
        raise InvalidInputError("amount", "Amount exceeds the payoff amount 5000.00")

    app.add_api_route("/_test/validated", validated, methods=["POST"])
    app.add_api_route("/_test/missing", missing)
    app.add_api_route("/_test/conflict", conflict)
    app.add_api_route("/_test/rule", rule)


async def test_every_error_has_the_same_body(app, client) -> None:  # type: ignore[no-untyped-def]
    _add_error_routes(app)

    invalid = await client.post("/_test/validated", json={"amount": "12.5"})
    assert invalid.status_code == 422
    error = invalid.json()["error"]
    assert error["code"] == "invalid_input"
    assert {d["field"] for d in error["details"]} == {"amount", "method"}

    assert (await client.get("/_test/missing")).json() == {
        "error": {"code": "not_found", "message": "Loan not found", "details": None}
    }
    conflict = await client.get("/_test/conflict")
    assert conflict.status_code == 409
    assert conflict.json()["error"] == {
        "code": "conflict",
        "message": "Loan is closed",
        "details": {"status": "closed"},
    }
    rule = await client.get("/_test/rule")
    assert rule.status_code == 422
    assert rule.json()["error"]["details"] == [
        {"field": "amount", "message": "Amount exceeds the payoff amount 5000.00"}
    ]
    unknown_route = await client.get("/no/such/route")
    assert unknown_route.status_code == 404
    assert unknown_route.json()["error"]["code"] == "not_found"
    wrong_method = await client.delete("/health")
    assert wrong_method.status_code == 405
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
