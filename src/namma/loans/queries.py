"""Reads of loans for pages: a sortable, keyset-paged list in the caller's scope."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.auth.deps import Principal
from namma.auth.scope import customer_scope
from namma.kit.pagination import Keyset, KeysetPage, SortColumn, keyset_page, keyset_select
from namma.models import Customer, Loan, LoanStatus

# What the loan still owes, every component (the sum ``loans.service.loan_outstanding`` makes).
OUTSTANDING_TOTAL = (
    Loan.outstanding_principal
    + Loan.outstanding_interest
    + Loan.outstanding_fees
    + Loan.outstanding_penalties
)
# A loan starts on its disbursement; one not disbursed yet, on its application.
STARTED_ON = func.coalesce(Loan.disbursed_on, cast(Loan.applied_at, Date))

LOAN_SORTS: dict[str, SortColumn] = {
    "number": SortColumn("number", Loan.loan_number, str),
    "principal": SortColumn("principal", Loan.principal, Decimal),
    "outstanding": SortColumn("outstanding", OUTSTANDING_TOTAL, Decimal),
    "started": SortColumn("started", STARTED_ON, dt.date.fromisoformat),
    "status": SortColumn("status", Loan.status, LoanStatus),
}


async def loans_page(
    session: AsyncSession,
    principal: Principal,
    keyset: Keyset,
    *,
    customer_id: uuid.UUID | None = None,
) -> KeysetPage[Any]:
    """Loans in the caller's scope as rows of (loan, customer name, outstanding total,
    started on, sort value), one statement for any page."""
    query = (
        select(
            Loan,
            Customer.name,
            OUTSTANDING_TOTAL.label("outstanding_total"),
            STARTED_ON.label("started_on"),
            keyset.sort.column.label("sort_value"),
        )
        .join(Customer, Customer.id == Loan.customer_id)
        .where(customer_scope(principal))
    )
    if customer_id is not None:
        query = query.where(Loan.customer_id == customer_id)
    rows = (await session.execute(keyset_select(query, keyset, Loan.id))).all()
    return keyset_page(rows, keyset, lambda row: (row.sort_value, row[0].id))
