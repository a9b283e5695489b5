"""Holidays and non-working weekdays in the money core (docs/money.md §3, D-185, D-186).

Dates are worked out by hand from a real calendar (7 December 2026 is a Monday); amounts from
the formulas, in the test, not by the schedule code.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest

from namma.finance import (
    ExcessPolicy,
    Frequency,
    InterestPeriod,
    LoanTerms,
    NonWorkingDayRule,
    TermsError,
    WorkingCalendar,
    generate_schedule,
    reschedule_after_prepayment,
    schedule_dates,
)
from namma.finance.terms import DaysInYear

MON = date(2026, 12, 7)
SUNDAY = 6
CENT = Decimal("0.01")


def weekly(rule: NonWorkingDayRule, *, extend: bool = False, n: int = 4, **kw: object) -> LoanTerms:
    return LoanTerms(
        principal=Decimal("10000"),
        annual_rate=Decimal("26"),
        installments=n,
        frequency=Frequency.WEEKLY,
        non_working_day=rule,
        extend_term=extend,
        **kw,  # type: ignore[arg-type]
    )


def dates(terms: LoanTerms, calendar: WorkingCalendar | None, start: date = MON) -> list[date]:
    return [
        r.due_date for r in generate_schedule(terms, disbursed_on=start, calendar=calendar).rows
    ]


def test_the_calendar_knows_its_working_days() -> None:
    cal = WorkingCalendar.of(holidays=[date(2026, 12, 25)], non_working_weekdays=[SUNDAY])
    assert cal.is_working(date(2026, 12, 24))  # Thursday
    assert not cal.is_working(date(2026, 12, 25))  # the holiday, a Friday
    assert not cal.is_working(date(2026, 12, 27))  # Sunday
    assert cal.next_working_day(date(2026, 12, 25)) == date(2026, 12, 26)
    assert cal.next_working_day(date(2026, 12, 27)) == date(2026, 12, 28)
    assert cal.previous_working_day(date(2026, 12, 27)) == date(2026, 12, 26)
    assert not WorkingCalendar()
    with pytest.raises(TermsError) as seven:
        WorkingCalendar.of(non_working_weekdays=range(7))
    assert seven.value.errors[0].field == "non_working_weekdays"
    with pytest.raises(TermsError):
        WorkingCalendar.of(non_working_weekdays=[7])


def test_a_holiday_moves_only_its_installment_to_the_next_working_day() -> None:
    # Regular dates: Mon 14, 21, 28 Dec, 4 Jan. The 21st is a holiday.
    cal = WorkingCalendar.of(holidays=[date(2026, 12, 21)])
    assert dates(weekly(NonWorkingDayRule.NEXT_WORKING_DAY), cal) == [
        date(2026, 12, 14),
        date(2026, 12, 22),
        date(2026, 12, 28),
        date(2027, 1, 4),
    ]


def test_previous_working_day_skips_back_over_a_sunday() -> None:
    # The 21st (Monday) is a holiday and Sundays are closed: back to Saturday the 19th.
    cal = WorkingCalendar.of(holidays=[date(2026, 12, 21)], non_working_weekdays=[SUNDAY])
    assert dates(weekly(NonWorkingDayRule.PREVIOUS_WORKING_DAY), cal)[1] == date(2026, 12, 19)


def test_previous_working_day_never_reaches_back_to_the_disbursement() -> None:
    # Closed from the 8th to the 14th: the day before the first due date is the disbursement
    # itself, so the installment goes forward to Tuesday the 15th.
    closed = [MON + timedelta(days=d) for d in range(1, 8)]
    cal = WorkingCalendar.of(holidays=closed)
    assert dates(weekly(NonWorkingDayRule.PREVIOUS_WORKING_DAY), cal)[0] == date(2026, 12, 15)


def test_same_day_ignores_the_calendar() -> None:
    cal = WorkingCalendar.of(holidays=[date(2026, 12, 14)])
    assert dates(weekly(NonWorkingDayRule.SAME_DAY), cal)[0] == date(2026, 12, 14)


def test_extending_the_term_skips_a_period_and_ends_a_week_later() -> None:
    cal = WorkingCalendar.of(holidays=[date(2026, 12, 21)])
    assert dates(weekly(NonWorkingDayRule.NEXT_WORKING_DAY, extend=True), cal) == [
        date(2026, 12, 14),
        date(2026, 12, 28),
        date(2027, 1, 4),
        date(2027, 1, 11),
    ]


def test_a_daily_loan_over_a_sunday_shares_monday_or_extends() -> None:
    friday = date(2026, 12, 4)
    terms = LoanTerms(
        principal=Decimal("3000"),
        annual_rate=Decimal("0"),
        installments=3,
        frequency=Frequency.DAILY,
    )
    cal = WorkingCalendar.of(non_working_weekdays=[SUNDAY])
    # Sat 5, Sun 6 → Mon 7, Mon 7.
    assert dates(terms, cal, friday) == [date(2026, 12, 5), date(2026, 12, 7), date(2026, 12, 7)]
    extended = LoanTerms(
        principal=Decimal("3000"),
        annual_rate=Decimal("0"),
        installments=3,
        frequency=Frequency.DAILY,
        extend_term=True,
    )
    assert dates(extended, cal, friday) == [date(2026, 12, 5), date(2026, 12, 7), date(2026, 12, 8)]


def test_monthly_dates_keep_their_day_after_a_move() -> None:
    # Disbursed 31 Jan 2027: regular dates 28 Feb (a Sunday), 31 Mar, 30 Apr.
    terms = LoanTerms(principal=Decimal("30000"), annual_rate=Decimal("12"), installments=3)
    cal = WorkingCalendar.of(non_working_weekdays=[SUNDAY])
    assert dates(terms, cal, date(2027, 1, 31)) == [
        date(2027, 3, 1),
        date(2027, 3, 31),
        date(2027, 4, 30),
    ]


def test_per_installment_interest_does_not_change_when_a_date_moves() -> None:
    # 100 000 at 12 % monthly × 12 (DESIGN.md §6): EMI 8884.88, row 1 1000.00 + 7884.88,
    # with the first due date (7 Jan 2027) a holiday.
    terms = LoanTerms(principal=Decimal("100000"), annual_rate=Decimal("12"), installments=12)
    cal = WorkingCalendar.of(holidays=[date(2027, 1, 7)])
    schedule = generate_schedule(terms, disbursed_on=MON, calendar=cal)
    first = schedule.rows[0]
    assert first.due_date == date(2027, 1, 8)
    assert (first.interest, first.principal) == (Decimal("1000.00"), Decimal("7884.88"))
    assert schedule.installment_amount == Decimal("8884.88")
    assert schedule.total_interest == Decimal("6618.53")
    assert schedule.first_period_fraction == 1  # a move is not a broken period
    assert schedule.nominal_first_due_on == date(2027, 1, 7)
    assert schedule.first_due_on == date(2027, 1, 8)


def test_daily_interest_counts_the_days_to_the_moved_date() -> None:
    # 10 000 at 36.5 % on a 365-day year: 1.00 a day per 1 000. Weekly × 2; the 14th is a
    # holiday, so period 1 runs 8 days (to the 15th) and period 2 six days (to the 21st).
    terms = LoanTerms(
        principal=Decimal("10000"),
        annual_rate=Decimal("36.5"),
        installments=2,
        frequency=Frequency.WEEKLY,
        interest_period=InterestPeriod.DAILY,
        days_in_year=DaysInYear.D365,
    )
    cal = WorkingCalendar.of(holidays=[date(2026, 12, 14)])
    rows = generate_schedule(terms, disbursed_on=MON, calendar=cal).rows
    with localcontext() as ctx:
        ctx.prec = 28
        r = Decimal("36.5") / 100 / 52
        emi = (Decimal(10000) * r * (1 + r) ** 2 / ((1 + r) ** 2 - 1)).quantize(CENT, ROUND_HALF_UP)
    assert emi == Decimal("5052.71")
    assert rows[0].due_date == date(2026, 12, 15)
    assert rows[0].interest == Decimal("80.00")  # 10 000 × 0.365 × 8 / 365
    assert rows[0].principal == emi - Decimal("80.00")
    balance = Decimal(10000) - (emi - Decimal("80.00"))
    assert rows[1].due_date == date(2026, 12, 21)
    assert rows[1].interest == (balance * Decimal("0.365") * 6 / 365).quantize(CENT, ROUND_HALF_UP)
    assert rows[1].principal == balance


def test_a_prepayment_keeps_the_moved_dates() -> None:
    cal = WorkingCalendar.of(holidays=[date(2026, 12, 28)])
    terms = weekly(NonWorkingDayRule.NEXT_WORKING_DAY, n=4)
    schedule = generate_schedule(terms, disbursed_on=MON, calendar=cal)
    after = reschedule_after_prepayment(
        schedule=schedule,
        paid_through=1,
        balance=schedule.rows[0].balance - Decimal("1000.00"),
        policy=ExcessPolicy.REDUCE_INSTALLMENT,
    )
    assert [r.due_date for r in after.rows] == [r.due_date for r in schedule.rows]
    assert after.rows[2].due_date == date(2026, 12, 29)


def test_extending_needs_a_rule_that_moves() -> None:
    with pytest.raises(TermsError) as raised:
        weekly(NonWorkingDayRule.SAME_DAY, extend=True)
    assert raised.value.errors[0].field == "extend_term"


# --- next meeting day (group loans, D-214) -------------------------------------------------------

MEETING = NonWorkingDayRule.NEXT_MEETING_DAY


def test_next_meeting_day_collects_the_installment_with_the_next_one() -> None:
    # Regular meetings: Mon 14, 21, 28 Dec, 4 Jan. The 21st is a holiday: its installment
    # waits for the meeting of the 28th (not Tuesday the 22nd).
    cal = WorkingCalendar.of(holidays=[date(2026, 12, 21)])
    assert dates(weekly(MEETING), cal) == [
        date(2026, 12, 14),
        date(2026, 12, 28),
        date(2026, 12, 28),
        date(2027, 1, 4),
    ]


def test_next_meeting_day_passes_a_closed_meeting_too() -> None:
    # The 21st and the 28th are both closed: installments 2 and 3 go to the meeting of 4 Jan,
    # where installment 4 falls due too.
    cal = WorkingCalendar.of(holidays=[date(2026, 12, 21), date(2026, 12, 28)])
    assert dates(weekly(MEETING), cal) == [date(2026, 12, 14)] + [date(2027, 1, 4)] * 3


def test_the_last_installment_goes_to_the_meeting_a_period_after_it() -> None:
    # The last regular date (4 Jan) is a holiday and has no next installment: the regular date
    # a week later (11 Jan); with the 11th closed as well, the 18th.
    assert dates(weekly(MEETING), WorkingCalendar.of(holidays=[date(2027, 1, 4)])) == [
        date(2026, 12, 14),
        date(2026, 12, 21),
        date(2026, 12, 28),
        date(2027, 1, 11),
    ]
    both = WorkingCalendar.of(holidays=[date(2027, 1, 4), date(2027, 1, 11)])
    assert dates(weekly(MEETING), both)[-1] == date(2027, 1, 18)


def test_next_meeting_day_on_a_closed_meeting_weekday_falls_back_to_the_next_working_day() -> None:
    # Every meeting is a Monday and Mondays are closed: no meeting ever works, so Tuesday.
    cal = WorkingCalendar.of(non_working_weekdays=[0])
    assert dates(weekly(MEETING, n=2), cal) == [date(2026, 12, 15), date(2026, 12, 22)]


def test_next_meeting_day_keeps_per_installment_amounts() -> None:
    # 10 000 at 26 % weekly × 4: EMI and rows from the annuity formula at 0.26 / 52 = 0.005 a
    # week; the rows keep their amounts when installment 2 moves to the 28th.
    cal = WorkingCalendar.of(holidays=[date(2026, 12, 21)])
    rows = generate_schedule(weekly(MEETING), disbursed_on=MON, calendar=cal).rows
    r = Decimal("0.005")
    with localcontext() as ctx:
        ctx.prec = 28
        emi = (Decimal(10000) * r * (1 + r) ** 4 / ((1 + r) ** 4 - 1)).quantize(CENT, ROUND_HALF_UP)
    balance = Decimal(10000)
    for row in rows[:3]:
        interest = (balance * r).quantize(CENT, ROUND_HALF_UP)
        assert (row.interest, row.principal) == (interest, emi - interest)
        balance -= emi - interest
    assert rows[3].principal == balance
    assert rows[3].interest == (balance * r).quantize(CENT, ROUND_HALF_UP)
    assert [row.due_date for row in rows[1:3]] == [date(2026, 12, 28)] * 2


def test_next_meeting_day_with_daily_interest_counts_the_days_to_the_meeting() -> None:
    # 10 000 at 36.5 % on a 365-day year (1.00 a day per 1 000), weekly × 3, the 14th a
    # holiday: installment 1 falls due at the meeting of the 21st after 14 days; installment 2
    # shares that day and its period has no days (no interest); installment 3 runs 7 days.
    terms = LoanTerms(
        principal=Decimal("10000"),
        annual_rate=Decimal("36.5"),
        installments=3,
        frequency=Frequency.WEEKLY,
        interest_period=InterestPeriod.DAILY,
        days_in_year=DaysInYear.D365,
        non_working_day=MEETING,
    )
    cal = WorkingCalendar.of(holidays=[date(2026, 12, 14)])
    rows = generate_schedule(terms, disbursed_on=MON, calendar=cal).rows
    with localcontext() as ctx:
        ctx.prec = 28
        r = Decimal("36.5") / 100 / 52
        emi = (Decimal(10000) * r * (1 + r) ** 3 / ((1 + r) ** 3 - 1)).quantize(CENT, ROUND_HALF_UP)
    assert emi == Decimal("3380.24")
    assert [row.due_date for row in rows] == [date(2026, 12, 21)] * 2 + [date(2026, 12, 28)]
    assert (rows[0].interest, rows[0].principal) == (Decimal("140.00"), emi - Decimal("140.00"))
    assert (rows[1].interest, rows[1].principal) == (Decimal("0.00"), emi)
    balance = Decimal(10000) - (emi - Decimal("140.00")) - emi
    assert rows[2].principal == balance
    assert rows[2].interest == (balance * Decimal("0.365") * 7 / 365).quantize(CENT, ROUND_HALF_UP)


def test_schedule_dates_under_next_meeting_day_keep_the_regular_date() -> None:
    week = timedelta(days=7)
    got = schedule_dates(
        weekly(MEETING),
        period_start=MON,
        first_due_on=None,
        count=4,
        calendar=WorkingCalendar.of(holidays=[date(2026, 12, 21)]),
    )
    assert got == [
        (MON + week, MON + week),
        (MON + 2 * week, MON + 3 * week),
        (MON + 3 * week, MON + 3 * week),
        (MON + 4 * week, MON + 4 * week),
    ]


# --- properties, on random loans and calendars --------------------------------------------------

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@given(
    n=st.integers(1, 40),
    frequency=st.sampled_from([Frequency.DAILY, Frequency.WEEKLY, Frequency.MONTHLY]),
    closed=st.frozensets(st.integers(0, 6), max_size=5),
    offsets=st.frozensets(st.integers(1, 400), max_size=30),
    rule=st.sampled_from(
        [
            NonWorkingDayRule.NEXT_WORKING_DAY,
            NonWorkingDayRule.PREVIOUS_WORKING_DAY,
            NonWorkingDayRule.NEXT_MEETING_DAY,
        ]
    ),
    extend=st.booleans(),
)
def test_moved_dates_are_working_days_in_order_and_the_money_is_whole(
    n: int,
    frequency: Frequency,
    closed: frozenset[int],
    offsets: frozenset[int],
    rule: NonWorkingDayRule,
    extend: bool,
) -> None:
    cal = WorkingCalendar(frozenset(MON + timedelta(days=d) for d in offsets), closed)
    terms = LoanTerms(
        principal=Decimal("25000"),
        annual_rate=Decimal("24"),
        installments=n,
        frequency=frequency,
        non_working_day=rule,
        extend_term=extend,
    )
    plain = generate_schedule(terms, disbursed_on=MON)
    moved = generate_schedule(terms, disbursed_on=MON, calendar=cal)
    due = [r.due_date for r in moved.rows]
    assert all(cal.is_working(d) for d in due)
    assert due == sorted(due) and due[0] > MON
    assert sum((r.principal for r in moved.rows), Decimal(0)) == Decimal("25000")
    # Per-installment interest: the amounts are those of the loan without a calendar.
    assert [(r.principal, r.interest) for r in moved.rows] == [
        (r.principal, r.interest) for r in plain.rows
    ]
    meets = frequency is not Frequency.WEEKLY or MON.weekday() not in closed
    if (extend or rule is NonWorkingDayRule.NEXT_MEETING_DAY) and meets:
        # Skipped, or waiting for a later meeting, never moved off the cycle: every date is
        # one of the loan's regular dates (unless no regular date ever works).
        regular = {
            r.due_date
            for r in generate_schedule(
                LoanTerms(
                    principal=Decimal("25000"),
                    annual_rate=Decimal("24"),
                    installments=n + 500,
                    frequency=frequency,
                ),
                disbursed_on=MON,
            ).rows
        }
        assert set(due) <= regular
        if extend:
            assert len(set(due)) == n
    if not extend:  # a regular date that works stays
        for got, regular_date in zip(due, (r.due_date for r in plain.rows), strict=True):
            if cal.is_working(regular_date):
                assert got == regular_date


def test_extending_a_weekly_loan_on_a_closed_weekday_moves_it_instead() -> None:
    # Every regular date is a Monday and Mondays are closed: no skip can help, so the dates
    # move to Tuesday by the rule.
    cal = WorkingCalendar.of(non_working_weekdays=[0])
    got = dates(weekly(NonWorkingDayRule.NEXT_WORKING_DAY, extend=True, n=2), cal)
    assert got == [date(2026, 12, 15), date(2026, 12, 22)]


def test_schedule_dates_give_each_installment_its_regular_date_and_its_due_date() -> None:
    """Weekly from 7 December, 21 December a holiday: moved, its regular date stays the 21st;
    with the term extended, the installment takes the next regular date (28th), which is both.
    A run may start anywhere: from 14 December, its first regular date one week later."""
    holiday = WorkingCalendar.of(holidays=[date(2026, 12, 21)])
    week = timedelta(days=7)
    moved = schedule_dates(
        weekly(NonWorkingDayRule.NEXT_WORKING_DAY),
        period_start=MON,
        first_due_on=None,
        count=4,
        calendar=holiday,
    )
    assert moved == [
        (MON + week, MON + week),
        (MON + 2 * week, MON + 2 * week + timedelta(days=1)),
        (MON + 3 * week, MON + 3 * week),
        (MON + 4 * week, MON + 4 * week),
    ]
    skipped = schedule_dates(
        weekly(NonWorkingDayRule.NEXT_WORKING_DAY, extend=True),
        period_start=MON,
        first_due_on=None,
        count=4,
        calendar=holiday,
    )
    assert skipped == [(d, d) for d in (MON + week, MON + 3 * week, MON + 4 * week, MON + 5 * week)]
    later = schedule_dates(
        weekly(NonWorkingDayRule.NEXT_WORKING_DAY),
        period_start=MON + week,
        first_due_on=None,
        count=2,
        calendar=holiday,
    )
    assert later == [(MON + 2 * week, MON + 2 * week + timedelta(days=1)), (MON + 3 * week,) * 2]
