"""Holidays and working days (issue 22, point 1): the calendar API, schedules at disbursement on
the branch's calendar, and the story — a holiday added after disbursement moves next week's
installment of every affected loan through the EMI Gen job, and the close of business, PAR and
the customers' notices follow. Dates are worked out in the test from today (India)."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from namma.cob.runner import cob_execute
from namma.jobs import job_app
from namma.kit.db import transaction
from namma.loans.service import today_india
from namma.models import (
    AuditEntry,
    Customer,
    KycStatus,
    Language,
    Loan,
    LoanInstallment,
    Notification,
    PortfolioSnapshot,
)
from tests.integration.test_loans import (  # noqa: F401  (fixtures)
    WEEKLY_PRODUCT,
    product,
    ready_customer,
)

D = Decimal
WEEK = dt.timedelta(days=7)
DAY = dt.timedelta(days=1)


@pytest.fixture
async def previous_day_product(client, world, bearer) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The weekly product, but a due date on a holiday goes to the working day before."""
    body = {
        **WEEKLY_PRODUCT,
        "code": "JLG-PREV",
        "terms": {**WEEKLY_PRODUCT["terms"], "non_working_day": "previous-working-day"},
    }
    response = await client.post("/api/products", json=body, headers=await bearer(world.admin))
    assert response.status_code == 201, response.text
    return dict(response.json())


@pytest.fixture
async def customer_b(app, world) -> Customer:  # type: ignore[no-untyped-def]
    """Customer B (branch MYS01), ready to borrow, who reads Kannada."""
    async with transaction(app.state.db) as session:
        customer = await session.get(Customer, world.customer_b.id)
        assert customer is not None
        customer.kyc_status = KycStatus.VERIFIED
        customer.household_monthly_income = D("20000.00")
        customer.preferred_language = Language.KN.value
    return world.customer_b  # type: ignore[no-any-return]


async def _disbursed(  # type: ignore[no-untyped-def]
    client, bearer, *, agent, manager, customer, product, amount: str = "10000.00"
) -> str:
    applied = await client.post(
        "/api/loans",
        json={
            "customer_id": str(customer.id),
            "product_id": product["id"],
            "amount": amount,
            "installments": 12,
        },
        headers=await bearer(agent),
    )
    assert applied.status_code == 201, applied.text
    loan_id = str(applied.json()["id"])
    headers = await bearer(manager)
    assert (await client.post(f"/api/loans/{loan_id}/approve", headers=headers)).status_code == 200
    paid_out = await client.post(
        f"/api/loans/{loan_id}/disburse",
        json={"disbursed_on": today_india().isoformat(), "method": "cash"},
        headers=headers,
    )
    assert paid_out.status_code == 201, paid_out.text
    return loan_id


async def _dates(app, loan_id: str) -> list[dt.date]:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        return list(
            (
                await session.scalars(
                    select(LoanInstallment.due_date)
                    .where(LoanInstallment.loan_id == uuid.UUID(loan_id))
                    .order_by(LoanInstallment.number)
                )
            ).all()
        )


async def _run_jobs() -> None:
    await job_app.run_worker_async(wait=False, install_signal_handlers=False)


