"""`/api/collections`: record (idempotent), list, read, reverse; and
`/api/loans/{loan_id}/preclosure`, the payoff quote.

Recording needs an idempotency key: the ``Idempotency-Key`` header or, for an offline device,
the body's ``client_id``. The first answer is stored, byte for byte, in the same transaction as
the collection; a retry with the same key and body gets it again (no second effect), a retry
with the same key and another body gets 422.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Annotated, Any, cast

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError
from sqlalchemy.ext.asyncio import AsyncSession

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.collections import queries, service, sheet, sheet_post, waivers
from namma.collections.schemas import (
    CollectionList,
    CollectionOut,
    CollectionPosted,
    CollectionReversed,
    CollectionSheet,
    LoanBalances,
    LoanPenalties,
    LoanWaivers,
    PreclosureQuote,
    SheetPosted,
    WaiverOut,
    WaiverPosted,
)
from namma.kit.apitypes import Day, RequestModel
from namma.kit.deps import CacheDep, IdempotencyDep, ReadSessionDep, SessionDep
from namma.kit.errors import NotFoundError
from namma.kit.idempotency import request_fingerprint
from namma.kit.money import Money
from namma.kit.openapi import error_responses
from namma.loans.numbers import loan_id_by_number
from namma.loans.service import today_india
from namma.models import CollectionMethod, Loan, WaiverComponent

router = APIRouter(prefix="/api/collections", tags=["collections"])
preclosure_router = APIRouter(prefix="/api/loans", tags=["loans"])

JSON = "application/json"
RECORD_ROUTE = "POST /api/collections"


LOAN_NUMBER = Field(
    default=None,
    validate_default=True,
    min_length=1,
    max_length=40,
    description="Instead of loan_id: the loan's number as written (BLR01-2026-000007, "
    "blr01-2026-7, BLR01 2026 7)",
    examples=["BLR01-2026-000007"],
)


class LoanByIdOrNumber(RequestModel):
    """A loan named by its id or by its number (exactly one of the two)."""

    loan_id: uuid.UUID | None = None
    loan_number: str | None = LOAN_NUMBER

    def fingerprinted(self) -> dict[str, Any]:
        """The body as its idempotency fingerprint reads it: without ``loan_number`` when the
        loan is named by id (the fingerprint requests had before numbers were accepted)."""
        return self.model_dump(
            mode="json", exclude={"loan_number"} if self.loan_number is None else None
        )

    @field_validator("loan_number", mode="after")
    @classmethod
    def _one_loan(cls, value: str | None, info: ValidationInfo) -> str | None:
        if "loan_id" not in info.data:  # the id did not parse: its own error says so
            return value
        if (info.data["loan_id"] is None) == (value is None):
            raise PydanticCustomError(
                "loan_reference", "Give the loan_id or the loan_number (one of them)"
            )
        return value


async def loan_resolve(session: AsyncSession, principal: Principal, body: Any) -> uuid.UUID:
    """The loan id of ``body`` (a ``LoanByIdOrNumber``): a number out of scope or unknown is a
    404, as an unknown id is."""
    if body.loan_id is not None:
        return cast(uuid.UUID, body.loan_id)
    found = await loan_id_by_number(session, principal, body.loan_number)
    if found is None:
        raise NotFoundError("Loan not found")
    return found


class CollectionIn(LoanByIdOrNumber):
    model_config = ConfigDict(extra="forbid")
    amount: Money = Field(description="Rupees, a decimal string (at most 2 places), > 0")
    collected_on: dt.date | None = Field(
        default=None, description="Default: today (India); never in the future"
    )
    method: CollectionMethod = CollectionMethod.CASH
    reference: str | None = Field(default=None, max_length=100)
    remarks: str | None = Field(default=None, max_length=1000)
    client_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="The device's own id for this collection (unique per collector); "
        "serves as the idempotency key when no Idempotency-Key header is sent",
    )


class ReverseIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


def _json_bytes(payload: dict[str, Any]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


@router.post(
    "", status_code=201, response_model=CollectionPosted, responses=error_responses(404, 409)
)
async def collection_record(
    body: CollectionIn,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.COLLECTION_RECORD, limit="money"))],
    idempotency: IdempotencyDep,
) -> Response:
    """Record a repayment (DESIGN.md §5). Send the same ``Idempotency-Key`` (or ``client_id``)
    on a retry: you get the first answer again and nothing happens twice."""

    async def produce() -> CollectionPosted:
        result = await service.collection_record(
            session,
            principal=principal,
            loan_id=await loan_resolve(session, principal, body),
            amount=body.amount,
            collected_on=body.collected_on or today_india(),
            method=body.method,
            reference=body.reference,
            remarks=body.remarks,
            client_id=body.client_id,
            backdate_days=request.app.state.settings.collection_backdate_days,
        )
        return CollectionPosted.of(result)

    return await idempotency.run(
        user_id=principal.user_id,
        body=body.fingerprinted(),
        status=201,
        produce=produce,
        fallback_key=f"client:{body.client_id}" if body.client_id else None,
        required="Send an Idempotency-Key header or a client_id with a collection",
    )


@router.get("", response_model=CollectionList, responses=error_responses(404))
async def collections_list(
    session: ReadSessionDep,
    principal: Annotated[Principal, Depends(require(Permission.COLLECTION_READ))],
    loan_id: uuid.UUID | None = None,
    from_date: Annotated[Day | None, Query(alias="from")] = None,
    to_date: Annotated[Day | None, Query(alias="to")] = None,
    after: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="Cursor: `next` of the page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> CollectionList:
    """Collections in the caller's scope, newest first (reversed ones included, marked)."""
    return await queries.collections_list(
        session,
        principal,
        loan_id=loan_id,
        from_date=from_date,
        to_date=to_date,
        after=after,
        limit=limit,
    )


