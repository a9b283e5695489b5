"""Hypothesis properties of the money core (each with at least 500 examples)."""

from __future__ import annotations

import itertools
from datetime import date, timedelta
from decimal import Decimal

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from namma.finance import (
    AllocationError,
    AllocationMode,
    AllocationStrategy,
    Amortization,
    Component,
    DaysInMonth,
    DaysInYear,
    Due,
    ExcessPolicy,
    Fee,
    FeeBasis,
    FeeTiming,
    Frequency,
    InterestMethod,
    InterestPeriod,
    InterestRounding,
    LoanTerms,
    RoundingMode,
    Schedule,
    ScheduleConvention,
    TermsError,
    advance_apply,
    allocate_payment,
    apply_allocation,
    days_past_due,
    dues_from_schedule,
    generate_schedule,
    payoff_quote,
    reschedule_after_prepayment,
)

# Examples: the profile's (tests/conftest.py: 500 in CI).
PROPERTY = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
CENT = Decimal("0.01")


def money(low: int, high: int) -> st.SearchStrategy[Decimal]:
    """Amounts in rupees between low and high, in paise."""
    return st.integers(low * 100, high * 100).map(lambda paise: Decimal(paise) / 100)


@st.composite
def fees(draw: st.DrawFn) -> tuple[Fee, ...]:
    out = []
    for _ in range(draw(st.integers(0, 3))):
        timing = draw(st.sampled_from(FeeTiming))
        if timing is FeeTiming.INSTALLMENT:
            basis = draw(
                st.sampled_from(
                    [FeeBasis.FLAT, FeeBasis.PERCENT_OF_PRINCIPAL, FeeBasis.PERCENT_OF_TOTAL]
                )
            )
        else:
            basis = draw(st.sampled_from([FeeBasis.FLAT, FeeBasis.PERCENT]))
        value = draw(money(0, 50)) if basis is FeeBasis.FLAT else draw(money(0, 3))
        out.append(Fee(name="fee", timing=timing, basis=basis, value=value))
    return tuple(out)


@st.composite
def loan_terms(draw: st.DrawFn) -> LoanTerms:
    n = draw(st.integers(1, 60))
    frequency = draw(st.sampled_from(Frequency))
    if frequency is Frequency.DAYS:
        every: int | None = draw(st.integers(1, 120))
        floor = draw(st.booleans())
    else:
        every = draw(st.one_of(st.none(), st.integers(1, 3)))
        floor = False
    amortization = draw(st.sampled_from(Amortization))
    grace_principal = (
        draw(st.integers(0, n - 1))
        if amortization in (Amortization.EQUAL_INSTALLMENTS, Amortization.EQUAL_PRINCIPAL)
        else 0
    )
    try:
        return LoanTerms(
            principal=draw(money(100, 5_000_000)),
            annual_rate=Decimal(draw(st.integers(0, 100_000))) / 1000,
            installments=n,
            frequency=frequency,
            every=every,
            periods_per_year_floor=floor,
            interest_method=draw(st.sampled_from(InterestMethod)),
            amortization=amortization,
            interest_period=draw(st.sampled_from(InterestPeriod)),
            days_in_year=draw(st.sampled_from(DaysInYear)),
            days_in_month=draw(st.sampled_from(DaysInMonth)),
            installment_multiple=Decimal(
                draw(st.sampled_from(["0.01", "0.05", "1", "5", "10", "100"]))
            ),
            installment_rounding=draw(st.sampled_from(RoundingMode)),
            interest_rounding=draw(st.sampled_from(InterestRounding)),
            grace_principal=grace_principal,
            grace_interest=draw(st.integers(0, n - 1)),
            interest_free=draw(st.integers(0, min(n, 3))),
            fees=draw(fees()),
        )
    except TermsError:
        assume(False)
        raise  # unreachable: assume(False) aborts the example


@st.composite
def progressive_terms(draw: st.DrawFn) -> LoanTerms:
    """Terms under the `fineract-progressive` convention (what it defines: equal installments
    on the declining balance, day-counted on a fixed year, principal grace allowed)."""
    n = draw(st.integers(1, 60))
    frequency = draw(st.sampled_from(Frequency))
    every = (
        draw(st.integers(1, 120))
        if frequency is Frequency.DAYS
        else draw(st.one_of(st.none(), st.integers(1, 3)))
    )
    return LoanTerms(
        principal=draw(money(100, 5_000_000)),
        annual_rate=Decimal(draw(st.integers(0, 100_000))) / 1000,
        installments=n,
        frequency=frequency,
        every=every,
        interest_period=InterestPeriod.DAILY,
        days_in_year=draw(st.sampled_from([DaysInYear.D360, DaysInYear.D364, DaysInYear.D365])),
        days_in_month=draw(st.sampled_from(DaysInMonth)),
        installment_multiple=Decimal(draw(st.sampled_from(["0.01", "0.05", "1", "5", "10"]))),
        installment_rounding=draw(st.sampled_from(RoundingMode)),
        interest_rounding=draw(st.sampled_from(InterestRounding)),
        grace_principal=draw(st.integers(0, n - 1)),
        fees=draw(fees()),
        schedule_convention=ScheduleConvention.FINERACT_PROGRESSIVE,
    )


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    # A quarter of the loans follow the fineract-progressive convention: every property below
    # holds for both.
    terms = draw(st.one_of(loan_terms(), loan_terms(), loan_terms(), progressive_terms()))
    disbursed_on = draw(st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)))
    first_due_on = draw(
        st.one_of(st.none(), st.integers(1, 90).map(lambda d: disbursed_on + timedelta(days=d)))
    )
    return generate_schedule(terms, disbursed_on=disbursed_on, first_due_on=first_due_on)


