"""What `/api/customers…` and the agent assignments answer. The full KYC number is never in
an answer, only its mask."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import Field

from namma.customers.queries import CustomerDetail
from namma.kit.money import Money
from namma.kit.schemas import ApiModel, Timestamp
from namma.models import (
    AgentAssignment,
    Customer,
    CustomerStatus,
    KycDocumentType,
    KycStatus,
    LoanStatus,
)


class AssignmentOut(ApiModel):
    id: uuid.UUID
    customer_id: uuid.UUID
    agent_id: uuid.UUID
    assigned_at: Timestamp
    ended_at: Timestamp | None
    assigned_by_id: uuid.UUID | None
    reason: str | None


class AssignmentHistory(ApiModel):
    assignments: list[AssignmentOut]

    @classmethod
    def of(cls, rows: list[AgentAssignment]) -> AssignmentHistory:
        return cls(assignments=[AssignmentOut.model_validate(a) for a in rows])


class ReassignedOut(ApiModel):
    moved: list[uuid.UUID] = Field(description="The customers moved")
    count: int


class KycOut(ApiModel):
    document_type: KycDocumentType | None
    number_masked: str | None
    status: KycStatus
    decided_by_id: uuid.UUID | None
    decided_at: Timestamp | None
    rejection_reason: str | None


class AgentRef(ApiModel):
    id: uuid.UUID
    name: str | None


class CustomerOut(ApiModel):
    id: uuid.UUID
    branch_id: uuid.UUID
    name: str
    phone: str
    email: str | None
    preferred_language: Literal["en", "kn"]
    date_of_birth: dt.date | None
    address: str | None
    village: str | None
    household_monthly_income: Money | None
    kyc: KycOut
    status: CustomerStatus
    closed_at: Timestamp | None
    closed_reason: str | None
    has_portal_login: bool
    agent: AgentRef | None = Field(description="The customer's current agent")
    created_at: Timestamp | None

    @classmethod
    def of(
        cls, customer: Customer, *, agent_id: uuid.UUID | None, agent_name: str | None
    ) -> CustomerOut:
        return cls(**_customer_fields(customer, agent_id=agent_id, agent_name=agent_name))


def _customer_fields(
    c: Customer, *, agent_id: uuid.UUID | None, agent_name: str | None
) -> dict[str, Any]:
    return {
        "id": c.id,
        "branch_id": c.branch_id,
        "name": c.name,
        "phone": c.phone,
        "email": c.email,
        "preferred_language": c.preferred_language,
        "date_of_birth": c.date_of_birth,
        "address": c.address,
        "village": c.village,
        "household_monthly_income": c.household_monthly_income,
        "kyc": KycOut(
            document_type=c.kyc_document_type,
            number_masked=c.kyc_number_masked,
            status=c.kyc_status,
            decided_by_id=c.kyc_decided_by_id,
            decided_at=c.kyc_decided_at,
            rejection_reason=c.kyc_rejection_reason,
        ),
        "status": c.status,
        "closed_at": c.closed_at,
        "closed_reason": c.closed_reason,
        "has_portal_login": c.user_id is not None,
        "agent": AgentRef(id=agent_id, name=agent_name) if agent_id else None,
        "created_at": c.created_at,
    }


class CustomerPage(ApiModel):
    customers: list[CustomerOut]
    next: str | None = Field(description="Pass as `after` for the next page; null at the end")


class CustomerLoanOut(ApiModel):
    id: uuid.UUID
    loan_number: str
    status: LoanStatus
    principal: Money
    outstanding_principal: Money
    outstanding_interest: Money
    next_due_on: dt.date | None


class NextDueOut(ApiModel):
    due_on: dt.date
    amount: Money | None


class CustomerDetailOut(CustomerOut):
    """The customer with their loans, what is due next and what is overdue."""

    loans: list[CustomerLoanOut]
    next_due: NextDueOut | None = Field(
        description="The earliest unpaid installment of an active loan (may be past) and what "
        "is owed that day across active loans"
    )
    overdue_amount: Money
    counts: dict[str, int]

    @classmethod
    def of_detail(cls, detail: CustomerDetail) -> CustomerDetailOut:
        return cls(
            **_customer_fields(
                detail.customer, agent_id=detail.agent_id, agent_name=detail.agent_name
            ),
            loans=[CustomerLoanOut.model_validate(loan) for loan in detail.loans],
            next_due=NextDueOut(due_on=detail.next_due_on, amount=detail.next_due_amount)
            if detail.next_due_on
            else None,
            overdue_amount=detail.overdue_amount,
            counts=detail.counts,
        )
