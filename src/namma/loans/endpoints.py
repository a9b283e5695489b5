"""`/api/loans`: applications, decisions, disbursement, schedule, Key Facts Statement.

Every transition is its own POST with its own permission — there is no generic update route.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.auth.scope import loan_scope
from namma.finance import apr_percent, periods_per_year, schedule_fee_amounts
from namma.finance.owed import due_total
from namma.kit.cache import cache_get_or_load
from namma.kit.deps import CacheDep, SessionDep
from namma.kit.errors import ConflictError, InvalidInputError, NotFoundError
from namma.kit.money import Money, Rate, money_str
from namma.loans import service
from namma.loans.cache import LOAN_TTL_SECONDS, loan_changed, loan_key
from namma.models import (
    Branch,
    Customer,
    DisbursementMethod,
    Loan,
    LoanCharge,
    LoanInstallment,
    LoanProduct,
    LoanProductVersion,
    LoanStatus,
)
from namma.notifications.service import notify_loan_approved, notify_loan_disbursed

router = APIRouter(prefix="/api/loans", tags=["loans"])

KFS_FROM = (
    LoanStatus.APPROVED,
    LoanStatus.ACTIVE,
    LoanStatus.CLOSED,
    LoanStatus.PRECLOSED,
    LoanStatus.REFINANCED,
    LoanStatus.WRITTEN_OFF,
)


class ApplyIn(BaseModel):
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


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


class DisburseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    disbursed_on: dt.date
    method: DisbursementMethod
    reference: str | None = Field(default=None, max_length=100)


class WriteOffIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)
    on: dt.date | None = None


def loan_json(loan: Loan, customer: Customer | None = None) -> dict[str, Any]:
    return {
        "id": str(loan.id),
        "loan_number": loan.loan_number,
        "status": loan.status.value,
        "customer": {"id": str(loan.customer_id), "name": customer.name if customer else None},
        "branch_id": str(loan.branch_id),
        "product_version_id": str(loan.product_version_id),
        "principal": money_str(loan.principal),
        "annual_rate": str(loan.annual_rate),
        "installments": loan.installments,
        "frequency": loan.terms.get("frequency"),
        "purpose": loan.purpose,
        "applied_by_id": str(loan.applied_by_id),
        "applied_at": loan.applied_at.isoformat() if loan.applied_at else None,
        "decided_by_id": str(loan.decided_by_id) if loan.decided_by_id else None,
        "decided_at": loan.decided_at.isoformat() if loan.decided_at else None,
        "rejection_reason": loan.rejection_reason,
        "disbursed_on": loan.disbursed_on.isoformat() if loan.disbursed_on else None,
        "disbursement_method": loan.disbursement_method.value if loan.disbursement_method else None,
        "disbursement_reference": loan.disbursement_reference,
        "net_disbursed": money_str(loan.net_disbursed),
        "installment_amount": money_str(loan.installment_amount),
        "total_interest": money_str(loan.total_interest),
        "apr_percent": str(loan.apr_percent) if loan.apr_percent is not None else None,
        # Written with the disbursement: "generated" once disbursed, "none" before.
        "schedule_status": "generated" if loan.disbursed_on is not None else "none",
        "outstanding_principal": money_str(loan.outstanding_principal),
        "outstanding_interest": money_str(loan.outstanding_interest),
        "outstanding_fees": money_str(loan.outstanding_fees),
        "outstanding_penalties": money_str(loan.outstanding_penalties),
        "total_collected": money_str(loan.total_collected),
        "next_due_on": loan.next_due_on.isoformat() if loan.next_due_on else None,
        "days_past_due": loan.days_past_due,
        "write_off_reason": loan.write_off_reason,
        "refinances_id": str(loan.refinances_id) if loan.refinances_id else None,
    }


async def _loan_in_scope(
    session: SessionDep, principal: Principal, loan_id: uuid.UUID
) -> tuple[Loan, Customer]:
    row = (
        await session.execute(
            select(Loan, Customer)
            .join(Customer, Customer.id == Loan.customer_id)
            .where(Loan.id == loan_id)
            .where(loan_scope(principal))
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError("Loan not found")
    return row[0], row[1]


@router.get("")
async def loans_list(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_READ))],
    status: LoanStatus | None = None,
    customer_id: uuid.UUID | None = None,
    branch_id: uuid.UUID | None = None,
    after: Annotated[str | None, Query(description="Cursor: `next` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> dict[str, Any]:
    """Loans in the caller's scope, newest loan number first."""
    query = (
        select(Loan, Customer)
        .join(Customer, Customer.id == Loan.customer_id)
        .where(loan_scope(principal))
    )
    if status is not None:
        query = query.where(Loan.status == status)
    if customer_id is not None:
        query = query.where(Loan.customer_id == customer_id)
    if branch_id is not None:
        query = query.where(Loan.branch_id == branch_id)
    if after is not None:
        query = query.where(Loan.loan_number < after)
    rows = (await session.execute(query.order_by(Loan.loan_number.desc()).limit(limit))).all()
    return {
        "loans": [loan_json(loan, customer) for loan, customer in rows],
        "next": rows[-1][0].loan_number if len(rows) == limit else None,
    }


