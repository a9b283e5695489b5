"""The resource layer of authorization: which rows a caller may see, as SQL conditions.

Every query that reads people's records adds one of these to its WHERE clause, so an id outside
the caller's scope finds nothing (404), exactly like an id that does not exist.
"""

from __future__ import annotations

from typing import LiteralString

from sqlalchemy import ColumnElement, false, select, true

from namma.auth.deps import Principal
from namma.models import AgentAssignment, Customer, Role, User


def customer_scope(principal: Principal) -> ColumnElement[bool]:
    """Admin: every customer. Manager: their branch's. Agent: those currently assigned to them.
    Customer: themselves."""
    if principal.role is Role.ADMIN:
        return true()
    if principal.role is Role.MANAGER:
        return Customer.branch_id == principal.branch_id
    if principal.role is Role.AGENT:
        return Customer.id.in_(
            select(AgentAssignment.customer_id)
            .where(AgentAssignment.agent_id == principal.user_id)
            .where(AgentAssignment.ended_at.is_(None))
        )
    if principal.role is Role.CUSTOMER:
        return Customer.user_id == principal.user_id
    return false()


def customer_scope_sql(principal: Principal) -> tuple[LiteralString, tuple[object, ...]]:
    """`customer_scope` as SQL over ``customers c``, with its parameters, for the statements
    every collection sends straight to the driver. The two must say the same: a test compares
    them for every role."""
    if principal.role is Role.ADMIN:
        return "true", ()
    if principal.role is Role.MANAGER:
        return "c.branch_id = %s", (principal.branch_id,)
    if principal.role is Role.AGENT:
        return (
            "c.id IN (SELECT a.customer_id FROM agent_assignments a "
            "WHERE a.agent_id = %s AND a.ended_at IS NULL)",
            (principal.user_id,),
        )
    if principal.role is Role.CUSTOMER:
        return "c.user_id = %s", (principal.user_id,)
    return "false", ()


def staff_scope(principal: Principal) -> ColumnElement[bool]:
    """Admin: all staff. Manager: their branch's staff. Anyone else: only themselves."""
    is_staff = User.role != Role.CUSTOMER
    if principal.role is Role.ADMIN:
        return is_staff
    if principal.role is Role.MANAGER:
        return is_staff & (User.branch_id == principal.branch_id)
    return User.id == principal.user_id
