"""Repayment schedules.

The defaults reproduce the original app (DESIGN.md §6): declining balance, per-period rate =
annual / periods per year, installment rounded to 0.01 half-up, each row's interest = balance ×
rate rounded to 0.01 half-up, principal = installment − interest, the last row takes whatever
balance is left. So Σ principal = principal exactly, and the total interest is Σ of the rows'
interest (not installment × n − principal).
"""

from __future__ import annotations

import decimal
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from namma.finance.calendar import WorkingCalendar, calendar_dates, calendar_due_dates
from namma.finance.charges import (
    deducted_fees,
    disbursement_fee_amount,
    first_installment_fees,
    installment_fees,
)
from namma.finance.dates import (
    due_dates,
    months_as_30_days,
    one_period_after,
    one_period_before,
    period_step,
    year_fraction,
)
from namma.finance.errors import TermsError
from namma.finance.rounding import (
    CENT,
    DECIMAL_ROUNDING,
    MONEY_CONTEXT,
    ONE,
    ZERO,
    InterestRounding,
    RoundingMode,
    round_money,
    round_to_multiple,
)
from namma.finance.terms import (
    Amortization,
    DaysInMonth,
    ExcessPolicy,
    Fee,
    FeeTiming,
    Frequency,
    InterestMethod,
    InterestPeriod,
    LoanTerms,
    ScheduleConvention,
)

_BASE_PERIODS_PER_YEAR: dict[Frequency, int] = {
    Frequency.DAILY: 365,
    Frequency.WEEKLY: 52,
    Frequency.FORTNIGHTLY: 26,
    Frequency.MONTHLY: 12,
    Frequency.QUARTERLY: 4,
    Frequency.HALF_YEARLY: 2,
    Frequency.YEARLY: 1,
}


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """One installment. `total` = principal + interest + fees; `balance` is principal left after it.

    `period_start` is where this row's interest starts accruing (the previous due date, or the
    disbursement). `interest_for_period` is the interest earned over the period; it differs from
    `interest` (what is payable in this row) only under interest grace, where earned interest is
    deferred to the first installment after the grace.
    """

    number: int
    due_date: date
    principal: Decimal
    interest: Decimal
    fees: Decimal
    total: Decimal
    balance: Decimal
    period_start: date
    interest_for_period: Decimal


@dataclass(frozen=True, slots=True)
class Schedule:
    """A loan's schedule with what was used to build it.

    `installment_amount` is the regular installment (see `installment_amount`); `deducted_fees`
    are kept from the payout; `upfront_fees_in_first_installment` are included in row 1's fees;
    `first_period_fraction` is the first period's length over a regular period (1 when regular).
    `calendar` is the working calendar the dates were moved by (None: none), and
    `nominal_first_due_on` the first regular due date before the calendar moved it (None: the
    same as `first_due_on`) — what a reschedule builds on.
    """

    terms: LoanTerms
    disbursed_on: date
    first_due_on: date
    installment_amount: Decimal
    rows: tuple[ScheduleRow, ...]
    deducted_fees: Decimal
    upfront_fees_in_first_installment: Decimal
    first_period_fraction: Decimal
    calendar: WorkingCalendar | None = None
    nominal_first_due_on: date | None = None

    @property
    def net_disbursement(self) -> Decimal:
        """What the borrower receives: principal less the deducted fees."""
        return self.terms.principal - self.deducted_fees

    @property
    def total_principal(self) -> Decimal:
        return sum((r.principal for r in self.rows), ZERO)

    @property
    def total_interest(self) -> Decimal:
        return sum((r.interest for r in self.rows), ZERO)

    @property
    def total_fees(self) -> Decimal:
        return sum((r.fees for r in self.rows), ZERO)

    @property
    def total_amount(self) -> Decimal:
        """Everything the borrower repays: Σ row totals."""
        return sum((r.total for r in self.rows), ZERO)

    @property
    def maturity_date(self) -> date:
        return self.rows[-1].due_date