@router.get("/{loan_id}")
async def loan_get(
    loan_id: uuid.UUID,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_READ))],
) -> dict[str, Any]:
    """The loan with its charges (cached for a minute; the scope is checked on every call)."""
    loan, customer = await _loan_in_scope(session, principal, loan_id)

    async def load() -> dict[str, Any]:
        charges = (
            await session.scalars(select(LoanCharge).where(LoanCharge.loan_id == loan.id))
        ).all()
        return {
            **loan_json(loan, customer),
            "charges": [
                {
                    "name": c.name,
                    "timing": c.timing,
                    "basis": c.basis,
                    "value": str(c.value),
                    "amount": money_str(c.amount),
                }
                for c in charges
            ],
        }

    result: dict[str, Any] = await cache_get_or_load(
        cache, loan_key(loan.id), ttl=LOAN_TTL_SECONDS, load=load
    )
    return result


def installment_json(i: LoanInstallment) -> dict[str, Any]:
    return {
        "number": i.number,
        "due_date": i.due_date.isoformat(),
        "principal": money_str(i.principal_due),
        "interest": money_str(i.interest_due),
        "fees": money_str(i.fee_due),
        "penalties": money_str(i.penalty_due),
        "total": money_str(due_total(i)),
        "balance": money_str(i.balance_after),
        "principal_paid": money_str(i.principal_paid),
        "interest_paid": money_str(i.interest_paid),
        "fees_paid": money_str(i.fee_paid),
        "penalties_paid": money_str(i.penalty_paid),
        "status": i.status.value,
    }


@router.get("/{loan_id}/schedule")
async def loan_schedule(
    loan_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_READ))],
) -> dict[str, Any]:
    """The installments (written with the disbursement). Before disbursement: the projected
    schedule (as if disbursed today). Reads only."""
    loan, _ = await _loan_in_scope(session, principal, loan_id)
    if loan.disbursed_on is not None:
        rows = (
            await session.scalars(
                select(LoanInstallment)
                .where(LoanInstallment.loan_id == loan.id)
                .order_by(LoanInstallment.number)
            )
        ).all()
        return {"projected": False, "installments": [installment_json(i) for i in rows]}
    version = await session.get(LoanProductVersion, loan.product_version_id)
    assert version is not None
    schedule = service.loan_schedule_compute(loan, version)
    return {"projected": True, "installments": _rows_json(schedule)}


def _rows_json(schedule: Any) -> list[dict[str, Any]]:
    return [
        {
            "number": r.number,
            "due_date": r.due_date.isoformat(),
            "principal": money_str(r.principal),
            "interest": money_str(r.interest),
            "fees": money_str(r.fees),
            "total": money_str(r.total),
            "balance": money_str(r.balance),
        }
        for r in schedule.rows
    ]


@router.post("", status_code=201)
async def loan_apply(
    body: ApplyIn,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_APPLY, limit="writes"))],
) -> dict[str, Any]:
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
    loan_changed(session, cache, loan_id=loan.id, customer_id=loan.customer_id)
    return loan_json(loan)


@router.post("/{loan_id}/withdraw")
async def loan_withdraw(
    loan_id: uuid.UUID,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_WITHDRAW, limit="writes"))],
) -> dict[str, Any]:
    loan = await service.loan_withdraw(session, principal=principal, loan_id=loan_id)
    loan_changed(session, cache, loan_id=loan.id, customer_id=loan.customer_id)
    return loan_json(loan)


@router.post("/{loan_id}/approve")
async def loan_approve(
    loan_id: uuid.UUID,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_DECIDE, limit="writes"))],
) -> dict[str, Any]:
    loan = await service.loan_approve(session, principal=principal, loan_id=loan_id)
    await notify_loan_approved(session, loan=loan)
    loan_changed(session, cache, loan_id=loan.id, customer_id=loan.customer_id)
    return loan_json(loan)


@router.post("/{loan_id}/reject")
async def loan_reject(
    loan_id: uuid.UUID,
    body: RejectIn,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_DECIDE, limit="writes"))],
) -> dict[str, Any]:
    loan = await service.loan_reject(
        session, principal=principal, loan_id=loan_id, reason=body.reason
    )
    loan_changed(session, cache, loan_id=loan.id, customer_id=loan.customer_id)
    return loan_json(loan)


