"""`/api/restructurings`: ask for a loan's (or a village's loans') restructuring with its
preview, list and read requests, approve or reject them (maker-checker)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.finance import RestructureKind
from namma.kit.apitypes import RequestModel
from namma.kit.deps import SessionDep
from namma.kit.money import Money, Rate
from namma.kit.openapi import error_responses
from namma.kit.schemas import Timestamp
from namma.loans import restructure
from namma.models import LoanRestructureRequest

router = APIRouter(prefix="/api/restructurings", tags=["loans"])


class RestructureIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    loan_id: uuid.UUID | None = Field(default=None, description="One loan; or give `village`")
    village: str | None = Field(
        default=None,
        max_length=120,
        description="Natural-calamity relief: every active loan of the branch's customers "
        "of this village (case and spaces ignored)",
    )
    branch_id: uuid.UUID | None = Field(
        default=None, description="The village's branch (Admin; a Manager's is their own)"
    )
    kind: RestructureKind
    next_due_on: dt.date | None = Field(default=None, description="kind next-due-date")
    periods: int | None = Field(default=None, ge=1, le=520, description="kind moratorium")
    annual_rate: Rate | None = Field(default=None, description="kind rate")
    installments: int | None = Field(
        default=None, ge=1, le=10_000, description="kind term: installments left"
    )
    installment_amount: Money | None = Field(default=None, description="kind installment")
    reason: str = Field(min_length=1, max_length=1000)


class RejectIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


class RestructureOut(BaseModel):
    """A request and its preview: per loan (``preview.loans``, by loan id) the rebuilt
    installments (``rows``, money as strings) and the figures before and after; the loans a
    village request left out, with why (``preview.skipped``, by loan number)."""

    id: uuid.UUID
    branch_id: uuid.UUID
    loan_id: uuid.UUID | None
    village: str | None
    kind: RestructureKind
    params: dict[str, str]
    reason: str
    status: str
    loan_count: int
    preview: dict[str, Any]
    requested_by_id: uuid.UUID
    requested_at: Timestamp
    decided_by_id: uuid.UUID | None
    decided_at: Timestamp | None
    decided_on: dt.date | None
    rejection_reason: str | None

    @classmethod
    def of(cls, r: LoanRestructureRequest) -> RestructureOut:
        return cls(
            id=r.id,
            branch_id=r.branch_id,
            loan_id=r.loan_id,
            village=r.village,
            kind=RestructureKind(r.kind),
            params=r.params,
            reason=r.reason,
            status=r.status,
            loan_count=r.loan_count,
            preview=r.preview,
            requested_by_id=r.requested_by_id,
            requested_at=r.requested_at,
            decided_by_id=r.decided_by_id,
            decided_at=r.decided_at,
            decided_on=r.decided_on,
            rejection_reason=r.rejection_reason,
        )


class RestructureList(BaseModel):
    requests: list[RestructureOut]


@router.post(
    "", status_code=201, response_model=RestructureOut, responses=error_responses(404, 409, 422)
)
async def restructure_request(
    body: RestructureIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_RESTRUCTURE, limit="writes"))],
) -> RestructureOut:
    """Ask for a restructuring: 201 with the preview the checker will approve. Nothing changes
    on the loans until another officer approves it."""
    params = body.model_dump(
        include={"next_due_on", "periods", "annual_rate", "installments", "installment_amount"},
        exclude_none=True,
    )
    request = await restructure.restructure_request(
        session,
        principal=principal,
        kind=body.kind,
        params=params,
        reason=body.reason,
        loan_id=body.loan_id,
        village=body.village,
        branch_id=body.branch_id,
    )
    await session.refresh(request)
    return RestructureOut.of(request)


@router.get("", response_model=RestructureList)
async def restructure_pending(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_DECIDE))],
    loan_id: uuid.UUID | None = None,
) -> RestructureList:
    """Requests waiting for a decision in the caller's scope, oldest first."""
    found = await restructure.restructure_pending(session, principal, loan_id=loan_id)
    return RestructureList(requests=[RestructureOut.of(r) for r in found])


@router.get("/{request_id}", response_model=RestructureOut, responses=error_responses(404))
async def restructure_get(
    request_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_DECIDE))],
) -> RestructureOut:
    return RestructureOut.of(await restructure.restructure_get(session, principal, request_id))


@router.post(
    "/{request_id}/approve", response_model=RestructureOut, responses=error_responses(403, 404, 409)
)
async def restructure_approve(
    request_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_DECIDE, limit="money"))],
) -> RestructureOut:
    """Write every loan of the request as previewed, in one transaction — or nothing (409
    naming the loan whose schedule changed since)."""
    request = await restructure.restructure_approve(
        session, principal=principal, request_id=request_id
    )
    return RestructureOut.of(request)


@router.post(
    "/{request_id}/reject", response_model=RestructureOut, responses=error_responses(403, 404, 409)
)
async def restructure_reject(
    request_id: uuid.UUID,
    body: RejectIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_DECIDE, limit="writes"))],
) -> RestructureOut:
    request = await restructure.restructure_reject(
        session, principal=principal, request_id=request_id, reason=body.reason
    )
    return RestructureOut.of(request)
