"""Which agent serves which customer: assign, reassign (one or many), end. History is kept:
an assignment is never edited, only ended, and a new one started."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import audit_record
from namma.auth.deps import Principal
from namma.auth.scope import customer_scope, staff_scope
from namma.customers.service import customer_for_update
from namma.kit.errors import ConflictError, InvalidInputError, NotFoundError
from namma.loans.cache import sheets_changed
from namma.models import AgentAssignment, Customer, Role, User
from namma.users.service import staff_for_update, staff_set_active


async def _agent_of_branch(
    session: AsyncSession, agent_id: uuid.UUID, branch_id: uuid.UUID
) -> User:
    agent = await session.scalar(select(User).where(User.id == agent_id))
    if agent is None or agent.role is not Role.AGENT:
        raise InvalidInputError("agent_id", "No such agent")
    if not agent.is_active:
        raise InvalidInputError("agent_id", "This agent is deactivated")
    if agent.branch_id != branch_id:
        raise InvalidInputError("agent_id", "The agent works for another branch than the customer")
    return agent


async def _current(session: AsyncSession, customer_id: uuid.UUID) -> AgentAssignment | None:
    return await session.scalar(
        select(AgentAssignment)
        .where(AgentAssignment.customer_id == customer_id)
        .where(AgentAssignment.ended_at.is_(None))
        .with_for_update()
    )


async def assignment_set(
    session: AsyncSession,
    *,
    principal: Principal,
    customer_id: uuid.UUID,
    agent_id: uuid.UUID,
    reason: str | None,
) -> AgentAssignment:
    """Make ``agent_id`` the customer's agent, ending the current assignment if there is one."""
    customer = await customer_for_update(session, principal=principal, customer_id=customer_id)
    await _agent_of_branch(session, agent_id, customer.branch_id)
    current = await _current(session, customer.id)
    if current is not None and current.agent_id == agent_id:
        raise ConflictError("This agent already serves this customer.")
    now = dt.datetime.now(dt.UTC)
    if current is not None:
        current.ended_at = now
        await session.flush()
    assignment = AgentAssignment(
        customer_id=customer.id,
        agent_id=agent_id,
        assigned_at=now,
        assigned_by_id=principal.user_id,
        reason=reason,
    )
    session.add(assignment)
    await session.flush()
    # The customer's loans leave one agent's sheet for the other's.
    sheets_changed(session, [agent_id, *([current.agent_id] if current else [])])
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="customer.agent_assigned",
        entity_type="customer",
        entity_id=str(customer.id),
        before={"agent_id": str(current.agent_id) if current else None},
        after={"agent_id": str(agent_id), "reason": reason},
    )
    return assignment


async def assignment_end(
    session: AsyncSession, *, principal: Principal, customer_id: uuid.UUID, reason: str | None
) -> AgentAssignment:
    customer = await customer_for_update(session, principal=principal, customer_id=customer_id)
    current = await _current(session, customer.id)
    if current is None:
        raise ConflictError("This customer has no agent.")
    current.ended_at = dt.datetime.now(dt.UTC)
    sheets_changed(session, [current.agent_id])
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="customer.agent_unassigned",
        entity_type="customer",
        entity_id=str(customer.id),
        before={"agent_id": str(current.agent_id)},
        after={"agent_id": None, "reason": reason},
    )
    return current


