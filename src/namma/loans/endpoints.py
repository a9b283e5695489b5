"""`/api/loans`: applications, decisions, disbursement, schedule, Key Facts Statement.

Every transition is its own POST with its own permission — there is no generic update route.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import ConfigDict, Field

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.kit.apitypes import QueryText, RequestModel
from namma.kit.deps import CacheDep, ReadSessionDep, SessionDep
from namma.kit.errors import InvalidInputError
from namma.kit.money import Money, Rate
from namma.kit.openapi import error_responses
from namma.loans import queries, service
from namma.loans.schemas import (
    DisbursementWarning,
    KeyFactsStatement,
    LoanDetail,
    LoanDisbursed,
    LoanList,
    LoanOut,
    ScheduleOut,
)
from namma.models import (
    DisbursementMethod,
    LoanStatus,
)

router = APIRouter(prefix="/api/loans", tags=["loans"])


class ApplyIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    customer_id: uuid.UUID
    product_id: uuid.UUID
    amount: Money
    annual_rate: Rate | None = Field(default=None, description="Default: the product's rate")
    installments: int = Field(ge=1, le=10_000)
    first_due_on: dt.date | None = None
    purpose: str | None = Field(default=None, max_length=500)
    refinances_id: uuid.UUID | None = Field(
        default=None, description="Top-up: the customer's active loan this one pays off"
    )


class RejectIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


class DisburseIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    disbursed_on: dt.date
    method: DisbursementMethod
    reference: str | None = Field(default=None, max_length=100)


class WriteOffIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)
    on: dt.date | None = None


@router.get("", response_model=LoanList, responses=error_responses(404))
async def loans_list(
    session: ReadSessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_READ))],
    status: LoanStatus | None = None,
    customer_id: uuid.UUID | None = None,
    branch_id: uuid.UUID | None = None,
    after: Annotated[
        QueryText | None, Query(description="Cursor: `next` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> LoanList:
    """Loans in the caller's scope, newest loan number first."""
    return await queries.loans_list(
        session,
        principal,
        status=status,
        customer_id=customer_id,
        branch_id=branch_id,
        after=after,
        limit=limit,
    )


@router.get("/{loan_id}", response_model=LoanDetail)
async def loan_get(
    loan_id: uuid.UUID,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_READ))],
) -> dict[str, Any]:
    """The loan with its charges (cached for a minute; the scope is checked on every call)."""
    return await queries.loan_detail(session, principal, loan_id, cache=cache)


@router.get("/{loan_id}/schedule", response_model=ScheduleOut)
async def loan_schedule(
    loan_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_READ))],
) -> ScheduleOut:
    """The installments (written with the disbursement). Before disbursement: the projected
    schedule (as if disbursed today). Reads only."""
    return await queries.loan_schedule(session, principal, loan_id)


@router.post("", status_code=201, response_model=LoanOut, responses=error_responses(404, 409))
async def loan_apply(
    body: ApplyIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_APPLY, limit="writes"))],
) -> LoanOut:
    loan = await service.loan_apply(
        session,
        principal=principal,
        customer_id=body.customer_id,
        product_id=body.product_id,
        amount=body.amount,
        annual_rate=body.annual_rate,
        installments=body.installments,
        first_due_on=body.first_due_on,
        purpose=body.purpose,
        refinances_id=body.refinances_id,
    )
    return LoanOut.of(loan)


@router.post("/{loan_id}/withdraw", response_model=LoanOut, responses=error_responses(404, 409))
async def loan_withdraw(
    loan_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_WITHDRAW, limit="writes"))],
) -> LoanOut:
    return LoanOut.of(await service.loan_withdraw(session, principal=principal, loan_id=loan_id))


@router.post("/{loan_id}/approve", response_model=LoanOut, responses=error_responses(404, 409))
async def loan_approve(
    loan_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_DECIDE, limit="writes"))],
) -> LoanOut:
    return LoanOut.of(await service.loan_approve(session, principal=principal, loan_id=loan_id))


@router.post("/{loan_id}/reject", response_model=LoanOut, responses=error_responses(404, 409))
async def loan_reject(
    loan_id: uuid.UUID,
    body: RejectIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_DECIDE, limit="writes"))],
) -> LoanOut:
    loan = await service.loan_reject(
        session, principal=principal, loan_id=loan_id, reason=body.reason
    )
    return LoanOut.of(loan)


@router.post(
    "/{loan_id}/approval/undo", response_model=LoanOut, responses=error_responses(404, 409)
)
async def loan_approval_undo(
    loan_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_DECIDE, limit="writes"))],
) -> LoanOut:
    loan = await service.loan_approval_undo(session, principal=principal, loan_id=loan_id)
    return LoanOut.of(loan)


@router.post(
    "/{loan_id}/disburse",
    status_code=201,
    response_model=LoanDisbursed,
    responses=error_responses(404, 409),
)
async def loan_disburse(
    loan_id: uuid.UUID,
    body: DisburseIn,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_DISBURSE, limit="money"))],
) -> LoanDisbursed:
    """Pay the loan out: 201 with the loan and its schedule (``schedule``: the installments,
    written in the same transaction)."""
    disbursed = await service.loan_disburse(
        session,
        principal=principal,
        loan_id=loan_id,
        disbursed_on=body.disbursed_on,
        method=body.method,
        reference=body.reference,
        refuse_below_zero=request.app.state.settings.disbursement_below_zero == "refuse",
    )
    warnings = [
        DisbursementWarning(
            code="account_below_zero",
            message=w.message,
            account=w.account.value,
            balance_after=w.balance_after,
        )
        for w in disbursed.warnings
    ]
    return LoanDisbursed.with_schedule(disbursed.loan, disbursed.installments, warnings)


@router.post("/{loan_id}/write-off", response_model=LoanOut, responses=error_responses(404, 409))
async def loan_write_off(
    loan_id: uuid.UUID,
    body: WriteOffIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_WRITE_OFF, limit="money"))],
) -> LoanOut:
    on = body.on or service.today_india()
    if on > service.today_india():
        raise InvalidInputError("on", "The write-off date cannot be in the future")
    loan = await service.loan_write_off(
        session, principal=principal, loan_id=loan_id, reason=body.reason, on=on
    )
    return LoanOut.of(loan)


@router.get("/{loan_id}/kfs", response_model=KeyFactsStatement, responses=error_responses(404, 409))
async def loan_kfs(
    loan_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_READ))],
) -> KeyFactsStatement:
    """The Key Facts Statement (RBI): available from approval on."""
    return await queries.loan_kfs(session, principal, loan_id, settings=request.app.state.settings)
