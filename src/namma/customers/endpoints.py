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
from pydantic import BeforeValidator, ConfigDict, Field, WithJsonSchema
from sqlalchemy import select

from namma.auth.deps import Principal, request_settings, require
from namma.auth.permissions import Permission
from namma.auth.scope import customer_scope
from namma.customers import assignments, queries, service
from namma.customers.kyc import MAX_INPUT_LENGTH
from namma.customers.schemas import (
    AssignmentHistory,
    AssignmentOut,
    CustomerDetailOut,
    CustomerOut,
    CustomerPage,
    ReassignedOut,
)
from namma.kit.apitypes import QueryText, RequestModel
from namma.kit.cache import cache_get_or_load, shape_of
from namma.kit.deps import CacheDep, ReadSessionDep, SessionDep
from namma.kit.errors import NotFoundError
from namma.kit.money import Money
from namma.kit.openapi import error_responses
from namma.loans.cache import (
    CUSTOMER_TTL_SECONDS,
    customer_and_loans_changed,
    customer_key,
)
from namma.models import (
    Customer,
    CustomerStatus,
    KycDocumentType,
    KycStatus,
)

router = APIRouter(prefix="/api", tags=["customers"])
_CUSTOMER_DETAIL_SHAPE = shape_of(CustomerDetailOut)


class AssignBody(RequestModel):
    agent_id: uuid.UUID
    reason: str | None = Field(default=None, max_length=500)


class EndBody(RequestModel):
    reason: str | None = Field(default=None, max_length=500)


class ReassignBody(RequestModel):
    to_agent_id: uuid.UUID
    customer_ids: list[uuid.UUID] | None = Field(
        default=None, max_length=1000, description="Omit to move every customer of the agent"
    )
    reason: str | None = Field(default=None, max_length=500)


@router.put("/customers/{customer_id}/agent", responses=error_responses(409))
async def customer_agent_set(
    customer_id: uuid.UUID,
    body: AssignBody,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.CUSTOMER_ASSIGN, limit="writes"))],
) -> AssignmentOut:
    """Assign (or reassign) the customer's agent; the previous assignment is ended, not lost."""
    assignment = await assignments.assignment_set(
        session,
        principal=principal,
        customer_id=customer_id,
        agent_id=body.agent_id,
        reason=body.reason,
    )
    await customer_and_loans_changed(session, cache, customer_id)
    return AssignmentOut.model_validate(assignment)


@router.post("/customers/{customer_id}/agent/end", responses=error_responses(409))
async def customer_agent_end(
    customer_id: uuid.UUID,
    body: EndBody,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.CUSTOMER_ASSIGN, limit="writes"))],
) -> AssignmentOut:
    assignment = await assignments.assignment_end(
        session, principal=principal, customer_id=customer_id, reason=body.reason
    )
    await customer_and_loans_changed(session, cache, customer_id)
    return AssignmentOut.model_validate(assignment)


@router.get("/customers/{customer_id}/agent/history")
async def customer_agent_history(
    customer_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CUSTOMER_READ))],
) -> AssignmentHistory:
    rows = await assignments.assignment_history(
        session, principal=principal, customer_id=customer_id
    )
    return AssignmentHistory.of(list(rows))


@router.post("/agents/{agent_id}/reassign")
async def agent_customers_reassign(
    agent_id: uuid.UUID,
    body: ReassignBody,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.CUSTOMER_ASSIGN, limit="writes"))],
) -> ReassignedOut:
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
        await customer_and_loans_changed(session, cache, moved_id)
    return ReassignedOut(moved=list(moved), count=len(moved))


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


class CustomerCreateBody(RequestModel):
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


