"""A loan's terms live in `loan_terms` (D-212): written once when the loan is applied for, read
whole by the paths that compute one loan's money (the collection's raw loan lock, the close of
business's penalties and accrual), never by the lists, the reports or the dashboards."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.dialects import postgresql

from namma.cob.runner import cob_execute
from namma.finance import add_months
from namma.kit.db import transaction
from namma.loans.service import today_india
from namma.loans.store import loan_locked
from namma.models import (
    AccountKind,
    JournalLine,
    LedgerAccount,
    Loan,
    LoanPenaltyCharge,
    LoanTermsSnapshot,
)
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    MONTHLY_PRODUCT,
    assert_consistent,
    collect,
    customer,
    installments_of,
    make_loan,
    settings,
)
from tests.integration.test_loans import acting

D = Decimal
PENALISED_ACCRUAL_PRODUCT = {
    **MONTHLY_PRODUCT,
    "code": "IGL-PA",
    "name": "Individual, monthly, accrual, late fee",
    "terms": {
        "frequency": "monthly",
        "interest_accounting": "accrual",
        "penalty": {"basis": "flat", "value": "150", "recurrence": "once"},
    },
}


async def _product(client, world, bearer, body):  # type: ignore[no-untyped-def]
    response = await client.post("/api/products", json=body, headers=await bearer(world.admin))
    assert response.status_code == 201, response.text
    return response.json()


async def _stored_terms(app, loan_id: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        return list(
            (
                await session.scalars(
                    select(LoanTermsSnapshot.terms).where(
                        LoanTermsSnapshot.loan_id == uuid.UUID(loan_id)
                    )
                )
            ).all()
        )


@contextmanager
def statements_sent(app) -> Iterator[list[str]]:  # type: ignore[no-untyped-def]
    """Every SQL statement the application sends through SQLAlchemy inside the block."""
    sent: list[str] = []

    def record(_conn, _cursor, statement, *_: Any) -> None:  # type: ignore[no-untyped-def]
        sent.append(statement)

    engine = app.state.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)


async def test_a_loans_terms_go_from_its_application_through_a_collection_and_the_close(  # type: ignore[no-untyped-def]
    app, client, world, bearer, customer
) -> None:
    """The terms copied from the product version at application are the ones the collection's
    raw path reads (accrual: the receivable settled) and the close of business's SQL reads
    (the late fee charged, interest accrued); nothing rewrites them."""
    product = await _product(client, world, bearer, PENALISED_ACCRUAL_PRODUCT)
    version_terms = product["latest_version"]["terms"]
    today = today_india()
    # Installment 1 fell due a month ago and is unpaid; installment 2 falls due today.
    loan_id = await make_loan(
        app, client, bearer, world, product, disbursed_on=add_months(today, -2)
    )
    assert await _stored_terms(app, loan_id) == [version_terms]
    shown = await client.get(f"/api/loans/{loan_id}", headers=await bearer(world.manager_a))
    assert shown.status_code == 200 and shown.json()["frequency"] == "monthly"

    yesterday = today - dt.timedelta(days=1)
    closed = await cob_execute(app.state.db, business_date=yesterday)
    assert closed.counts["accrual"]["accrual_loans"] == 1
    async with transaction(app.state.db) as session:
        charged = await session.scalar(
            select(func.sum(LoanPenaltyCharge.amount)).where(
                LoanPenaltyCharge.loan_id == uuid.UUID(loan_id)
            )
        )
        receivable = await session.scalar(
            select(Loan.interest_receivable).where(Loan.id == uuid.UUID(loan_id))
        )
    assert charged == D("150.00")
    assert receivable is not None and receivable > 0

    # The collection reads the loan straight from the driver (`loan_locked`): its terms say
    # accrual, so the interest it collects settles the receivable first.
    first = (await installments_of(app, loan_id))[0]
    posted = await collect(
        client, await bearer(world.agent_a), loan_id, str(first.principal_due + first.interest_due)
    )
    assert posted.status_code == 201, posted.text
    async with transaction(app.state.db) as session:
        kinds = set(
            await session.scalars(
                select(LedgerAccount.kind)
                .join(JournalLine, JournalLine.account_id == LedgerAccount.id)
                .where(JournalLine.entry_id == posted.json()["collection"]["journal_entry_id"])
            )
        )
    assert AccountKind.INTEREST_RECEIVABLE in kinds
    await assert_consistent(app, loan_id)

    again = await cob_execute(app.state.db, business_date=today)
    assert again.counts["accrual"]["accrual_loans"] == 1
    assert await _stored_terms(app, loan_id) == [version_terms]
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None and loan.terms == version_terms
        assert loan.frequency == "monthly"


async def test_the_loan_lock_gives_the_loan_with_its_terms_in_one_statement(  # type: ignore[no-untyped-def]
    app, client, world, bearer, customer
) -> None:
    """Read fresh or over a copy the session holds, the locked loan's terms are there without
    another statement (an async session cannot load them on attribute access)."""
    product = await _product(client, world, bearer, PENALISED_ACCRUAL_PRODUCT)
    loan_id = uuid.UUID(await make_loan(app, client, bearer, world, product))
    manager = acting(world.manager_a)
    with statements_sent(app) as sent:
        async with transaction(app.state.db) as session:
            before = len(sent)
            loan = await loan_locked(session, manager, loan_id)
            assert loan.terms == product["latest_version"]["terms"]
            assert loan.frequency == "monthly"
            # `loan_locked` goes straight to the driver: SQLAlchemy saw no statement.
            assert len(sent) == before
    async with transaction(app.state.db) as session:
        held = await session.get(Loan, loan_id)
        assert held is not None
        locked = await loan_locked(session, manager, loan_id)
        assert locked is held and locked.terms == product["latest_version"]["terms"]


async def test_lists_reports_and_dashboards_never_read_the_terms(  # type: ignore[no-untyped-def]
    app, client, world, bearer, customer
) -> None:
    """The statements that scan loans (the lists, every report, the dashboards' sums) never
    join `loan_terms`: that is what keeping the terms out of the loans row is for. The list
    still answers the frequency (its own column). A statement that selects whole `Loan`
    objects gets their terms with them (the dashboards' five newest loans: a few rows, by
    primary key)."""
    product = await _product(client, world, bearer, PENALISED_ACCRUAL_PRODUCT)
    await make_loan(app, client, bearer, world, product)
    admin = await bearer(world.admin)
    index = await client.get("/api/reports", headers=admin)
    assert index.status_code == 200
    today = today_india().isoformat()
    paths = [
        "/api/loans",
        "/api/dashboard",
        "/api/reports/overdue",
        *(f"{r['url']}?from={today}&to={today}" for r in index.json()["reports"]),
    ]
    for path in paths:
        await app.state.cache.delete_pattern("*")
        with statements_sent(app) as sent:
            response = await client.get(path, headers=admin)
        assert response.status_code == 200, (path, response.text)
        joined = [s for s in sent if "loan_terms" in s]
        assert sent and not [s for s in joined if "LIMIT" not in s], path
        assert not [s for s in joined if "sum(" in s or "count(" in s], path
        assert not joined or path == "/api/dashboard", path
    listed = (await client.get("/api/loans", headers=admin)).json()["loans"]
    assert [loan["frequency"] for loan in listed] == ["monthly"]
    # An aggregate over the mapped class does not join them either (the joined load is for
    # statements that select the loan itself).
    total = select(func.sum(Loan.outstanding_principal)).where(Loan.branch_id == world.branch_a.id)
    assert "loan_terms" not in str(total.compile(dialect=postgresql.dialect()))
    assert "loan_terms" in str(select(Loan).compile(dialect=postgresql.dialect()))
