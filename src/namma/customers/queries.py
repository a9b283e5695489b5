"""Customer reads: search with keyset pagination, and the detail page's facts. Every query is
filtered by ``customer_scope``: what a caller may not see does not exist for them."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, func, literal, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from namma.auth.deps import Principal
from namma.auth.scope import customer_scope
from namma.auth.service import login_normalise
from namma.customers.service import storable_text
from namma.finance.owed import owed
from namma.kit.clock import today_india
from namma.kit.errors import InvalidInputError, NotFoundError
from namma.kit.pagination import Keyset, KeysetPage, SortColumn, keyset_page, keyset_select
from namma.kit.sqltext import expression_of
from namma.loans.numbers import loan_number_normalise
from namma.models import (
    AgentAssignment,
    Customer,
    CustomerStatus,
    InstallmentStatus,
    KycStatus,
    Loan,
    LoanInstallment,
    LoanStatus,
    User,
)
from namma.models.loan import OPEN_STATUSES

MAX_PAGE = 100
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class CustomerRow:
    customer: Customer
    agent_id: uuid.UUID | None
    agent_name: str | None


@dataclass(frozen=True)
class CustomerPage:
    rows: list[CustomerRow]
    next_cursor: str | None  # pass as ``after`` for the next page; None on the last page


@dataclass(frozen=True)
class LoanSummary:
    id: uuid.UUID
    loan_number: str
    status: LoanStatus
    principal: Decimal
    outstanding_principal: Decimal
    outstanding_interest: Decimal
    next_due_on: dt.date | None


@dataclass(frozen=True)
class CustomerDetail:
    customer: Customer
    agent_id: uuid.UUID | None
    agent_name: str | None
    loans: list[LoanSummary]
    next_due_on: dt.date | None  # earliest unpaid installment of an active loan (may be past)
    next_due_amount: Decimal | None  # what is owed on that date, across active loans
    overdue_amount: Decimal
    overdue_installments: int
    counts: dict[str, int] = field(default_factory=dict)


# --- cursors ------------------------------------------------------------------------------------


def _cursor_encode(name: str, customer_id: uuid.UUID) -> str:
    raw = json.dumps([name, str(customer_id)], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_decode(cursor: str) -> tuple[str, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        name, last_id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(name, str) or "\x00" in name:
            raise ValueError("name")
        name.encode("utf-8")
        return name, uuid.UUID(last_id)
    except (ValueError, TypeError, UnicodeError, binascii.Error):
        raise InvalidInputError("after", "Not a cursor returned by this list") from None


# --- search -------------------------------------------------------------------------------------


def _like_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _matches(q: str) -> ColumnElement[bool]:
    """Name contains ``q`` (any case), or the phone contains its digits, or a loan of the
    customer has this number (written as people type it: ``namma.loans.numbers``)."""
    conditions: list[ColumnElement[bool]] = [
        Customer.name.ilike(f"%{_like_escape(q)}%", escape="\\")
    ]
    if re.fullmatch(r"[\d\s+\-()]+", q):
        _, full = login_normalise(q)
        digits = full or re.sub(r"\D", "", q)
        if len(digits) >= 3:
            conditions.append(Customer.phone.contains(digits, autoescape=True))
    number = loan_number_normalise(q)
    if number is not None:  # as typed: "blr01-2026-7", "BLR01 2026 000007"
        conditions.append(
            Customer.id.in_(select(Loan.customer_id).where(Loan.loan_number == number))
        )
    return or_(*conditions)


def _current_agent() -> Any:
    return (
        select(AgentAssignment.customer_id, AgentAssignment.agent_id, User.name.label("agent_name"))
        .join(User, User.id == AgentAssignment.agent_id)
        .where(AgentAssignment.ended_at.is_(None))
        .subquery("current_agent")
    )


def _with_agent(query: Select[Any], current: Any) -> Select[Any]:
    return query.outerjoin(current, current.c.customer_id == Customer.id)


async def customers_search(
    session: AsyncSession,
    *,
    principal: Principal,
    q: str | None = None,
    kyc_status: KycStatus | None = None,
    status: CustomerStatus | None = None,
    agent_id: uuid.UUID | None = None,
    village: str | None = None,
    after: str | None = None,
    limit: int = 50,
) -> CustomerPage:
    """Customers in the caller's scope by name then id, ``limit`` (at most 100) at a time."""
    limit = max(1, min(limit, MAX_PAGE))
    current = _current_agent()
    query = _with_agent(select(Customer, current.c.agent_id, current.c.agent_name), current).where(
        customer_scope(principal)
    )
    text = storable_text("q", q or "").strip()
    if text:
        query = query.where(_matches(text[:120]))
    if kyc_status is not None:
        query = query.where(Customer.kyc_status == kyc_status)
    if status is not None:
        query = query.where(Customer.status == status)
    if agent_id is not None:
        query = query.where(current.c.agent_id == agent_id)
    if village is not None and storable_text("village", village).strip():
        query = query.where(func.lower(Customer.village) == " ".join(village.split()).lower())
    if after:
        name, last_id = _cursor_decode(after)
        query = query.where(
            tuple_(Customer.name, Customer.id) > tuple_(literal(name), literal(last_id))
        )
    result = await session.execute(query.order_by(Customer.name, Customer.id).limit(limit + 1))
    rows = [CustomerRow(c, a, n) for c, a, n in result.all()]
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = _cursor_encode(rows[-1].customer.name, rows[-1].customer.id) if more else None
    return CustomerPage(rows=rows, next_cursor=next_cursor)


