"""Working days: holidays and non-working weekdays, and where a due date on them goes.

A `WorkingCalendar` is plain data handed to the schedule (the money core reads no table): the
dates that are holidays and the weekdays (Monday 0 … Sunday 6, as `date.weekday()`) on which the
branch does not work. `calendar_due_dates` moves a loan's regular (nominal) due dates off the
non-working days by the product's `NonWorkingDayRule`:

- `same-day`: nothing moves;
- `next-working-day`: to the first working day after it;
- `previous-working-day`: to the last working day before it — but never onto or before the
  disbursement or the installment before it (a long closure right after it); then, like
  `next-working-day`, forward;
- `next-meeting-day` (group loans, whose schedule is their meeting cycle): to the loan's next
  regular due date that is a working day — the next meeting — where it is collected with that
  installment; the last installment, with no next one, goes to the regular date a period after
  it (and on, while closed). Where no regular date within a year works (a weekly loan on a
  weekday the branch is closed) it goes to the next working day instead;
- with `extend_term`, a due date on a non-working day is skipped instead: it and every later
  installment move on by whole periods (the regular dates after it) until it falls on a working
  day, so the count of installments stays and the loan ends later. A date no regular date
  within a year can replace (a weekly loan on a weekday the branch is closed) is moved by the
  rule instead.

Dates never go backwards: the adjusted dates are non-decreasing (two installments can share a
day: a daily loan whose Sunday installment moves to Monday).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, timedelta

from namma.finance.errors import TermsError
from namma.finance.terms import NonWorkingDayRule

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_ONE_DAY = timedelta(days=1)
_A_YEAR = timedelta(days=366)
# A search for a working day gives up after this many days (a calendar closed for a year is a
# mistake, not a plan).
MAX_CLOSED_DAYS = 366


@dataclass(frozen=True, slots=True)
class WorkingCalendar:
    """Holidays and non-working weekdays (0 = Monday … 6 = Sunday). Empty: every day works."""

    holidays: frozenset[date] = frozenset()
    non_working_weekdays: frozenset[int] = frozenset()

    def __post_init__(self) -> None:
        if any(not 0 <= d <= 6 for d in self.non_working_weekdays):
            raise TermsError.single("non_working_weekdays", "Weekdays are 0 (Monday) to 6 (Sunday)")
        if len(self.non_working_weekdays) >= 7:
            raise TermsError.single(
                "non_working_weekdays", "At least one weekday must be a working day"
            )

    @classmethod
    def of(
        cls, *, holidays: Iterable[date] = (), non_working_weekdays: Iterable[int] = ()
    ) -> WorkingCalendar:
        return cls(frozenset(holidays), frozenset(non_working_weekdays))

    def is_working(self, day: date) -> bool:
        return day.weekday() not in self.non_working_weekdays and day not in self.holidays

    def __bool__(self) -> bool:
        return bool(self.holidays or self.non_working_weekdays)

    def next_working_day(self, day: date) -> date:
        """`day` if it is a working day, else the first working day after it."""
        return self._walk(day, _ONE_DAY)

    def previous_working_day(self, day: date) -> date:
        """`day` if it is a working day, else the last working day before it."""
        return self._walk(day, -_ONE_DAY)

    def _walk(self, day: date, step: timedelta) -> date:
        for _ in range(MAX_CLOSED_DAYS + 1):
            if self.is_working(day):
                return day
            day += step
        raise TermsError.single(
            "calendar", f"No working day within {MAX_CLOSED_DAYS} days of {day.isoformat()}"
        )


def calendar_due_dates(
    nominal: Callable[[int], date],
    count: int,
    *,
    calendar: WorkingCalendar | None,
    rule: NonWorkingDayRule,
    extend_term: bool = False,
    disbursed_on: date,
) -> list[date]:
    """The `count` due dates after the calendar: `nominal(k)` is the k-th regular due date
    (0-based, for any k ≥ 0 — the term may extend beyond `count`)."""
    return [
        due
        for _, due in calendar_dates(
            nominal,
            count,
            calendar=calendar,
            rule=rule,
            extend_term=extend_term,
            disbursed_on=disbursed_on,
        )
    ]


def calendar_dates(
    nominal: Callable[[int], date],
    count: int,
    *,
    calendar: WorkingCalendar | None,
    rule: NonWorkingDayRule,
    extend_term: bool = False,
    disbursed_on: date,
) -> list[tuple[date, date]]:
    """`calendar_due_dates` with each installment's regular date beside its due date: the
    regular date it took (after any periods `extend_term` skipped) before the rule moved it off
    a non-working day. A reschedule that rebuilds the installments from one of them on starts
    its regular dates there, not on a date a holiday moved."""
    if not calendar or rule is NonWorkingDayRule.SAME_DAY:
        return [(nominal(k), nominal(k)) for k in range(count)]
    out: list[tuple[date, date]] = []
    previous = disbursed_on
    shift = 0  # periods skipped so far (extend_term)
    for k in range(count):
        day = nominal(k + shift)
        if extend_term and not calendar.is_working(day):
            # Skip whole periods while a regular date within a year works; a date that never
            # does (a weekly loan on a closed weekday) is moved by the rule instead.
            skipped = 1
            while nominal(k + shift + skipped) - day <= _A_YEAR:
                if calendar.is_working(nominal(k + shift + skipped)):
                    shift += skipped
                    day = nominal(k + shift)
                    break
                skipped += 1
        regular = day
        if not calendar.is_working(day):
            if rule is NonWorkingDayRule.NEXT_MEETING_DAY:
                day = _next_meeting(nominal, k + shift, calendar)
            elif rule is NonWorkingDayRule.PREVIOUS_WORKING_DAY:
                earlier = calendar.previous_working_day(day)
                day = earlier if earlier > previous else calendar.next_working_day(day)
            else:
                day = calendar.next_working_day(day)
        day = max(day, previous) if out else day
        out.append((regular, day))
        previous = day
    return out


def _next_meeting(nominal: Callable[[int], date], k: int, calendar: WorkingCalendar) -> date:
    """The first regular date after `nominal(k)` that is a working day (the loan's next
    meeting); the next working day if none within a year is."""
    day = nominal(k)
    later = 1
    while nominal(k + later) - day <= _A_YEAR:
        if calendar.is_working(nominal(k + later)):
            return nominal(k + later)
        later += 1
    return calendar.next_working_day(day)
