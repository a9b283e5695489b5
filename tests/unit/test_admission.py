"""The per-process bound on requests in progress (``namma.kit.admission``, D-206)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from namma.kit.admission import AdmissionLimit


def _scope(path: str = "/api/loans") -> dict[str, Any]:
    return {"type": "http", "path": path, "method": "GET", "headers": []}


async def _call(app: AdmissionLimit, path: str = "/api/loans") -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(_scope(path), receive, send)
    return sent


async def test_past_the_bound_a_request_is_refused_and_a_finished_one_makes_room() -> None:
    release = asyncio.Event()
    entered = 0

    async def slow(scope: Any, receive: Any, send: Any) -> None:
        nonlocal entered
        entered += 1
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = AdmissionLimit(slow, limit=2)
    held = [asyncio.create_task(_call(app)) for _ in range(2)]
    await asyncio.sleep(0)
    assert entered == 2 and app.in_progress == 2

    refused = await _call(app)
    assert refused[0]["status"] == 503 and entered == 2
    headers = dict(refused[0]["headers"])
    assert headers[b"retry-after"] == b"1"
    assert json.loads(refused[1]["body"])["error"]["code"] == "busy"
    health = asyncio.create_task(_call(app, "/health"))  # never refused
    await asyncio.sleep(0)
    assert entered == 3

    release.set()
    assert [m[0]["status"] for m in await asyncio.gather(*held, health)] == [200, 200, 200]
    assert app.in_progress == 0
    assert (await _call(app))[0]["status"] == 200


async def test_a_request_that_fails_gives_its_place_back() -> None:
    async def failing(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    app = AdmissionLimit(failing, limit=1)
    for _ in range(3):
        with pytest.raises(RuntimeError):
            await _call(app)
    assert app.in_progress == 0


async def test_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    app = AdmissionLimit(inner, limit=1)
    app.in_progress = 1  # full
    await app({"type": "lifespan"}, None, None)
    assert seen == ["lifespan"]
