"""`/api/customers`: onboarding, search, detail, update, KYC decision, closing; and agent
assignments: `/api/customers/{id}/agent…` and `/api/agents/{id}/reassign`.

Bodies name every field they accept (``extra="forbid"``: no mass assignment). Money is a decimal
string in and out (``"12500.00"``); a JSON number is refused with 422. The full KYC document
number is never returned, only its mask.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema
from sqlalchemy import select

from namma.auth.deps import Principal, request_settings, require
from namma.auth.permissions import Permission
from namma.auth.scope import customer_scope
from namma.customers import assignments, queries, service
from namma.customers.kyc import MAX_INPUT_LENGTH
from namma.kit.cache import Cache, cache_get_or_load
from namma.kit.deps import CacheDep, SessionDep
from namma.kit.errors import NotFoundError
from namma.kit.money import Money, money_str
from namma.loans.cache import CUSTOMER_TTL_SECONDS, customer_changed, customer_key
from namma.models import (
    AgentAssignment,
    Customer,
    CustomerStatus,
    KycDocumentType,
    KycStatus,
    Loan,
)

router = APIRouter(prefix="/api", tags=["customers"])


class AssignBody(BaseModel):
    agent_id: uuid.UUID
    reason: str | None = Field(default=None, max_length=500)


class EndBody(BaseModel):
    reason: str | None = Field(default=None, max_length=500)


class ReassignBody(BaseModel):
    to_agent_id: uuid.UUID
    customer_ids: list[uuid.UUID] | None = Field(
        default=None, max_length=1000, description="Omit to move every customer of the agent"
    )
    reason: str | None = Field(default=None, max_length=500)


def assignment_json(a: AgentAssignment) -> dict[str, Any]:
    return {
        "id": str(a.id),
        "customer_id": str(a.customer_id),
        "agent_id": str(a.agent_id),
        "assigned_at": a.assigned_at.isoformat(),
        "ended_at": a.ended_at.isoformat() if a.ended_at else None,
        "assigned_by_id": str(a.assigned_by_id) if a.assigned_by_id else None,
        "reason": a.reason,
    }


@router.put("/customers/{customer_id}/agent")
async def customer_agent_set(
    customer_id: uuid.UUID,
    body: AssignBody,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.CUSTOMER_ASSIGN, limit="writes"))],
) -> dict[str, Any]:
    """Assign (or reassign) the customer's agent; the previous assignment is ended, not lost."""
    assignment = await assignments.assignment_set(
        session,
        principal=principal,
        customer_id=customer_id,
        agent_id=body.agent_id,
        reason=body.reason,
    )
    await _customer_changed(session, cache, customer_id)
    return assignment_json(assignment)


@router.post("/customers/{customer_id}/agent/end")
async def customer_agent_end(
    customer_id: uuid.UUID,
    body: EndBody,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.CUSTOMER_ASSIGN, limit="writes"))],
) -> dict[str, Any]:
    assignment = await assignments.assignment_end(
        session, principal=principal, customer_id=customer_id, reason=body.reason
    )
    await _customer_changed(session, cache, customer_id)
    return assignment_json(assignment)


@router.get("/customers/{customer_id}/agent/history")
async def customer_agent_history(
    customer_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CUSTOMER_READ))],
) -> dict[str, list[dict[str, Any]]]:
    rows = await assignments.assignment_history(
        session, principal=principal, customer_id=customer_id
    )
    return {"assignments": [assignment_json(a) for a in rows]}


@router.post("/agents/{agent_id}/reassign")
async def agent_customers_reassign(
    agent_id: uuid.UUID,
    body: ReassignBody,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.CUSTOMER_ASSIGN, limit="writes"))],
) -> dict[str, Any]:
    """Move one agent's customers (all, or those listed) to another agent of the branch."""
    moved = await assignments.assignments_reassign(
        session,
        principal=principal,
        from_agent_id=agent_id,
        to_agent_id=body.to_agent_id,
        customer_ids=body.customer_ids,
        reason=body.reason,
    )
    for moved_id in moved:
        await _customer_changed(session, cache, moved_id)
    return {"moved": [str(c) for c in moved], "count": len(moved)}


# --- customers ----------------------------------------------------------------------------------


def _iso_date(value: object) -> dt.date:
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        raise ValueError('must be an ISO date string such as "1990-04-15"')
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError("not a valid calendar date") from None


