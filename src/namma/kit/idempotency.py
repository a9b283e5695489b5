"""Idempotent money requests (DESIGN.md §2.4): a retry with the same key returns the first
answer, byte for byte, and changes nothing.

The key is the ``Idempotency-Key`` header (or, for an offline device, a key derived from its own
id for the request), scoped to the user; the fingerprint is sha256 of the route and the
canonical parsed body (``"100"`` and ``"100.00"`` are the same request). The claim is a row of
``idempotency_keys`` inserted in the request's own transaction, and the answer is stored in the
same transaction as the effect: a crash before the commit leaves neither, a refused request
(4xx) rolls back and leaves the key free. Every statement goes straight to the driver (every
collection claims a key).

`Idempotency` (the dependency every money route declares, `namma.kit.deps.IdempotencyDep`)
runs a route's command once per key; `idempotency_begin` / `idempotency_complete` are the two
halves, for a caller (the bulk sheet post) that claims many keys in one request.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Header, Request, Response
from fastapi.encoders import jsonable_encoder
from pydantic import BaseModel
from sqlalchemy.ext.asyncio import AsyncSession

from namma.kit.db import raw_connection
from namma.kit.errors import ConflictError, InvalidInputError

JSON = "application/json"
REPLAYED_HEADER = "Idempotent-Replayed"

IDEMPOTENCY_CLAIM = (
    "INSERT INTO idempotency_keys (user_id, key, fingerprint) VALUES (%s, %s, %s) "
    "ON CONFLICT DO NOTHING RETURNING key"
)
IDEMPOTENCY_READ = (
    "SELECT fingerprint, response_status, response_body FROM idempotency_keys "
    "WHERE user_id = %s AND key = %s"
)
IDEMPOTENCY_ANSWER = (
    "UPDATE idempotency_keys SET response_status = %s, response_body = %s "
    "WHERE user_id = %s AND key = %s"
)
IDEMPOTENCY_RELEASE = "DELETE FROM idempotency_keys WHERE user_id = %s AND key = %s"


@dataclass(frozen=True)
class StoredResponse:
    status: int
    body: str


def request_fingerprint(route: str, body: Mapping[str, Any]) -> str:
    """sha256 of the route and the canonical JSON of the (parsed) body: "100" and "100.00"
    are the same request, a different amount or loan is not."""
    canonical = json.dumps({"route": route, "body": body}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def json_text(payload: Any) -> str:
    """The stored (and answered) form of a JSON answer: compact, UTF-8 as is."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def answer_text(answer: Any) -> str:
    """A route's answer as the JSON text it is sent (and stored) as."""
    if isinstance(answer, str):
        return answer
    if isinstance(answer, BaseModel):
        return answer.model_dump_json()  # the same text as json_text of its JSON form
    return json_text(jsonable_encoder(answer))


async def idempotency_begin(
    session: AsyncSession, *, user_id: uuid.UUID, key: str, fingerprint: str
) -> StoredResponse | None:
    """Claim ``key`` for this request, or return the first request's stored answer.

    A concurrent request with the same key waits on the claim (primary key) until the first
    commits — then it finds the stored answer — or rolls back — then it claims the key itself.
    A different request body under a used key is an error (422), never a silent replay of
    something else; a key whose first request has not answered yet is a 409.
    """
    connection = await raw_connection(session)
    cursor = await connection.execute(IDEMPOTENCY_CLAIM, (user_id, key, fingerprint))
    if await cursor.fetchone() is not None:
        return None
    cursor = await connection.execute(IDEMPOTENCY_READ, (user_id, key))
    stored = await cursor.fetchone()
    assert stored is not None  # committed by the request that claimed it
    stored_fingerprint, status, body = stored
    if stored_fingerprint != fingerprint:
        raise InvalidInputError(
            "Idempotency-Key",
            "This idempotency key was used for a different request; use a new key",
        )
    if status is None or body is None:
        raise ConflictError("The first request with this idempotency key is still in progress")
    return StoredResponse(status, body)


async def idempotency_complete(
    session: AsyncSession, *, user_id: uuid.UUID, key: str, status: int, body: str
) -> None:
    """Store the answer of the request that claimed ``key`` (same transaction as its effect)."""
    connection = await raw_connection(session)
    stored = await connection.execute(IDEMPOTENCY_ANSWER, (status, body, user_id, key))
    assert stored.rowcount == 1


async def idempotency_release(session: AsyncSession, *, user_id: uuid.UUID, key: str) -> None:
    """Give up a claimed key (its request was refused): a corrected retry may use it again."""
    connection = await raw_connection(session)
    await connection.execute(IDEMPOTENCY_RELEASE, (user_id, key))


def stored_response(stored: StoredResponse) -> Response:
    """The first answer, replayed."""
    return Response(
        stored.body, status_code=stored.status, media_type=JSON, headers={REPLAYED_HEADER: "true"}
    )


class Idempotency:
    """A money route's idempotency: `run` performs the route's command once per key.

    Declared as a dependency (`IdempotencyDep`), it documents the ``Idempotency-Key`` header on
    the route; the route's fingerprint is its method and path template."""

    def __init__(self, session: AsyncSession, route: str, key: str | None) -> None:
        self.session = session
        self.route = route
        self.key = key

    async def run(
        self,
        *,
        user_id: uuid.UUID,
        body: Mapping[str, Any],
        status: int,
        produce: Callable[[], Awaitable[Any]],
        fallback_key: str | None = None,
        required: str | None = None,
    ) -> Response:
        """Answer the stored response if this key was used for this request, else run
        ``produce`` (the command; it returns what to answer: a Pydantic model, JSON-able values,
        or the JSON text itself) and store its answer with the effect.

        ``fallback_key``: the key when no header was sent (a device's own id). ``required``:
        the 422 message when neither is there (without it the route runs as a plain request,
        unguarded)."""
        key = self.key or fallback_key
        if key is None:
            if required is not None:
                raise InvalidInputError("Idempotency-Key", required)
            return Response(answer_text(await produce()), status_code=status, media_type=JSON)
        stored = await idempotency_begin(
            self.session,
            user_id=user_id,
            key=key,
            fingerprint=request_fingerprint(self.route, body),
        )
        if stored is not None:
            return stored_response(stored)
        content = answer_text(await produce())
        await idempotency_complete(
            self.session, user_id=user_id, key=key, status=status, body=content
        )
        return Response(content, status_code=status, media_type=JSON)


IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        description="A retry with the same key (and the same body) gets the first answer, "
        "byte for byte, and changes nothing",
    ),
]


def route_of(request: Request) -> str:
    """``POST /api/collections``: the method and the matched path template (ids excluded)."""
    route = request.scope.get("route")
    path = getattr(route, "path", request.url.path)
    return f"{request.method} {path}"