@router.get("/{collection_id}", response_model=CollectionOut)
async def collection_get(
    collection_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.COLLECTION_READ))],
) -> CollectionOut:
    return await queries.collection_get(session, principal, collection_id)


@router.post(
    "/{collection_id}/reverse",
    response_model=CollectionReversed,
    responses=error_responses(404, 409),
)
async def collection_reverse(
    collection_id: uuid.UUID,
    body: ReverseIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.COLLECTION_REVERSE, limit="money"))],
) -> CollectionReversed:
    """Reverse a mistaken collection (never delete it): a reversing journal, and the loan
    rebuilt from its remaining collections. 409 if it was already reversed."""
    result = await service.collection_reverse(
        session, principal=principal, collection_id=collection_id, reason=body.reason
    )
    detail = await queries.collection_get(session, principal, result.collection.id)
    return CollectionReversed(**detail.model_dump(), loan=LoanBalances.of(result.loan))


@preclosure_router.get(
    "/{loan_id}/preclosure", response_model=PreclosureQuote, responses=error_responses(404, 409)
)
async def loan_preclosure(
    loan_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_READ))],
    as_of: Day | None = None,
) -> PreclosureQuote:
    """The pre-closure (payoff) quote as of a date (default today): collecting exactly
    ``total`` on that date closes the loan."""
    return await queries.preclosure_quote(session, principal, loan_id=loan_id, as_of=as_of)


@preclosure_router.get(
    "/{loan_id}/penalties", response_model=LoanPenalties, responses=error_responses(404, 409)
)
async def loan_penalties(
    loan_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_READ))],
) -> LoanPenalties:
    """The loan's penalty rule, the penalty of each installment (charged, paid, waived, owed)
    and every charge the nightly close of business made."""
    return await queries.loan_penalties(session, principal, loan_id)


class WaiverIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    component: WaiverComponent
    amount: Money = Field(description="Rupees, a decimal string (at most 2 places), > 0")
    reason: str = Field(min_length=1, max_length=1000)
    installment_number: int | None = Field(
        default=None,
        ge=1,
        description="Only this installment (due or not); default: the installments due by "
        "today, oldest first",
    )


@preclosure_router.get("/{loan_id}/waivers", response_model=LoanWaivers)
async def loan_waivers(
    loan_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_READ))],
) -> LoanWaivers:
    return await queries.loan_waivers(session, principal, loan_id)


@preclosure_router.post(
    "/{loan_id}/waivers",
    status_code=201,
    response_model=WaiverPosted,
    responses=error_responses(404, 409),
)
async def loan_waive(
    loan_id: uuid.UUID,
    body: WaiverIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_WAIVE, limit="money"))],
    idempotency: IdempotencyDep,
) -> Response:
    """Waive interest, fees or penalties owed (Manager: their branch; Admin), with a reason;
    posted to the ledger's memorandum accounts. 422 above what is owed (the most is in the
    message); 409 unless the loan is active."""

    async def produce() -> WaiverPosted:
        waiver = await waivers.loan_waive(
            session,
            principal=principal,
            loan_id=loan_id,
            component=body.component,
            amount=body.amount,
            reason=body.reason,
            installment_number=body.installment_number,
        )
        loan = await session.get(Loan, waiver.loan_id)
        assert loan is not None
        return WaiverPosted(waiver=WaiverOut.of(waiver), loan=LoanBalances.of(loan))

    return await idempotency.run(
        user_id=principal.user_id,
        body={"loan_id": str(loan_id), **body.model_dump(mode="json")},
        status=201,
        produce=produce,
    )


# --- the collection sheet and bulk posting (namma.collections.sheet, .sheet_post) ----------------

sheet_router = APIRouter(prefix="/api/collection-sheet", tags=["collections"])


