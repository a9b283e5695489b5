"""The request's transaction commits before the response is sent, or the response is an error."""

from __future__ import annotations

import psycopg
import pytest
from fastapi import FastAPI
from sqlalchemy import text

from namma.kit.db import libpq_url
from namma.kit.deps import SessionDep


@pytest.fixture
def probe_table(clean_database: str):  # type: ignore[no-untyped-def]
    # A deferred unique constraint is checked only at COMMIT: inserting a duplicate succeeds
    # inside the request and makes the commit itself fail.
    with psycopg.connect(libpq_url(clean_database), autocommit=True) as conn:
        conn.execute(
            "CREATE TABLE IF NOT EXISTS commit_probe (id int, "
            "CONSTRAINT commit_probe_once UNIQUE (id) DEFERRABLE INITIALLY DEFERRED)"
        )
        conn.execute("TRUNCATE commit_probe")
    yield clean_database
    with psycopg.connect(libpq_url(clean_database), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS commit_probe")


def _rows(url: str) -> list[int]:
    with psycopg.connect(libpq_url(url)) as conn:
        return [r[0] for r in conn.execute("SELECT id FROM commit_probe ORDER BY id")]


def _add_routes(app: FastAPI) -> None:
    async def insert_ok(session: SessionDep) -> dict[str, str]:
        await session.execute(text("INSERT INTO commit_probe VALUES (1)"))
        return {"saved": "yes"}

    async def commit_fails(session: SessionDep) -> dict[str, str]:
        await session.execute(text("INSERT INTO commit_probe VALUES (2), (2)"))
        return {"saved": "yes"}

    async def raises_after_write(session: SessionDep) -> dict[str, str]:
        await session.execute(text("INSERT INTO commit_probe VALUES (3)"))
        raise RuntimeError("boom after the write")

    app.add_api_route("/_test/insert-ok", insert_ok, methods=["POST"])
    app.add_api_route("/_test/commit-fails", commit_fails, methods=["POST"])
    app.add_api_route("/_test/raises", raises_after_write, methods=["POST"])


async def test_successful_request_is_committed_before_the_response(app, client, probe_table):  # type: ignore[no-untyped-def]
    _add_routes(app)
    response = await client.post("/_test/insert-ok")
    assert response.status_code == 200
    # Read through a separate connection the moment the response arrives.
    assert _rows(probe_table) == [1]


async def test_failing_commit_answers_5xx_not_200(app, client, probe_table):  # type: ignore[no-untyped-def]
    _add_routes(app)
    response = await client.post("/_test/commit-fails")
    assert response.status_code == 500
    body = response.json()
    assert body["error"]["code"] == "internal_error"
    assert "nothing was saved" in body["error"]["message"]
    assert _rows(probe_table) == []


async def test_error_after_a_write_rolls_the_write_back(app, client, probe_table):  # type: ignore[no-untyped-def]
    _add_routes(app)
    response = await client.post("/_test/raises")
    assert response.status_code == 500
    assert _rows(probe_table) == []
