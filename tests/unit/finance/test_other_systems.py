"""Reproducing other systems' conventions by choosing options, each against an oracle.

Sources, each verified in the test itself:
- numpy-financial 1.0.0 (`pmt`, `ipmt`, `ppmt`, `fv`, `irr`), the NumPy project's port of the
  spreadsheet financial functions, installed as a dev dependency and computed here;
- the standard textbook mortgage example, 100,000 at 6 % over 30 years monthly → 599.55
  (first month 500.00 interest + 99.55 principal), cross-checked with numpy-financial;
- the flat-rate formula (interest = P × rate × years, equal installments (P + I) / n);
- straight-line (equal principal) amortisation: interest on the declining balance;
- actual/365 and actual/actual daily interest, recomputed with exact fractions;
- a public KFS sample (an ONDC financial-services KFS field table on GitHub: loan 20,000,
  24 monthly installments of 970, processing 160 + insurance 240, net 19,600, interest 3,274,
  APR 17.07 %), which is 15 % a year with APR = monthly IRR × 12.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP
from fractions import Fraction

import numpy_financial as npf
import pytest

from namma.finance import (
    Amortization,
    AprConvention,
    DaysInYear,
    Fee,
    Frequency,
    InterestMethod,
    InterestPeriod,
    InterestRounding,
    RoundingMode,
    apr_percent,
    cash_flows,
    periodic_irr,
)

from .conftest import D, build

CASES = [
    (100000, "6", 360, Frequency.MONTHLY, 12),
    (250000, "9.5", 240, Frequency.MONTHLY, 12),
    (50000, "24", 24, Frequency.MONTHLY, 12),
    (30000, "26", 52, Frequency.WEEKLY, 52),
    (40000, "22", 26, Frequency.FORTNIGHTLY, 26),
    (75000, "12", 10, Frequency.MONTHLY, 12),
]


def _money(value: float) -> D:
    return D(repr(float(value))).quantize(D("0.01"), rounding=ROUND_HALF_UP)


@pytest.mark.parametrize(("principal", "rate", "n", "frequency", "per_year"), CASES)
def test_installment_matches_numpy_financial_pmt(
    principal: int, rate: str, n: int, frequency: Frequency, per_year: int
) -> None:
    r = float(rate) / 100 / per_year
    expected = _money(-npf.pmt(r, n, principal))
    assert build(principal, rate, n, frequency=frequency).installment_amount == expected


@pytest.mark.parametrize(("principal", "rate", "n", "frequency", "per_year"), CASES)
def test_unrounded_schedule_matches_numpy_financial(
    principal: int, rate: str, n: int, frequency: Frequency, per_year: int
) -> None:
    """With interest rounding `none` our balances are the exact amortisation of the (rounded)
    installment: numpy-financial's fv of the same payments, to within half a paisa."""
    schedule = build(
        principal, rate, n, frequency=frequency, interest_rounding=InterestRounding.NONE
    )
    r = float(rate) / 100 / per_year
    emi = float(schedule.installment_amount)
    for row in schedule.rows[:-1]:
        exact_balance = -npf.fv(r, row.number, -emi, principal)
        assert abs(float(row.balance) - exact_balance) <= 0.0051 + 1e-9 * principal
    # First period: ipmt / ppmt of the exact payment. Our principal is the rounded installment
    # less the rounded interest, so it may differ from ppmt by the two half-paisa roundings.
    first = schedule.rows[0]
    assert first.interest == _money(-npf.ipmt(r, 1, n, principal))
    assert abs(float(first.principal) - -npf.ppmt(r, 1, n, principal)) <= 0.01


def test_textbook_mortgage_100000_at_6_percent_30_years() -> None:
    schedule = build(100000, 6, 360)
    first = schedule.rows[0]
    assert schedule.installment_amount == D("599.55")
    assert (first.interest, first.principal, first.balance) == (
        D("500.00"),
        D("99.55"),
        D("99900.45"),
    )
    assert schedule.total_principal == D("100000.00")
    # numpy-financial agrees on the payment and the first split.
    assert _money(-npf.pmt(0.005, 360, 100000)) == D("599.55")
    assert _money(-npf.ipmt(0.005, 1, 360, 100000)) == D("500.00")


def test_flat_rate_10000_at_12_percent_for_a_year() -> None:
    schedule = build(10000, 12, 12, interest_method=InterestMethod.FLAT)
    interest = Fraction(10000) * Fraction(12, 100) * 1  # P × rate × years
    assert schedule.total_interest == D(int(interest))  # 1200
    assert schedule.installment_amount == D("933.33")  # (10000 + 1200) / 12
    assert {r.interest for r in schedule.rows} == {D("100.00")}
    assert schedule.rows[-1].principal == D("833.37")
    assert schedule.total_amount == D("11200.00")