@router.post("/{loan_id}/approval/undo")
async def loan_approval_undo(
    loan_id: uuid.UUID,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_DECIDE, limit="writes"))],
) -> dict[str, Any]:
    loan = await service.loan_approval_undo(session, principal=principal, loan_id=loan_id)
    loan_changed(session, cache, loan_id=loan.id, customer_id=loan.customer_id)
    return loan_json(loan)


@router.post("/{loan_id}/disburse", status_code=201)
async def loan_disburse(
    loan_id: uuid.UUID,
    body: DisburseIn,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_DISBURSE, limit="money"))],
) -> dict[str, Any]:
    """Pay the loan out: 201 with the loan and its schedule (``schedule``: the installments,
    written in the same transaction)."""
    disbursed = await service.loan_disburse(
        session,
        principal=principal,
        loan_id=loan_id,
        disbursed_on=body.disbursed_on,
        method=body.method,
        reference=body.reference,
    )
    loan = disbursed.loan
    await notify_loan_disbursed(session, loan=loan)
    loan_changed(session, cache, loan_id=loan.id, customer_id=loan.customer_id)
    if loan.refinances_id is not None:
        loan_changed(session, cache, loan_id=loan.refinances_id, customer_id=loan.customer_id)
    return {**loan_json(loan), "schedule": [installment_json(i) for i in disbursed.installments]}


@router.post("/{loan_id}/write-off")
async def loan_write_off(
    loan_id: uuid.UUID,
    body: WriteOffIn,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_WRITE_OFF, limit="money"))],
) -> dict[str, Any]:
    on = body.on or service.today_india()
    if on > service.today_india():
        raise InvalidInputError("on", "The write-off date cannot be in the future")
    loan = await service.loan_write_off(
        session, principal=principal, loan_id=loan_id, reason=body.reason, on=on
    )
    loan_changed(session, cache, loan_id=loan.id, customer_id=loan.customer_id)
    return loan_json(loan)


@router.get("/{loan_id}/kfs")
async def loan_kfs(
    loan_id: uuid.UUID,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.LOAN_READ))],
) -> dict[str, Any]:
    """The Key Facts Statement (RBI): available from approval on."""
    loan, customer = await _loan_in_scope(session, principal, loan_id)
    if loan.status not in KFS_FROM:
        raise ConflictError(
            "The Key Facts Statement is available once the loan is approved",
            details={"status": loan.status.value},
        )
    version = await session.get(LoanProductVersion, loan.product_version_id)
    assert version is not None
    product = await session.get(LoanProduct, version.product_id)
    branch = await session.get(Branch, loan.branch_id)
    assert product is not None and branch is not None
    schedule = service.loan_schedule_compute(loan, version)
    settings = request.app.state.settings
    terms = schedule.terms
    penalty = loan.terms.get("penalty")
    return {
        "lender": {"name": settings.lender_name, "branch": f"{branch.code} {branch.name}"},
        "borrower": {"id": str(customer.id), "name": customer.name, "phone": customer.phone},
        "loan_number": loan.loan_number,
        "product": {"code": product.code, "name": product.name, "version": version.version},
        "sanctioned_amount": money_str(terms.principal),
        "charges": [
            {"name": fee.name, "when": fee.timing.value, "amount": money_str(amount)}
            for fee, amount in schedule_fee_amounts(schedule)
        ],
        "deducted_at_disbursement": money_str(schedule.deducted_fees),
        "net_disbursed": money_str(schedule.net_disbursement),
        "annual_rate_percent": str(loan.annual_rate),
        "interest_method": terms.interest_method.value,
        "apr_percent": str(apr_percent(schedule)),
        "installments": len(schedule.rows),
        "frequency": terms.frequency.value,
        "installments_per_year": str(periods_per_year(terms)),
        "installment_amount": money_str(schedule.installment_amount),
        "total_interest": money_str(schedule.total_interest),
        "total_fees_in_installments": money_str(schedule.total_fees),
        "total_repayable": money_str(schedule.total_amount),
        "first_due_on": schedule.first_due_on.isoformat(),
        "maturity_on": schedule.maturity_date.isoformat(),
        "projected": loan.disbursed_on is None,
        "penal_charges": penalty,
        "prepayment": "No prepayment penalty (microfinance loan)"
        if version.microfinance
        else f"{terms.prepayment_penalty_percent} % of the principal prepaid",
        "grievance_contact": settings.grievance_contact,
        "schedule": _rows_json(schedule),
    }