async def assignments_reassign(
    session: AsyncSession,
    *,
    principal: Principal,
    from_agent_id: uuid.UUID,
    to_agent_id: uuid.UUID,
    customer_ids: list[uuid.UUID] | None,
    reason: str | None,
) -> list[uuid.UUID]:
    """Move customers (all of ``from_agent_id``'s, or those listed) to ``to_agent_id``.

    All or nothing: one customer out of scope or not served by ``from_agent_id`` refuses the lot.
    """
    if from_agent_id == to_agent_id:
        raise InvalidInputError("to_agent_id", "Choose a different agent")
    from_agent = await session.scalar(
        select(User)
        .where(User.id == from_agent_id)
        .where(User.role == Role.AGENT)
        .where(staff_scope(principal))
    )
    if from_agent is None:
        raise NotFoundError("Agent not found")
    assert from_agent.branch_id is not None
    await _agent_of_branch(session, to_agent_id, from_agent.branch_id)
    query = (
        select(AgentAssignment.customer_id)
        .join(Customer, Customer.id == AgentAssignment.customer_id)
        .where(AgentAssignment.agent_id == from_agent_id)
        .where(AgentAssignment.ended_at.is_(None))
        .where(customer_scope(principal))
        .order_by(AgentAssignment.customer_id)  # a fixed lock order
    )
    served = list((await session.scalars(query)).all())
    if customer_ids is not None:
        missing = sorted(set(customer_ids) - set(served), key=str)
        if missing:
            raise InvalidInputError(
                "customer_ids",
                "Not served by that agent (or not found): " + ", ".join(str(m) for m in missing),
            )
        served = sorted(set(customer_ids), key=str)
    for customer_id in served:
        await assignment_set(
            session,
            principal=principal,
            customer_id=customer_id,
            agent_id=to_agent_id,
            reason=reason,
        )
    return served


async def assignment_history(
    session: AsyncSession, *, principal: Principal, customer_id: uuid.UUID
) -> list[AgentAssignment]:
    customer = await session.scalar(
        select(Customer.id).where(Customer.id == customer_id).where(customer_scope(principal))
    )
    if customer is None:
        raise NotFoundError("Customer not found")
    return list(
        (
            await session.scalars(
                select(AgentAssignment)
                .where(AgentAssignment.customer_id == customer_id)
                .order_by(AgentAssignment.assigned_at.desc(), AgentAssignment.id)
            )
        ).all()
    )


async def agent_deactivate_reassigning(
    session: AsyncSession,
    *,
    principal: Principal,
    agent_id: uuid.UUID,
    to_agent_id: uuid.UUID | None,
    reason: str | None,
) -> list[uuid.UUID]:
    """Deactivate a staff member; an agent's current customers move to ``to_agent_id`` (an
    active agent of the same branch) in the same step, so that no customer is left without an
    agent. All or nothing: the caller's transaction holds both. Returns the customers moved."""
    user = await staff_for_update(session, principal=principal, user_id=agent_id)
    moved: list[uuid.UUID] = []
    if user.role is Role.AGENT and user.is_active:
        served = await session.scalar(
            select(func.count())
            .select_from(AgentAssignment)
            .where(AgentAssignment.agent_id == agent_id)
            .where(AgentAssignment.ended_at.is_(None))
        )
        if served:
            if to_agent_id is None:
                raise InvalidInputError(
                    "to_agent_id", "Choose the agent who takes over this agent's customers"
                )
            moved = await assignments_reassign(
                session,
                principal=principal,
                from_agent_id=agent_id,
                to_agent_id=to_agent_id,
                customer_ids=None,
                reason=reason,
            )
    await staff_set_active(session, principal=principal, user_id=agent_id, active=False)
    return moved


async def assignments_set_many(
    session: AsyncSession,
    *,
    principal: Principal,
    customer_ids: list[uuid.UUID],
    agent_id: uuid.UUID,
    reason: str | None,
) -> list[uuid.UUID]:
    """Make ``agent_id`` the agent of every listed customer (whoever serves them now), in a
    fixed lock order. All or nothing: a customer out of scope, of another branch than the agent,
    or already served by that agent refuses the lot (the caller's transaction rolls back)."""
    if not customer_ids:
        raise InvalidInputError("customer_ids", "Choose at least one customer")
    chosen = sorted(set(customer_ids), key=str)
    for customer_id in chosen:
        try:
            await assignment_set(
                session,
                principal=principal,
                customer_id=customer_id,
                agent_id=agent_id,
                reason=reason,
            )
        except ConflictError:
            raise InvalidInputError(
                "agent_id", "This agent already serves one of the chosen customers"
            ) from None
    return chosen