strategies = st.builds(
    AllocationStrategy,
    order=st.permutations(list(Component)).map(tuple),
    mode=st.sampled_from(AllocationMode),
    excess=st.sampled_from(ExcessPolicy),
)


def as_of_in(schedule: Schedule, offset: int) -> date:
    return schedule.disbursed_on + timedelta(days=offset)


@st.composite
def loan_in_progress(draw: st.DrawFn) -> tuple[Schedule, tuple[Due, ...], date]:
    """A loan with random penalties and some payments made, and a date to look at it."""
    schedule = draw(schedules())
    span = (schedule.maturity_date - schedule.disbursed_on).days
    dues = tuple(
        Due(
            number=d.number,
            due_date=d.due_date,
            principal=d.principal,
            interest=d.interest,
            fee=d.fee,
            penalty=draw(st.sampled_from([Decimal(0), Decimal(0), Decimal("25.00")])),
        )
        for d in dues_from_schedule(schedule)
    )
    payment_day = 0
    for _ in range(draw(st.integers(0, 3))):
        payment_day = draw(st.integers(payment_day, span + 30))
        owed = sum((d.total for d in dues), Decimal(0))
        if owed == 0:
            break
        amount = Decimal(draw(st.integers(1, int(owed * 100)))) / 100
        allocation = allocate_payment(
            amount=amount,
            dues=dues,
            as_of=as_of_in(schedule, payment_day),
            strategy=AllocationStrategy(excess=ExcessPolicy.ADVANCE),
        )
        dues = apply_allocation(dues, allocation)
    as_of = as_of_in(schedule, draw(st.integers(payment_day, span + 60)))
    return schedule, tuple(d for d in dues if d.total), as_of


@PROPERTY
@given(schedules())
def test_principal_sums_exactly(schedule: Schedule) -> None:
    assert sum(r.principal for r in schedule.rows) == schedule.terms.principal


@PROPERTY
@given(schedules())
def test_balances_never_negative_nor_increasing(schedule: Schedule) -> None:
    previous = schedule.terms.principal
    for row in schedule.rows:
        assert 0 <= row.balance <= previous
        assert row.balance == previous - row.principal
        previous = row.balance
    assert schedule.rows[-1].balance == 0


@PROPERTY
@given(schedules())
def test_every_row_total_is_its_parts(schedule: Schedule) -> None:
    for row in schedule.rows:
        assert row.total == row.principal + row.interest + row.fees
        for amount in (row.principal, row.interest, row.fees, row.total, row.balance):
            assert amount >= 0
            assert amount == amount.quantize(CENT)
    assert schedule.total_interest == sum(r.interest for r in schedule.rows)
    # Deferred interest is moved, never lost or created.
    assert schedule.total_interest == sum(r.interest_for_period for r in schedule.rows)


@PROPERTY
@given(schedules())
def test_due_dates_increase(schedule: Schedule) -> None:
    dates = [schedule.disbursed_on, *(r.due_date for r in schedule.rows)]
    assert all(a < b for a, b in itertools.pairwise(dates))


@PROPERTY
@given(loan_in_progress(), strategies, st.integers(1, 5_000_000))
def test_allocation_conserves_every_paisa(
    loan: tuple[Schedule, tuple[Due, ...], date], strategy: AllocationStrategy, paise: int
) -> None:
    _, dues, as_of = loan
    assume(dues)
    amount = Decimal(paise) / 100
    current = sum((d.total for d in dues if d.due_date <= as_of), Decimal(0))
    try:
        allocation = allocate_payment(amount=amount, dues=dues, as_of=as_of, strategy=strategy)
    except AllocationError:
        assert strategy.excess is ExcessPolicy.REFUSE
        assert amount > current
        return
    assert (
        allocation.allocated
        + allocation.prepaid_principal
        + allocation.advance
        + allocation.unallocated
        == amount
    )
    assert allocation.unallocated >= 0
    future_total = sum((d.total for d in dues if d.due_date > as_of), Decimal(0))
    assert 0 <= allocation.advance <= future_total
    by_number = {d.number: d for d in dues}
    for line in allocation.lines:
        due = by_number[line.number]
        for component in Component:
            assert 0 <= line.paid(component) <= due.owed(component)
    future_principal = sum((d.principal for d in dues if d.due_date > as_of), Decimal(0))
    assert 0 <= allocation.prepaid_principal <= future_principal
    if allocation.unallocated:  # only once everything payable is paid
        after = apply_allocation(dues, allocation)
        assert all(d.total == 0 for d in after if d.due_date <= as_of)