class SheetLineIn(LoanByIdOrNumber):
    """One collection of a filled-in sheet. ``client_id`` is required: it is the line's
    idempotency key (the same as a single `POST /api/collections` with that client id). The
    loan by its id or its number."""

    model_config = ConfigDict(extra="forbid")
    amount: Money = Field(description="Rupees, a decimal string (at most 2 places), > 0")
    collected_on: dt.date = Field(description="The day it was collected (India)")
    method: CollectionMethod = CollectionMethod.CASH
    reference: str | None = Field(default=None, max_length=100)
    remarks: str | None = Field(default=None, max_length=1000)
    client_id: str = Field(min_length=1, max_length=100)


class SheetPostIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    # A line that does not parse is reported on its own (422) and never blocks the others.
    lines: list[Annotated[SheetLineIn | dict[str, Any], Field(union_mode="left_to_right")]] = Field(
        min_length=1, max_length=500
    )


def _sheet_line(
    raw: SheetLineIn | dict[str, Any], index: int, numbers: dict[str, uuid.UUID]
) -> sheet_post.SheetLine | sheet_post.InvalidLine:
    from pydantic import ValidationError

    from namma.kit.apitypes import text_problem
    from namma.kit.errors import error_body, validation_details

    if isinstance(raw, dict):
        client_id = raw.get("client_id")
        try:
            raw = SheetLineIn.model_validate(raw)
        except ValidationError as exc:
            details = validation_details(exc.errors(), prefix=("lines", str(index)))
            return sheet_post.InvalidLine(
                client_id
                if isinstance(client_id, str) and text_problem(client_id) is None
                else None,
                error_body("invalid_input", "The line has invalid fields.", details),
            )
    single = CollectionIn(
        loan_id=raw.loan_id,
        loan_number=raw.loan_number,
        amount=raw.amount,
        collected_on=raw.collected_on,
        method=raw.method,
        reference=raw.reference,
        remarks=raw.remarks,
        client_id=raw.client_id,
    )
    # A number unknown in the caller's scope names no loan: the line's answer is a 404.
    loan_id = raw.loan_id or numbers.get(raw.loan_number or "") or uuid.uuid4()
    return sheet_post.SheetLine(
        loan_id=loan_id,
        amount=raw.amount,
        collected_on=raw.collected_on,
        method=raw.method,
        reference=raw.reference,
        remarks=raw.remarks,
        client_id=raw.client_id,
        fingerprint=request_fingerprint(RECORD_ROUTE, single.fingerprinted()),
    )


@sheet_router.get("", response_model=CollectionSheet, responses=error_responses(404))
async def collection_sheet(
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.COLLECTION_RECORD))],
    on: Annotated[Day | None, Query(alias="date", description="Default: today")] = None,
    agent_id: uuid.UUID | None = None,
    branch_id: uuid.UUID | None = None,
) -> Response:
    """Every installment due on or before the date and still owed, on active loans, per
    customer, grouped by village: an Agent's own customers; a Manager's branch (``agent_id``:
    one agent's); Admin any branch or agent."""
    kept = await sheet.collection_sheet_kept(
        session, cache, principal, on=on or today_india(), agent_id=agent_id, branch_id=branch_id
    )
    return Response(content=kept.text, media_type="application/json")


@sheet_router.post("/post", response_model=SheetPosted, responses=error_responses(404, 409))
async def collection_sheet_post(
    body: SheetPostIn,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.COLLECTION_RECORD, limit="money"))],
    idempotency: IdempotencyDep,
) -> Response:
    """Post a filled-in sheet: each line on its own, idempotent on its ``client_id`` (a
    duplicate or re-sent line reports its original receipt). Always 200 with one result per
    line (``status``: 201 posted, or the line's error); what succeeded is committed."""
    numbers: dict[str, uuid.UUID] = {}
    for raw in body.lines:
        number = raw.loan_number if isinstance(raw, SheetLineIn) else None
        if number is not None and number not in numbers:
            found = await loan_id_by_number(session, principal, number)
            if found is not None:
                numbers[number] = found
    lines = [_sheet_line(raw, i, numbers) for i, raw in enumerate(body.lines)]

    async def produce() -> SheetPosted:
        results = await sheet_post.collection_sheet_post(
            session,
            principal=principal,
            lines=lines,
            backdate_days=request.app.state.settings.collection_backdate_days,
        )
        posted = [r for r in results if r.status == 201 and not r.replayed]
        return SheetPosted(
            lines=[r.out() for r in results],
            posted=len(posted),
            replayed=sum(1 for r in results if r.replayed),
            failed=sum(1 for r in results if r.status != 201),
            amount_posted=sum(
                (r.posted.collection.amount for r in posted if r.posted), Decimal("0.00")
            ),
        )

    # Each line is idempotent on its client id; a key for the whole sheet is optional.
    return await idempotency.run(
        user_id=principal.user_id,
        body=body.model_dump(mode="json"),
        status=200,
        produce=produce,
    )
