"""The resource layer of authorization: which rows a caller may see, as SQL conditions.

Every query that reads people's records adds one of these to its WHERE clause, so an id outside
the caller's scope finds nothing (404), exactly like an id that does not exist.

Each rule is written once, as an SQLAlchemy expression. The statements a collection sends
straight to the driver need it as SQL text: `customer_scope_sql` and `loan_scope_sql` compile the
same expression for psycopg (once per role: the text depends only on the role; the caller's ids
are its parameters), so the two forms cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, LiteralString, cast

from sqlalchemy import ColumnElement, Select, bindparam, false, select, true
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg
from sqlalchemy.orm import aliased

from namma.auth.deps import Principal
from namma.models import AgentAssignment, Customer, Loan, Role, User

# The caller's ids in a scope expression: named parameters, so that the compiled text names
# which of the caller's ids each placeholder takes (`_scope_sql`).
_PARAMETERS: dict[str, Callable[[Principal], object]] = {
    "scope_user_id": lambda p: p.user_id,
    "scope_branch_id": lambda p: p.branch_id,
}


def _param(principal: Principal, name: str) -> Any:
    return bindparam(name, _PARAMETERS[name](principal))


def _assigned_customers(principal: Principal) -> Select[Any]:
    """The customers currently assigned to the agent."""
    return (
        select(AgentAssignment.customer_id)
        .where(AgentAssignment.agent_id == _param(principal, "scope_user_id"))
        .where(AgentAssignment.ended_at.is_(None))
    )


def customer_scope(principal: Principal, customer: Any = Customer) -> ColumnElement[bool]:
    """Admin: every customer. Manager: their branch's. Agent: those currently assigned to them.
    Customer: themselves. (``customer``: the mapped class or an alias of it.)"""
    if principal.role is Role.ADMIN:
        return true()
    if principal.role is Role.MANAGER:
        return cast(ColumnElement[bool], customer.branch_id == _param(principal, "scope_branch_id"))
    if principal.role is Role.AGENT:
        return cast(ColumnElement[bool], customer.id.in_(_assigned_customers(principal)))
    if principal.role is Role.CUSTOMER:
        return cast(ColumnElement[bool], customer.user_id == _param(principal, "scope_user_id"))
    return false()


def loan_scope(principal: Principal, loan: Any = Loan) -> ColumnElement[bool]:
    """The loans of the customers in `customer_scope`: Admin every loan, a Manager their
    branch's (a loan is booked in its customer's branch, and customers do not change branch),
    an Agent those of the customers assigned to them, a Customer their own. Needs no join to
    the customer. (``loan``: the mapped class or an alias of it.)"""
    if principal.role is Role.ADMIN:
        return true()
    if principal.role is Role.MANAGER:
        return cast(ColumnElement[bool], loan.branch_id == _param(principal, "scope_branch_id"))
    if principal.role is Role.AGENT:
        return cast(ColumnElement[bool], loan.customer_id.in_(_assigned_customers(principal)))
    if principal.role is Role.CUSTOMER:
        own = select(Customer.id).where(Customer.user_id == _param(principal, "scope_user_id"))
        return cast(ColumnElement[bool], loan.customer_id.in_(own))
    return false()


# --- the same rules as SQL text, for the statements sent straight to the driver ------------------

# psycopg's positional %s placeholders
_DIALECT = PGDialect_psycopg(paramstyle="format")  # type: ignore[no-untyped-call]
_compiled: dict[tuple[str, Role, str], tuple[str, tuple[str, ...]]] = {}


def _scope_sql(
    name: str,
    rule: Callable[[Principal, Any], ColumnElement[bool]],
    model: Any,
    principal: Principal,
    alias: str,
) -> tuple[LiteralString, tuple[object, ...]]:
    """``rule`` over ``model`` aliased as ``alias``, compiled for psycopg: its text (compiled
    once per role) and the caller's values for its placeholders, in order."""
    key = (name, principal.role, alias)
    compiled = _compiled.get(key)
    if compiled is None:
        expression = rule(principal, aliased(model, name=alias))
        statement = expression.compile(dialect=_DIALECT)
        names = tuple(statement.positiontup or ())
        unknown = set(names) - set(_PARAMETERS)
        assert not unknown, f"a scope parameter that is not the caller's: {unknown}"
        compiled = _compiled[key] = (statement.string, names)
    text: LiteralString
    text, names = compiled
    # The text is SQLAlchemy's compilation of our own expression: no caller input is in it.
    return text, tuple(_PARAMETERS[n](principal) for n in names)


def customer_scope_sql(
    principal: Principal, alias: str = "c"
) -> tuple[LiteralString, tuple[object, ...]]:
    """`customer_scope` as SQL over ``customers <alias>``, with its parameters."""
    return _scope_sql("customer", customer_scope, Customer, principal, alias)


def loan_scope_sql(
    principal: Principal, alias: str = "l"
) -> tuple[LiteralString, tuple[object, ...]]:
    """`loan_scope` as SQL over ``loans <alias>``, with its parameters (the loan lock every
    collection takes)."""
    return _scope_sql("loan", loan_scope, Loan, principal, alias)


def staff_scope(principal: Principal) -> ColumnElement[bool]:
    """Admin: all staff. Manager: their branch's staff. Anyone else: only themselves."""
    is_staff = User.role != Role.CUSTOMER
    if principal.role is Role.ADMIN:
        return is_staff
    if principal.role is Role.MANAGER:
        return is_staff & (User.branch_id == principal.branch_id)
    return User.id == principal.user_id
