"""Accrual accounting (issue 22 item 3) against real PostgreSQL: a product on accrual basis, the
close of business accruing interest daily into interest receivable, collections settling it,
the NPA reversal, `namma ledger check` covering the receivable, and cash-basis products left
exactly as they were.

The expected accruals are computed here from the installments' stored interest and dates with
plain Decimal arithmetic (interest × days elapsed / days of the period, rounded half-up,
cumulative), not by calling the code under test.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import func, select

from namma.cob.runner import cob_execute
from namma.finance import add_months
from namma.kit.db import transaction
from namma.ledger.queries import ledger_check
from namma.loans.service import today_india
from namma.models import (
    AccountKind,
    AuditEntry,
    JournalEntry,
    JournalLine,
    LedgerAccount,
    Loan,
    LoanInstallment,
)
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    MONTHLY_PRODUCT,
    assert_consistent,
    collect,
    customer,
    installments_of,
    make_loan,
    product,
    settings,
)

D = Decimal
ZERO = D("0.00")
ACCRUAL_PRODUCT = {
    **MONTHLY_PRODUCT,
    "code": "IGL-MA",
    "name": "Individual, monthly, accrual",
    "terms": {"frequency": "monthly", "interest_accounting": "accrual"},
}
WEEKLY_ACCRUAL_PRODUCT = {
    **MONTHLY_PRODUCT,
    "code": "JLG-WA",
    "name": "Group, weekly, accrual",
    "terms": {"frequency": "weekly", "interest_accounting": "accrual"},
    "limits": {**MONTHLY_PRODUCT["limits"], "max_installments": 52},
}


def earned(row: LoanInstallment, on: dt.date) -> Decimal:
    """Interest of ``row`` earned by the end of ``on``: pro rata for the days elapsed in its
    period, rounded to the paisa half-up (the rule of docs/money.md §12, written out again)."""
    interest = row.interest_due - row.interest_waived
    days = (row.due_date - row.period_start).days
    elapsed = min(max((on - row.period_start).days, 0), days)
    return (interest * elapsed / days).quantize(D("0.01"), rounding=ROUND_HALF_UP)


def earned_loan(rows: list[LoanInstallment], on: dt.date) -> Decimal:
    return sum((earned(r, on) for r in rows), ZERO)


async def _product(client, world, bearer, body):  # type: ignore[no-untyped-def]
    response = await client.post("/api/products", json=body, headers=await bearer(world.admin))
    assert response.status_code == 201, response.text
    return response.json()


async def _loan(app, loan_id: str) -> Loan:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None
        return loan


async def _entries(app, loan_id: str, kind_prefix: str = "interest.") -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The loan's journal entries of a kind (by prefix), each with its lines by account kind."""
    async with transaction(app.state.db) as session:
        rows = (
            await session.execute(
                select(
                    JournalEntry.id,
                    JournalEntry.entry_date,
                    JournalEntry.kind,
                    LedgerAccount.kind,
                    JournalLine.debit,
                    JournalLine.credit,
                    JournalLine.loan_id,
                )
                .join(JournalLine, JournalLine.entry_id == JournalEntry.id)
                .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
                .where(JournalEntry.loan_id == uuid.UUID(loan_id))
                .where(JournalEntry.kind.like(f"{kind_prefix}%"))
                .order_by(JournalEntry.id, JournalLine.id)
            )
        ).all()
    entries: dict[int, dict[str, Any]] = {}
    for entry_id, on, kind, account, debit, credit, tag in rows:
        entry = entries.setdefault(entry_id, {"date": on, "kind": kind, "lines": {}})
        entry["lines"][account.value] = (debit, credit)
        assert tag == uuid.UUID(loan_id)  # every line carries its loan
    return list(entries.values())


async def _entry_lines(app, entry_id: int) -> list[tuple[str, Decimal, Decimal]]:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        rows = await session.execute(
            select(LedgerAccount.kind, JournalLine.debit, JournalLine.credit)
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .where(JournalLine.entry_id == entry_id)
        )
        return sorted((k.value, d, c) for k, d, c in rows)


async def _ledger_ok(app) -> None:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        result = await ledger_check(session)
    assert result.ok, result.problems()


async def _interest_income(client, bearer, world, date_from: dt.date, date_to: dt.date) -> Decimal:  # type: ignore[no-untyped-def]
    """The income statement's interest income for the period (the report, through the API)."""
    response = await client.get(
        "/api/reports/income-statement",
        params={"from": date_from.isoformat(), "to": date_to.isoformat()},
        headers=await bearer(world.admin),
    )
    assert response.status_code == 200, response.text
    rows = [r for r in response.json()["rows"] if r["account"] == "interest income"]
    return D(rows[0]["amount"]) if rows else ZERO