async def test_the_calendar_api_checks_who_and_what(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    admin, manager = await bearer(world.admin), await bearer(world.manager_a)
    today = today_india()
    branch = str(world.branch_a.id)
    # A Manager may not change the institution's calendar; another branch's is unknown to them.
    body = {"on_date": (today + WEEK).isoformat(), "name": "Ugadi"}
    nope = await client.post("/api/calendar/holidays", json=body, headers=manager)
    assert nope.status_code == 403
    other = {**body, "branch_id": str(world.branch_b.id)}
    assert (
        await client.post("/api/calendar/holidays", json=other, headers=manager)
    ).status_code == 404
    # Bad input: a past date, an empty name, a duplicate (409), every weekday closed.
    past = {"on_date": (today - DAY).isoformat(), "name": "Gone", "branch_id": branch}
    refused = await client.post("/api/calendar/holidays", json=past, headers=manager)
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["field"] == "on_date"
    blank = {**body, "name": "   ", "branch_id": branch}
    assert (
        await client.post("/api/calendar/holidays", json=blank, headers=manager)
    ).status_code == 422
    made = await client.post("/api/calendar/holidays", json=body, headers=admin)
    assert made.status_code == 201, made.text
    assert made.json()["branch_id"] is None and made.json()["loans_to_move"] == 0
    again = await client.post("/api/calendar/holidays", json=body, headers=admin)
    assert again.status_code == 409
    own = {**body, "branch_id": branch, "name": "Karaga"}
    assert (
        await client.post("/api/calendar/holidays", json=own, headers=manager)
    ).status_code == 201
    week = {
        "branch_id": branch,
        "non_working_weekdays": [
            "monday",
            "tuesday",
            "wednesday",
            "thursday",
            "friday",
            "saturday",
            "sunday",
        ],
    }
    full = await client.put("/api/calendar/working-week", json=week, headers=manager)
    assert full.status_code == 422
    sundays = await client.put(
        "/api/calendar/working-week", json={"non_working_weekdays": ["sunday"]}, headers=admin
    )
    assert sundays.status_code == 200, sundays.text
    # The branch's calendar: the institution's Sunday and holiday, and its own holiday.
    seen = (await client.get(f"/api/calendar?branch_id={branch}", headers=manager)).json()
    assert seen["non_working_weekdays"] == ["sunday"] and seen["own_weekdays"] is False
    assert sorted(h["name"] for h in seen["holidays"]) == ["Karaga", "Ugadi"]
    # Its own weekdays replace the institution's; null follows the institution's again.
    await client.put(
        "/api/calendar/working-week",
        json={"branch_id": branch, "non_working_weekdays": ["friday"]},
        headers=manager,
    )
    seen = (await client.get(f"/api/calendar?branch_id={branch}", headers=manager)).json()
    assert seen["non_working_weekdays"] == ["friday"] and seen["own_weekdays"] is True
    # An agent reads the calendar, changes nothing.
    agent = await bearer(world.agent_a)
    assert (await client.get(f"/api/calendar?branch_id={branch}", headers=agent)).status_code == 200
    assert (await client.post("/api/calendar/holidays", json=own, headers=agent)).status_code == 403
    # Every change is audited.
    async with transaction(app.state.db) as session:
        actions = (
            await session.scalars(
                select(AuditEntry.action).where(AuditEntry.action.like("calendar.%"))
            )
        ).all()
    assert sorted(actions) == [
        "calendar.holiday_created",
        "calendar.holiday_created",
        "calendar.weekdays_set",
        "calendar.weekdays_set",
    ]


async def test_a_disbursement_uses_the_branchs_calendar(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, ready_customer
) -> None:
    today = today_india()
    manager = await bearer(world.manager_a)
    # The branch declares a holiday a week from today, where installment 1 of a weekly loan
    # disbursed today falls: the disbursement writes it the day after.
    holiday = today + WEEK
    made = await client.post(
        "/api/calendar/holidays",
        json={"branch_id": str(world.branch_a.id), "on_date": holiday.isoformat(), "name": "Ugadi"},
        headers=manager,
    )
    assert made.status_code == 201
    loan_id = await _disbursed(
        client,
        bearer,
        agent=world.agent_a,
        manager=world.manager_a,
        customer=ready_customer,
        product=product,
    )
    dates = await _dates(app, loan_id)
    assert dates[0] == holiday + DAY
    assert dates[1:] == [today + WEEK * k for k in range(2, 13)]
    kfs = (await client.get(f"/api/loans/{loan_id}/kfs", headers=manager)).json()
    assert kfs["first_due_on"] == (holiday + DAY).isoformat()
    # The branch closes on the weekday of the disbursement: every later loan's dates move on.
    weekday = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"][
        today.weekday()
    ]
    await client.put(
        "/api/calendar/working-week",
        json={"branch_id": str(world.branch_a.id), "non_working_weekdays": [weekday]},
        headers=manager,
    )
    await _run_jobs()
    assert await _dates(app, loan_id) == [today + WEEK * k + DAY for k in range(1, 13)]


