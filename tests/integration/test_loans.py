"""Loan products and the loan lifecycle through HTTP: apply, maker-checker, disburse (with its
schedule), ledger, audit, KFS, write-off; concurrency of disbursement; the bulk regeneration of
schedules."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import uuid
from decimal import Decimal
from uuid import uuid4

import pytest
from sqlalchemy import event, func, select, text

from namma.jobs import job_app
from namma.kit.db import transaction
from namma.loans.service import today_india
from namma.models import (
    AccountKind,
    AuditEntry,
    Customer,
    JournalEntry,
    JournalLine,
    KycStatus,
    LedgerAccount,
    Loan,
    LoanInstallment,
)

WEEKLY_PRODUCT = {
    "code": "JLG-52W",
    "name": "Joint liability, weekly",
    "terms": {
        "frequency": "weekly",
        "fees": [
            {"name": "processing", "timing": "disbursement", "basis": "percent", "value": "1"}
        ],
        "penalty": {"basis": "flat", "value": "50", "recurrence": "once", "grace_days": 3},
    },
    "limits": {
        "min_principal": "5000.00",
        "max_principal": "60000.00",
        "min_rate": "12",
        "max_rate": "26",
        "default_rate": "24",
        "min_installments": 12,
        "max_installments": 104,
    },
}


@pytest.fixture
async def product(client, world, bearer):  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/products", json=WEEKLY_PRODUCT, headers=await bearer(world.admin)
    )
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
async def ready_customer(app, world):  # type: ignore[no-untyped-def]
    """Customer A with verified KYC and a household income of 20,000 a month."""
    async with transaction(app.state.db) as session:
        customer = await session.get(Customer, world.customer_a.id)
        assert customer is not None
        customer.kyc_status = KycStatus.VERIFIED
        customer.household_monthly_income = Decimal("20000.00")
    return world.customer_a


async def _apply(client, bearer, user, customer, product, **overrides):  # type: ignore[no-untyped-def]
    overrides = {k: v for k, v in overrides.items() if v is not None}
    body = {
        "customer_id": str(customer.id),
        "product_id": product["id"],
        "amount": "40000.00",
        "installments": 52,
        **overrides,
    }
    return await client.post("/api/loans", json=body, headers=await bearer(user))


async def test_product_versions_keep_sanctioned_loans_on_theirs(
    client, world, bearer, product, ready_customer
) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    applied = (await _apply(client, bearer, world.agent_a, ready_customer, product)).json()
    revised = await client.post(
        f"/api/products/{product['id']}/versions",
        json={"terms": {**WEEKLY_PRODUCT["terms"], "fees": []}, "limits": WEEKLY_PRODUCT["limits"]},
        headers=admin,
    )
    assert revised.status_code == 201 and revised.json()["version"] == 2
    detail = (await client.get(f"/api/products/{product['id']}", headers=admin)).json()
    assert [v["version"] for v in detail["versions"]] == [2, 1]
    loan = (await client.get(f"/api/loans/{applied['id']}", headers=admin)).json()
    assert loan["product_version_id"] == product["latest_version"]["id"]
    assert [c["name"] for c in loan["charges"]] == ["processing"]


async def test_product_validation_names_the_field(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    admin = await bearer(world.admin)
    bad_limits = {**WEEKLY_PRODUCT, "limits": {**WEEKLY_PRODUCT["limits"], "min_principal": 5000}}
    response = await client.post("/api/products", json=bad_limits, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "limits.min_principal"
    prepayment = {
        **WEEKLY_PRODUCT,
        "terms": {**WEEKLY_PRODUCT["terms"], "prepayment_penalty_percent": "2"},
    }
    response = await client.post("/api/products", json=prepayment, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "terms.prepayment_penalty_percent"
    days = {**WEEKLY_PRODUCT, "terms": {"frequency": "days"}}
    response = await client.post("/api/products", json=days, headers=admin)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "terms.every"
    manager = await client.post(
        "/api/products", json=WEEKLY_PRODUCT, headers=await bearer(world.manager_a)
    )
    assert manager.status_code == 403


async def test_the_whole_story_from_application_to_schedule(
    app, client, world, bearer, product, ready_customer
) -> None:  # type: ignore[no-untyped-def]
    applied = await _apply(client, bearer, world.agent_a, ready_customer, product)
    assert applied.status_code == 201, applied.text
    loan = applied.json()
    year = today_india().year
    assert re.fullmatch(rf"BLR01-{year}-0000\d\d", loan["loan_number"])
    assert loan["status"] == "applied" and loan["annual_rate"] == "24.0000"

    # Maker-checker: the agent cannot approve (no permission); a manager who applied cannot either.
    assert (
        await client.post(f"/api/loans/{loan['id']}/approve", headers=await bearer(world.agent_a))
    ).status_code == 403
    other_branch = await client.post(
        f"/api/loans/{loan['id']}/approve", headers=await bearer(world.manager_b)
    )
    assert other_branch.status_code == 404
    # The KFS exists from approval on.
    assert (
        await client.get(f"/api/loans/{loan['id']}/kfs", headers=await bearer(world.manager_a))
    ).status_code == 409

    approved = await client.post(
        f"/api/loans/{loan['id']}/approve", headers=await bearer(world.manager_a)
    )
    assert approved.status_code == 200 and approved.json()["status"] == "approved"
    again = await client.post(
        f"/api/loans/{loan['id']}/approve", headers=await bearer(world.manager_a)
    )
    assert again.status_code == 409 and again.json()["error"]["details"]["status"] == "approved"

    kfs = (
        await client.get(f"/api/loans/{loan['id']}/kfs", headers=await bearer(world.agent_a))
    ).json()
    assert kfs["sanctioned_amount"] == "40000.00"
    assert kfs["charges"] == [{"name": "processing", "when": "disbursement", "amount": "400.00"}]
    assert kfs["net_disbursed"] == "39600.00"
    assert Decimal(kfs["apr_percent"]) > Decimal("24")  # the fee makes credit dearer than the rate
    assert len(kfs["schedule"]) == 52 and kfs["projected"] is True

    disbursed = await client.post(
        f"/api/loans/{loan['id']}/disburse",
        json={"disbursed_on": today_india().isoformat(), "method": "cash"},
        headers=await bearer(world.manager_a),
    )
    assert disbursed.status_code == 201, disbursed.text
    body = disbursed.json()
    assert body["status"] == "active"
    assert body["net_disbursed"] == "39600.00"
    assert body["outstanding_principal"] == "40000.00"
    assert body["schedule_status"] == "generated"

    # The schedule came with the disbursement; reading it gives the same rows.
    schedule = (
        await client.get(f"/api/loans/{loan['id']}/schedule", headers=await bearer(world.agent_a))
    ).json()
    assert schedule["projected"] is False and len(schedule["installments"]) == 52
    assert schedule["installments"] == body["schedule"]
    assert sum(Decimal(i["principal"]) for i in schedule["installments"]) == Decimal("40000.00")
    async with transaction(app.state.db) as session:
        rows = await session.scalar(
            select(func.count())
            .select_from(LoanInstallment)
            .where(LoanInstallment.loan_id == loan["id"])
        )
        assert rows == 52
        stored = await session.get(Loan, loan["id"])
        assert stored is not None
        assert stored.outstanding_interest == sum(
            Decimal(i["interest"]) for i in schedule["installments"]
        )
        # The journal: Dr portfolio 40000 / Cr branch cash 39600 / Cr fee income 400.
        lines = (
            await session.execute(
                select(LedgerAccount.kind, JournalLine.debit, JournalLine.credit)
                .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
                .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
                .where(JournalEntry.loan_id == loan["id"])
                .order_by(JournalLine.id)
            )
        ).all()
        assert sorted(lines) == sorted(
            [
                (AccountKind.LOAN_PORTFOLIO, Decimal("40000.00"), Decimal("0.00")),
                (AccountKind.BRANCH_CASH, Decimal("0.00"), Decimal("39600.00")),
                (AccountKind.FEE_INCOME, Decimal("0.00"), Decimal("400.00")),
            ]
        )
        actions = (
            await session.scalars(
                select(AuditEntry.action)
                .where(AuditEntry.entity_id == loan["id"])
                .order_by(AuditEntry.id)
            )
        ).all()
        assert actions == ["loan.applied", "loan.approved", "loan.disbursed"]

    kfs = (
        await client.get(
            f"/api/loans/{loan['id']}/kfs", headers=await bearer(world.customer_user_a)
        )
    ).json()
    assert kfs["projected"] is False
    # The customer sees their own loan, never another's.
    assert (
        await client.get(f"/api/loans/{loan['id']}", headers=await bearer(world.customer_user_b))
    ).status_code == 404


async def test_a_disbursement_writes_its_schedule_in_its_own_transaction(
    app, client, world, bearer, product, ready_customer
) -> None:  # type: ignore[no-untyped-def]
    loan = (await _apply(client, bearer, world.agent_a, ready_customer, product)).json()
    await client.post(f"/api/loans/{loan['id']}/approve", headers=await bearer(world.manager_a))
    disbursed = await client.post(
        f"/api/loans/{loan['id']}/disburse",
        json={"disbursed_on": today_india().isoformat(), "method": "upi", "reference": "UPI-991"},
        headers=await bearer(world.manager_a),
    )
    assert disbursed.status_code == 201, disbursed.text
    body = disbursed.json()
    assert body["status"] == "active" and body["schedule_status"] == "generated"
    assert [i["number"] for i in body["schedule"]] == list(range(1, 53))
    assert body["schedule"][0]["due_date"] == (today_india() + dt.timedelta(days=7)).isoformat()
    assert sum(Decimal(i["interest"]) for i in body["schedule"]) == Decimal(body["total_interest"])
    assert body["next_due_on"] == body["schedule"][0]["due_date"]
    assert Decimal(body["outstanding_interest"]) == Decimal(body["total_interest"])
    async with transaction(app.state.db) as session:
        # The loan's activation, its 52 installments and its journal entry were written by one
        # transaction: PostgreSQL stamps every row it writes with that transaction's id (xmin).
        writers = await session.scalar(
            text(
                "SELECT count(DISTINCT x) FROM ("
                " SELECT xmin::text AS x FROM loans WHERE id = :id"
                " UNION ALL SELECT xmin::text FROM loan_installments WHERE loan_id = :id"
                " UNION ALL SELECT xmin::text FROM journal_entries WHERE loan_id = :id) w"
            ),
            {"id": loan["id"]},
        )
        assert writers == 1
        rows = await session.scalar(
            select(func.count())
            .select_from(LoanInstallment)
            .where(LoanInstallment.loan_id == loan["id"])
        )
        assert rows == 52


async def test_reading_a_loan_never_writes(
    app, client, world, bearer, product, ready_customer
) -> None:  # type: ignore[no-untyped-def]
    """No GET writes: its statements only read, and the loan's rows are as they were."""
    manager = await bearer(world.manager_a)
    loan = (await _apply(client, bearer, world.agent_a, ready_customer, product)).json()
    await client.post(f"/api/loans/{loan['id']}/approve", headers=manager)
    projected = await client.get(f"/api/loans/{loan['id']}/schedule", headers=manager)
    assert projected.json()["projected"] is True
    await client.post(
        f"/api/loans/{loan['id']}/disburse",
        json={"disbursed_on": today_india().isoformat(), "method": "cash"},
        headers=manager,
    )
    stamp = text(
        "SELECT string_agg(xmin::text, ',' ORDER BY n) FROM ("
        " SELECT 0 AS n, xmin FROM loans WHERE id = :id"
        " UNION ALL SELECT number, xmin FROM loan_installments WHERE loan_id = :id) r"
    )
    async with transaction(app.state.db) as session:
        before = await session.scalar(stamp, {"id": loan["id"]})
    statements: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    # Logged in before watching (a login writes its session).
    callers = [await bearer(u) for u in (world.agent_a, world.manager_a, world.customer_user_a)]
    engine = app.state.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        for path in ("", "/schedule", "/kfs", "/preclosure", "/penalties", "/waivers"):
            for headers in callers:
                got = await client.get(f"/api/loans/{loan['id']}{path}", headers=headers)
                assert got.status_code == 200, (path, got.text)
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert statements  # the reads went through the engine ...
    writes = [
        s for s in statements if re.match(r"\s*(INSERT|UPDATE|DELETE)", s) or "FOR UPDATE" in s
    ]
    assert writes == []  # ... and none of them wrote
    async with transaction(app.state.db) as session:
        assert await session.scalar(stamp, {"id": loan["id"]}) == before