async def test_a_month_of_daily_close_of_business_accrues_the_installment_interest_exactly(
    app, client, world, bearer, customer
) -> None:  # type: ignore[no-untyped-def]
    """The acceptance story: a monthly accrual loan, the close of business run every day of
    its first period. Each day accrues the day's share (cumulative rounding: the paise land on
    the days they make up), the days add up to installment 1's interest exactly, the income
    statement for the month is that sum, and running a day again accrues nothing more."""
    accrual = await _product(client, world, bearer, ACCRUAL_PRODUCT)
    assert accrual["latest_version"]["terms"]["interest_accounting"] == "accrual"
    today = today_india()
    disbursed_on = add_months(today, -2)
    loan_id = await make_loan(app, client, bearer, world, accrual, disbursed_on=disbursed_on)
    rows = await installments_of(app, loan_id)
    first = rows[0]
    assert first.period_start == disbursed_on and first.interest_due == D("1000.00")
    days = (first.due_date - first.period_start).days

    for n in range(1, days + 1):
        on = disbursed_on + dt.timedelta(days=n)
        outcome = await cob_execute(app.state.db, business_date=on)
        assert outcome.counts["accrual"]["accrual_loans"] == 1
    entries = await _entries(app, loan_id)
    assert [e["kind"] for e in entries] == ["interest.accrual"] * days
    expected = [
        (D(1000) * n / days).quantize(D("0.01"), ROUND_HALF_UP)
        - (D(1000) * (n - 1) / days).quantize(D("0.01"), ROUND_HALF_UP)
        for n in range(1, days + 1)
    ]
    for n, (entry, amount) in enumerate(zip(entries, expected, strict=True), start=1):
        assert entry["date"] == disbursed_on + dt.timedelta(days=n)
        assert entry["lines"] == {
            AccountKind.INTEREST_RECEIVABLE.value: (amount, ZERO),
            AccountKind.INTEREST_INCOME.value: (ZERO, amount),
        }
    assert sum(expected, ZERO) == D("1000.00")
    # Not every day is the same: the paise of rounding are spread over the month.
    assert len(set(expected)) == 2
    loan = await _loan(app, loan_id)
    assert loan.interest_receivable == D("1000.00")
    month = (disbursed_on + dt.timedelta(days=1), first.due_date)
    assert await _interest_income(client, bearer, world, *month) == D("1000.00")
    await _ledger_ok(app)
    # Audited per branch and day, with what moved.
    async with transaction(app.state.db) as session:
        audited = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.action == "interest.accrued")
                .order_by(AuditEntry.id)
            )
        ).all()
    assert [(a.entity_type, a.entity_id) for a in audited] == [
        ("branch", str(loan.branch_id))
    ] * days
    assert [a.after["interest.accrual"]["amount"] for a in audited] == [str(e) for e in expected]

    # The same day again (forced): nothing more is accrued.
    again = await cob_execute(app.state.db, business_date=first.due_date, force=True)
    assert again.counts["accrual"]["entries"] == {}
    assert len(await _entries(app, loan_id)) == days
    assert (await _loan(app, loan_id)).interest_receivable == D("1000.00")