def test_flat_rate_weekly_microfinance_loan() -> None:
    # 20000 at 24 % flat for 50 weeks: interest = 20000 × 0.24 × 50/52 = 4615.38…
    schedule = build(20000, 24, 50, frequency=Frequency.WEEKLY, interest_method=InterestMethod.FLAT)
    weekly = Fraction(20000) * Fraction(24, 100) / 52
    assert schedule.rows[0].interest == D(float(weekly)).quantize(D("0.01"))  # 92.31
    assert schedule.total_interest == D("92.31") * 50
    assert schedule.total_principal == D("20000.00")


def test_straight_line_equal_principal() -> None:
    schedule = build(12000, 12, 12, amortization=Amortization.EQUAL_PRINCIPAL)
    assert {r.principal for r in schedule.rows} == {D("1000.00")}
    assert [r.interest for r in schedule.rows] == [D(120 - 10 * k) for k in range(12)]
    assert schedule.total_interest == D(780)  # P × r × (n + 1) / 2


def _half_up(value: Fraction) -> D:
    cents = value * 100
    whole = int(cents)
    if cents - whole >= Fraction(1, 2):
        whole += 1
    return D(whole) / 100


def _oracle_daily_schedule(
    principal: int, rate: int, dues: list[date], start: date, year_days: int | None
) -> list[tuple[D, D]]:
    """Declining balance, interest = balance × rate × days / year, rounded half-up per row."""
    r = Fraction(rate, 100)
    monthly = Fraction(rate, 1200)
    growth = (1 + monthly) ** len(dues)
    emi = _half_up(principal * monthly * growth / (growth - 1))
    balance = D(principal)
    out = []
    previous = start
    for k, due in enumerate(dues):
        if year_days is None:  # actual/actual: split at 1 January
            fraction = Fraction(0)
            cursor = previous
            while cursor < due:
                boundary = min(date(cursor.year + 1, 1, 1), due)
                length = 366 if cursor.year % 4 == 0 else 365
                fraction += Fraction((boundary - cursor).days, length)
                cursor = boundary
        else:
            fraction = Fraction((due - previous).days, year_days)
        interest = _half_up(Fraction(balance) * r * fraction)
        principal_part = balance if k == len(dues) - 1 else emi - interest
        balance -= principal_part
        out.append((principal_part, interest))
        previous = due
    return out


@pytest.mark.parametrize(
    ("days_in_year", "year_days"), [(DaysInYear.D365, 365), (DaysInYear.ACTUAL, None)]
)
def test_daily_interest_on_actual_days(days_in_year: DaysInYear, year_days: int | None) -> None:
    start = date(2023, 11, 15)  # crosses into leap year 2024 and Feb 29
    schedule = build(
        50000,
        20,
        12,
        disbursed_on=start,
        interest_period=InterestPeriod.DAILY,
        days_in_year=days_in_year,
    )
    dues = [r.due_date for r in schedule.rows]
    expected = _oracle_daily_schedule(50000, 20, dues, start, year_days)
    assert [(r.principal, r.interest) for r in schedule.rows] == expected


def test_kfs_sample_apr_is_monthly_irr_times_twelve() -> None:
    schedule = build(
        20000,
        15,
        24,
        fees=(
            Fee.parse("processing:disbursement:flat:160"),
            Fee.parse("insurance:disbursement:flat:240"),
        ),
    )
    assert schedule.installment_amount == D("969.73")  # shown rounded as 970 in the sample
    assert schedule.net_disbursement == D("19600.00")
    assert round(schedule.total_interest) == 3274
    assert apr_percent(schedule) == D("17.07")
    # numpy-financial's irr of the same flows, annualised both ways.
    flows = [float(schedule.net_disbursement)] + [-float(r.total) for r in schedule.rows]
    monthly = npf.irr(flows)
    assert apr_percent(schedule) == _money(monthly * 12 * 100)
    effective = apr_percent(schedule, convention=AprConvention.EFFECTIVE)
    assert effective == _money(((1 + monthly) ** 12 - 1) * 100)


def test_irr_matches_numpy_financial_for_a_weekly_loan_with_fees() -> None:
    schedule = build(
        30000,
        24,
        50,
        frequency=Frequency.WEEKLY,
        fees=(Fee.parse("processing:disbursement:percent:1.5"),),
    )
    flows = cash_flows(schedule)
    ours = periodic_irr(flows)
    theirs = npf.irr([float(a) for _, a in flows])
    assert abs(float(ours) - theirs) < 1e-12


def test_installment_rounded_up_to_the_rupee() -> None:
    # Indian practice: EMI rounded up to the rupee, the last installment smaller.
    schedule = build(
        100000,
        12,
        12,
        installment_multiple=D(1),
        installment_rounding=RoundingMode.UP,
    )
    assert schedule.installment_amount == D("8885.00")
    assert all(r.total == D("8885.00") for r in schedule.rows[:-1])
    assert schedule.rows[-1].total < D("8885.00")
    assert schedule.total_principal == D("100000.00")


def test_weekly_dates_step_seven_days() -> None:
    schedule = build(10000, 24, 4, frequency=Frequency.WEEKLY)
    assert [r.due_date for r in schedule.rows] == [
        date(2024, 1, 1) + timedelta(days=7 * k) for k in range(1, 5)
    ]
