"""The demo data (`namma serve --demo`): every loan state, servicing events, a clean ledger."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from namma.demo import demo_load
from namma.jobs import job_app
from namma.kit.db import transaction
from namma.ledger.queries import ledger_check
from namma.models import (
    Collection,
    Document,
    DocumentKind,
    Loan,
    LoanPenaltyCharge,
    LoanStatus,
    LoanWaiver,
    Notification,
)


async def test_demo_has_every_state_servicing_and_a_clean_ledger(app) -> None:  # type: ignore[no-untyped-def]
    await demo_load(app.state.db)
    await demo_load(app.state.db)  # a second load changes nothing
    async with transaction(app.state.db) as session:
        statuses = set((await session.scalars(select(Loan.status))).all())
        assert statuses == set(LoanStatus)
        assert await session.scalar(select(func.count()).select_from(LoanPenaltyCharge)) >= 1
        waiver = await session.scalar(select(LoanWaiver))
        assert waiver is not None and waiver.amount == Decimal("10.00")
        recovery = await session.scalar(select(Collection).where(Collection.recovery > 0))
        assert recovery is not None and recovery.amount == Decimal("2000.00")
        result = await ledger_check(session)
        assert result.ok, result.problems()
        collections = await session.scalar(select(func.count()).select_from(Collection))

    # Every demo collection has its receipt message from the job worker; no receipt PDF is
    # made until someone downloads it.
    await job_app.run_worker_async(wait=False, install_signal_handlers=False)
    async with transaction(app.state.db) as session:
        receipts = await session.scalar(
            select(func.count()).select_from(Document).where(Document.kind == DocumentKind.RECEIPT)
        )
        assert receipts == 0
        messages = await session.scalar(
            select(func.count(func.distinct(Notification.collection_id))).where(
                Notification.template == "receipt"
            )
        )
        assert messages == collections