class CustomerUpdateBody(RequestModel):
    """Only the fields sent are changed; ``null`` clears ``email`` or ``address``."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=120)
    phone: str | None = Field(default=None, min_length=1, max_length=20)
    email: str | None = Field(default=None, max_length=254)
    address: str | None = Field(default=None, max_length=500)
    village: str | None = Field(default=None, min_length=1, max_length=120)
    household_monthly_income: Money | None = None
    preferred_language: Literal["en", "kn"] | None = None


class KycDecisionBody(RequestModel):
    model_config = ConfigDict(extra="forbid")

    decision: Literal["verified", "rejected"]
    reason: str | None = Field(default=None, max_length=1000, description="Required to reject")


class CloseBody(RequestModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=1000)


async def _detail(
    session: SessionDep, principal: Principal, customer_id: uuid.UUID
) -> CustomerDetailOut:
    await session.flush()
    detail = await queries.customer_detail(session, principal=principal, customer_id=customer_id)
    return CustomerDetailOut.of_detail(detail)


@router.get("/customers")
async def customers_list(
    session: ReadSessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CUSTOMER_READ))],
    q: Annotated[
        QueryText | None,
        Query(max_length=120, description="Name fragment, phone digits, or a loan number"),
    ] = None,
    kyc_status: KycStatus | None = None,
    status: CustomerStatus | None = None,
    agent_id: uuid.UUID | None = None,
    village: Annotated[QueryText | None, Query(max_length=120)] = None,
    after: Annotated[
        QueryText | None,
        Query(max_length=400, description="The `next` cursor of the previous page"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="At most 100 are returned")] = 50,
) -> CustomerPage:
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
    return CustomerPage(
        customers=[
            CustomerOut.of(r.customer, agent_id=r.agent_id, agent_name=r.agent_name)
            for r in page.rows
        ],
        next=page.next_cursor,
    )


@router.post("/customers", status_code=201, responses=error_responses(409))
async def customers_create(
    body: CustomerCreateBody,
    request: Request,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CUSTOMER_CREATE, limit="writes"))],
) -> CustomerDetailOut:
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
) -> CustomerDetailOut:
    """The customer, their agent and loans, what is due next and what is overdue (cached for
    5 minutes; the scope is checked on every call)."""
    visible = await session.scalar(
        select(Customer.id).where(Customer.id == customer_id).where(customer_scope(principal))
    )
    if visible is None:
        raise NotFoundError("Customer not found")

    async def load() -> dict[str, Any]:
        return (await _detail(session, principal, customer_id)).model_dump(mode="json")

    cached = await cache_get_or_load(
        cache,
        customer_key(customer_id),
        ttl=CUSTOMER_TTL_SECONDS,
        load=load,
        shape=_CUSTOMER_DETAIL_SHAPE,
    )
    return CustomerDetailOut.model_validate(cached)


@router.patch("/customers/{customer_id}", responses=error_responses(409))
async def customers_update(
    customer_id: uuid.UUID,
    body: CustomerUpdateBody,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.CUSTOMER_UPDATE, limit="writes"))],
) -> CustomerDetailOut:
    """Change contact details, village, address, income or the language of messages (not the
    branch, nor the KYC)."""
    changes: dict[str, Any] = {name: getattr(body, name) for name in body.model_fields_set}
    customer = await service.customer_update(
        session, principal=principal, customer_id=customer_id, **changes
    )
    await customer_and_loans_changed(session, cache, customer.id)
    return await _detail(session, principal, customer.id)


@router.post("/customers/{customer_id}/kyc", responses=error_responses(409))
async def customers_kyc_decide(
    customer_id: uuid.UUID,
    body: KycDecisionBody,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[
        Principal, Depends(require(Permission.CUSTOMER_KYC_DECIDE, limit="writes"))
    ],
) -> CustomerDetailOut:
    """Verify or reject a pending KYC; a rejection needs a reason. Decided once (then 409)."""
    customer = await service.customer_kyc_decide(
        session,
        principal=principal,
        customer_id=customer_id,
        decision=body.decision,
        reason=body.reason,
    )
    await customer_and_loans_changed(session, cache, customer.id)
    return await _detail(session, principal, customer.id)


@router.post("/customers/{customer_id}/close", responses=error_responses(409))
async def customers_close(
    customer_id: uuid.UUID,
    body: CloseBody,
    session: SessionDep,
    cache: CacheDep,
    principal: Annotated[Principal, Depends(require(Permission.CUSTOMER_CLOSE, limit="writes"))],
) -> CustomerDetailOut:
    """Close a customer with no open loan (replaces deleting; history is kept)."""
    customer = await service.customer_close(
        session, principal=principal, customer_id=customer_id, reason=body.reason
    )
    await customer_and_loans_changed(session, cache, customer.id)
    return await _detail(session, principal, customer.id)
