"""`restructure_schedule`: the rows still to fall due rebuilt under one change. Expected values
are worked out here (annuity formula, interest = balance × rate, day counts), not by the money
core."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
from decimal import Decimal

import pytest

from namma.finance import (
    LoanTerms,
    MoratoriumInterest,
    NonWorkingDayRule,
    Restructure,
    RestructureKind,
    TermsError,
    WorkingCalendar,
    generate_schedule,
    restructure_schedule,
    schedule_as_stored,
)

D = Decimal
CENT = D("0.01")
TERMS = LoanTerms(principal=D("100000"), annual_rate=D("12"), installments=12)
SCHEDULE = generate_schedule(TERMS, disbursed_on=dt.date(2026, 1, 1))
LEFT = D("51492.09")  # balance after row 6 (docs/money.md §9)


def half_up(x: D) -> D:
    return x.quantize(CENT, decimal.ROUND_HALF_UP)


def annuity(p: D, r: D, n: int) -> D:
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        g = (1 + r) ** n
        return half_up(p * r * g / (g - 1))


def run(change: Restructure):  # type: ignore[no-untyped-def]
    return restructure_schedule(schedule=SCHEDULE, paid_through=6, balance=LEFT, change=change)


def test_rows_before_are_kept_and_principal_is_conserved() -> None:
    for change in (
        Restructure(RestructureKind.RATE, annual_rate=D("10")),
        Restructure(RestructureKind.TERM, installments=10),
        Restructure(RestructureKind.MORATORIUM, periods=3),
        Restructure(RestructureKind.NEXT_DUE_DATE, next_due_on=dt.date(2026, 8, 15)),
        Restructure(RestructureKind.INSTALLMENT, installment_amount=D("10000.00")),
    ):
        result = run(change)
        assert result.schedule.rows[:6] == SCHEDULE.rows[:6]
        assert sum((r.principal for r in result.rows), D(0)) == LEFT
        assert result.rows[-1].balance == 0
        assert [r.number for r in result.schedule.rows] == list(
            range(1, len(result.schedule.rows) + 1)
        )


def test_new_rate() -> None:
    result = run(Restructure(RestructureKind.RATE, annual_rate=D("10")))
    r = D("10") / 1200
    assert result.schedule.installment_amount == annuity(LEFT, r, 6)
    assert result.rows[0].interest == half_up(LEFT * r)
    assert result.rows[0].due_date == dt.date(2026, 8, 1)
    assert result.annual_rate == D("10") and result.installments_left == 6


def test_new_term() -> None:
    result = run(Restructure(RestructureKind.TERM, installments=10))
    assert result.schedule.installment_amount == annuity(LEFT, D("0.01"), 10)
    assert result.rows[-1].due_date == dt.date(2027, 5, 1)


def test_new_next_due_date_is_a_broken_period() -> None:
    result = run(Restructure(RestructureKind.NEXT_DUE_DATE, next_due_on=dt.date(2026, 8, 15)))
    # 1 July → 15 August: 45 days of a regular period of 31 (15 July → 15 August).
    assert result.rows[0].interest == half_up(LEFT * D("0.01") * 45 / 31)
    assert [r.due_date.day for r in result.rows] == [15] * 6


def test_moratorium_carry_capitalise_waive() -> None:
    month = half_up(LEFT * D("0.01"))  # 514.92
    carry = run(Restructure(RestructureKind.MORATORIUM, periods=3))
    assert [r.total for r in carry.rows[:3]] == [D("0.00")] * 3
    assert carry.rows[3].interest == 4 * month
    assert carry.schedule.installment_amount == annuity(LEFT, D("0.01"), 6)
    assert len(carry.rows) == 9

    cap = run(
        Restructure(
            RestructureKind.MORATORIUM,
            periods=3,
            moratorium_interest=MoratoriumInterest.CAPITALISE,
        )
    )
    assert cap.capitalised_interest == 3 * month
    grown = LEFT + 3 * month
    assert cap.schedule.installment_amount == annuity(grown, D("0.01"), 6)
    assert cap.rows[3].interest == half_up(grown * D("0.01"))
    assert sum((r.principal for r in cap.rows), D(0)) == grown

    waive = run(
        Restructure(
            RestructureKind.MORATORIUM, periods=3, moratorium_interest=MoratoriumInterest.WAIVE
        )
    )
    assert [r.interest_for_period for r in waive.rows[:3]] == [D("0.00")] * 3
    assert waive.rows[3].interest == month


def test_new_installment_sets_the_count() -> None:
    result = run(Restructure(RestructureKind.INSTALLMENT, installment_amount=D("10000.00")))
    balance, rows = LEFT, 0
    while balance > 0:
        balance -= D("10000.00") - half_up(balance * D("0.01"))
        rows += 1
    assert len(result.rows) == rows == 6
    assert all(r.total == D("10000.00") for r in result.rows[:-1])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (Restructure(RestructureKind.INSTALLMENT, installment_amount=D("500.00")),
         "installment_amount"),
        (Restructure(RestructureKind.MORATORIUM, periods=0), "periods"),
        (Restructure(RestructureKind.RATE, annual_rate=D("12")), "annual_rate"),
        (Restructure(RestructureKind.NEXT_DUE_DATE, next_due_on=dt.date(2026, 6, 30)),
         "next_due_on"),
        (Restructure(RestructureKind.TERM, installments=6), "installments"),
    ],
)  # fmt: skip
def test_bad_changes_name_their_field(change: Restructure, field: str) -> None:
    with pytest.raises(TermsError) as caught:
        run(change)
    assert caught.value.field == field


# --- the branch's calendar (D-208) ---------------------------------------------------------------

WEEKENDS_CLOSED = WorkingCalendar.of(non_working_weekdays=[5, 6])  # Saturday, Sunday


def test_a_holiday_on_a_rebuilt_date_moves_that_row_only() -> None:
    """1 October 2026 (a Thursday) is a holiday: the rebuilt row due then falls due on the 2nd,
    the others keep the 1st, and no amount changes (interest is one period's per installment)."""
    change = Restructure(RestructureKind.RATE, annual_rate=D("10"))
    plain = run(change)
    moved = restructure_schedule(
        schedule=SCHEDULE,
        paid_through=6,
        balance=LEFT,
        change=change,
        calendar=WorkingCalendar.of(holidays=[dt.date(2026, 10, 1)]),
    )
    assert [r.due_date for r in moved.rows] == [
        dt.date(2026, 8, 1),
        dt.date(2026, 9, 1),
        dt.date(2026, 10, 2),
        dt.date(2026, 11, 1),
        dt.date(2026, 12, 1),
        dt.date(2027, 1, 1),
    ]
    assert [(r.principal, r.interest, r.total) for r in moved.rows] == [
        (r.principal, r.interest, r.total) for r in plain.rows
    ]
    assert moved.rows[3].period_start == dt.date(2026, 10, 2)
    assert moved.regular_first_due_on == dt.date(2026, 8, 1)


def test_a_new_next_due_date_on_a_closed_day_moves_to_the_next_working_day() -> None:
    """15 August 2026 is a Saturday and the branch closes at weekends: the first installment
    falls due on Monday the 17th; the later ones keep the 15th unless it is a weekend too (15
    November is a Sunday). The broken first period is judged on the date asked for: 1 July →
    15 August is 45 days of a regular 31."""
    result = restructure_schedule(
        schedule=SCHEDULE,
        paid_through=6,
        balance=LEFT,
        change=Restructure(RestructureKind.NEXT_DUE_DATE, next_due_on=dt.date(2026, 8, 15)),
        calendar=WEEKENDS_CLOSED,
    )
    assert [r.due_date for r in result.rows] == [
        dt.date(2026, 8, 17),
        dt.date(2026, 9, 15),
        dt.date(2026, 10, 15),
        dt.date(2026, 11, 16),
        dt.date(2026, 12, 15),
        dt.date(2027, 1, 15),
    ]
    assert all(r.due_date.weekday() < 5 for r in result.rows)
    assert result.rows[0].interest == half_up(LEFT * D("0.01") * 45 / 31)
    assert result.regular_first_due_on == dt.date(2026, 8, 15)


def test_the_rebuilt_rows_run_from_the_regular_date_not_the_moved_one() -> None:
    """Row 7 was moved from Saturday 1 August to Monday the 3rd by the weekend. Rebuilt from its
    regular date, the rows keep the 1st of the month (a weekend one moved to the Monday);
    rebuilt from the moved date, every later row would fall on the 3rd."""
    rows = list(SCHEDULE.rows)
    rows[6] = dataclasses.replace(rows[6], due_date=dt.date(2026, 8, 3))
    stored = schedule_as_stored(SCHEDULE, rows, installment_amount=SCHEDULE.installment_amount)
    change = Restructure(RestructureKind.RATE, annual_rate=D("10"))
    result = restructure_schedule(
        schedule=stored,
        paid_through=6,
        balance=LEFT,
        change=change,
        calendar=WEEKENDS_CLOSED,
        regular_next_due_on=dt.date(2026, 8, 1),
    )
    assert [r.due_date for r in result.rows] == [
        dt.date(2026, 8, 3),
        dt.date(2026, 9, 1),
        dt.date(2026, 10, 1),
        dt.date(2026, 11, 2),
        dt.date(2026, 12, 1),
        dt.date(2027, 1, 1),
    ]
    drifted = restructure_schedule(
        schedule=stored, paid_through=6, balance=LEFT, change=change, calendar=WEEKENDS_CLOSED
    )
    assert drifted.rows[1].due_date == dt.date(2026, 9, 3)


def test_a_group_loan_rebuilt_over_a_holiday_meets_at_the_next_meeting() -> None:
    """Under the next-meeting-day rule (D-214) the rebuilt row due on the holiday (1 October)
    is collected with the next one on 1 November; the amounts are those without a calendar."""
    change = Restructure(RestructureKind.RATE, annual_rate=D("10"))
    group_terms = dataclasses.replace(TERMS, non_working_day=NonWorkingDayRule.NEXT_MEETING_DAY)
    group = generate_schedule(group_terms, disbursed_on=dt.date(2026, 1, 1))
    plain = restructure_schedule(schedule=group, paid_through=6, balance=LEFT, change=change)
    moved = restructure_schedule(
        schedule=group,
        paid_through=6,
        balance=LEFT,
        change=change,
        calendar=WorkingCalendar.of(holidays=[dt.date(2026, 10, 1)]),
    )
    assert [r.due_date for r in moved.rows] == [
        dt.date(2026, 8, 1),
        dt.date(2026, 9, 1),
        dt.date(2026, 11, 1),
        dt.date(2026, 11, 1),
        dt.date(2026, 12, 1),
        dt.date(2027, 1, 1),
    ]
    assert [(r.principal, r.interest, r.total) for r in moved.rows] == [
        (r.principal, r.interest, r.total) for r in plain.rows
    ]
    # The rate is 10 % a year: row 7's interest is the principal left at 10/12 % a month.
    assert moved.rows[0].interest == half_up(LEFT * D("10") / 1200)
