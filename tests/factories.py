"""Loans for tests, made in one place: through the API as people make them (``loan_active``), or
as bare rows for states the API reaches only over months (``loan_row``)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import httpx
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import AuditActor
from namma.finance import add_months
from namma.kit.db import transaction
from namma.loans.service import loan_schedules_regenerate, today_india
from namma.models import (
    Customer,
    InstallmentStatus,
    Loan,
    LoanInstallment,
    LoanProduct,
    LoanProductVersion,
    LoanStatus,
    User,
)


async def loan_active(
    app: Any,
    client: httpx.AsyncClient,
    bearer: Any,
    product: dict[str, Any],
    *,
    customer_id: uuid.UUID,
    agent: User,
    manager: User,
    amount: str = "100000.00",
    installments: int = 12,
    rate: str = "12",
    disbursed_on: dt.date | None = None,
) -> str:
    """An active loan: applied for by ``agent``, approved and disbursed (cash, today) by
    ``manager``, then back-dated to ``disbursed_on`` (default: a month ago, so that installment 1
    falls due today; beyond the API's window) and its schedule written again from that date.
    Returns its id."""
    today = today_india()
    applied = await client.post(
        "/api/loans",
        json={
            "customer_id": str(customer_id),
            "product_id": product["id"],
            "amount": amount,
            "annual_rate": rate,
            "installments": installments,
        },
        headers=await bearer(agent),
    )
    assert applied.status_code == 201, applied.text
    loan_id = applied.json()["id"]
    headers = await bearer(manager)
    approved = await client.post(f"/api/loans/{loan_id}/approve", headers=headers)
    assert approved.status_code == 200, approved.text
    disbursed = await client.post(
        f"/api/loans/{loan_id}/disburse",
        json={"disbursed_on": today.isoformat(), "method": "cash"},
        headers=headers,
    )
    assert disbursed.status_code == 201, disbursed.text
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None
        loan.disbursed_on = disbursed_on or add_months(today, -1)
    async with transaction(app.state.db) as session:
        # The schedule again, from the back-dated disbursement (nothing is paid on it yet).
        regenerated = await loan_schedules_regenerate(
            session, loan_ids=[uuid.UUID(loan_id)], actor=AuditActor.system()
        )
        assert not regenerated.skipped, regenerated.skipped
    return loan_id


async def product_version_plain(
    session: AsyncSession, *, code: str, name: str, max_installments: int = 104
) -> uuid.UUID:
    """The id of version 1 of product ``code``, made on first use with wide limits (1000 to
    100000, 0 to 30 %, default 24 %, 1 to ``max_installments`` installments) and no terms."""
    product = await session.scalar(select(LoanProduct).where(LoanProduct.code == code))
    if product is None:
        product = LoanProduct(code=code, name=name)
        session.add(product)
        await session.flush()
        session.add(
            LoanProductVersion(
                product_id=product.id,
                version=1,
                terms={},
                min_principal=Decimal("1000.00"),
                max_principal=Decimal("100000.00"),
                min_rate=Decimal("0"),
                max_rate=Decimal("30"),
                default_rate=Decimal("24"),
                min_installments=1,
                max_installments=max_installments,
            )
        )
        await session.flush()
    version = await session.scalar(
        select(LoanProductVersion.id).where(LoanProductVersion.product_id == product.id)
    )
    assert version is not None
    return version


async def loan_row(
    app: Any,
    world: Any,
    customer_id: uuid.UUID,
    *,
    status: LoanStatus,
    number: str,
    installments: Sequence[tuple[dt.date, str, InstallmentStatus]] = (),
) -> uuid.UUID:
    """A minimal loan row of 20000 at 24 % (and installments: due date, amount due, status)
    straight in the ORM, on a product ``TEST`` made on first use; no journal, no audit."""
    async with transaction(app.state.db) as session:
        version = await product_version_plain(session, code="TEST", name="Test product")
        customer = await session.get(Customer, customer_id)
        assert customer is not None
        loan = Loan(
            loan_number=number,
            branch_id=customer.branch_id,
            customer_id=customer_id,
            product_version_id=version,
            status=status,
            principal=Decimal("20000.00"),
            annual_rate=Decimal("24"),
            installments=max(1, len(installments)),
            terms={},
            applied_by_id=world.agent_a.id,
            outstanding_principal=Decimal("20000.00") if status is LoanStatus.ACTIVE else 0,
        )
        session.add(loan)
        await session.flush()
        for i, (due, amount, state) in enumerate(installments, start=1):
            session.add(
                LoanInstallment(
                    loan_id=loan.id,
                    branch_id=loan.branch_id,
                    number=i,
                    due_date=due,
                    period_start=due - dt.timedelta(days=7),
                    principal_due=Decimal(amount) - Decimal("100.00"),
                    interest_due=Decimal("100.00"),
                    interest_for_period=Decimal("100.00"),
                    balance_after=Decimal("0.00"),
                    principal_paid=Decimal(amount) - Decimal("100.00")
                    if state is InstallmentStatus.PAID
                    else Decimal("0.00"),
                    interest_paid=Decimal("100.00")
                    if state in (InstallmentStatus.PAID, InstallmentStatus.PARTLY_PAID)
                    else Decimal("0.00"),
                    status=state,
                )
            )
        return loan.id
