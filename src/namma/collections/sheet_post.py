"""Posting a filled-in collection sheet in bulk (the sheet itself: `namma.collections.sheet`).

Each line goes through `collection_record` on its
own savepoint, idempotent on its ``client_id`` (the same key, ``client:<id>``, that a single
`POST /api/collections` without a header uses), so a duplicate line, a re-sent sheet or a line
already posted alone reports the original receipt and changes nothing. One bad line rolls back
only its savepoint. Locks are taken in one fixed order for the whole request — idempotency keys
(sorted), then loans (sorted by id), then per line the receipt sequence and accounts — so two
sheets, or a sheet and single collections, never deadlock; the same line arriving twice at once
waits on its key and then replays the first answer. Lines are applied in the order of their
dates (then as sent), whatever order they arrived in.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.auth.deps import Principal
from namma.auth.scope import loan_scope
from namma.collections.schemas import CollectionPosted, SheetLineResult
from namma.collections.service import CollectionResult, collection_record
from namma.kit.errors import AppError, InvalidInputError, error_body
from namma.kit.idempotency import (
    answer_text,
    idempotency_begin,
    idempotency_complete,
    idempotency_release,
)
from namma.models import CollectionMethod, Loan


@dataclass(frozen=True)
class SheetLine:
    """One valid line of a posted sheet, with the fingerprint its single-collection request
    would have (so a line and a `POST /api/collections` of the same collection agree)."""

    loan_id: uuid.UUID
    amount: Decimal
    collected_on: dt.date
    method: CollectionMethod
    reference: str | None
    remarks: str | None
    client_id: str
    fingerprint: str

    @property
    def key(self) -> str:
        return f"client:{self.client_id}"


@dataclass(frozen=True)
class InvalidLine:
    """A line that did not parse: reported as 422, never posted."""

    client_id: str | None
    body: dict[str, Any]


@dataclass
class LineResult:
    index: int
    client_id: str | None
    loan_id: str | None
    status: int
    body: dict[str, Any]
    receipt_number: str | None = None
    replayed: bool = False
    duplicate_of: int | None = None
    posted: CollectionResult | None = field(default=None, repr=False)

    def out(self) -> SheetLineResult:
        return SheetLineResult(
            index=self.index,
            client_id=self.client_id,
            loan_id=self.loan_id,
            status=self.status,
            receipt_number=self.receipt_number,
            replayed=self.replayed,
            duplicate_of=self.duplicate_of,
            body=self.body,
        )


def _error(exc: AppError) -> dict[str, Any]:
    return error_body(exc.code, exc.message, exc.details)


def _receipt_in(status: int, body: dict[str, Any]) -> str | None:
    if status == 201:
        receipt = body.get("receipt_number")
        return receipt if isinstance(receipt, str) else None
    details = body.get("error", {}).get("details")
    if isinstance(details, dict) and isinstance(details.get("receipt_number"), str):
        return str(details["receipt_number"])
    return None


async def collection_sheet_post(
    session: AsyncSession,
    *,
    principal: Principal,
    lines: Sequence[SheetLine | InvalidLine],
    backdate_days: int,
) -> list[LineResult]:
    """Post every valid line (see the module docstring); one result per line, in order."""
    results: dict[int, LineResult] = {}
    first: dict[str, int] = {}
    duplicates: list[int] = []
    for index, line in enumerate(lines):
        if isinstance(line, InvalidLine):
            results[index] = LineResult(index, line.client_id, None, 422, line.body)
        elif line.key in first:
            duplicates.append(index)
        else:
            first[line.key] = index

    def valid(index: int) -> SheetLine:
        line = lines[index]
        assert isinstance(line, SheetLine)
        return line

    # 1. Claim every key, in sorted order. A key another request is using makes us wait for
    # its commit, then we replay its answer: the same line never posts twice.
    todo: list[int] = []
    for key in sorted(first):
        index = first[key]
        line = valid(index)
        try:
            async with session.begin_nested():
                stored = await idempotency_begin(
                    session, user_id=principal.user_id, key=key, fingerprint=line.fingerprint
                )
        except InvalidInputError:
            results[index] = _result_error(
                index,
                line,
                InvalidInputError(
                    "client_id",
                    f"Client id {line.client_id} was already used for a different collection",
                ),
            )
            continue
        except AppError as exc:
            results[index] = _result_error(index, line, exc)
            continue
        if stored is None:
            todo.append(index)
            continue
        body = json.loads(stored.body)
        results[index] = LineResult(
            index,
            line.client_id,
            str(line.loan_id),
            stored.status,
            body,
            receipt_number=_receipt_in(stored.status, body),
            replayed=True,
        )

    # 2. Lock the loans in scope in one order (unknown or out-of-scope ones answer 404 later).
    loan_ids = sorted({valid(i).loan_id for i in todo})
    if loan_ids:
        await session.execute(
            select(Loan.id)
            .where(Loan.id.in_(loan_ids))
            .where(loan_scope(principal))
            .order_by(Loan.id)
            .with_for_update(of=Loan)
        )

    # 3. Post, by date then as sent, each on its own savepoint.
    for index in sorted(todo, key=lambda i: (valid(i).collected_on, i)):
        line = valid(index)
        try:
            async with session.begin_nested():
                posted = await collection_record(
                    session,
                    principal=principal,
                    loan_id=line.loan_id,
                    amount=line.amount,
                    collected_on=line.collected_on,
                    method=line.method,
                    reference=line.reference,
                    remarks=line.remarks,
                    client_id=line.client_id,
                    backdate_days=backdate_days,
                )
                answer = answer_text(CollectionPosted.of(posted))
                await idempotency_complete(
                    session, user_id=principal.user_id, key=line.key, status=201, body=answer
                )
        except AppError as exc:
            results[index] = _result_error(index, line, exc)
            # Free the key: a corrected line may be sent again with the same client id.
            await idempotency_release(session, user_id=principal.user_id, key=line.key)
            continue
        results[index] = LineResult(
            index,
            line.client_id,
            str(line.loan_id),
            201,
            json.loads(answer),
            receipt_number=posted.collection.receipt_number,
            posted=posted,
        )

    # 4. A line repeated in the same sheet: the first one's answer if it is the same collection.
    for index in duplicates:
        line = valid(index)
        original = results[first[line.key]]
        if valid(original.index).fingerprint != line.fingerprint:
            results[index] = _result_error(
                index,
                line,
                InvalidInputError(
                    "client_id",
                    f"Client id {line.client_id} is used by line {original.index} for a "
                    "different collection",
                ),
            )
            continue
        results[index] = LineResult(
            index,
            line.client_id,
            str(line.loan_id),
            original.status,
            original.body,
            receipt_number=original.receipt_number,
            replayed=original.status == 201,
            duplicate_of=original.index,
        )
    return [results[i] for i in range(len(lines))]


def _result_error(index: int, line: SheetLine, exc: AppError) -> LineResult:
    body = json.loads(json.dumps(_error(exc), default=str))
    return LineResult(
        index,
        line.client_id,
        str(line.loan_id),
        exc.status_code,
        body,
        receipt_number=_receipt_in(exc.status_code, body),
    )