async def test_story_a_holiday_added_after_disbursement_moves_next_weeks_installment(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, previous_day_product, ready_customer, customer_b
) -> None:
    """Three weekly loans disbursed today: two in BLR01 (the product's rule: next working day,
    and one on a product whose rule is the working day before), one in MYS01. BLR01 declares a
    holiday on next week's due date. The EMI Gen job moves the two BLR01 installments, once,
    audited, with a notice to the customer; MYS01's stays. The close of business the day after
    the holiday finds the MYS01 loan a day late (PAR 1–30), the next-day loan due that day and
    the previous-day loan two days late; the branches' snapshots say so."""
    today = today_india()
    holiday = today + WEEK
    a_next = await _disbursed(
        client,
        bearer,
        agent=world.agent_a,
        manager=world.manager_a,
        customer=ready_customer,
        product=product,
    )
    a_prev = await _disbursed(
        client,
        bearer,
        agent=world.agent_a,
        manager=world.manager_a,
        customer=ready_customer,
        product=previous_day_product,
        amount="12000.00",
    )
    b_loan = await _disbursed(
        client,
        bearer,
        agent=world.agent_b,
        manager=world.manager_b,
        customer=customer_b,
        product=product,
    )
    regular = [today + WEEK * k for k in range(1, 13)]
    for loan_id in (a_next, a_prev, b_loan):
        assert await _dates(app, loan_id) == regular

    made = await client.post(
        "/api/calendar/holidays",
        json={
            "branch_id": str(world.branch_a.id),
            "on_date": holiday.isoformat(),
            "name": "Karaga",
        },
        headers=await bearer(world.manager_a),
    )
    assert made.status_code == 201, made.text
    assert made.json()["loans_to_move"] == 2  # MYS01's loan is not its business
    await _run_jobs()

    assert await _dates(app, a_next) == [holiday + DAY, *regular[1:]]
    assert await _dates(app, a_prev) == [holiday - DAY, *regular[1:]]
    assert await _dates(app, b_loan) == regular
    manager = await bearer(world.manager_a)
    detail = (await client.get(f"/api/loans/{a_next}", headers=manager)).json()
    assert detail["next_due_on"] == (holiday + DAY).isoformat()
    # The schedule the customer sees carries the new date; the amounts stay.
    schedule = (await client.get(f"/api/loans/{a_next}/schedule", headers=manager)).json()
    first = schedule["installments"][0]
    assert first["due_date"] == (holiday + DAY).isoformat()
    b_first = (
        await client.get(f"/api/loans/{b_loan}/schedule", headers=await bearer(world.admin))
    ).json()["installments"][0]
    assert (first["principal"], first["interest"]) == (b_first["principal"], b_first["interest"])

    async with transaction(app.state.db) as session:
        moved = (
            await session.execute(
                select(AuditEntry.entity_id, AuditEntry.after).where(
                    AuditEntry.action == "loan.due_dates_moved"
                )
            )
        ).all()
        assert sorted(m.entity_id for m in moved) == sorted([a_next, a_prev])
        assert all(m.after["holiday"] == "Karaga" for m in moved)
        notices = (
            await session.scalars(
                select(Notification).where(Notification.template == "due_date_moved")
            )
        ).all()
    assert sorted(str(n.loan_id) for n in notices) == sorted([a_next, a_prev])
    by_loan = {str(n.loan_id): n.body for n in notices}
    day = "%d-%m-%Y"
    assert holiday.strftime(day) in by_loan[a_next]
    assert (holiday + DAY).strftime(day) in by_loan[a_next] and "Karaga" in by_loan[a_next]
    assert (holiday - DAY).strftime(day) in by_loan[a_prev]

    # A retry of the job (or a second run) changes nothing and sends nothing again.
    from namma.audit.service import AuditActor
    from namma.loans.service import loan_due_dates_move

    async with transaction(app.state.db) as session:
        again = await loan_due_dates_move(
            session,
            loan_ids=[uuid.UUID(a_next), uuid.UUID(a_prev), uuid.UUID(b_loan)],
            actor=AuditActor.system(),
            holiday="Karaga",
        )
    assert again.regenerated == {} and len(again.unchanged) == 3

    # The close of business of the day after the holiday (run as of that day).
    after = holiday + DAY
    await cob_execute(app.state.db, business_date=after, today=after)
    async with transaction(app.state.db) as session:
        loans = {
            str(loan.id): loan
            for loan in await session.scalars(
                select(Loan).where(Loan.id.in_([uuid.UUID(i) for i in (a_next, a_prev, b_loan)]))
            )
        }
        snapshots = {
            s.branch_id: s
            for s in await session.scalars(
                select(PortfolioSnapshot)
                .where(PortfolioSnapshot.business_date == after)
                .where(PortfolioSnapshot.agent_id.is_(None))
            )
        }
        installments = {
            str(i.loan_id): i
            for i in await session.scalars(
                select(LoanInstallment).where(LoanInstallment.number == 1)
            )
        }
    assert loans[a_next].days_past_due == 0
    assert loans[a_prev].days_past_due == 2  # due the day before the holiday, unpaid
    assert loans[b_loan].days_past_due == 1  # MYS01 worked that day: it is late
    assert installments[a_next].status.value == "due"
    assert installments[a_prev].status.value == "overdue"
    assert installments[b_loan].status.value == "overdue"
    branch_a, branch_b = snapshots[world.branch_a.id], snapshots[world.branch_b.id]
    # PAR 1–30: the outstanding principal of the late loans, nothing of the moved next-day one.
    assert branch_a.par_1_30 == loans[a_prev].outstanding_principal == D("12000.00")
    assert branch_b.par_1_30 == loans[b_loan].outstanding_principal == D("10000.00")
    # The day's demand in BLR01 is the moved installment, in full.
    first_a = installments[a_next]
    assert branch_a.due_amount == first_a.principal_due + first_a.interest_due + first_a.fee_due
    assert branch_b.due_amount == D("0.00")

    # The holiday removed (it is still ahead in real time): both installments go back.
    holiday_id = made.json()["id"]
    removed = await client.delete(
        f"/api/calendar/holidays/{holiday_id}", headers=await bearer(world.manager_a)
    )
    assert removed.status_code == 200, removed.text
    await _run_jobs()
    assert await _dates(app, a_next) == regular
    assert await _dates(app, a_prev) == regular


