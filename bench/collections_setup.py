"""Realistic data for `bench_collections.py`: many agents, each with their own disbursed loans.

On top of the demo data (branch BLR01, its manager, the preset products) this adds ``agents``
field agents and, for each, ``loans_per_agent`` customers assigned to that agent with one
disbursed loan each, through the real services (apply as the agent, approve and disburse as
the manager, installments written), the way the demo builds its own loans. The loans are
disbursed ``DISBURSED_DAYS_AGO`` days back so that installments are due and a small collection
is allocated to the oldest one's interest, as on a real collection round.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from namma.demo import DEMO_PASSWORD, _acting
from namma.kit.db import Database, transaction
from namma.kit.passwords import password_hash
from namma.loans import service as loans
from namma.models import (
    AgentAssignment,
    Branch,
    Customer,
    DisbursementMethod,
    KycStatus,
    LoanProduct,
    Role,
    User,
)

PRODUCT = "JLG-52W"  # weekly, 52 installments, a 1 % processing fee deducted at disbursement
PRINCIPAL = Decimal("20000")
INSTALLMENTS = 52
DISBURSED_DAYS_AGO = 15  # two weekly installments due


@dataclass(frozen=True)
class BenchAgent:
    email: str
    loan_ids: list[str]


async def bench_agents_create(url: str, *, agents: int, loans_per_agent: int) -> list[BenchAgent]:
    """Create the agents, their customers and their disbursed loans; one transaction per agent."""
    db = Database.connect(url, pool_size=2)
    try:
        hashed = await password_hash(DEMO_PASSWORD)
        out = []
        for a in range(agents):
            async with transaction(db) as session:
                out.append(
                    await _agent_with_loans(
                        session, index=a, hashed=hashed, loans_per_agent=loans_per_agent
                    )
                )
        return out
    finally:
        await db.dispose()


async def _agent_with_loans(
    session: Any, *, index: int, hashed: str, loans_per_agent: int
) -> BenchAgent:
    branch = await session.scalar(select(Branch).where(Branch.code == "BLR01"))
    manager = await session.scalar(select(User).where(User.email == "manager@example.com"))
    product = await session.scalar(select(LoanProduct).where(LoanProduct.code == PRODUCT))
    assert branch is not None and manager is not None and product is not None
    email = f"bench-agent-{index:02d}@example.com"
    agent = User(
        name=f"Bench Agent {index:02d}",
        role=Role.AGENT,
        email=email,
        phone=f"97{index:04d}0000",
        branch_id=branch.id,
        password_hash=hashed,
    )
    session.add(agent)
    await session.flush()
    as_agent, as_manager = _acting(agent), _acting(manager)
    today = loans.today_india()
    loan_ids = []
    for n in range(loans_per_agent):
        customer = Customer(
            branch_id=branch.id,
            name=f"Bench Customer {index:02d}-{n:03d}",
            phone=f"96{index:04d}{n:04d}",
            village=f"Centre {index:02d}",
            household_monthly_income=Decimal("40000.00"),
            kyc_status=KycStatus.VERIFIED,
        )
        session.add(customer)
        await session.flush()
        session.add(AgentAssignment(customer_id=customer.id, agent_id=agent.id))
        await session.flush()
        loan = await loans.loan_apply(
            session,
            principal=as_agent,
            customer_id=customer.id,
            product_id=product.id,
            amount=PRINCIPAL,
            annual_rate=None,
            installments=INSTALLMENTS,
            first_due_on=None,
            purpose="Bench",
        )
        await loans.loan_approve(session, principal=as_manager, loan_id=loan.id)
        await loans.loan_disburse(
            session,
            principal=as_manager,
            loan_id=loan.id,
            disbursed_on=today - dt.timedelta(days=DISBURSED_DAYS_AGO),
            method=DisbursementMethod.CASH,
            reference=None,
        )
        loan_ids.append(str(loan.id))
    return BenchAgent(email=email, loan_ids=loan_ids)
