"""Golden numbers: DESIGN.md §6 and the origin's tests and worked numbers (origin.md §2.7, §5).

Where the origin has a defect we assert our (correct) number and say why:
- its total interest EMI × n − P = 6618.56; ours is Σ of the schedule = 6618.53;
- its outstandingAfterK skips the per-row rounding (51492.10); ours agrees with the schedule
  (51492.09), so its preclosure 52521.94 is 52521.93 here;
- its preloaded-interest allocation (6618.56 interest on the first 8884.88) is replaced by
  per-installment allocation (1000.00 interest, 7884.88 principal).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from namma.finance import (
    Amortization,
    Component,
    Due,
    Fee,
    FeeBasis,
    FeeTiming,
    Frequency,
    LoanTerms,
    PenaltyBasis,
    PenaltyRecurrence,
    PenaltyTerms,
    TermsError,
    allocate_payment,
    apply_allocation,
    dues_from_schedule,
    installment_amount,
    payoff_quote,
    penalty_for_installment,
    periodic_rate,
    periods_per_year,
    total_interest,
)

from .conftest import D, build, terms


def test_emi_100000_at_12_percent_12_monthly() -> None:
    schedule = build(100000, 12, 12)
    assert schedule.installment_amount == D("8884.88")
    rows = schedule.rows
    assert (rows[0].principal, rows[0].interest, rows[0].balance) == (
        D("7884.88"),
        D("1000.00"),
        D("92115.12"),
    )
    assert (rows[1].principal, rows[1].interest, rows[1].balance) == (
        D("7963.73"),
        D("921.15"),
        D("84151.39"),
    )
    assert (rows[5].principal, rows[5].interest, rows[5].balance) == (
        D("8287.09"),
        D("597.79"),
        D("51492.09"),
    )
    last = rows[-1]
    assert (last.principal, last.interest, last.total, last.balance) == (
        D("8796.88"),
        D("87.97"),
        D("8884.85"),
        D("0.00"),
    )
    # Σ schedule interest, not the origin's EMI × n − P = 6618.56 (defect 3).
    assert schedule.total_interest == total_interest(schedule) == D("6618.53")
    assert schedule.total_amount == D("106618.53")
    assert schedule.total_principal == D("100000.00")


def test_schedule_dates_from_2024_01_01_are_monthly() -> None:
    schedule = build(100000, 12, 12)
    assert [r.due_date for r in schedule.rows][:3] == [
        date(2024, 2, 1),
        date(2024, 3, 1),
        date(2024, 4, 1),
    ]
    assert schedule.maturity_date == date(2025, 1, 1)


@pytest.mark.parametrize(
    ("principal", "rate", "n", "kwargs", "expected"),
    [
        (12000, 0, 12, {}, "1000.00"),
        (10000, 12, 1, {}, "10100.00"),
        (50000, 15, 4, {"frequency": Frequency.QUARTERLY}, "13693.44"),
        (10000, 18, 30, {"frequency": Frequency.DAILY}, "335.89"),
        (
            20000,
            10,
            10,
            {"frequency": Frequency.DAYS, "every": 15, "periods_per_year_floor": True},
            "2046.12",
        ),
        (50000, 15, 6, {}, "8701.69"),
        # Seed loans recomputed (origin.md §2.7: the seed's own numbers are inconsistent).
        (50000, 15, 52, {"frequency": Frequency.WEEKLY}, "1036.84"),
        (200000, 10, 24, {}, "9228.99"),
        # Top-up example: the old loan's EMI on 60000 over 12 months.
        (60000, 12, 12, {}, "5330.93"),
    ],
)
def test_installment_amounts(
    principal: int, rate: int, n: int, kwargs: dict[str, object], expected: str
) -> None:
    assert installment_amount(terms(principal, rate, n, **kwargs)) == D(expected)


def test_daily_and_quarterly_installments_lie_between_zero_and_principal() -> None:
    daily = installment_amount(terms(10000, 18, 30, frequency=Frequency.DAILY))
    quarterly = installment_amount(terms(50000, 15, 4, frequency=Frequency.QUARTERLY))
    assert 0 < daily < 10000
    assert 0 < quarterly < 50000


def test_single_installment_is_principal_plus_one_period_of_interest() -> None:
    t = terms(10000, 12, 1)
    assert installment_amount(t) == t.principal * (1 + periodic_rate(t))


def test_zero_rate_has_no_interest() -> None:
    schedule = build(12000, 0, 12)
    assert schedule.total_interest == 0
    assert all(r.total == D("1000.00") for r in schedule.rows)


def test_50000_at_15_percent_6_monthly_rows() -> None:
    schedule = build(50000, 15, 6)
    assert schedule.rows[0].interest == D("625.00")
    assert all(r.total == D("8701.69") for r in schedule.rows)
    assert schedule.rows[-1].balance == 0


def test_75000_at_12_percent_10_monthly_principal_sums_exactly() -> None:
    schedule = build(75000, 12, 10)
    assert sum(r.principal for r in schedule.rows) == D("75000.00")


def test_schedule_shape_and_first_row_interest() -> None:
    schedule = build(100000, 12, 12)
    assert len(schedule.rows) == 12
    assert [r.number for r in schedule.rows] == list(range(1, 13))
    t = schedule.terms
    assert schedule.rows[0].interest == (t.principal * periodic_rate(t)).quantize(D("0.01"))
    assert schedule.rows[-1].balance == 0


def test_daily_loan_balance_after_15_installments() -> None:
    # The origin's unrounded outstandingAfterK(k=15) is 5018.45; the schedule agrees here.
    schedule = build(10000, 18, 30, frequency=Frequency.DAILY)
    assert schedule.rows[14].balance == D("5018.45")
    assert 0 < schedule.rows[14].balance < 10000


@pytest.mark.parametrize(
    ("frequency", "every", "expected"),
    [
        (Frequency.DAILY, None, 365),
        (Frequency.WEEKLY, None, 52),
        (Frequency.FORTNIGHTLY, None, 26),
        (Frequency.MONTHLY, None, 12),
        (Frequency.QUARTERLY, None, 4),
        (Frequency.HALF_YEARLY, None, 2),
        (Frequency.YEARLY, None, 1),
        (Frequency.DAYS, 10, 36),
        (Frequency.DAYS, 30, 12),
    ],
)
def test_periods_per_year(frequency: Frequency, every: int | None, expected: int) -> None:
    floor = frequency is Frequency.DAYS
    t = terms(1000, 10, 1, frequency=frequency, every=every, periods_per_year_floor=floor)
    assert periods_per_year(t) == expected


def test_interest_only_100000_at_12_percent_monthly() -> None:
    schedule = build(100000, 12, 12, amortization=Amortization.INTEREST_ONLY)
    assert schedule.installment_amount == D("1000.00")
    assert all(r.total == D("1000.00") for r in schedule.rows[:-1])
    assert schedule.rows[-1].total == D("101000.00")


def test_origin_bullet_is_our_interest_only() -> None:
    # The origin's "bullet" paid interest every period and the principal at the end.
    schedule = build(200000, 15, 12, amortization=Amortization.INTEREST_ONLY)
    assert {r.interest for r in schedule.rows} == {D("2500.00")}
    assert schedule.rows[-1].total == D("202500.00")
    assert schedule.total_interest == D("30000.00")
    assert schedule.total_amount == D("230000.00")


def test_bullet_pays_everything_at_the_end() -> None:
    schedule = build(200000, 15, 12, amortization=Amortization.BULLET)
    assert len(schedule.rows) == 1
    (row,) = schedule.rows
    assert (row.principal, row.interest, row.total) == (
        D("200000.00"),
        D("30000.00"),
        D("230000.00"),
    )
    assert row.due_date == date(2025, 1, 1)
    assert schedule.installment_amount == D("230000.00")


def test_disbursed_amount_after_seed_loan_1_charges() -> None:
    schedule = build(
        100000,
        12,
        12,
        fees=(
            Fee("stamp-duty", FeeTiming.DISBURSEMENT, FeeBasis.FLAT, D("1000")),
            Fee("processing", FeeTiming.DISBURSEMENT, FeeBasis.FLAT, D("1000")),
        ),
    )
    assert schedule.net_disbursement == D("98000.00")


@pytest.mark.parametrize(
    ("amount", "interest", "principal", "paid_interest", "paid_principal", "remaining"),
    [
        ("1000", "300", "5000", "300", "700", "0"),
        ("200", "500", "3000", "200", "0", "0"),
        ("6000", "300", "5000", "300", "5000", "700"),
        ("1000", "0", "0", "0", "0", "1000"),
    ],
)
def test_origin_allocation_cases(
    amount: str,
    interest: str,
    principal: str,
    paid_interest: str,
    paid_principal: str,
    remaining: str,
) -> None:
    due = Due(number=1, due_date=date(2024, 2, 1), principal=D(principal), interest=D(interest))
    allocation = allocate_payment(amount=D(amount), dues=[due], as_of=date(2024, 2, 1))
    assert allocation.total_of(Component.INTEREST) == D(paid_interest)
    assert allocation.total_of(Component.PRINCIPAL) == D(paid_principal)
    assert allocation.unallocated == D(remaining)


def test_origin_allocation_with_fees() -> None:
    # allocateCollectionWithFees(6000, late fee 200, penalty 500, interest 5000, principal 50000)
    # → 200 / 500 / 5000 / 300 / 0, with the origin's order late fees → penalties → interest.
    from namma.finance import AllocationStrategy

    due = Due(
        number=1,
        due_date=date(2024, 2, 1),
        fee=D("200"),
        penalty=D("500"),
        interest=D("5000"),
        principal=D("50000"),
    )
    strategy = AllocationStrategy(
        order=(Component.FEE, Component.PENALTY, Component.INTEREST, Component.PRINCIPAL)
    )
    allocation = allocate_payment(
        amount=D("6000"), dues=[due], as_of=date(2024, 2, 1), strategy=strategy
    )
    (line,) = allocation.lines
    assert (line.fee, line.penalty, line.interest, line.principal) == (
        D("200"),
        D("500"),
        D("5000"),
        D("300"),
    )
    assert allocation.unallocated == 0


def test_first_emi_pays_the_first_installment_not_preloaded_interest() -> None:
    # Origin defect 1: its API put 6618.56 of the first 8884.88 to interest.
    schedule = build(100000, 12, 12)
    allocation = allocate_payment(
        amount=D("8884.88"), dues=dues_from_schedule(schedule), as_of=date(2024, 2, 1)
    )
    (line,) = allocation.lines
    assert (line.interest, line.principal) == (D("1000.00"), D("7884.88"))


def test_preclosure_after_six_installments() -> None:
    schedule = build(100000, 12, 12, microfinance=False)
    dues = dues_from_schedule(schedule)
    paid = dues
    for k in range(6):
        allocation = allocate_payment(
            amount=D("8884.88"), dues=paid, as_of=schedule.rows[k].due_date
        )
        paid = apply_allocation(paid, allocation)
    as_of = schedule.rows[5].due_date
    open_dues = [d for d in paid if d.total]
    without = payoff_quote(schedule=schedule, dues=open_dues, as_of=as_of)
    assert without.total == without.outstanding.total == D("51492.09")
    quote = payoff_quote(
        schedule=schedule, dues=open_dues, as_of=as_of, prepayment_penalty_percent=D(2)
    )
    # Origin: 51492.10 + 1029.84 = 52521.94 from its unrounded outstandingAfterK (defect 3).
    assert quote.prepayment_penalty == D("1029.84")
    assert quote.total == D("52521.93")
    assert quote.total > quote.outstanding.total


def test_preclosure_before_any_payment_is_the_principal() -> None:
    schedule = build(100000, 12, 12)
    quote = payoff_quote(
        schedule=schedule, dues=dues_from_schedule(schedule), as_of=schedule.disbursed_on
    )
    assert quote.outstanding.principal == D("100000.00")
    assert quote.total == D("100000.00")


def test_late_fee_half_percent_a_day_after_three_grace_days() -> None:
    penalty = PenaltyTerms(
        basis=PenaltyBasis.PERCENT_OF_OVERDUE_PRINCIPAL,
        value=D("0.5"),
        recurrence=PenaltyRecurrence.DAILY,
        grace_days=3,
    )
    days_late = (date(2024, 1, 8) - date(2024, 1, 1)).days
    amount = penalty_for_installment(
        penalty=penalty, overdue_principal=D(10000), overdue_interest=D(0), days_late=days_late
    )
    assert amount == D("200.00")


def test_penalty_two_percent_and_flat() -> None:
    two_percent = PenaltyTerms(basis=PenaltyBasis.PERCENT_OF_OVERDUE_PRINCIPAL, value=D(2))
    flat = PenaltyTerms(basis=PenaltyBasis.FLAT, value=D(500))
    kwargs = {"overdue_principal": D(50000), "overdue_interest": D(0), "days_late": 1}
    assert penalty_for_installment(penalty=two_percent, **kwargs) == D("1000.00")  # type: ignore[arg-type]
    assert penalty_for_installment(penalty=flat, **kwargs) == D("500")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "field", "message"),
    [
        ({"principal": D(-1000)}, "principal", "Principal must be greater than 0"),
        ({"principal": D(0)}, "principal", "Principal must be greater than 0"),
        ({"annual_rate": D(150)}, "annual_rate", "Interest rate cannot exceed 100%"),
        ({"annual_rate": D(-1)}, "annual_rate", "Interest rate cannot be negative"),
        ({"installments": 0}, "installments", "Tenure must be at least 1 installment"),
        (
            {"frequency": Frequency.DAYS},
            "every",
            "Custom period days required for every-N-days frequency",
        ),
        (
            {"frequency": Frequency.DAYS, "every": 0},
            "every",
            "Custom period days must be greater than 0",
        ),
    ],
)
def test_origin_validation_messages(kwargs: dict[str, object], field: str, message: str) -> None:
    base: dict[str, object] = {
        "principal": D(100000),
        "annual_rate": D(12),
        "installments": 12,
    }
    base.update(kwargs)
    with pytest.raises(TermsError) as caught:
        LoanTerms(**base)  # type: ignore[arg-type]
    assert (caught.value.field, caught.value.message) == (field, message)


def test_valid_terms_pass() -> None:
    t = terms(100000, 12, 12)
    assert t.problems() == []


def test_rate_of_100_percent_is_allowed() -> None:
    assert installment_amount(terms(1000, 100, 12)) > 0


def test_decimal_type_is_preserved() -> None:
    schedule = build(100000, 12, 12)
    assert all(isinstance(r.interest, Decimal) for r in schedule.rows)