# --- detail -------------------------------------------------------------------------------------


def _installment_remaining() -> ColumnElement[Decimal]:
    return expression_of(owed, LoanInstallment)


async def customer_detail(
    session: AsyncSession, *, principal: Principal, customer_id: uuid.UUID
) -> CustomerDetail:
    """The customer with their agent, loans, next due and overdue amounts (404 out of scope)."""
    current = _current_agent()
    row = (
        await session.execute(
            _with_agent(select(Customer, current.c.agent_id, current.c.agent_name), current)
            .where(Customer.id == customer_id)
            .where(customer_scope(principal))
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError("Customer not found")
    customer, agent_id, agent_name = row

    loans = [
        LoanSummary(
            id=loan.id,
            loan_number=loan.loan_number,
            status=loan.status,
            principal=loan.principal,
            outstanding_principal=loan.outstanding_principal,
            outstanding_interest=loan.outstanding_interest,
            next_due_on=loan.next_due_on,
        )
        for loan in (
            await session.scalars(
                select(Loan)
                .where(Loan.customer_id == customer.id)
                .order_by(Loan.applied_at.desc(), Loan.loan_number)
            )
        ).all()
    ]

    remaining = _installment_remaining()
    unpaid = and_(
        Loan.customer_id == customer.id,
        Loan.status == LoanStatus.ACTIVE,
        LoanInstallment.status != InstallmentStatus.PAID,
        remaining > 0,
    )
    unpaid_installments = (
        select(LoanInstallment.due_date, remaining.label("remaining"))
        .join(Loan, Loan.id == LoanInstallment.loan_id)
        .where(unpaid)
        .subquery()
    )
    next_due_on = await session.scalar(select(func.min(unpaid_installments.c.due_date)))
    next_due_amount: Decimal | None = None
    if next_due_on is not None:
        next_due_amount = await session.scalar(
            select(func.sum(unpaid_installments.c.remaining)).where(
                unpaid_installments.c.due_date == next_due_on
            )
        )
    overdue_count, overdue_amount = (
        await session.execute(
            select(
                func.count(), func.coalesce(func.sum(unpaid_installments.c.remaining), ZERO)
            ).where(unpaid_installments.c.due_date < today_india())
        )
    ).one()

    statuses = [loan.status for loan in loans]
    counts = {
        "loans": len(loans),
        "open_loans": sum(s in OPEN_STATUSES for s in statuses),
        "active_loans": sum(s is LoanStatus.ACTIVE for s in statuses),
        "overdue_installments": int(overdue_count),
    }
    return CustomerDetail(
        customer=customer,
        agent_id=agent_id,
        agent_name=agent_name,
        loans=loans,
        next_due_on=next_due_on,
        next_due_amount=next_due_amount,
        overdue_amount=Decimal(overdue_amount),
        overdue_installments=int(overdue_count),
        counts=counts,
    )


# --- the back office's list (keyset by any sort) -------------------------------------------------

CUSTOMER_SORTS: dict[str, SortColumn] = {
    "name": SortColumn("name", Customer.name, str),
    "village": SortColumn("village", func.coalesce(Customer.village, ""), str),
    "onboarded": SortColumn("onboarded", Customer.created_at, dt.datetime.fromisoformat),
}


async def customers_page(
    session: AsyncSession,
    principal: Principal,
    keyset: Keyset,
    *,
    q: str | None = None,
    kyc_status: KycStatus | None = None,
    status: CustomerStatus | None = None,
    agent_id: uuid.UUID | None = None,
) -> KeysetPage[Any]:
    """Rows of (customer, agent id, agent name, sort value) in the caller's scope: the same
    search as ``customers_search`` (name, phone digits, loan number), any sort."""
    current = _current_agent()
    query = _with_agent(
        select(
            Customer,
            current.c.agent_id,
            current.c.agent_name,
            keyset.sort.column.label("sort_value"),
        ),
        current,
    ).where(customer_scope(principal))
    text = storable_text("q", q or "").strip()
    if text:
        query = query.where(_matches(text[:120]))
    if kyc_status is not None:
        query = query.where(Customer.kyc_status == kyc_status)
    if status is not None:
        query = query.where(Customer.status == status)
    if agent_id is not None:
        query = query.where(current.c.agent_id == agent_id)
    rows = (await session.execute(keyset_select(query, keyset, Customer.id))).all()
    return keyset_page(rows, keyset, lambda row: (row.sort_value, row[0].id))


async def customers_served(session: AsyncSession, agent_id: uuid.UUID) -> int:
    """How many customers the agent serves now (the caller has already checked the agent is in
    their scope)."""
    return int(
        await session.scalar(
            select(func.count())
            .select_from(AgentAssignment)
            .where(AgentAssignment.agent_id == agent_id)
            .where(AgentAssignment.ended_at.is_(None))
        )
        or 0
    )