@pytest.fixture
async def meeting_day_product(client, world, bearer) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """The weekly (group) product, but a due date on a holiday waits for the next meeting."""
    body = {
        **WEEKLY_PRODUCT,
        "code": "JLG-MEET",
        "terms": {**WEEKLY_PRODUCT["terms"], "non_working_day": "next-meeting-day"},
    }
    response = await client.post("/api/products", json=body, headers=await bearer(world.admin))
    assert response.status_code == 201, response.text
    return dict(response.json())


async def test_a_holiday_on_a_group_meeting_puts_two_installments_on_the_next_meeting(  # type: ignore[no-untyped-def]
    app, client, world, bearer, meeting_day_product, ready_customer
) -> None:
    """A weekly group loan on the next-meeting-day rule (D-214) disbursed today; next week's
    meeting is then declared a holiday. The EMI Gen job puts installment 1 on the meeting
    after (two weeks from today) beside installment 2, amounts unchanged; that day's collection
    sheet asks for both, nothing is late in between, and the close of business that day counts
    both as the day's demand."""
    today = today_india()
    holiday = today + WEEK
    loan_id = await _disbursed(
        client,
        bearer,
        agent=world.agent_a,
        manager=world.manager_a,
        customer=ready_customer,
        product=meeting_day_product,
    )
    regular = [today + WEEK * k for k in range(1, 13)]
    assert await _dates(app, loan_id) == regular
    rows_before = await _rows(app, loan_id)

    made = await client.post(
        "/api/calendar/holidays",
        json={"branch_id": str(world.branch_a.id), "on_date": holiday.isoformat(), "name": "Ugadi"},
        headers=await bearer(world.manager_a),
    )
    assert made.status_code == 201, made.text
    assert made.json()["loans_to_move"] == 1
    await _run_jobs()

    meeting = today + 2 * WEEK
    assert await _dates(app, loan_id) == [meeting, meeting, *regular[2:]]
    rows_after = await _rows(app, loan_id)
    assert [r[2:] for r in rows_after] == [r[2:] for r in rows_before]  # amounts stay
    async with transaction(app.state.db) as session:
        moved = await session.scalar(
            select(AuditEntry.after)
            .where(AuditEntry.action == "loan.due_dates_moved")
            .where(AuditEntry.entity_id == loan_id)
        )
    assert moved is not None and moved["due_dates"] == {"1": meeting.isoformat()}

    def sheet_line(sheet: dict[str, Any]) -> list[dict[str, Any]]:
        return [
            loan
            for group in sheet["groups"]
            for person in group["customers"]
            for loan in person["loans"]
            if loan["loan_id"] == loan_id
        ]

    agent = await bearer(world.agent_a)
    on_holiday = await client.get(
        "/api/collection-sheet", params={"date": holiday.isoformat()}, headers=agent
    )
    assert on_holiday.status_code == 200, on_holiday.text
    assert sheet_line(on_holiday.json()) == []  # nothing falls due on the holiday
    at_meeting = await client.get(
        "/api/collection-sheet", params={"date": meeting.isoformat()}, headers=agent
    )
    [line] = sheet_line(at_meeting.json())
    first, second = rows_after[0], rows_after[1]
    # (number, due date, principal, interest, fee): what each installment asks.
    both = first[2] + first[3] + first[4] + second[2] + second[3] + second[4]
    assert [(i["installment_number"], i["due_date"]) for i in line["installments"]] == [
        (1, meeting.isoformat()),
        (2, meeting.isoformat()),
    ]
    assert (line["due_today"], line["overdue"], line["expected"]) == (str(both), "0.00", str(both))

    # The close of business the day after the holiday finds nothing late; at the meeting, the
    # day's demand is both installments.
    await cob_execute(app.state.db, business_date=holiday + DAY, today=holiday + DAY)
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None and loan.days_past_due == 0
    await cob_execute(app.state.db, business_date=meeting, today=meeting)
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None and loan.days_past_due == 0
        snapshot = await session.scalar(
            select(PortfolioSnapshot)
            .where(PortfolioSnapshot.business_date == meeting)
            .where(PortfolioSnapshot.branch_id == world.branch_a.id)
            .where(PortfolioSnapshot.agent_id.is_(None))
        )
    assert snapshot is not None and snapshot.due_amount == both


