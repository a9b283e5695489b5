"""`/api/capital`: owners' investments, borrowings with their schedule and repayments, and the
capital summary (utilisation). Admin only: reading needs ``capital:read``, recording and
reversing ``capital:manage``. A repayment needs an ``Idempotency-Key`` header. A reversal
needs a reason and happens once (a retry answers 409, changing nothing)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import ConfigDict, Field

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.capital import queries, service
from namma.capital.schemas import (
    BorrowingDetailOut,
    BorrowingList,
    BorrowingOut,
    CapitalSummaryOut,
    InvestmentList,
    InvestmentOut,
    PlacedOut,
    RepaymentOut,
    RepaymentRecordedOut,
    RepaymentReversedOut,
)
from namma.capital.service import BorrowingTerms
from namma.finance import Amortization, Frequency, InterestMethod
from namma.kit.apitypes import RequestModel
from namma.kit.clock import today_india
from namma.kit.deps import IdempotencyDep, SessionDep
from namma.kit.money import Money, Rate
from namma.kit.openapi import error_responses
from namma.models import BorrowingStatus, CapitalMethod

router = APIRouter(prefix="/api/capital", tags=["capital"])


class InvestmentIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    amount: Money = Field(description="Rupees, a decimal string")
    source: str = Field(min_length=1, max_length=200, description="Who invested")
    invested_on: dt.date | None = Field(default=None, description="Default: today (India)")
    method: CapitalMethod = CapitalMethod.BANK
    branch_id: uuid.UUID | None = Field(
        default=None, description="Cash only: the branch that holds it (default: head office)"
    )
    reference: str | None = Field(default=None, max_length=100)
    description: str | None = Field(default=None, max_length=2000)


class BorrowingIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    lender_name: str = Field(min_length=1, max_length=200)
    lender_contact: str | None = Field(default=None, max_length=200)
    principal: Money = Field(description="Rupees received, a decimal string")
    annual_rate: Rate = Field(description='Percent a year, e.g. "8"')
    installments: int = Field(ge=1, le=1200)
    frequency: Frequency = Frequency.MONTHLY
    every: int | None = Field(default=None, ge=1, le=366)
    interest_method: InterestMethod = InterestMethod.DECLINING
    amortization: Amortization = Amortization.EQUAL_INSTALLMENTS
    received_on: dt.date | None = Field(default=None, description="Default: today (India)")
    first_due_on: dt.date | None = Field(
        default=None, description="Default: one period after the money was received"
    )
    method: CapitalMethod = CapitalMethod.BANK
    reference: str | None = Field(default=None, max_length=100)
    remarks: str | None = Field(default=None, max_length=2000)


class ReverseIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


class RepaymentIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    amount: Money
    paid_on: dt.date | None = Field(default=None, description="Default: today (India)")
    method: CapitalMethod = CapitalMethod.BANK
    reference: str | None = Field(default=None, max_length=100)


@router.post("/investments", status_code=201, response_model=InvestmentOut)
async def investment_record(
    body: InvestmentIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CAPITAL_MANAGE, limit="money"))],
    idempotency: IdempotencyDep,
) -> Response:
    """Record owners' capital: Dr bank (or cash, at the head office or ``branch_id``), Cr
    capital. A retry with the same ``Idempotency-Key`` gets the first answer and records
    nothing."""

    async def produce() -> InvestmentOut:
        investment = await service.investment_record(
            session,
            principal=principal,
            amount=body.amount,
            source=body.source,
            invested_on=body.invested_on or today_india(),
            method=body.method,
            reference=body.reference,
            description=body.description,
            branch_id=body.branch_id,
        )
        await session.refresh(investment)
        return InvestmentOut.of(investment)

    return await idempotency.run(
        user_id=principal.user_id, body=body.model_dump(mode="json"), status=201, produce=produce
    )


@router.get("/investments")
async def investments_list(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CAPITAL_READ))],
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> InvestmentList:
    """Investments, newest first, with their count and total."""
    return await queries.investments_list(session, limit=limit)


@router.post("/borrowings", status_code=201, response_model=BorrowingDetailOut)
async def borrowing_record(
    body: BorrowingIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CAPITAL_MANAGE, limit="money"))],
    idempotency: IdempotencyDep,
) -> Response:
    """Record a borrowing: its schedule comes from the money core; Dr bank, Cr borrowings. A
    retry with the same ``Idempotency-Key`` gets the first answer and records nothing."""
    return await idempotency.run(
        user_id=principal.user_id,
        body=body.model_dump(mode="json"),
        status=201,
        produce=lambda: _borrowing_record(session, principal, body),
    )


async def _borrowing_record(
    session: SessionDep, principal: Principal, body: BorrowingIn
) -> BorrowingDetailOut:
    borrowing, _ = await service.borrowing_record(
        session,
        principal=principal,
        lender_name=body.lender_name,
        lender_contact=body.lender_contact,
        amount=body.principal,
        annual_rate=body.annual_rate,
        installments=body.installments,
        terms=BorrowingTerms(
            frequency=body.frequency,
            every=body.every,
            interest_method=body.interest_method,
            amortization=body.amortization,
        ),
        received_on=body.received_on or today_india(),
        first_due_on=body.first_due_on,
        method=body.method,
        reference=body.reference,
        remarks=body.remarks,
    )
    return await queries.borrowing_detail(session, borrowing.id)


@router.get("/borrowings")
async def borrowings_list(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CAPITAL_READ))],
    status: BorrowingStatus | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> BorrowingList:
    """Borrowings, newest first, with the principal still owed on the active ones."""
    return await queries.borrowings_list(session, status=status, limit=limit)


@router.get("/borrowings/{borrowing_id}")
async def borrowing_detail(
    borrowing_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CAPITAL_READ))],
) -> BorrowingDetailOut:
    """One borrowing with its schedule (what was paid on each installment) and repayments."""
    return await queries.borrowing_detail(session, borrowing_id)


@router.post(
    "/borrowings/{borrowing_id}/repayments",
    status_code=201,
    response_model=RepaymentRecordedOut,
    responses=error_responses(409),
)
async def borrowing_repay(
    borrowing_id: uuid.UUID,
    body: RepaymentIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CAPITAL_MANAGE, limit="money"))],
    idempotency: IdempotencyDep,
) -> Response:
    """Repay the lender: interest then principal, oldest installment first (the money core);
    Dr borrowings, Dr interest expense, Cr bank. Exactly the payoff settles the borrowing;
    more is refused (422, naming the payoff). A retry with the same ``Idempotency-Key`` gets
    the first answer and changes nothing."""
    return await idempotency.run(
        user_id=principal.user_id,
        body={"borrowing_id": str(borrowing_id), **body.model_dump(mode="json")},
        status=201,
        produce=lambda: _borrowing_repay(session, principal, borrowing_id, body),
        required="Send an Idempotency-Key header",
    )


async def _borrowing_repay(
    session: SessionDep, principal: Principal, borrowing_id: uuid.UUID, body: RepaymentIn
) -> RepaymentRecordedOut:
    result = await service.borrowing_repay(
        session,
        principal=principal,
        borrowing_id=borrowing_id,
        amount=body.amount,
        paid_on=body.paid_on or today_india(),
        method=body.method,
        reference=body.reference,
    )
    await session.refresh(result.repayment)
    await session.refresh(result.borrowing)
    return RepaymentRecordedOut(
        repayment=RepaymentOut.of(result.repayment),
        allocation=[PlacedOut.of(p) for p in result.placed],
        payoff_before=result.payoff,
        borrowing=BorrowingOut.of(result.borrowing),
    )


@router.post("/investments/{investment_id}/reverse", responses=error_responses(409))
async def investment_reverse(
    investment_id: uuid.UUID,
    body: ReverseIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CAPITAL_MANAGE, limit="money"))],
) -> InvestmentOut:
    """Reverse an investment recorded by mistake: Dr capital, Cr bank (or head-office cash),
    dated today. The investment stays listed, marked reversed, and leaves own capital.
    409 if already reversed."""
    investment = await service.investment_reverse(
        session, principal=principal, investment_id=investment_id, reason=body.reason
    )
    return InvestmentOut.of(investment)


@router.post("/borrowings/{borrowing_id}/reverse", responses=error_responses(409))
async def borrowing_reverse(
    borrowing_id: uuid.UUID,
    body: ReverseIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CAPITAL_MANAGE, limit="money"))],
) -> BorrowingDetailOut:
    """Reverse a borrowing recorded by mistake (Dr borrowings, Cr bank), only while no
    repayment stands on it: status ``reversed``, nothing outstanding. 409 if already
    reversed or while repayments stand (reverse them first)."""
    borrowing = await service.borrowing_reverse(
        session, principal=principal, borrowing_id=borrowing_id, reason=body.reason
    )
    return await queries.borrowing_detail(session, borrowing.id)


@router.post(
    "/borrowings/{borrowing_id}/repayments/{repayment_id}/reverse",
    responses=error_responses(409),
)
async def borrowing_repayment_reverse(
    borrowing_id: uuid.UUID,
    repayment_id: uuid.UUID,
    body: ReverseIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CAPITAL_MANAGE, limit="money"))],
) -> RepaymentReversedOut:
    """Reverse a repayment recorded by mistake: the mirror of its journal, and the borrowing
    rebuilt from its other repayments in the order they were applied (a closed borrowing
    re-opens). ``reallocated``: later repayments whose split changed. 409 if already
    reversed."""
    result = await service.borrowing_repayment_reverse(
        session,
        principal=principal,
        borrowing_id=borrowing_id,
        repayment_id=repayment_id,
        reason=body.reason,
    )
    await session.refresh(result.repayment)
    return RepaymentReversedOut(
        repayment=RepaymentOut.of(result.repayment),
        reallocated=[uuid.UUID(r) for r in result.reallocated],
        borrowing=await queries.borrowing_detail(session, result.borrowing.id),
    )


@router.get("/summary")
async def capital_summary(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CAPITAL_READ))],
) -> CapitalSummaryOut:
    """Own capital, borrowings outstanding, total capital, disbursed outstanding (active
    loans' principal), utilisation % (null when there is no capital) and surplus/deficit."""
    return CapitalSummaryOut.model_validate(await queries.capital_summary(session))