def periods_per_year(terms: LoanTerms) -> Decimal:
    """Periods in a year: 52 weekly, 12 monthly …; every N days 365/N (or ⌊365/N⌋); ÷ repeat."""
    with decimal.localcontext(MONEY_CONTEXT):
        if terms.frequency is Frequency.DAYS:
            days = terms.every or 1
            if terms.periods_per_year_floor:
                return Decimal(365 // days)
            return Decimal(365) / days
        return Decimal(_BASE_PERIODS_PER_YEAR[terms.frequency]) / terms.repeat


def periodic_rate(terms: LoanTerms) -> Decimal:
    """The interest rate of one period, as a fraction (12 % monthly → 0.01).

    Computed with a single division so that annual / 100 / periods (the origin's order) and the
    repeat multiplier give the same digits: every N days = annual × N / 365; with the ⌊365/N⌋
    option = annual / ⌊365/N⌋; otherwise annual × repeat / periods per year.
    """
    with decimal.localcontext(MONEY_CONTEXT):
        rate = terms.annual_rate
        if terms.frequency is Frequency.DAYS:
            days = terms.every or 1
            if terms.periods_per_year_floor:
                return rate / (100 * (365 // days))
            return rate * days / 36500
        return rate * terms.repeat / (100 * _BASE_PERIODS_PER_YEAR[terms.frequency])


def _annuity(principal: Decimal, rate: Decimal, periods: int) -> Decimal:
    """Unrounded equal installment P·r·(1+r)^n / ((1+r)^n − 1), as the origin computed it."""
    if rate == 0:
        return principal / periods
    if periods == 1:
        return principal + principal * rate
    growth = (ONE + rate) ** periods
    return principal * rate * growth / (growth - ONE)


def _equal_principal_part(terms: LoanTerms) -> Decimal:
    periods = terms.installments - terms.grace_principal
    return round_to_multiple(
        terms.principal / periods, terms.installment_multiple, terms.installment_rounding
    )


def installment_amount(terms: LoanTerms) -> Decimal:
    """The regular installment at the nominal periodic rate (no fees).

    - equal installments: the EMI over the installments after the principal grace (declining:
      the annuity formula; flat: (P + P·r·n) / n), rounded to the installment multiple;
    - equal principal: the first amortising installment (principal part + interest on P);
    - interest-only: P·r; bullet: P + n·(P·r).

    Actual rows can differ: a broken first period, daily interest, grace, and the last row,
    which always absorbs the residue. Under the `fineract-progressive` convention the
    schedule's installment is worked out over its periods' own factors instead
    (`generate_schedule`); this stays the nominal one.
    """
    with decimal.localcontext(MONEY_CONTEXT):
        rate = periodic_rate(terms)
        principal = terms.principal
        periodic_interest = round_money(principal * rate, terms.interest_rounding)
        amortization = terms.amortization
        if amortization is Amortization.EQUAL_INSTALLMENTS:
            periods = terms.installments - terms.grace_principal
            if terms.interest_method is InterestMethod.FLAT:
                raw = (principal + principal * rate * periods) / periods
            else:
                raw = _annuity(principal, rate, periods)
            return round_to_multiple(raw, terms.installment_multiple, terms.installment_rounding)
        if amortization is Amortization.EQUAL_PRINCIPAL:
            return _equal_principal_part(terms) + periodic_interest
        if amortization is Amortization.INTEREST_ONLY:
            return periodic_interest
        return principal + periodic_interest * terms.installments


@dataclass(frozen=True, slots=True)
class _Plan:
    """Dates and per-period interest factors (interest = base × numerator / denominator)."""

    due: list[date]
    starts: list[date]
    numerators: list[Decimal]
    denominators: list[int]
    first_period_fraction: Decimal
    nominal_first_due: date


def _nominal_dates(
    terms: LoanTerms, disbursed_on: date, first_due_on: date | None, count: int | None = None
) -> tuple[list[date], Callable[[int], date]]:
    """The terms' regular due dates (``count`` of them, the terms' installments if None), and
    the k-th of them for any k (past the term too: a calendar that extends the term needs
    them)."""
    every = terms.every or 1
    known = due_dates(
        frequency=terms.frequency,
        every=every,
        count=terms.installments if count is None else count,
        disbursed_on=disbursed_on,
        first_due_on=first_due_on,
    )
    extended = list(known)

    def at(k: int) -> date:
        if k >= len(extended):
            extended[:] = due_dates(
                frequency=terms.frequency,
                every=every,
                count=max(k + 1, 2 * len(extended)),
                disbursed_on=disbursed_on,
                first_due_on=first_due_on,
            )
        return extended[k]

    return known, at


def schedule_dates(
    terms: LoanTerms,
    *,
    period_start: date,
    first_due_on: date | None,
    count: int,
    calendar: WorkingCalendar | None,
) -> list[tuple[date, date]]:
    """(regular date, due date) of ``count`` installments whose first period starts on
    ``period_start`` and whose first regular due date is ``first_due_on`` (None: one period
    later): the regular dates follow by the terms' frequency, and the calendar moves them by the
    terms' rule (`namma.finance.calendar.calendar_dates`). The dates `generate_schedule` gives a
    loan from its disbursement and `restructure_schedule` its rebuilt rows from their first
    period's start; a loan already out takes them again when its calendar changes (D-187,
    D-208)."""
    _, at = _nominal_dates(terms, period_start, first_due_on, count)
    return calendar_dates(
        at,
        count,
        calendar=calendar,
        rule=terms.non_working_day,
        extend_term=terms.extend_term,
        disbursed_on=period_start,
    )


def _plan(
    terms: LoanTerms,
    disbursed_on: date,
    first_due_on: date | None,
    calendar: WorkingCalendar | None = None,
    dates: Sequence[date] = (),
) -> _Plan:
    """The plan of the terms' dates, moved by the calendar; `dates`, if given, replace the
    first due dates (a reschedule keeps the dates the loan has)."""
    every = terms.every or 1
    nominal, at = _nominal_dates(terms, disbursed_on, first_due_on)
    first_due = nominal[0]
    if calendar:
        dues = calendar_due_dates(
            at,
            terms.installments,
            calendar=calendar,
            rule=terms.non_working_day,
            extend_term=terms.extend_term,
            disbursed_on=disbursed_on,
        )
    else:
        dues = nominal
    if dates:
        dues = [*dates, *dues[len(dates) :]]
    starts = [disbursed_on, *dues[:-1]]
    fraction = ONE
    actual_days = regular_days = 1
    if first_due != one_period_after(disbursed_on, terms.frequency, every):
        actual_days = (first_due - disbursed_on).days
        regular_days = (first_due - one_period_before(first_due, terms.frequency, every)).days
        fraction = Decimal(actual_days) / regular_days
    n = terms.installments
    if terms.interest_period is InterestPeriod.INSTALLMENT:
        rate = periodic_rate(terms)
        numerators = [rate] * n
        denominators = [1] * n
        if actual_days != regular_days:
            # Broken first period: pro rata for the actual days.
            numerators[0] = rate * actual_days
            denominators[0] = regular_days
    elif (
        terms.schedule_convention is ScheduleConvention.FINERACT_PROGRESSIVE
        and terms.days_in_month is DaysInMonth.D30
    ):
        numerators, denominators = _progressive_30_day_factors(terms, starts, dues, fraction)
    else:
        numerators = []
        denominators = []
        for start, end in zip(starts, dues, strict=True):
            days, year_days = year_fraction(
                start,
                end,
                days_in_year=terms.days_in_year,
                days_in_month_rule=terms.days_in_month,
            )
            numerators.append(terms.annual_rate * days)
            denominators.append(100 * year_days)
    return _Plan(dues, starts, numerators, denominators, fraction, first_due)


def _progressive_30_day_factors(
    terms: LoanTerms, starts: list[date], dues: list[date], first_fraction: Decimal
) -> tuple[list[Decimal], list[int]]:
    """`fineract-progressive` with 30-day months: a period's factor is annual × days / (100 ×
    days in year), its days counted as 30 a month for month-based frequencies and as the
    actual days otherwise (every N days, weeks). A regular period is exactly its months × 30; a
    broken first month-based period is its whole months from the disbursement plus the share of
    the next month it covers (`months_as_30_days`)."""
    step_months = period_step(terms.frequency, terms.every or 1)[1]
    year = 100 * int(terms.days_in_year.value)
    rate = terms.annual_rate
    numerators: list[Decimal] = []
    denominators: list[int] = []
    for k, (start, end) in enumerate(zip(starts, dues, strict=True)):
        if not step_months:
            numerators.append(rate * (end - start).days)
            denominators.append(year)
        elif k or first_fraction == ONE:
            numerators.append(rate * 30 * step_months)
            denominators.append(year)
        else:
            days, share = months_as_30_days(start, end)
            numerators.append(rate * days)
            denominators.append(year * share)
    return numerators, denominators


def _annuity_over(
    principal: Decimal, numerators: Sequence[Decimal], denominators: Sequence[int]
) -> Decimal:
    """The unrounded equal installment that repays `principal` over periods of these factors
    (each factor = numerator / denominator), interest on the declining balance: principal × Π(1
    + fₖ) / (1 + Σⱼ Πₖ₍ₖ>ⱼ₎ (1 + fₖ)) — the annuity when the factors are all equal, and exact for
    a broken first period or months of different lengths. Runs inside MONEY_CONTEXT."""
    growth = ONE
    later = ONE  # 1 + Σⱼ Πₖ₍ₖ>ⱼ₎ (1 + fₖ), built period by period from the second
    for k, (numerator, denominator) in enumerate(zip(numerators, denominators, strict=True)):
        factor = ONE + numerator / denominator
        growth *= factor
        if k:
            later = ONE + later * factor
    return principal * growth / later


def _progressive_installment(
    terms: LoanTerms, plan: _Plan, balance: Decimal, first: int, last: int
) -> Decimal:
    """`fineract-progressive`: the installment that repays `balance` over rows `first`..`last`
    (1-based) with their own factors, rounded to the installment multiple — or to the paisa
    when the multiple would round it to nothing."""
    raw = _annuity_over(
        balance, plan.numerators[first - 1 : last], plan.denominators[first - 1 : last]
    )
    rounded = round_to_multiple(raw, terms.installment_multiple, terms.installment_rounding)
    if rounded == 0 and raw > 0:
        return round_money(raw, terms.installment_rounding)
    return rounded


# The `fineract-progressive` convention tries at most this many times to even out a last
# installment that differs from the others, sharing the difference rounded to the paisa
# half-even (Fineract's default rounding of money).
_EVEN_OUT_ATTEMPTS = 3
_EVEN_OUT_ROUNDING = RoundingMode.HALF_EVEN


def _evened_out(
    terms: LoanTerms,
    installment: Decimal,
    amortising: int,
    build: Callable[[Decimal], list[ScheduleRow]],
) -> tuple[Decimal, list[ScheduleRow]]:
    """`fineract-progressive`: the rows for `installment`, its last installment evened out.

    When the last row's principal + interest differs from the installment by more than half
    as many paise as there are amortising rows (rounded down), the installment moves by that
    difference shared over those rows (rounded to the paisa half-even, then to the multiple by
    the installment rounding) and the rows are built again; the new installment is kept only
    if the last row's difference shrinks. At most three tries. Runs inside MONEY_CONTEXT.
    """
    rows = build(installment)
    threshold = CENT * (amortising // 2)
    for _ in range(_EVEN_OUT_ATTEMPTS):
        last = rows[-1]
        difference = last.principal + last.interest - installment
        if threshold == 0 or abs(difference) <= threshold:
            break
        share = round_money(difference / amortising, _EVEN_OUT_ROUNDING)
        candidate = round_to_multiple(
            installment + share, terms.installment_multiple, terms.installment_rounding
        )
        if candidate == installment or candidate <= 0:
            break
        candidate_rows = build(candidate)
        tail = candidate_rows[-1]
        if abs(tail.principal + tail.interest - candidate) >= abs(difference):
            break
        installment, rows = candidate, candidate_rows
    return installment, rows


def generate_schedule(
    terms: LoanTerms,
    *,
    disbursed_on: date,
    first_due_on: date | None = None,
    calendar: WorkingCalendar | None = None,
) -> Schedule:
    """Build the schedule of a loan disbursed on `disbursed_on`.

    `first_due_on` defaults to one period after disbursement; any other date makes a broken
    first period whose interest is pro rata for its actual days. Raises `TermsError` (field
    `first_due_on`) if the first due date is not after the disbursement.

    With a `calendar`, due dates on its non-working days move by the terms' `non_working_day`
    rule (and `extend_term`), see `namma.finance.calendar`. Interest per installment stays one
    period's (the broken first period is judged on the regular date); daily interest counts
    the actual days between the moved dates.
    """
    if first_due_on is not None and first_due_on <= disbursed_on:
        raise TermsError.single(
            "first_due_on", "First due date must be after the disbursement date"
        )
    with decimal.localcontext(MONEY_CONTEXT):
        plan = _plan(terms, disbursed_on, first_due_on, calendar)
        upfront = first_installment_fees(terms)
        principal = terms.principal.quantize(CENT)
        if terms.schedule_convention is ScheduleConvention.FINERACT_PROGRESSIVE:
            first = terms.grace_principal + 1
            amount, rows = _evened_out(
                terms,
                _progressive_installment(terms, plan, principal, first, terms.installments),
                terms.installments - terms.grace_principal,
                lambda installment: _amortize(
                    terms,
                    plan,
                    start_number=1,
                    balance=principal,
                    installment=installment,
                    deferred=ZERO,
                    upfront=upfront,
                ),
            )
        elif terms.amortization is Amortization.BULLET:
            amount = installment_amount(terms)
            rows = _bullet(terms, plan, upfront)
        else:
            amount = installment_amount(terms)
            rows = _amortize(
                terms,
                plan,
                start_number=1,
                balance=principal,
                installment=amount,
                deferred=ZERO,
                upfront=upfront,
            )
        return Schedule(
            terms=terms,
            disbursed_on=disbursed_on,
            first_due_on=plan.due[0],
            installment_amount=amount,
            rows=tuple(rows),
            deducted_fees=deducted_fees(terms),
            upfront_fees_in_first_installment=upfront,
            first_period_fraction=plan.first_period_fraction,
            calendar=calendar or None,
            nominal_first_due_on=plan.nominal_first_due,
        )


def total_interest(schedule: Schedule) -> Decimal:
    """Σ of the schedule's interest: what the borrower really pays (not EMI × n − P)."""
    return schedule.total_interest


def reschedule_after_prepayment(
    *,
    schedule: Schedule,
    paid_through: int,
    balance: Decimal,
    policy: ExcessPolicy = ExcessPolicy.REDUCE_TERM,
) -> Schedule:
    """The schedule after principal was prepaid, by the product's excess policy.

    Rows 1..`paid_through` are kept; from the next one on, rows are rebuilt on the new principal
    `balance` on the same due dates, with the same interest method, rounding and grace:

    - `reduce-term` (the default): the same installment amount, so the loan ends earlier (its
      last row takes what is left, and is smaller); equal-principal keeps its principal part;
    - `reduce-installment`: the same number of installments, each lower — the installment is
      worked out again on `balance` over the amortising periods left (up to the schedule's
      last row: it never gets longer than it now is), as `installment_amount`
      does for a new loan (declining: the annuity; flat: interest stays on the original
      principal; equal-principal: `balance` ÷ periods), rounded to the installment multiple.
      The last row absorbs the residue, so rounding up to a multiple can end it a row early.

    Interest-only and bullet loans have no installment to keep or lower: both policies rebuild
    their rows on `balance`. The next row's interest is computed on the new balance for its
    whole period. A zero balance closes the schedule at `paid_through`. `schedule` may be a
    rescheduled one (`schedule_as_stored`): its kept rows and installment amount are used.
    """
    rows = schedule.rows
    if not 0 <= paid_through <= len(rows):
        raise TermsError.single("paid_through", "paid_through must be a row of the schedule")
    before = rows[paid_through - 1].balance if paid_through else schedule.terms.principal
    if not ZERO <= balance <= before or balance != balance.quantize(CENT):
        raise TermsError.single(
            "balance", f"The new balance must be an amount between 0 and {before}"
        )
    if policy not in (ExcessPolicy.REDUCE_TERM, ExcessPolicy.REDUCE_INSTALLMENT):
        raise TermsError.single("policy", "A prepayment reduces the term or the installment")
    kept = rows[:paid_through]
    if balance == 0 or paid_through == len(rows):
        return _replace_rows(schedule, kept)
    terms = schedule.terms
    with decimal.localcontext(MONEY_CONTEXT):
        plan = _plan(
            terms,
            schedule.disbursed_on,
            schedule.nominal_first_due_on or schedule.first_due_on,
            schedule.calendar,
            # the rows keep the dates the loan has (a calendar may have moved them)
            () if terms.amortization is Amortization.BULLET else [r.due_date for r in rows],
        )
        installment = schedule.installment_amount
        if terms.amortization is Amortization.BULLET:
            rebuilt = _bullet(terms, plan, schedule.upfront_fees_in_first_installment, balance)
            if policy is ExcessPolicy.REDUCE_INSTALLMENT:  # its one installment is lower
                installment = rebuilt[0].principal + rebuilt[0].interest
        else:
            per_principal: Decimal | None = None
            # The loan never gets longer than it now is (a rounded-up installment, or an earlier
            # reduce-term, can have ended it before the terms' last period).
            last = rows[-1].number
            if policy is ExcessPolicy.REDUCE_INSTALLMENT:
                installment, per_principal = _reduced_installment(
                    terms, plan, paid_through, balance, last
                )
            elif terms.amortization is Amortization.EQUAL_PRINCIPAL:
                per_principal = _principal_part_kept(terms, rows[paid_through:])
            deferred = sum((r.interest_for_period - r.interest for r in kept), ZERO)

            def build(amount: Decimal) -> list[ScheduleRow]:
                return _amortize(
                    terms,
                    plan,
                    start_number=paid_through + 1,
                    balance=balance,
                    installment=amount,
                    deferred=deferred,
                    upfront=schedule.upfront_fees_in_first_installment,
                    per_principal=per_principal,
                    last_number=last,
                )

            if (
                policy is ExcessPolicy.REDUCE_INSTALLMENT
                and terms.schedule_convention is ScheduleConvention.FINERACT_PROGRESSIVE
            ):
                amortising = last - max(paid_through, terms.grace_principal)
                installment, rebuilt = _evened_out(terms, installment, amortising, build)
            else:
                rebuilt = build(installment)
            if (
                policy is ExcessPolicy.REDUCE_INSTALLMENT
                and terms.amortization is not Amortization.EQUAL_INSTALLMENTS
            ):
                # The regular installment of these shapes: the first amortising row's principal
                # and interest (what `installment_amount` gives a new loan).
                first = next((r for r in rebuilt if r.number > terms.grace_principal), rebuilt[0])
                installment = first.principal + first.interest
    return _replace_rows(schedule, (*kept, *rebuilt), installment_amount=installment)


def _reduced_installment(
    terms: LoanTerms, plan: _Plan, paid_through: int, balance: Decimal, last: int
) -> tuple[Decimal, Decimal | None]:
    """`reduce-installment`: the installment (and, for equal-principal, the principal part)
    that amortises `balance` over the periods left after the principal grace, up to row
    `last` (`fineract-progressive`: over those rows' own factors). Runs inside MONEY_CONTEXT."""
    periods = max(1, last - max(paid_through, terms.grace_principal))
    if terms.schedule_convention is ScheduleConvention.FINERACT_PROGRESSIVE:
        return _progressive_installment(terms, plan, balance, last - periods + 1, last), None
    if terms.amortization is Amortization.EQUAL_PRINCIPAL:
        part = round_to_multiple(
            balance / periods, terms.installment_multiple, terms.installment_rounding
        )
        return part, part
    if terms.amortization is not Amortization.EQUAL_INSTALLMENTS:
        return ZERO, None  # interest-only: no installment drives its rows
    rate = periodic_rate(terms)
    if terms.interest_method is InterestMethod.FLAT:
        raw = balance / periods + terms.principal * rate
    else:
        raw = _annuity(balance, rate, periods)
    return (
        round_to_multiple(raw, terms.installment_multiple, terms.installment_rounding),
        None,
    )


def _principal_part_kept(terms: LoanTerms, future: Sequence[ScheduleRow]) -> Decimal:
    """`reduce-term` on equal principal: the principal part the next amortising row asks (it
    may have been lowered by an earlier `reduce-installment`); the product's part otherwise."""
    amortising = [r for r in future[:-1] if r.number > terms.grace_principal]
    return amortising[0].principal if amortising else _equal_principal_part(terms)


def schedule_as_stored(
    schedule: Schedule, rows: Sequence[ScheduleRow], *, installment_amount: Decimal
) -> Schedule:
    """`schedule` (built from the terms) with the rows a loan really has — after a prepayment
    rescheduled it — and its regular installment as it now is (for payoff quotes and the next
    reschedule)."""
    return _replace_rows(schedule, tuple(rows), installment_amount=installment_amount)


def _replace_rows(
    schedule: Schedule,
    rows: tuple[ScheduleRow, ...],
    *,
    installment_amount: Decimal | None = None,
) -> Schedule:
    return Schedule(
        terms=schedule.terms,
        disbursed_on=schedule.disbursed_on,
        first_due_on=schedule.first_due_on,
        installment_amount=(
            schedule.installment_amount if installment_amount is None else installment_amount
        ),
        rows=rows,
        deducted_fees=schedule.deducted_fees,
        upfront_fees_in_first_installment=schedule.upfront_fees_in_first_installment,
        first_period_fraction=schedule.first_period_fraction,
        calendar=schedule.calendar,
        nominal_first_due_on=schedule.nominal_first_due_on,
    )


def _amortize(
    terms: LoanTerms,
    plan: _Plan,
    *,
    start_number: int,
    balance: Decimal,
    installment: Decimal,
    deferred: Decimal,
    upfront: Decimal,
    per_principal: Decimal | None = None,
    last_number: int | None = None,
) -> list[ScheduleRow]:
    """The row loop for every amortization except bullet. Runs inside MONEY_CONTEXT.

    This is the hot path (bench/bench_schedule.py): locals instead of attribute lookups, and
    positional construction of rows.
    """
    n = terms.installments if last_number is None else last_number
    amortization = terms.amortization
    equal_installments = amortization is Amortization.EQUAL_INSTALLMENTS
    equal_principal = amortization is Amortization.EQUAL_PRINCIPAL
    interest_only = amortization is Amortization.INTEREST_ONLY
    if per_principal is None:
        per_principal = _equal_principal_part(terms) if equal_principal else ZERO
    unrounded = terms.interest_rounding is InterestRounding.NONE
    rounding = DECIMAL_ROUNDING[terms.interest_rounding]
    half_up = decimal.ROUND_HALF_UP
    flat_base = terms.principal if terms.interest_method is InterestMethod.FLAT else None
    grace_principal = terms.grace_principal
    grace_interest = terms.grace_interest
    interest_free = terms.interest_free
    row_fees = tuple(f for f in terms.fees if f.timing is FeeTiming.INSTALLMENT)
    numerators = plan.numerators
    denominators = plan.denominators
    dues = plan.due
    starts = plan.starts
    cent = CENT
    zero = ZERO

    exact_balance = balance  # differs from `balance` only with unrounded interest
    cumulative_exact = zero
    cumulative_rounded = zero
    rows: list[ScheduleRow] = []
    append = rows.append
    for number in range(start_number, n + 1):
        k = number - 1
        if number <= interest_free:
            exact = zero
        else:
            exact = (exact_balance if flat_base is None else flat_base) * numerators[k]
            if denominators[k] != 1:
                exact = exact / denominators[k]
        if unrounded:
            cumulative_exact += exact
            rounded_total = cumulative_exact.quantize(cent, half_up)
            earned = rounded_total - cumulative_rounded
            cumulative_rounded = rounded_total
        else:
            earned = exact.quantize(cent, rounding)

        if number == n:
            principal = balance
        elif interest_only or number <= grace_principal:
            principal = zero
        elif equal_principal:
            principal = per_principal if per_principal < balance else balance
        else:
            principal = installment - earned
            if principal > balance:
                principal = balance
            elif principal < 0:
                principal = zero

        if unrounded:
            if equal_installments and number > grace_principal and number != n:
                exact_principal = installment - exact
                if exact_principal > exact_balance:
                    exact_principal = exact_balance
                elif exact_principal < 0:
                    exact_principal = zero
                exact_balance -= exact_principal
            else:
                exact_balance -= principal
            balance -= principal
        else:
            balance -= principal
            exact_balance = balance

        if number <= grace_interest:
            deferred += earned
            interest = zero
        elif deferred:
            interest = earned + deferred
            deferred = zero
        else:
            interest = earned
        last = number == n or balance == 0
        if last and deferred:
            interest += deferred
            deferred = zero

        fees = upfront if number == 1 else zero
        if row_fees:
            fees += installment_fees(row_fees, principal=principal, interest=interest)
        append(
            ScheduleRow(
                number,
                dues[k],
                principal,
                interest,
                fees,
                principal + interest + fees,
                balance,
                starts[k],
                earned,
            )
        )
        if last:
            break
    return rows


def _bullet(
    terms: LoanTerms, plan: _Plan, upfront: Decimal, principal: Decimal | None = None
) -> list[ScheduleRow]:
    """One row at the end of the last period: principal plus the interest of every period.

    Interest is simple (not compounded): each period's interest on the principal, rounded as the
    terms say, summed. Runs inside MONEY_CONTEXT.
    """
    base = (terms.principal if principal is None else principal).quantize(CENT)
    unrounded = terms.interest_rounding is InterestRounding.NONE
    rounding = DECIMAL_ROUNDING[terms.interest_rounding]
    total_exact = ZERO
    interest = ZERO
    for k in range(terms.interest_free, terms.installments):
        exact = base * plan.numerators[k] / plan.denominators[k]
        if unrounded:
            total_exact += exact
        else:
            interest += exact.quantize(CENT, rounding)
    if unrounded:
        interest = total_exact.quantize(CENT, decimal.ROUND_HALF_UP)
    fees = upfront + installment_fees(
        tuple(f for f in terms.fees if f.timing is FeeTiming.INSTALLMENT),
        principal=base,
        interest=interest,
    )
    return [
        ScheduleRow(
            number=1,
            due_date=plan.due[-1],
            principal=base,
            interest=interest,
            fees=fees,
            total=base + interest + fees,
            balance=ZERO,
            period_start=plan.starts[0],
            interest_for_period=interest,
        )
    ]


def schedule_fee_amounts(schedule: Schedule) -> tuple[tuple[Fee, Decimal], ...]:
    """Each fee of the loan with what it comes to over the whole loan (for the KFS and the
    loan's charges): disbursement-time fees once, per-installment fees summed over the rows."""
    terms = schedule.terms
    amounts: list[tuple[Fee, Decimal]] = []
    for fee in terms.fees:
        if fee.timing is FeeTiming.INSTALLMENT:
            amount = sum(
                (
                    installment_fees((fee,), principal=r.principal, interest=r.interest)
                    for r in schedule.rows
                ),
                ZERO,
            )
        else:
            amount = disbursement_fee_amount(fee, terms.principal)
        amounts.append((fee, amount))
    return tuple(amounts)


def monthly_repayment(schedule: Schedule) -> Decimal:
    """The regular installment as a monthly obligation (installment × periods a year ÷ 12),
    rounded to 0.01 half-up — what an income-based repayment cap compares."""
    with decimal.localcontext(MONEY_CONTEXT):
        return round_money(schedule.installment_amount * periods_per_year(schedule.terms) / 12)