# --- restructured loans (D-208) ------------------------------------------------------------------


async def _restructured(  # type: ignore[no-untyped-def]
    client, bearer, world, loan_id: str, next_due_on: dt.date
) -> dict[str, Any]:
    """The loan restructured to a new next due date: asked by the Manager, approved by the
    Admin. Returns the loan's preview."""
    asked = await client.post(
        "/api/restructurings",
        json={
            "loan_id": loan_id,
            "kind": "next-due-date",
            "next_due_on": next_due_on.isoformat(),
            "reason": "Crop failure",
        },
        headers=await bearer(world.manager_a),
    )
    assert asked.status_code == 201, asked.text
    approved = await client.post(
        f"/api/restructurings/{asked.json()['id']}/approve", headers=await bearer(world.admin)
    )
    assert approved.status_code == 200, approved.text
    return dict(asked.json()["preview"]["loans"][loan_id])


async def _rows(app, loan_id: str) -> list[tuple[int, dt.date, Decimal, Decimal, Decimal]]:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        return [
            (i.number, i.due_date, i.principal_due, i.interest_due, i.fee_due)
            for i in await session.scalars(
                select(LoanInstallment)
                .where(LoanInstallment.loan_id == uuid.UUID(loan_id))
                .order_by(LoanInstallment.number)
            )
        ]


async def test_a_holiday_on_a_restructured_date_moves_that_date_only(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, ready_customer
) -> None:
    """A weekly loan restructured to fall due 10 days from today (then weekly from there): a
    holiday later declared on its second restructured date moves that installment to the day
    after (the product's rule), and nothing else — not back to the dates of the original
    terms — and the restructured amounts stay."""
    today = today_india()
    loan_id = await _disbursed(
        client,
        bearer,
        agent=world.agent_a,
        manager=world.manager_a,
        customer=ready_customer,
        product=product,
    )
    first = today + dt.timedelta(days=10)
    await _restructured(client, bearer, world, loan_id, first)
    restructured = await _rows(app, loan_id)
    assert [r[1] for r in restructured] == [first + WEEK * k for k in range(12)]

    holiday = first + WEEK
    made = await client.post(
        "/api/calendar/holidays",
        json={"branch_id": str(world.branch_a.id), "on_date": holiday.isoformat(), "name": "Ugadi"},
        headers=await bearer(world.manager_a),
    )
    assert made.status_code == 201, made.text
    assert made.json()["loans_to_move"] == 1
    await _run_jobs()

    after = await _rows(app, loan_id)
    assert [r[1] for r in after] == [
        first,
        holiday + DAY,
        *(first + WEEK * k for k in range(2, 12)),
    ]
    assert [(r[0], *r[2:]) for r in after] == [(r[0], *r[2:]) for r in restructured]
    async with transaction(app.state.db) as session:
        moved = (
            await session.scalars(
                select(AuditEntry.after).where(
                    AuditEntry.action == "loan.due_dates_moved",
                    AuditEntry.entity_id == loan_id,
                )
            )
        ).all()
        notices = (
            await session.scalars(
                select(Notification.body).where(
                    Notification.template == "due_date_moved",
                    Notification.loan_id == uuid.UUID(loan_id),
                )
            )
        ).all()
    assert [m["due_dates"] for m in moved] == [{"2": (holiday + DAY).isoformat()}]
    assert len(notices) == 1 and (holiday + DAY).strftime("%d-%m-%Y") in notices[0]