async def test_the_api_reads_a_loan_in_one_or_two_statements_without_orm_objects(
    app, client, world, bearer, product, ready_customer
) -> None:  # type: ignore[no-untyped-def]
    """The lean read path (D-170): the list, a loan and its schedule each send one statement
    through the engine (two for a loan not in the cache: its scope, then the loan with its
    charges; three for a schedule not written yet: with its branch's calendar), whoever asks,
    and load no ORM object but a projected schedule's loan. (The
    caller's own query goes straight to the driver: `principal_authenticate`.)"""
    from namma.kit.db import Base

    manager = await bearer(world.manager_a)
    loan = (await _apply(client, bearer, world.agent_a, ready_customer, product)).json()
    await client.post(f"/api/loans/{loan['id']}/approve", headers=manager)
    callers = [await bearer(u) for u in (world.agent_a, world.manager_a, world.customer_user_a)]
    admin = await bearer(world.admin)
    statements: list[str] = []
    loaded: list[object] = []

    def sent(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        statements.append(statement)

    def load(target, context) -> None:  # type: ignore[no-untyped-def]
        loaded.append(target)

    async def read(path: str, headers: dict[str, str]) -> tuple[int, bool]:
        statements.clear()
        loaded.clear()
        got = await client.get(path, headers=headers)
        assert got.status_code == 200, (path, got.text)
        return len(statements), bool(loaded)

    engine = app.state.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", sent)
    event.listen(Base, "load", load, propagate=True)
    try:
        url = f"/api/loans/{loan['id']}"
        # Projected by the money core: the scope, the loan, its branch's calendar (D-186).
        assert await read(f"{url}/schedule", manager) == (3, True)
        await client.post(
            f"{url}/disburse",
            json={"disbursed_on": today_india().isoformat(), "method": "cash"},
            headers=manager,
        )
        await app.state.cache.delete_pattern("*")
        assert await read(url, admin) == (2, False)  # the scope, the loan with its charges
        for headers in [*callers, admin]:
            assert await read("/api/loans", headers) == (1, False)
            assert await read(f"/api/loans?customer_id={ready_customer.id}", headers) == (1, False)
            assert await read(url, headers) == (1, False)  # cached: the scope only
            assert await read(f"{url}/schedule", headers) == (1, False)
    finally:
        event.remove(engine, "before_cursor_execute", sent)
        event.remove(Base, "load", load)
    listed = (await client.get(f"/api/loans?customer_id={ready_customer.id}", headers=admin)).json()
    assert listed["loans"][0]["customer"]["name"] == ready_customer.name
    assert listed["loans"][0]["frequency"] == "weekly"
    detail = (await client.get(url, headers=admin)).json()
    assert [c["name"] for c in detail["charges"]] == ["processing"]
    assert Decimal(detail["charges"][0]["amount"]) == Decimal("400.00")
    schedule = (await client.get(f"{url}/schedule", headers=admin)).json()
    assert [i["number"] for i in schedule["installments"]] == list(range(1, 53))


async def test_schedules_are_regenerated_in_bulk_by_a_job(
    app, client, world, bearer, product, ready_customer
) -> None:  # type: ignore[no-untyped-def]
    """`loans:schedules_regenerate`: the loans whose terms changed get their schedule again
    (audited); unchanged ones and a second run change nothing; a loan with payments is skipped
    (moving payments means replaying collections) and says why."""
    from namma.audit.service import AuditActor
    from namma.loans.service import loan_schedules_regenerate
    from namma.loans.tasks import schedules_regenerate_defer

    manager = await bearer(world.manager_a)
    ids = []
    for amount in ("10000.00", "12000.00", "14000.00"):
        loan = (
            await _apply(client, bearer, world.agent_a, ready_customer, product, amount=amount)
        ).json()
        await client.post(f"/api/loans/{loan['id']}/approve", headers=manager)
        disbursed = await client.post(
            f"/api/loans/{loan['id']}/disburse",
            json={"disbursed_on": today_india().isoformat(), "method": "cash"},
            headers=manager,
        )
        assert disbursed.status_code == 201, disbursed.text
        ids.append(loan["id"])
    changed, paid, untouched = ids
    # The terms of two loans change (a rescheduling to a lower rate, say); one has a payment.
    async with transaction(app.state.db) as session:
        for loan_id in (changed, paid):
            row = await session.get(Loan, loan_id)
            assert row is not None
            row.annual_rate = Decimal("12.0000")
    collected = await client.post(
        "/api/collections",
        json={"loan_id": paid, "amount": "50.00"},
        headers={**await bearer(world.agent_a), "Idempotency-Key": str(uuid4())},
    )
    assert collected.status_code == 201, collected.text
    before = (await client.get(f"/api/loans/{changed}/schedule", headers=manager)).json()

    async with transaction(app.state.db) as session:
        await schedules_regenerate_defer(session, [uuid.UUID(i) for i in ids])
    await job_app.run_worker_async(wait=False, install_signal_handlers=False)

    after = (await client.get(f"/api/loans/{changed}/schedule", headers=manager)).json()
    assert len(after["installments"]) == 52
    assert sum(Decimal(i["principal"]) for i in after["installments"]) == Decimal("10000.00")
    interest_before = sum(Decimal(i["interest"]) for i in before["installments"])
    interest_after = sum(Decimal(i["interest"]) for i in after["installments"])
    assert interest_after < interest_before  # 12 % instead of 24 %
    detail = (await client.get(f"/api/loans/{changed}", headers=manager)).json()
    assert Decimal(detail["total_interest"]) == interest_after
    assert Decimal(detail["outstanding_interest"]) == interest_after
    async with transaction(app.state.db) as session:
        audited = (
            await session.scalars(
                select(AuditEntry.entity_id).where(AuditEntry.action == "loan.schedule_regenerated")
            )
        ).all()
        assert audited == [changed]
        # Idempotent: run again (a retry), nothing changes.
        again = await loan_schedules_regenerate(
            session, loan_ids=[uuid.UUID(i) for i in ids], actor=AuditActor.system()
        )
        assert again.regenerated == []
        assert sorted(again.unchanged) == sorted([uuid.UUID(changed), uuid.UUID(untouched)])
        assert list(again.skipped) == [uuid.UUID(paid)]
        assert "payments" in again.skipped[uuid.UUID(paid)]


async def test_applications_are_checked_against_limits_and_income(
    client, world, bearer, product, ready_customer
) -> None:  # type: ignore[no-untyped-def]
    too_big = await _apply(
        client, bearer, world.agent_a, ready_customer, product, amount="90000.00"
    )
    assert too_big.status_code == 422 and too_big.json()["error"]["details"][0]["field"] == "amount"
    float_money = await _apply(client, bearer, world.agent_a, ready_customer, product, amount=40000)
    assert float_money.status_code == 422
    rate = await _apply(client, bearer, world.agent_a, ready_customer, product, annual_rate="30")
    assert rate.status_code == 422 and rate.json()["error"]["details"][0]["field"] == "annual_rate"
    # 60,000 over 12 weeks is ~5,400 a week: far above half of 20,000 a month.
    burden = await _apply(
        client, bearer, world.agent_a, ready_customer, product, amount="60000.00", installments=12
    )
    assert burden.status_code == 422
    assert "household income" in burden.json()["error"]["message"]
    # An agent cannot apply for a customer who is not theirs.
    other = await _apply(client, bearer, world.agent_a2, ready_customer, product)
    assert other.status_code == 404


async def test_reject_withdraw_undo_and_illegal_transitions(
    client, world, bearer, product, ready_customer
) -> None:  # type: ignore[no-untyped-def]
    manager = await bearer(world.manager_a)
    loan = (await _apply(client, bearer, world.agent_a, ready_customer, product)).json()
    no_reason = await client.post(
        f"/api/loans/{loan['id']}/reject", json={"reason": " "}, headers=manager
    )
    assert no_reason.status_code == 422
    rejected = await client.post(
        f"/api/loans/{loan['id']}/reject", json={"reason": "Income not verified"}, headers=manager
    )
    assert rejected.json()["status"] == "rejected"
    disburse = await client.post(
        f"/api/loans/{loan['id']}/disburse",
        json={"disbursed_on": today_india().isoformat(), "method": "cash"},
        headers=manager,
    )
    assert (
        disburse.status_code == 409 and disburse.json()["error"]["details"]["status"] == "rejected"
    )

    second = (
        await _apply(client, bearer, world.agent_a, ready_customer, product, amount="10000.00")
    ).json()
    assert (
        await client.post(f"/api/loans/{second['id']}/approve", headers=manager)
    ).status_code == 200
    undone = await client.post(f"/api/loans/{second['id']}/approval/undo", headers=manager)
    assert undone.json()["status"] == "applied"
    withdrawn = await client.post(
        f"/api/loans/{second['id']}/withdraw", headers=await bearer(world.agent_a)
    )
    assert withdrawn.json()["status"] == "withdrawn"
    assert (
        await client.post(f"/api/loans/{second['id']}/withdraw", headers=manager)
    ).status_code == 409


async def test_a_manager_who_applied_cannot_approve(
    client, world, bearer, product, ready_customer
) -> None:  # type: ignore[no-untyped-def]
    loan = (await _apply(client, bearer, world.manager_a, ready_customer, product)).json()
    own = await client.post(
        f"/api/loans/{loan['id']}/approve", headers=await bearer(world.manager_a)
    )
    assert own.status_code == 403
    assert (
        await client.post(f"/api/loans/{loan['id']}/approve", headers=await bearer(world.admin))
    ).status_code == 200


async def test_two_concurrent_disbursements_make_one_active_loan_and_one_journal(
    app, client, world, bearer, product, ready_customer
) -> None:  # type: ignore[no-untyped-def]
    loan = (await _apply(client, bearer, world.agent_a, ready_customer, product)).json()
    await client.post(f"/api/loans/{loan['id']}/approve", headers=await bearer(world.manager_a))
    body = {"disbursed_on": today_india().isoformat(), "method": "cash"}
    first, second = await asyncio.gather(
        client.post(
            f"/api/loans/{loan['id']}/disburse", json=body, headers=await bearer(world.manager_a)
        ),
        client.post(
            f"/api/loans/{loan['id']}/disburse", json=body, headers=await bearer(world.admin)
        ),
    )
    assert sorted([first.status_code, second.status_code]) == [201, 409]
    async with transaction(app.state.db) as session:
        journals = await session.scalar(
            select(func.count()).select_from(JournalEntry).where(JournalEntry.loan_id == loan["id"])
        )
        assert journals == 1


async def test_write_off_moves_principal_to_expense(
    app, client, world, bearer, product, ready_customer
) -> None:  # type: ignore[no-untyped-def]
    loan = (await _apply(client, bearer, world.agent_a, ready_customer, product)).json()
    await client.post(f"/api/loans/{loan['id']}/approve", headers=await bearer(world.manager_a))
    await client.post(
        f"/api/loans/{loan['id']}/disburse",
        json={"disbursed_on": today_india().isoformat(), "method": "cash"},
        headers=await bearer(world.manager_a),
    )
    # Managers need the grant; admins may.
    denied = await client.post(
        f"/api/loans/{loan['id']}/write-off",
        json={"reason": "Migrated"},
        headers=await bearer(world.manager_a),
    )
    assert denied.status_code == 403
    written = await client.post(
        f"/api/loans/{loan['id']}/write-off",
        json={"reason": "Migrated away"},
        headers=await bearer(world.admin),
    )
    assert written.status_code == 200 and written.json()["status"] == "written_off"
    async with transaction(app.state.db) as session:
        balance = await session.scalar(
            select(func.sum(JournalLine.debit - JournalLine.credit))
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .where(JournalLine.loan_id == loan["id"])
            .where(LedgerAccount.kind == AccountKind.LOAN_PORTFOLIO)
        )
        assert balance == Decimal("0.00")


async def test_top_up_pays_the_old_loan_off_with_its_interest(
    app, client, world, bearer, product, ready_customer
) -> None:  # type: ignore[no-untyped-def]
    from namma.ledger.queries import ledger_check

    manager = await bearer(world.manager_a)
    old = (
        await _apply(client, bearer, world.agent_a, ready_customer, product, amount="20000.00")
    ).json()
    await client.post(f"/api/loans/{old['id']}/approve", headers=manager)
    fortnight_ago = (today_india() - dt.timedelta(days=14)).isoformat()
    disbursed = await client.post(
        f"/api/loans/{old['id']}/disburse",
        json={"disbursed_on": fortnight_ago, "method": "cash"},
        headers=manager,
    )
    assert disbursed.status_code == 201, disbursed.text

    top_up = await _apply(
        client,
        bearer,
        world.agent_a,
        ready_customer,
        product,
        amount="50000.00",
        refinances_id=old["id"],
    )
    assert top_up.status_code == 201, top_up.text
    second = await _apply(
        client, bearer, world.agent_a, ready_customer, product, refinances_id=old["id"]
    )
    assert second.status_code == 409  # one top-up at a time
    await client.post(f"/api/loans/{top_up.json()['id']}/approve", headers=manager)
    done = await client.post(
        f"/api/loans/{top_up.json()['id']}/disburse",
        json={"disbursed_on": today_india().isoformat(), "method": "cash"},
        headers=manager,
    )
    assert done.status_code == 201, done.text

    old_now = (await client.get(f"/api/loans/{old['id']}", headers=manager)).json()
    assert old_now["status"] == "refinanced"
    assert old_now["outstanding_principal"] == "0.00" and old_now["outstanding_interest"] == "0.00"
    schedule = (await client.get(f"/api/loans/{old['id']}/schedule", headers=manager)).json()
    assert {i["status"] for i in schedule["installments"]} == {"paid"}

    async with transaction(app.state.db) as session:
        entry = await session.scalar(
            select(JournalEntry).where(JournalEntry.loan_id == top_up.json()["id"])
        )
        assert entry is not None
        lines = (
            await session.execute(
                select(
                    LedgerAccount.kind, JournalLine.debit, JournalLine.credit, JournalLine.loan_id
                )
                .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
                .where(JournalLine.entry_id == entry.id)
            )
        ).all()
        by_kind = {(kind, str(loan_id)): (debit, credit) for kind, debit, credit, loan_id in lines}
        old_principal = by_kind[(AccountKind.LOAN_PORTFOLIO, old["id"])][1]
        interest = by_kind[(AccountKind.INTEREST_INCOME, old["id"])][1]
        # Two weeks of interest on 20,000 at 24 % are carried, not dropped (the origin lost it).
        assert interest > Decimal("0.00")
        # Nothing was collected on the old loan: all of its principal leaves the portfolio.
        assert old_principal == Decimal("20000.00")
        cash = by_kind[(AccountKind.BRANCH_CASH, top_up.json()["id"])][1]
        fee = by_kind[(AccountKind.FEE_INCOME, top_up.json()["id"])][1]
        assert fee == Decimal("500.00")  # 1 % of 50,000
        assert cash == Decimal("50000.00") - fee - old_principal - interest
        assert (await ledger_check(session)).ok


async def test_a_top_up_uses_the_advance_held_on_the_old_loan(
    app, client, world, bearer, product, ready_customer
) -> None:  # type: ignore[no-untyped-def]
    """5000.00 paid on the old loan, more than has fallen due: the excess is held as an advance,
    and the top-up's payoff of the old loan uses it (Dr advances): that much less is kept from
    the payout."""
    from namma.ledger.queries import ledger_check

    manager = await bearer(world.manager_a)
    old = (
        await _apply(client, bearer, world.agent_a, ready_customer, product, amount="20000.00")
    ).json()
    await client.post(f"/api/loans/{old['id']}/approve", headers=manager)
    fortnight_ago = (today_india() - dt.timedelta(days=14)).isoformat()
    disbursed = await client.post(
        f"/api/loans/{old['id']}/disburse",
        json={"disbursed_on": fortnight_ago, "method": "cash"},
        headers=manager,
    )
    assert disbursed.status_code == 201, disbursed.text
    paid = await client.post(
        "/api/collections",
        json={"loan_id": old["id"], "amount": "5000.00"},
        headers={**await bearer(world.agent_a), "Idempotency-Key": str(uuid4())},
    )
    assert paid.status_code == 201, paid.text
    advance = Decimal(paid.json()["collection"]["advance"])
    assert advance > 0
    top_up = await _apply(
        client,
        bearer,
        world.agent_a,
        ready_customer,
        product,
        amount="50000.00",
        refinances_id=old["id"],
    )
    await client.post(f"/api/loans/{top_up.json()['id']}/approve", headers=manager)
    done = await client.post(
        f"/api/loans/{top_up.json()['id']}/disburse",
        json={"disbursed_on": today_india().isoformat(), "method": "cash"},
        headers=manager,
    )
    assert done.status_code == 201, done.text
    old_now = (await client.get(f"/api/loans/{old['id']}", headers=manager)).json()
    assert old_now["status"] == "refinanced" and old_now["advance_balance"] == "0.00"
    assert old_now["total_collected"] != "0.00"
    async with transaction(app.state.db) as session:
        entry = await session.scalar(
            select(JournalEntry).where(JournalEntry.loan_id == top_up.json()["id"])
        )
        assert entry is not None
        lines = (
            await session.execute(
                select(
                    LedgerAccount.kind, JournalLine.debit, JournalLine.credit, JournalLine.loan_id
                )
                .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
                .where(JournalLine.entry_id == entry.id)
            )
        ).all()
        by_kind = {(kind, str(loan_id)): (debit, credit) for kind, debit, credit, loan_id in lines}
        assert by_kind[(AccountKind.CUSTOMER_ADVANCES, old["id"])] == (advance, Decimal("0.00"))
        nothing = (Decimal("0.00"), Decimal("0.00"))
        old_principal = by_kind[(AccountKind.LOAN_PORTFOLIO, old["id"])][1]
        interest = by_kind.get((AccountKind.INTEREST_INCOME, old["id"]), nothing)[1]
        cash = by_kind[(AccountKind.BRANCH_CASH, top_up.json()["id"])][1]
        fee = by_kind[(AccountKind.FEE_INCOME, top_up.json()["id"])][1]
        assert cash == Decimal("50000.00") - fee - (old_principal + interest - advance)
        check = await ledger_check(session)
        assert check.ok, check.problems()


async def _set_purpose_behind_the_apps_back(app, loan_id: str, purpose: str) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    async with transaction(app.state.db) as session:
        await session.execute(update(Loan).where(Loan.id == loan_id).values(purpose=purpose))


async def test_loan_reads_are_cached_and_invalidated_by_mutations(
    app, client, world, bearer, product, ready_customer
) -> None:  # type: ignore[no-untyped-def]
    manager = await bearer(world.manager_a)
    loan = (await _apply(client, bearer, world.agent_a, ready_customer, product)).json()
    first = (await client.get(f"/api/loans/{loan['id']}", headers=manager)).json()
    assert first["purpose"] is None
    await _set_purpose_behind_the_apps_back(app, loan["id"], "changed in SQL")
    cached = (await client.get(f"/api/loans/{loan['id']}", headers=manager)).json()
    assert cached["purpose"] is None  # served from the cache
    # Scope is still checked on a cached loan.
    assert (
        await client.get(f"/api/loans/{loan['id']}", headers=await bearer(world.manager_b))
    ).status_code == 404
    await client.post(f"/api/loans/{loan['id']}/approve", headers=manager)
    fresh = (await client.get(f"/api/loans/{loan['id']}", headers=manager)).json()
    assert fresh["status"] == "approved" and fresh["purpose"] == "changed in SQL"


async def test_customer_detail_is_cached_and_invalidated_by_customer_and_loan_changes(
    app, client, world, bearer, product, ready_customer
) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    manager = await bearer(world.manager_a)
    url = f"/api/customers/{ready_customer.id}"
    assert (await client.get(url, headers=manager)).json()["loans"] == []
    async with transaction(app.state.db) as session:
        await session.execute(
            update(Customer)
            .where(Customer.id == ready_customer.id)
            .values(village="Changed in SQL")
        )
    assert (await client.get(url, headers=manager)).json()["village"] == "Hosur"  # cached
    assert (
        await client.get(url, headers=await bearer(world.manager_b))
    ).status_code == 404  # scope still checked

    # A loan change shows at once on the customer ...
    loan = (await _apply(client, bearer, world.agent_a, ready_customer, product)).json()
    detail = (await client.get(url, headers=manager)).json()
    assert [item["loan_number"] for item in detail["loans"]] == [loan["loan_number"]]
    assert detail["village"] == "Changed in SQL"
    # ... and so does a change of the customer.
    patched = await client.patch(url, json={"village": "Hoskote"}, headers=manager)
    assert patched.status_code == 200, patched.text
    assert (await client.get(url, headers=manager)).json()["village"] == "Hoskote"


async def test_two_app_processes_stay_consistent_through_redis(settings, world, redis_url) -> None:  # type: ignore[no-untyped-def]
    import httpx
    from asgi_lifespan import LifespanManager

    from namma.app import create_app
    from tests.integration.conftest import bearer_for

    shared = settings.model_copy(update={"redis_url": redis_url})
    first, second = create_app(shared), create_app(shared)
    async with LifespanManager(first), LifespanManager(second):
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=a), base_url="http://localhost")
            for a in (first, second)
        ]
        async with clients[0] as one, clients[1] as two:
            admin = await bearer_for(first, world.admin)
            created = await one.post(
                "/api/products",
                json=WEEKLY_PRODUCT | {"code": f"R{uuid4().hex[:6].upper()}"},
                headers=admin,
            )
            async with transaction(first.state.db) as session:
                customer = await session.get(Customer, world.customer_a.id)
                assert customer is not None
                customer.kyc_status = KycStatus.VERIFIED
                customer.household_monthly_income = Decimal("20000.00")
            loan = (
                await one.post(
                    "/api/loans",
                    json={
                        "customer_id": str(world.customer_a.id),
                        "product_id": created.json()["id"],
                        "amount": "10000.00",
                        "installments": 26,
                    },
                    headers=await bearer_for(first, world.agent_a),
                )
            ).json()
            manager = await bearer_for(first, world.manager_a)
            assert (await one.get(f"/api/loans/{loan['id']}", headers=manager)).json()[
                "status"
            ] == "applied"
            # The other process approves; the first process's next read is fresh.
            assert (
                await two.post(f"/api/loans/{loan['id']}/approve", headers=manager)
            ).status_code == 200
            assert (await one.get(f"/api/loans/{loan['id']}", headers=manager)).json()[
                "status"
            ] == "approved"


def acting(user):  # type: ignore[no-untyped-def]
    """A Principal for ``user``, for calling services directly in tests."""
    import uuid as uuid_module

    from namma.auth.deps import Principal
    from namma.auth.permissions import permissions_for

    return Principal(
        user_id=user.id,
        role=user.role,
        branch_id=user.branch_id,
        permissions=permissions_for(user.role),
        session_id=uuid_module.uuid4(),
        via_cookie=False,
        must_change_password=False,
        ip="127.0.0.1",
        user_agent="test",
        request_id=None,
    )
