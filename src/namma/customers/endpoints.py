"""Agent assignments: `/api/customers/{id}/agent…` and `/api/agents/{id}/reassign`."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.customers import assignments
from namma.kit.deps import SessionDep
from namma.models import AgentAssignment

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
    return assignment_json(assignment)


@router.post("/customers/{customer_id}/agent/end")
async def customer_agent_end(
    customer_id: uuid.UUID,
    body: EndBody,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.CUSTOMER_ASSIGN, limit="writes"))],
) -> dict[str, Any]:
    assignment = await assignments.assignment_end(
        session, principal=principal, customer_id=customer_id, reason=body.reason
    )
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
    return {"moved": [str(c) for c in moved], "count": len(moved)}