async def test_a_weekday_closed_leaves_a_restructured_loans_dates_alone(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, ready_customer
) -> None:
    """The branch closes on the weekday the loans were paid out on. A loan on its original
    terms moves every installment to the day after; a loan restructured onto another weekday
    keeps every date (none is on the closed day) and its customer hears nothing."""
    today = today_india()
    plain, restructured = [
        await _disbursed(
            client,
            bearer,
            agent=world.agent_a,
            manager=world.manager_a,
            customer=ready_customer,
            product=product,
        )
        for _ in range(2)
    ]
    first = today + dt.timedelta(days=10)
    await _restructured(client, bearer, world, restructured, first)
    before = await _rows(app, restructured)
    weekday = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"][
        today.weekday()
    ]
    changed = await client.put(
        "/api/calendar/working-week",
        json={"branch_id": str(world.branch_a.id), "non_working_weekdays": [weekday]},
        headers=await bearer(world.manager_a),
    )
    assert changed.status_code == 200, changed.text
    await _run_jobs()

    assert await _dates(app, plain) == [today + WEEK * k + DAY for k in range(1, 13)]
    assert await _rows(app, restructured) == before
    async with transaction(app.state.db) as session:
        told = await session.scalar(
            select(func.count()).where(
                Notification.template == "due_date_moved",
                Notification.loan_id == uuid.UUID(restructured),
            )
        )
    assert told == 0


async def test_a_restructuring_moves_its_new_dates_off_holidays(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, ready_customer
) -> None:
    """A holiday already declared on the third date a restructuring would give: the preview
    and the installments written have that installment on the next working day, the others on
    their weekly dates."""
    today = today_india()
    loan_id = await _disbursed(
        client,
        bearer,
        agent=world.agent_a,
        manager=world.manager_a,
        customer=ready_customer,
        product=product,
    )
    first = today + dt.timedelta(days=10)
    holiday = first + 2 * WEEK
    made = await client.post(
        "/api/calendar/holidays",
        json={"branch_id": str(world.branch_a.id), "on_date": holiday.isoformat(), "name": "Holi"},
        headers=await bearer(world.manager_a),
    )
    assert made.status_code == 201, made.text
    await _run_jobs()
    preview = await _restructured(client, bearer, world, loan_id, first)
    expected = [first, first + WEEK, holiday + DAY, *(first + WEEK * k for k in range(3, 12))]
    assert [dt.date.fromisoformat(r["due_date"]) for r in preview["rows"]] == expected
    assert await _dates(app, loan_id) == expected


# --- previews (D-209) ----------------------------------------------------------------------------


