"""Due dates, month-end clamping and day counts.

Monthly-type frequencies keep the intended day of the month: a loan due on the 31st is due on
Feb 28 (29 in a leap year), then Mar 31 again — the day is clamped per month, never carried over
(the origin's JavaScript `setMonth` overflowed Jan 31 into March).
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from namma.finance.terms import DaysInMonth, DaysInYear, Frequency

_DAYS_PER_PERIOD: dict[Frequency, int] = {
    Frequency.DAILY: 1,
    Frequency.WEEKLY: 7,
    Frequency.FORTNIGHTLY: 14,
}
_MONTHS_PER_PERIOD: dict[Frequency, int] = {
    Frequency.MONTHLY: 1,
    Frequency.QUARTERLY: 3,
    Frequency.HALF_YEARLY: 6,
    Frequency.YEARLY: 12,
}
_MONTH_LENGTHS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def is_leap_year(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def days_in_month(year: int, month: int) -> int:
    if month == 2 and is_leap_year(year):
        return 29
    return _MONTH_LENGTHS[month - 1]


def add_months(start: date, months: int, day: int | None = None) -> date:
    """`start` moved by `months` (may be negative), on `day` (default: start's day), clamped."""
    index = start.year * 12 + (start.month - 1) + months
    year, month0 = divmod(index, 12)
    wanted = start.day if day is None else day
    return date(year, month0 + 1, min(wanted, days_in_month(year, month0 + 1)))


def period_step(frequency: Frequency, every: int) -> tuple[int, int]:
    """(days, months) in one period; exactly one of them is non-zero."""
    if frequency is Frequency.DAYS:
        return every, 0
    if frequency in _DAYS_PER_PERIOD:
        return _DAYS_PER_PERIOD[frequency] * every, 0
    return 0, _MONTHS_PER_PERIOD[frequency] * every


def one_period_after(start: date, frequency: Frequency, every: int) -> date:
    step_days, step_months = period_step(frequency, every)
    if step_months:
        return add_months(start, step_months)
    return start + timedelta(days=step_days)


def one_period_before(end: date, frequency: Frequency, every: int) -> date:
    step_days, step_months = period_step(frequency, every)
    if step_months:
        return add_months(end, -step_months)
    return end - timedelta(days=step_days)


def due_dates(
    *, frequency: Frequency, every: int, count: int, disbursed_on: date, first_due_on: date | None
) -> list[date]:
    """The `count` due dates: the first given (or one period after disbursement), then regular.

    For monthly-type frequencies every date keeps the first due date's day of the month
    (or, when the first due date is not given, the disbursement's day), clamped to month end.
    """
    step_days, step_months = period_step(frequency, every)
    if step_months:
        day = first_due_on.day if first_due_on is not None else disbursed_on.day
        anchor = first_due_on if first_due_on is not None else add_months(disbursed_on, step_months)
        return [add_months(anchor, k * step_months, day) for k in range(count)]
    first = first_due_on if first_due_on is not None else disbursed_on + timedelta(days=step_days)
    step = timedelta(days=step_days)
    out = [first]
    for _ in range(count - 1):  # cumulative addition: cheaper than first + step * k
        first += step
        out.append(first)
    return out


def months_as_30_days(start: date, end: date) -> tuple[int, int]:
    """The days from `start` to `end` counted as months of 30 days, as an exact fraction
    (numerator, denominator): the whole months stepped from `start` (its day, clamped) that fit
    before `end`, plus the days left over as a share of the month that would follow.

    Jan 15 → Feb 1 is 17/31 of a month: 30 × 17 / 31 days; Dec 20 → Feb 1 is one month and
    12/31 of the next. The `fineract-progressive` convention's count for a broken period.
    """
    whole = 0
    while add_months(start, whole + 1) <= end:
        whole += 1
    left_from = add_months(start, whole)
    left = (end - left_from).days
    if left == 0:
        return 30 * whole, 1
    month = (add_months(start, whole + 1) - left_from).days
    return 30 * (whole * month + left), month


def day_count(start: date, end: date, days_in_month_rule: DaysInMonth) -> int:
    """Days from `start` to `end`: actual, or 30E/360 (each month 30 days, day 31 counts as 30)."""
    if days_in_month_rule is DaysInMonth.ACTUAL:
        return (end - start).days
    d1 = min(start.day, 30)
    d2 = min(end.day, 30)
    return (end.year - start.year) * 360 + (end.month - start.month) * 30 + (d2 - d1)


def year_fraction(
    start: date, end: date, *, days_in_year: DaysInYear, days_in_month_rule: DaysInMonth
) -> tuple[Decimal, int]:
    """The fraction of a year from `start` to `end`, as an exact (numerator, denominator).

    Returned as a fraction so interest = balance × rate × numerator / denominator is divided
    once, at the end (no double rounding). `actual` days in a year splits the period at each
    1 January and counts each part over 365 or 366 (actual/actual ISDA); with 30-day months and
    an actual year, the year length is that of the year the period ends in.
    """
    if days_in_year is not DaysInYear.ACTUAL:
        return Decimal(day_count(start, end, days_in_month_rule)), int(days_in_year.value)
    if days_in_month_rule is DaysInMonth.D30:
        return Decimal(day_count(start, end, days_in_month_rule)), 366 if is_leap_year(
            end.year
        ) else 365
    if start.year == end.year:
        return Decimal((end - start).days), 366 if is_leap_year(end.year) else 365
    # Split at year boundaries: Σ days_y / len_y = Σ days_y × (L / len_y) / L with L = 365 × 366.
    common = 365 * 366
    numerator = 0
    cursor = start
    while cursor < end:
        boundary = min(date(cursor.year + 1, 1, 1), end)
        year_length = 366 if is_leap_year(cursor.year) else 365
        numerator += (boundary - cursor).days * (common // year_length)
        cursor = boundary
    return Decimal(numerator), common