@PROPERTY
@given(loan_in_progress())
def test_payoff_quote_paid_in_full_closes_the_loan(
    loan: tuple[Schedule, tuple[Due, ...], date],
) -> None:
    schedule, dues, as_of = loan
    quote = payoff_quote(schedule=schedule, dues=dues, as_of=as_of)
    paid = {line.number: line for line in quote.lines}
    waived = {line.number: line for line in quote.waived}
    for due in dues:
        for component in Component:
            owed = due.owed(component)
            assert paid[due.number].paid(component) >= 0
            assert waived[due.number].paid(component) >= 0
            assert paid[due.number].paid(component) + waived[due.number].paid(component) == owed
        assert waived[due.number].principal == 0
        if due.due_date <= as_of:
            assert waived[due.number].total == 0
    assert quote.total == sum((line.total for line in quote.lines), Decimal(0))
    assert quote.total == quote.outstanding.total
    assert quote.outstanding.principal == sum((d.principal for d in dues), Decimal(0))
    # Paying the quote as one allocation (what is beyond the current dues held as an advance,
    # then applied as the rest falls due) leaves nothing but the waived amounts.
    if quote.total:
        adjusted = [
            Due(
                number=d.number,
                due_date=d.due_date,
                principal=d.principal,
                interest=d.interest - waived[d.number].interest,
                fee=d.fee - waived[d.number].fee,
                penalty=d.penalty,
            )
            for d in dues
        ]
        first = allocate_payment(amount=quote.total, dues=adjusted, as_of=as_of)
        later = advance_apply(
            advance=first.advance,
            dues=apply_allocation(adjusted, first),
            as_of=max(d.due_date for d in dues),
        )
        assert later.advance == 0
        remaining = apply_allocation(apply_allocation(dues, first), later)
        assert all(
            d.principal == 0 and d.penalty == 0 and d.interest == waived[d.number].interest
            for d in remaining
        )


@PROPERTY
@given(loan_in_progress())
def test_days_past_due_is_zero_when_nothing_is_overdue(
    loan: tuple[Schedule, tuple[Due, ...], date],
) -> None:
    _, dues, as_of = loan
    dpd = days_past_due(dues=dues, as_of=as_of)
    overdue = [d for d in dues if d.due_date < as_of and (d.principal or d.interest or d.fee)]
    if overdue:
        assert dpd == (as_of - min(d.due_date for d in overdue)).days > 0
    else:
        assert dpd == 0


@PROPERTY
@given(schedules(), st.data())
def test_prepayment_shortens_and_keeps_principal(schedule: Schedule, data: st.DataObject) -> None:
    paid_through = data.draw(st.integers(0, len(schedule.rows)))
    before = schedule.rows[paid_through - 1].balance if paid_through else schedule.terms.principal
    prepaid = Decimal(data.draw(st.integers(0, int(before * 100)))) / 100
    new = reschedule_after_prepayment(
        schedule=schedule, paid_through=paid_through, balance=before - prepaid
    )
    assert new.total_principal + prepaid == schedule.terms.principal
    assert new.rows[:paid_through] == schedule.rows[:paid_through]
    assert len(new.rows) <= len(schedule.rows) or schedule.terms.amortization is Amortization.BULLET
    if prepaid != before and paid_through < len(schedule.rows):
        assert new.rows[-1].balance == 0


@PROPERTY
@given(progressive_terms(), st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)))
def test_progressive_rows_pay_the_installment(terms: LoanTerms, disbursed_on: date) -> None:
    """Under fineract-progressive every row before the last that repays principal pays
    exactly the installment (rows in principal grace pay interest only), and the installment is
    never nothing while principal is owed."""
    schedule = generate_schedule(terms, disbursed_on=disbursed_on)
    rows = schedule.rows
    assert schedule.installment_amount > 0
    for row in rows[:-1]:
        if row.number <= terms.grace_principal:
            assert row.principal == 0
        elif row.principal:
            assert row.principal + row.interest == schedule.installment_amount
    assert sum(r.principal for r in rows) == terms.principal


@PROPERTY
@given(
    st.dates(min_value=date(2000, 1, 1), max_value=date(2040, 12, 31)),
    st.integers(0, 24),
    st.integers(0, 40),
)
def test_months_as_30_days_counts_whole_months_as_30(start: date, months: int, extra: int) -> None:
    from fractions import Fraction

    from namma.finance import add_months
    from namma.finance.dates import months_as_30_days

    whole = add_months(start, months)
    assume(months or extra)
    if months:
        assert Fraction(*months_as_30_days(start, whole)) == 30 * months
    end = whole + timedelta(days=extra)
    days = Fraction(*months_as_30_days(start, end))
    # Never fewer than the whole months before `end`, never as many as the next one.
    before = max(k for k in range(months + 3) if add_months(start, k) <= end)
    assert 30 * before <= days < 30 * (before + 1)