async def test_the_application_preview_is_the_kfs_schedule_on_a_holiday(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, ready_customer
) -> None:
    """The branch's holiday falls on the first due date of a weekly loan paid out today: the
    agent's preview and the Key Facts Statement of the loan applied for both put installment 1
    on the day after, row for row the same schedule."""
    from namma.loans.service import loan_application_preview

    today = today_india()
    holiday = today + WEEK
    made = await client.post(
        "/api/calendar/holidays",
        json={"branch_id": str(world.branch_a.id), "on_date": holiday.isoformat(), "name": "Ugadi"},
        headers=await bearer(world.manager_a),
    )
    assert made.status_code == 201, made.text
    async with transaction(app.state.db) as session:
        preview = await loan_application_preview(
            session,
            customer_id=ready_customer.id,
            product_id=uuid.UUID(product["id"]),
            amount=D("10000.00"),
            annual_rate=None,
            installments=12,
        )
    applied = await client.post(
        "/api/loans",
        json={
            "customer_id": str(ready_customer.id),
            "product_id": product["id"],
            "amount": "10000.00",
            "installments": 12,
        },
        headers=await bearer(world.agent_a),
    )
    assert applied.status_code == 201, applied.text
    loan_id = applied.json()["id"]
    manager = await bearer(world.manager_a)
    assert (await client.post(f"/api/loans/{loan_id}/approve", headers=manager)).status_code == 200
    kfs = (await client.get(f"/api/loans/{loan_id}/kfs", headers=manager)).json()
    shown = [
        (r.number, r.due_date.isoformat(), str(r.principal), str(r.interest), str(r.total))
        for r in preview.schedule.rows
    ]
    assert shown[0][1] == (holiday + DAY).isoformat()
    assert shown == [
        (r["number"], r["due_date"], r["principal"], r["interest"], r["total"])
        for r in kfs["schedule"]
    ]
    assert kfs["first_due_on"] == (holiday + DAY).isoformat()


async def test_the_product_preview_uses_the_institutions_calendar(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product
) -> None:
    """An institution-wide holiday on the first due date moves it in the product page's
    preview; a branch's own holiday on the second does not (a product belongs to no branch);
    the page says which calendar it shows."""
    from namma.models import LoanProductVersion
    from namma.products.service import schedule_preview

    today = today_india()
    admin = await bearer(world.admin)
    for body in (
        {"on_date": (today + WEEK).isoformat(), "name": "Republic Day"},
        {
            "on_date": (today + 2 * WEEK).isoformat(),
            "name": "Karaga",
            "branch_id": str(world.branch_a.id),
        },
    ):
        made = await client.post("/api/calendar/holidays", json=body, headers=admin)
        assert made.status_code == 201, made.text
    async with transaction(app.state.db) as session:
        version = await session.scalar(
            select(LoanProductVersion).where(
                LoanProductVersion.product_id == uuid.UUID(product["id"])
            )
        )
        assert version is not None
        schedule = await schedule_preview(
            session,
            version,
            principal=D("10000.00"),
            annual_rate=D("24"),
            installments=12,
            disbursed_on=today,
        )
    assert [r.due_date for r in schedule.rows[:3]] == [
        today + WEEK + DAY,
        today + 2 * WEEK,
        today + 3 * WEEK,
    ]
    from tests.integration.test_pages import sign_in

    await sign_in(app, client, world.admin)
    page = await client.get(
        f"/office/products/{product['id']}/preview",
        params={"principal": "10000.00", "annual_rate": "24", "installments": "12"},
    )
    assert page.status_code == 200, page.text
    assert "its due dates on the institution" in page.text


# --- the back-office page -------------------------------------------------------------------