async def test_a_collection_settles_the_receivable_and_a_reversal_restores_it(
    app, client, world, bearer, customer, product
) -> None:  # type: ignore[no-untyped-def]
    """Installment 1 falls due today; the close of business ran yesterday. Paying the EMI
    today credits interest receivable with what was accrued and income only with the rest
    (today's share); the next close of business has nothing left to accrue for the period.
    Reversing the collection puts the receivable back, and the close of business then
    recognises the whole period's interest. The cash-basis loan beside it posts nothing at the
    close of business and its collection's journal is the cash-basis one."""
    accrual = await _product(client, world, bearer, ACCRUAL_PRODUCT)
    today = today_india()
    loan_id = await make_loan(app, client, bearer, world, accrual)
    cash_id = await make_loan(app, client, bearer, world, product)
    rows = await installments_of(app, loan_id)
    first = rows[0]
    assert first.due_date == today
    yesterday = today - dt.timedelta(days=1)
    outcome = await cob_execute(app.state.db, business_date=yesterday)
    assert outcome.counts["accrual"]["accrual_loans"] == 1  # the cash loan is not looked at
    accrued = earned(first, yesterday)
    assert ZERO < accrued < first.interest_due
    assert (await _loan(app, loan_id)).interest_receivable == accrued
    assert await _entries(app, cash_id) == []
    await _ledger_ok(app)

    agent = await bearer(world.agent_a)
    emi = first.principal_due + first.interest_due
    posted = await collect(client, agent, loan_id, str(emi), on=today)
    assert posted.status_code == 201, posted.text
    collection = posted.json()["collection"]
    assert D(collection["interest"]) == first.interest_due  # the allocation is unchanged
    assert await _entry_lines(app, collection["journal_entry_id"]) == sorted(
        [
            (AccountKind.AGENT_CASH.value, emi, ZERO),
            (AccountKind.LOAN_PORTFOLIO.value, ZERO, first.principal_due),
            (AccountKind.INTEREST_RECEIVABLE.value, ZERO, accrued),
            (AccountKind.INTEREST_INCOME.value, ZERO, first.interest_due - accrued),
        ]
    )
    assert (await _loan(app, loan_id)).interest_receivable == ZERO
    await assert_consistent(app, loan_id)
    # The collection register shows the interest collected (receivable settled + income) and
    # its reconciliation with the ledger holds.
    register = await client.get(
        "/api/reports/collections",
        params={"from": today.isoformat(), "to": today.isoformat()},
        headers=await bearer(world.admin),
    )
    assert register.status_code == 200, register.text
    assert [D(r["interest"]) for r in register.json()["rows"]] == [first.interest_due]
    assert all(r["ok"] for r in register.json()["reconciliation"])

    # The cash-basis loan: the journal of a cash-basis collection, nothing receivable.
    cash_first = (await installments_of(app, cash_id))[0]
    cash_emi = cash_first.principal_due + cash_first.interest_due
    cash_posted = await collect(client, agent, cash_id, str(cash_emi), on=today)
    assert cash_posted.status_code == 201, cash_posted.text
    assert await _entry_lines(app, cash_posted.json()["collection"]["journal_entry_id"]) == sorted(
        [
            (AccountKind.AGENT_CASH.value, cash_emi, ZERO),
            (AccountKind.LOAN_PORTFOLIO.value, ZERO, cash_first.principal_due),
            (AccountKind.INTEREST_INCOME.value, ZERO, cash_first.interest_due),
        ]
    )

    # Today's close of business: the period's interest is all collected; nothing to accrue.
    closed = await cob_execute(app.state.db, business_date=today)
    assert closed.counts["accrual"]["entries"] == {}
    assert await _entries(app, cash_id) == []
    await _ledger_ok(app)

    # Reversing the collection: the receivable settled comes back, then the close of business
    # recognises the rest of the period's interest (income in all: the installment's interest).
    reversed_ = await client.post(
        f"/api/collections/{collection['id']}/reverse",
        json={"reason": "cheque bounced"},
        headers=await bearer(world.admin),
    )
    assert reversed_.status_code == 200, reversed_.text
    assert (await _loan(app, loan_id)).interest_receivable == accrued
    await _ledger_ok(app)
    rerun = await cob_execute(app.state.db, business_date=today, force=True)
    assert rerun.counts["accrual"]["entries"] == {
        "interest.accrual": {"loans": 1, "amount": str(first.interest_due - accrued)}
    }
    assert (await _loan(app, loan_id)).interest_receivable == first.interest_due
    await _ledger_ok(app)
    async with transaction(app.state.db) as session:
        income = await session.scalar(
            select(func.sum(JournalLine.credit - JournalLine.debit))
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .where(LedgerAccount.kind == AccountKind.INTEREST_INCOME)
            .where(JournalLine.loan_id == uuid.UUID(loan_id))
        )
    assert income == first.interest_due  # accrued, collected, reversed, recognised: once