IsoDate = Annotated[
    dt.date,
    BeforeValidator(_iso_date),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["1990-04-15"]}),
]
"""A date as ``YYYY-MM-DD`` (not a timestamp number)."""


class CustomerCreateBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    branch_id: uuid.UUID | None = Field(
        default=None, description="Admins choose; Agents and Managers onboard into their own"
    )
    name: str = Field(min_length=1, max_length=120)
    phone: str = Field(min_length=1, max_length=20, examples=["98450 12345"])
    email: str | None = Field(default=None, max_length=254)
    date_of_birth: IsoDate
    address: str | None = Field(default=None, max_length=500)
    village: str = Field(min_length=1, max_length=120, description="Village or centre")
    household_monthly_income: Money
    kyc_document_type: KycDocumentType
    kyc_number: str = Field(min_length=1, max_length=MAX_INPUT_LENGTH)
    portal_password: str | None = Field(
        default=None,
        min_length=1,
        max_length=1024,
        description="Gives the customer a portal login (changed at first login)",
    )
    preferred_language: Literal["en", "kn"] = Field(
        default="en", description="Language of the messages sent to them (Kannada: kn)"
    )


class CustomerUpdateBody(BaseModel):
    """Only the fields sent are changed; ``null`` clears ``email`` or ``address``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=120)
    phone: str | None = Field(default=None, min_length=1, max_length=20)
    email: str | None = Field(default=None, max_length=254)
    address: str | None = Field(default=None, max_length=500)
    village: str | None = Field(default=None, min_length=1, max_length=120)
    household_monthly_income: Money | None = None
    preferred_language: Literal["en", "kn"] | None = None


class KycDecisionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["verified", "rejected"]
    reason: str | None = Field(default=None, max_length=1000, description="Required to reject")


class CloseBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000)


def _date(value: dt.date | dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def customer_json(
    customer: Customer, *, agent_id: uuid.UUID | None, agent_name: str | None
) -> dict[str, Any]:
    return {
        "id": str(customer.id),
        "branch_id": str(customer.branch_id),
        "name": customer.name,
        "phone": customer.phone,
        "email": customer.email,
        "preferred_language": customer.preferred_language,
        "date_of_birth": _date(customer.date_of_birth),
        "address": customer.address,
        "village": customer.village,
        "household_monthly_income": money_str(customer.household_monthly_income),
        "kyc": {
            "document_type": customer.kyc_document_type.value
            if customer.kyc_document_type
            else None,
            "number_masked": customer.kyc_number_masked,
            "status": customer.kyc_status.value,
            "decided_by_id": str(customer.kyc_decided_by_id)
            if customer.kyc_decided_by_id
            else None,
            "decided_at": _date(customer.kyc_decided_at),
            "rejection_reason": customer.kyc_rejection_reason,
        },
        "status": customer.status.value,
        "closed_at": _date(customer.closed_at),
        "closed_reason": customer.closed_reason,
        "has_portal_login": customer.user_id is not None,
        "agent": {"id": str(agent_id), "name": agent_name} if agent_id else None,
        "created_at": _date(customer.created_at),
    }


def detail_json(detail: queries.CustomerDetail) -> dict[str, Any]:
    return {
        **customer_json(detail.customer, agent_id=detail.agent_id, agent_name=detail.agent_name),
        "loans": [
            {
                "id": str(loan.id),
                "loan_number": loan.loan_number,
                "status": loan.status.value,
                "principal": money_str(loan.principal),
                "outstanding_principal": money_str(loan.outstanding_principal),
                "outstanding_interest": money_str(loan.outstanding_interest),
                "next_due_on": _date(loan.next_due_on),
            }
            for loan in detail.loans
        ],
        "next_due": {
            "due_on": _date(detail.next_due_on),
            "amount": money_str(detail.next_due_amount),
        }
        if detail.next_due_on
        else None,
        "overdue_amount": money_str(detail.overdue_amount),
        "counts": detail.counts,
    }


async def _detail(
    session: SessionDep, principal: Principal, customer_id: uuid.UUID
) -> dict[str, Any]:
    await session.flush()
    detail = await queries.customer_detail(session, principal=principal, customer_id=customer_id)
    return detail_json(detail)


@router.get("/customers")
async def customers_list(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CUSTOMER_READ))],
    q: Annotated[
        str | None,
        Query(max_length=120, description="Name fragment, phone digits, or a loan number"),
    ] = None,
    kyc_status: KycStatus | None = None,
    status: CustomerStatus | None = None,
    agent_id: uuid.UUID | None = None,
    village: Annotated[str | None, Query(max_length=120)] = None,
    after: Annotated[
        str | None, Query(max_length=400, description="The `next` cursor of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most 100 are returned")] = 50,
) -> dict[str, Any]:
    """Customers in the caller's scope, by name (keyset pagination: pass `next` as `after`)."""
    page = await queries.customers_search(
        session,
        principal=principal,
        q=q,
        kyc_status=kyc_status,
        status=status,
        agent_id=agent_id,
        village=village,
        after=after,
        limit=limit,
    )
    return {
        "customers": [
            customer_json(r.customer, agent_id=r.agent_id, agent_name=r.agent_name)
            for r in page.rows
        ],
        "next": page.next_cursor,
    }