async def test_the_calendar_page_adds_and_removes_holidays_and_sets_weekdays(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, ready_customer
) -> None:
    from tests.integration.test_pages import csrf_of, is_html, sign_in

    today = today_india()
    loan_id = await _disbursed(
        client,
        bearer,
        agent=world.agent_a,
        manager=world.manager_a,
        customer=ready_customer,
        product=product,
    )
    await sign_in(app, client, world.manager_a)
    page = await client.get("/office/calendar")
    assert page.status_code == 200 and is_html(page)
    assert "BLR01" in page.text and "No holiday ahead." in page.text
    assert 'id="q-branch"' not in page.text  # a Manager has their branch's calendar only
    token = csrf_of(page.text)
    # Bad input: the reasons by field, nothing kept.
    bad = await client.post(
        "/office/calendar/holidays",
        data={"csrf_token": token, "on_date": (today - DAY).isoformat(), "name": "Old"},
    )
    assert bad.status_code == 422 and 'id="f-on_date-error"' in bad.text
    assert "A holiday must be today or later" in bad.text
    # A holiday on next week's due date: the loan moves (the job), the page says so.
    added = await client.post(
        "/office/calendar/holidays",
        data={"csrf_token": token, "on_date": (today + WEEK).isoformat(), "name": "Karaga"},
    )
    assert added.status_code == 303 and added.headers["location"].endswith("moved=1")
    shown = await client.get(added.headers["location"])
    assert "1 loan is being moved" in shown.text and "Karaga" in shown.text
    await _run_jobs()
    assert (await _dates(app, loan_id))[0] == today + WEEK + DAY
    # The weekdays: every one closed is refused; Sunday closed is kept.
    days = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
    every = {"csrf_token": token, "weekday": days}
    refused = await client.post("/office/calendar/weekdays", data=every)
    assert refused.status_code == 422
    assert "At least one weekday must be a working day" in refused.text
    saved = await client.post(
        "/office/calendar/weekdays", data={"csrf_token": token, "weekday": "sunday"}
    )
    assert saved.status_code == 303
    assert 'value="sunday" checked' in (await client.get("/office/calendar")).text
    # Removing the holiday puts the installment back.
    async with transaction(app.state.db) as session:
        from namma.models import Holiday

        holiday_id = await session.scalar(select(Holiday.id))
    removed = await client.post(
        f"/office/calendar/holidays/{holiday_id}/delete", data={"csrf_token": token}
    )
    assert removed.status_code == 303
    await _run_jobs()
    first = (await _dates(app, loan_id))[0]
    expected = today + WEEK if (today + WEEK).weekday() != 6 else today + WEEK + DAY
    assert first == expected
    # In Kannada.
    switched = await client.post(
        "/language", data={"csrf_token": token, "lang": "kn", "next": "/office/calendar"}
    )
    assert switched.status_code == 303
    kn = await client.get("/office/calendar")
    assert kn.status_code == 200 and "ಕೆಲಸದ ಕ್ಯಾಲೆಂಡರ್" in kn.text and "ಭಾನುವಾರ" in kn.text
    client.cookies.delete("lang")
    # The Admin chooses whose calendar; an agent may not open the page.
    await sign_in(app, client, world.admin)
    admin_page = await client.get(f"/office/calendar?branch_id={world.branch_b.id}")
    assert admin_page.status_code == 200 and "MYS01" in admin_page.text
    await sign_in(app, client, world.agent_a)
    assert (await client.get("/office/calendar")).status_code == 403


async def test_the_product_page_and_form_carry_the_rule(  # type: ignore[no-untyped-def]
    app, client, world, previous_day_product
) -> None:
    from tests.integration.test_pages import sign_in

    await sign_in(app, client, world.admin)
    page = await client.get(f"/office/products/{previous_day_product['id']}")
    assert page.status_code == 200
    assert 'id="product-holiday-rule">Moves to the working day before<' in page.text
    form = await client.get(f"/office/products/{previous_day_product['id']}/versions/new")
    assert '<option value="previous-working-day" selected>' in form.text
    assert '<option value="extend-term">' in form.text
    assert '<option value="next-meeting-day">' in form.text
    # A new version that skips holiday due dates (extends the term): compared, then made.
    from tests.integration.test_pages import csrf_of

    values = {
        "csrf_token": csrf_of(form.text),
        "frequency": "weekly",
        "interest_method": "declining",
        "amortization": "equal-installments",
        "excess": "advance",
        "due_on_holiday": "extend-term",
        "processing_fee_percent": "1",
        "min_principal": "5000.00",
        "max_principal": "60000.00",
        "min_rate": "12",
        "default_rate": "24",
        "max_rate": "26",
        "min_installments": "12",
        "max_installments": "104",
    }
    url = f"/office/products/{previous_day_product['id']}/versions/new"
    compared = await client.post(url, data=values)
    assert compared.status_code == 200
    assert '<th scope="row">A due date on a holiday' in compared.text
    made = await client.post(url, data={**values, "confirmed": "yes"})
    assert made.status_code == 303, made.text
    async with transaction(app.state.db) as session:
        from namma.models import LoanProductVersion

        terms = await session.scalar(
            select(LoanProductVersion.terms)
            .where(LoanProductVersion.product_id == uuid.UUID(previous_day_product["id"]))
            .where(LoanProductVersion.version == 2)
        )
    assert terms is not None
    assert (terms["non_working_day"], terms["extend_term"]) == ("next-working-day", True)