async def _memo(app, loan_id: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """The loan's entries that move its interest in suspense (the close's and collections')."""
    return [
        e
        for e in await _entries(app, loan_id, kind_prefix="")
        if AccountKind.INTEREST_SUSPENSE.value in e["lines"]
    ]


async def test_an_npa_stops_accrual_and_reverses_what_was_accrued(
    app, client, world, bearer, customer
) -> None:  # type: ignore[no-untyped-def]
    """A weekly accrual loan that pays nothing until it is NPA. The close of business runs every
    day of a month in which the loan becomes NPA (91 days past due): until then each day
    accrues; on that day the whole receivable is reversed out of income
    (`interest.npa_reversal`) and goes into suspense, with the day's interest; afterwards each
    day's interest goes into suspense instead of income. Interest the borrower pays while NPA is
    income when collected and comes out of suspense. Over the month: income = Σ daily accruals
    − the reversal + the interest collected; suspense = the reversal + Σ the daily interest
    while NPA − the interest collected (D-202, D-215)."""
    weekly = await _product(client, world, bearer, WEEKLY_ACCRUAL_PRODUCT)
    today = today_india()
    disbursed_on = today - dt.timedelta(days=7 * 17)
    loan_id = await make_loan(
        app,
        client,
        bearer,
        world,
        weekly,
        amount="10000.00",
        installments=40,
        disbursed_on=disbursed_on,
    )
    rows = await installments_of(app, loan_id)
    first_due = rows[0].due_date
    npa_day = first_due + dt.timedelta(days=91)
    start = npa_day - dt.timedelta(days=15)
    end = start + dt.timedelta(days=29)
    # A payment while NPA on the month's last day (a collection is dated at most 7 days back).
    paid_on = end
    assert end < today and paid_on >= today - dt.timedelta(days=7)

    # The day before the month: what was earned so far (installments 1.. fell due, unpaid).
    before = start - dt.timedelta(days=1)
    await cob_execute(app.state.db, business_date=before)
    held = earned_loan(rows, before)
    assert (await _loan(app, loan_id)).interest_receivable == held
    assert (await _loan(app, loan_id)).interest_suspense == ZERO

    agent = await bearer(world.agent_a)
    daily: list[Decimal] = []  # accrued into income, before the NPA
    daily_npa: list[Decimal] = []  # the interest of each day while NPA
    collected = ZERO
    previous = held
    for n in range(30):
        on = start + dt.timedelta(days=n)
        if on == paid_on:
            posted = await collect(client, agent, loan_id, "100.00", on=paid_on)
            assert posted.status_code == 201, posted.text
            collected = D(posted.json()["collection"]["interest"])
            # Oldest installment first, its interest before its principal.
            assert collected == min(D("100.00"), rows[0].interest_due)
        await cob_execute(app.state.db, business_date=on)
        now = earned_loan(rows, on)
        (daily if on < npa_day else daily_npa).append(now - previous)
        previous = now
    loan = await _loan(app, loan_id)
    assert loan.asset_class.value == "npa" and loan.npa_since == npa_day
    assert loan.interest_receivable == ZERO

    entries = [e for e in await _entries(app, loan_id) if e["date"] >= start]
    accruals = [e for e in entries if e["kind"] == "interest.accrual"]
    reversals = [e for e in entries if e["kind"] == "interest.npa_reversal"]
    assert [e["date"] for e in accruals] == [
        start + dt.timedelta(days=n) for n in range(len(daily)) if daily[n] != 0
    ]
    assert [e["lines"][AccountKind.INTEREST_RECEIVABLE.value][0] for e in accruals] == [
        d for d in daily if d != 0
    ]
    reversed_ = held + sum(daily, ZERO)  # everything accrued and not collected
    assert [(e["date"], e["lines"]) for e in reversals] == [
        (
            npa_day,
            {
                AccountKind.INTEREST_RECEIVABLE.value: (ZERO, reversed_),
                AccountKind.INTEREST_INCOME.value: (reversed_, ZERO),
            },
        )
    ]
    income = await _interest_income(client, bearer, world, start, end)
    assert income == sum(daily, ZERO) - reversed_ + collected

    # Suspense: the reversal and each day's interest in, the interest collected out.
    suspense = reversed_ + sum(daily_npa, ZERO) - collected
    assert suspense == earned_loan(rows, end) - collected  # the schedule's unpaid interest
    assert loan.interest_suspense == suspense
    shown = (await client.get(f"/api/loans/{loan_id}", headers=await bearer(world.admin))).json()
    assert (shown["interest_receivable"], shown["interest_suspense"]) == ("0.00", str(suspense))
    memo = await _memo(app, loan_id)
    S, C = AccountKind.INTEREST_SUSPENSE.value, AccountKind.INTEREST_SUSPENSE_CONTRA.value
    into = [e for e in memo if e["kind"] == "interest_suspense"]
    # The NPA evening puts in the amount reversed and that day's interest.
    assert (into[0]["date"], into[0]["lines"]) == (
        npa_day,
        {S: (reversed_ + daily_npa[0], ZERO), C: (ZERO, reversed_ + daily_npa[0])},
    )
    assert [e["lines"][S][0] for e in into[1:]] == [d for d in daily_npa[1:] if d != 0]
    released = [e for e in memo if e["kind"] == "collection"]
    assert [(e["date"], e["lines"][S], e["lines"][C]) for e in released] == [
        (paid_on, (ZERO, collected), (collected, ZERO))
    ]
    assert [e for e in memo if e["kind"] == "interest_suspense.release"] == []
    await _ledger_ok(app)

    # Interest collected on the NPA is income when collected: nothing receivable to settle; it
    # leaves suspense at once (the collection's memorandum lines).
    # What installment 1 still owes and installment 2's interest (oldest first).
    first, second = rows[0], rows[1]
    amount = first.principal_due + first.interest_due - D("100.00") + second.interest_due
    posted = await collect(client, agent, loan_id, str(amount), on=today)
    assert posted.status_code == 201, posted.text
    collection = posted.json()["collection"]
    interest_now = D(collection["interest"])
    assert interest_now == first.interest_due - collected + second.interest_due
    lines = await _entry_lines(app, collection["journal_entry_id"])
    assert AccountKind.INTEREST_RECEIVABLE.value not in [k for k, _, _ in lines]
    assert (AccountKind.INTEREST_INCOME.value, ZERO, interest_now) in lines
    assert (S, ZERO, interest_now) in lines and (C, interest_now, ZERO) in lines
    assert (await _loan(app, loan_id)).interest_suspense == suspense - interest_now
    await _ledger_ok(app)
    await cob_execute(app.state.db, business_date=today)
    loan = await _loan(app, loan_id)
    assert loan.interest_receivable == ZERO
    assert loan.interest_suspense == earned_loan(rows, today) - collected - interest_now
    assert [e["kind"] for e in await _entries(app, loan_id) if e["date"] > end] == []
    await _ledger_ok(app)

    # A reversed collection puts its interest back in suspense (and the close keeps it there).
    reversed_collection = await client.post(
        f"/api/collections/{collection['id']}/reverse",
        json={"reason": "Cheque bounced"},
        headers=await bearer(world.admin),
    )
    assert reversed_collection.status_code == 200, reversed_collection.text
    assert (await _loan(app, loan_id)).interest_suspense == earned_loan(rows, today) - collected
    await _ledger_ok(app)
    await cob_execute(app.state.db, business_date=today, force=True)
    assert (await _loan(app, loan_id)).interest_suspense == earned_loan(rows, today) - collected
    await _ledger_ok(app)


async def test_a_restructured_loan_stops_accruing_until_it_is_upgraded(
    app, client, world, bearer, customer
) -> None:  # type: ignore[no-untyped-def]
    """RBI: a restructured standard asset is sub-standard, an NPA, so its interest is income only
    when collected (D-210). The close of yesterday accrued installment 1's interest; after a
    restructuring approved today the close (run again) reverses all of it as an NPA's and
    accrues nothing, though the loan's days past due make it standard. Once upgraded, the close
    accrues again what its installments earned."""
    accrual = await _product(client, world, bearer, ACCRUAL_PRODUCT)
    today = today_india()
    yesterday = today - dt.timedelta(days=1)
    loan_id = await make_loan(app, client, bearer, world, accrual)
    rows = await installments_of(app, loan_id)
    await cob_execute(app.state.db, business_date=yesterday)
    accrued = earned(rows[0], yesterday)
    assert accrued > 0 and (await _loan(app, loan_id)).interest_receivable == accrued

    asked = await client.post(
        "/api/restructurings",
        json={"loan_id": loan_id, "kind": "rate", "annual_rate": "10", "reason": "Drought"},
        headers=await bearer(world.manager_a),
    )
    assert asked.status_code == 201, asked.text
    approved = await client.post(
        f"/api/restructurings/{asked.json()['id']}/approve", headers=await bearer(world.admin)
    )
    assert approved.status_code == 200, approved.text
    await cob_execute(app.state.db, business_date=yesterday, force=True)
    loan = await _loan(app, loan_id)
    assert loan.asset_class.value == "standard" and loan.provision_class.value == "sub_standard"
    assert loan.interest_receivable == ZERO
    reversed_ = [e for e in await _entries(app, loan_id) if e["kind"] != "interest.accrual"]
    assert [(e["kind"], e["lines"]) for e in reversed_] == [
        (
            "interest.npa_reversal",
            {
                AccountKind.INTEREST_RECEIVABLE.value: (ZERO, accrued),
                AccountKind.INTEREST_INCOME.value: (accrued, ZERO),
            },
        )
    ]
    # What its installments as restructured earned by the day is in suspense instead (D-215).
    in_suspense = earned_loan(await installments_of(app, loan_id), yesterday)
    assert in_suspense > 0 and loan.interest_suspense == in_suspense
    S, C = AccountKind.INTEREST_SUSPENSE.value, AccountKind.INTEREST_SUSPENSE_CONTRA.value
    assert [(e["kind"], e["lines"]) for e in await _memo(app, loan_id)] == [
        ("interest_suspense", {S: (in_suspense, ZERO), C: (ZERO, in_suspense)})
    ]
    await _ledger_ok(app)
    # The loan's page shows it where the receivable is (an accrual-basis loan only).
    from namma.web.i18n import money
    from tests.integration.test_pages import sign_in

    await sign_in(app, client, world.admin)
    page = await client.get(f"/office/loans/{loan_id}")
    assert page.status_code == 200
    assert f'id="interest-suspense">{money(in_suspense)}<' in page.text
    assert f'id="interest-receivable">{money(ZERO)}<' in page.text

    # Upgraded (as the close does after a year of satisfactory performance): it accrues again,
    # what its installments as restructured earned by the day.
    async with transaction(app.state.db) as session:
        row = await session.get(Loan, uuid.UUID(loan_id))
        assert row is not None
        row.restructure_upgraded_on = yesterday
    await cob_execute(app.state.db, business_date=yesterday, force=True)
    loan = await _loan(app, loan_id)
    assert loan.provision_class.value == "standard"
    assert loan.interest_receivable == earned_loan(await installments_of(app, loan_id), yesterday)
    assert loan.interest_receivable == accrued  # only installment 1's period had begun
    # Upgraded, its earned and unpaid interest is income again: the suspense is released whole.
    assert loan.interest_suspense == ZERO
    assert [(e["kind"], e["lines"]) for e in await _memo(app, loan_id)][1:] == [
        ("interest_suspense.release", {S: (ZERO, in_suspense), C: (in_suspense, ZERO)})
    ]
    await _ledger_ok(app)


async def test_the_ledger_check_names_a_receivable_that_drifted(
    app, client, world, bearer, customer
) -> None:  # type: ignore[no-untyped-def]
    """A loan whose receivable column no longer matches its receivable lines is named, with
    accrued − settled − reversed."""
    accrual = await _product(client, world, bearer, ACCRUAL_PRODUCT)
    loan_id = await make_loan(app, client, bearer, world, accrual)
    yesterday = today_india() - dt.timedelta(days=1)
    await cob_execute(app.state.db, business_date=yesterday)
    accrued = (await _loan(app, loan_id)).interest_receivable
    assert accrued > 0
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None
        loan.interest_receivable = accrued + D("0.01")
        number = loan.loan_number
    async with transaction(app.state.db) as session:
        result = await ledger_check(session)
    assert not result.ok
    assert result.problems() == [
        f"Loan {number}: interest receivable {accrued + D('0.01'):.2f} on the loan, but the "
        f"ledger has {accrued:.2f} accrued − 0.00 settled − 0.00 reversed = {accrued:.2f} "
        "(difference 0.01)."
    ]


async def test_the_ledger_check_names_a_suspense_that_drifted(
    app, client, world, bearer, customer
) -> None:  # type: ignore[no-untyped-def]
    """A loan whose interest in suspense no longer matches its memorandum lines is named, with
    what was put in and released; a contra line that does not mirror them is named too."""
    accrual = await _product(client, world, bearer, ACCRUAL_PRODUCT)
    loan_id = await make_loan(app, client, bearer, world, accrual)
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None
        loan.interest_suspense = D("12.34")
        number = loan.loan_number
    async with transaction(app.state.db) as session:
        result = await ledger_check(session)
    assert not result.ok
    assert result.problems() == [
        f"Loan {number}: interest in suspense 12.34 on the loan, but the memorandum has 0.00 "
        "put in − 0.00 released = 0.00."
    ]


async def test_the_close_of_business_sql_earns_what_the_money_core_earns(app) -> None:  # type: ignore[no-untyped-def]
    """The step's SQL reading of the daily rule (`INTEREST_EARNED`) equals the money core's
    `interest_earned_to` row for row, on random periods, amounts and dates around them."""
    import random

    from sqlalchemy import text

    from namma.cob.service import INTEREST_EARNED
    from namma.finance.accrual import interest_earned_to

    rng = random.Random(22)
    on = dt.date(2026, 12, 1)
    rows = []
    for _ in range(300):
        start = on + dt.timedelta(days=rng.randint(-60, 30))
        due = start + dt.timedelta(days=rng.choice([0, 1, 7, 14, 28, 30, 31, 91, 365]))
        interest = D(rng.randint(0, 5_000_000)) / 100
        waived = (interest * D(rng.choice([0, 0, 0, 10, 50, 100])) / 100).quantize(D("0.01"))
        rows.append((start, due, interest, waived))
    values_sql = ", ".join(
        f"(CAST(:s{n} AS date), CAST(:e{n} AS date), CAST(:i{n} AS numeric), "
        f"CAST(:w{n} AS numeric))"
        for n in range(len(rows))
    )
    params: dict[str, Any] = {"d": on}
    for n, (start, due, interest, waived) in enumerate(rows):
        params |= {f"s{n}": start, f"e{n}": due, f"i{n}": interest, f"w{n}": waived}
    query = (
        f"SELECT {INTEREST_EARNED} FROM (VALUES {values_sql}) "
        "AS i(period_start, due_date, interest_due, interest_waived)"
    )
    async with transaction(app.state.db) as session:
        found = (await session.execute(text(query), params)).scalars().all()
    partial = 0
    for (start, due, interest, waived), sql_value in zip(rows, found, strict=True):
        python = interest_earned_to(interest - waived, period_start=start, due_date=due, as_of=on)
        assert D(sql_value) == python, (start, due, interest, waived)
        partial += ZERO < python < interest - waived
    assert partial > 50  # the pro-rata branch was exercised, not only the whole or nothing


async def test_the_product_page_says_the_basis_and_a_new_version_keeps_it(
    app, client, world, bearer
) -> None:  # type: ignore[no-untyped-def]
    """The back office's product page shows how interest becomes income (English and
    Kannada); the new-version form starts from the current basis, so a version made from the
    page keeps accrual unless the basis is changed there; a product made without saying is on
    cash basis."""
    from tests.integration.test_pages import csrf_of, sign_in

    accrual = await _product(client, world, bearer, ACCRUAL_PRODUCT)
    plain = await _product(client, world, bearer, MONTHLY_PRODUCT)
    assert plain["latest_version"]["terms"]["interest_accounting"] == "cash"
    unknown = await client.post(
        "/api/products",
        json={
            **MONTHLY_PRODUCT,
            "code": "IGL-X",
            "terms": {"interest_accounting": "deferred"},
        },
        headers=await bearer(world.admin),
    )
    assert unknown.status_code == 422
    assert unknown.json()["error"]["details"][0]["field"] == "terms.interest_accounting"
    await sign_in(app, client, world.admin)
    url = f"/office/products/{accrual['id']}"
    page = await client.get(url)
    assert page.status_code == 200
    assert (
        '<dt>Interest accounting</dt><dd id="product-accounting">Accrual basis: interest is '
        "income as it is earned, day by day</dd>" in page.text
    )
    cash_page = await client.get(f"/office/products/{plain['id']}")
    assert "Cash basis: interest is income when collected" in cash_page.text

    form = await client.get(f"{url}/versions/new")
    assert '<option value="accrual" selected>' in form.text
    limits = {k: str(v) for k, v in MONTHLY_PRODUCT["limits"].items()}  # type: ignore[attr-defined]
    revised = await client.post(
        f"{url}/versions/new",
        data={
            "csrf_token": csrf_of(form.text),
            "frequency": "monthly",
            "interest_method": "declining",
            "amortization": "equal-installments",
            "excess": "advance",
            "interest_accounting": "accrual",
            **limits,
            "default_rate": "14",
            "confirmed": "yes",
        },
    )
    assert revised.status_code == 303, revised.text
    detail = (
        await client.get(f"/api/products/{accrual['id']}", headers=await bearer(world.admin))
    ).json()
    assert [v["terms"]["interest_accounting"] for v in detail["versions"]] == [
        "accrual",
        "accrual",
    ]

    switched = await client.post(
        "/language", data={"csrf_token": csrf_of(page.text), "lang": "kn", "next": url}
    )
    assert switched.status_code == 303
    kannada = await client.get(url)
    assert "ಬಡ್ಡಿಯ ಲೆಕ್ಕ ಪದ್ಧತಿ" in kannada.text
    assert "ಸಂಚಯ ಆಧಾರ: ಬಡ್ಡಿ ದಿನದಿಂದ ದಿನಕ್ಕೆ ಗಳಿಸಿದಂತೆ ಆದಾಯ" in kannada.text


async def test_interest_waived_after_it_was_accrued_is_reversed_by_the_next_close(
    app, client, world, bearer, customer
) -> None:  # type: ignore[no-untyped-def]
    """Installment 1 fell due a month ago unpaid, installment 2 falls due today; the close of
    business ran yesterday. Waiving installment 1's interest and 10.00 of installment 2's: the
    next close of business reverses what is no longer earned (`interest.accrual_reversal`)."""
    accrual = await _product(client, world, bearer, ACCRUAL_PRODUCT)
    today = today_india()
    loan_id = await make_loan(
        app, client, bearer, world, accrual, disbursed_on=add_months(today, -2)
    )
    rows = await installments_of(app, loan_id)
    first, second = rows[0], rows[1]
    assert second.due_date == today
    yesterday = today - dt.timedelta(days=1)
    await cob_execute(app.state.db, business_date=yesterday)
    second_days = (second.due_date - second.period_start).days
    second_share = (second.interest_due * (second_days - 1) / second_days).quantize(
        D("0.01"), ROUND_HALF_UP
    )
    held = first.interest_due + second_share
    assert (await _loan(app, loan_id)).interest_receivable == held

    waived = await client.post(
        f"/api/loans/{loan_id}/waivers",
        json={
            "component": "interest",
            "amount": str(first.interest_due + D("10.00")),
            "reason": "Flood in the village",
        },
        headers={**await bearer(world.manager_a), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert waived.status_code == 201, waived.text
    outcome = await cob_execute(app.state.db, business_date=today)
    target = second.interest_due - D("10.00")  # installment 2 is wholly earned today
    assert outcome.counts["accrual"]["entries"] == {
        "interest.accrual_reversal": {"loans": 1, "amount": str(held - target)}
    }
    assert (await _loan(app, loan_id)).interest_receivable == target
    await _ledger_ok(app)


async def test_an_advance_applied_to_accrued_interest_is_not_income_twice(
    app, client, world, bearer, customer
) -> None:  # type: ignore[no-untyped-def]
    """A weekly accrual loan: two installments paid on the first due date (the second held as
    an advance), then the close of business every day. Interest paid ahead is not accrued
    again; installment 2's interest accrues over its week and, when the advance pays it on its
    due date (step 0 credits income), step 4 reverses the receivable: over the two weeks the
    loan's interest income is the two installments' interest, once."""
    weekly = await _product(client, world, bearer, WEEKLY_ACCRUAL_PRODUCT)
    today = today_india()
    disbursed_on = today - dt.timedelta(days=14)
    loan_id = await make_loan(
        app,
        client,
        bearer,
        world,
        weekly,
        amount="10000.00",
        installments=10,
        disbursed_on=disbursed_on,
    )
    rows = await installments_of(app, loan_id)
    first, second = rows[0], rows[1]
    assert second.due_date == today
    emi = first.principal_due + first.interest_due
    agent = await bearer(world.agent_a)
    posted = await collect(client, agent, loan_id, str(emi * 2), on=first.due_date)
    assert posted.status_code == 201, posted.text
    assert D(posted.json()["collection"]["advance"]) == emi

    for n in range(1, 15):
        await cob_execute(app.state.db, business_date=disbursed_on + dt.timedelta(days=n))
    entries = await _entries(app, loan_id)
    # Nothing accrues in week 1 (its interest was collected); week 2 accrues day by day until
    # the advance pays installment 2 on its due date, when the receivable is reversed.
    accrued_week2 = earned(second, today - dt.timedelta(days=1))
    assert [e["kind"] for e in entries] == ["interest.accrual"] * 6 + ["interest.accrual_reversal"]
    assert [e["date"] for e in entries] == [
        first.due_date + dt.timedelta(days=n) for n in range(1, 8)
    ]
    assert (
        sum((e["lines"][AccountKind.INTEREST_RECEIVABLE.value][0] for e in entries[:-1]), ZERO)
        == accrued_week2
    )
    assert entries[-1]["lines"][AccountKind.INTEREST_RECEIVABLE.value] == (ZERO, accrued_week2)
    assert (await _loan(app, loan_id)).interest_receivable == ZERO
    async with transaction(app.state.db) as session:
        income = await session.scalar(
            select(func.sum(JournalLine.credit - JournalLine.debit))
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .where(LedgerAccount.kind == AccountKind.INTEREST_INCOME)
            .where(JournalLine.loan_id == uuid.UUID(loan_id))
        )
    assert income == first.interest_due + second.interest_due
    await assert_consistent(app, loan_id)