@router.post("/customers", status_code=201)
async def customers_create(
    body: CustomerCreateBody,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CUSTOMER_CREATE, limit="writes"))],
) -> dict[str, Any]:
    """Onboard a customer (KYC pending). An Agent becomes the new customer's agent."""
    customer = await service.customer_create(
        session,
        principal=principal,
        secret_key=request_settings(request).secret_key.get_secret_value(),
        branch_id=body.branch_id,
        name=body.name,
        phone=body.phone,
        email=body.email,
        date_of_birth=body.date_of_birth,
        address=body.address,
        village=body.village,
        household_monthly_income=body.household_monthly_income,
        kyc_document_type=body.kyc_document_type,
        kyc_number=body.kyc_number,
        portal_password=body.portal_password,
        preferred_language=body.preferred_language,
    )
    return await _detail(session, principal, customer.id)


@router.get("/customers/{customer_id}")
async def customers_get(
    customer_id: uuid.UUID,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.CUSTOMER_READ))],
) -> dict[str, Any]:
    """The customer, their agent and loans, what is due next and what is overdue (cached for
    5 minutes; the scope is checked on every call)."""
    visible = await session.scalar(
        select(Customer.id).where(Customer.id == customer_id).where(customer_scope(principal))
    )
    if visible is None:
        raise NotFoundError("Customer not found")

    async def load() -> dict[str, Any]:
        return await _detail(session, principal, customer_id)

    result: dict[str, Any] = await cache_get_or_load(
        cache, customer_key(customer_id), ttl=CUSTOMER_TTL_SECONDS, load=load
    )
    return result


async def _customer_changed(session: SessionDep, cache: Cache, customer_id: uuid.UUID) -> None:
    loan_ids = list(
        (await session.scalars(select(Loan.id).where(Loan.customer_id == customer_id))).all()
    )
    customer_changed(session, cache, customer_id=customer_id, loan_ids=loan_ids)


@router.patch("/customers/{customer_id}")
async def customers_update(
    customer_id: uuid.UUID,
    body: CustomerUpdateBody,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.CUSTOMER_UPDATE, limit="writes"))],
) -> dict[str, Any]:
    """Change contact details, village, address, income or the language of messages (not the
    branch, nor the KYC)."""
    changes: dict[str, Any] = {name: getattr(body, name) for name in body.model_fields_set}
    customer = await service.customer_update(
        session, principal=principal, customer_id=customer_id, **changes
    )
    await _customer_changed(session, cache, customer.id)
    return await _detail(session, principal, customer.id)


@router.post("/customers/{customer_id}/kyc")
async def customers_kyc_decide(
    customer_id: uuid.UUID,
    body: KycDecisionBody,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[
        Principal, Depends(require(Permission.CUSTOMER_KYC_DECIDE, limit="writes"))
    ],
) -> dict[str, Any]:
    """Verify or reject a pending KYC; a rejection needs a reason. Decided once (then 409)."""
    customer = await service.customer_kyc_decide(
        session,
        principal=principal,
        customer_id=customer_id,
        decision=body.decision,
        reason=body.reason,
    )
    await _customer_changed(session, cache, customer.id)
    return await _detail(session, principal, customer.id)


@router.post("/customers/{customer_id}/close")
async def customers_close(
    customer_id: uuid.UUID,
    body: CloseBody,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.CUSTOMER_CLOSE, limit="writes"))],
) -> dict[str, Any]:
    """Close a customer with no open loan (replaces deleting; history is kept)."""
    customer = await service.customer_close(
        session, principal=principal, customer_id=customer_id, reason=body.reason
    )
    await _customer_changed(session, cache, customer.id)
    return await _detail(session, principal, customer.id)
