"""Conventions beyond the defaults: dates, broken periods, grace, rounding, fees, daily interest."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, localcontext

import pytest

from namma.finance import (
    MONEY_CONTEXT,
    Amortization,
    DaysInMonth,
    DaysInYear,
    Fee,
    Frequency,
    InterestMethod,
    InterestPeriod,
    InterestRounding,
    RoundingMode,
    TermsError,
    add_months,
    generate_schedule,
    installment_amount,
    periodic_rate,
    periods_per_year,
    reschedule_after_prepayment,
    round_to_multiple,
)
from namma.finance.dates import day_count, one_period_before, year_fraction

from .conftest import D, build, terms


def dues(schedule_rows: object) -> list[date]:
    return [r.due_date for r in schedule_rows]  # type: ignore[attr-defined]


class TestDates:
    def test_month_end_is_clamped_and_the_day_kept(self) -> None:
        schedule = build(1000, 12, 4, disbursed_on=date(2024, 1, 31))
        assert dues(schedule.rows) == [
            date(2024, 2, 29),
            date(2024, 3, 31),
            date(2024, 4, 30),
            date(2024, 5, 31),
        ]

    def test_first_due_date_on_the_31st_in_a_common_year(self) -> None:
        schedule = build(
            1000, 12, 3, disbursed_on=date(2022, 12, 20), first_due_on=date(2023, 1, 31)
        )
        assert dues(schedule.rows) == [date(2023, 1, 31), date(2023, 2, 28), date(2023, 3, 31)]

    def test_quarterly_half_yearly_yearly_and_every_two_months(self) -> None:
        start = date(2023, 11, 30)
        assert dues(build(1000, 12, 2, frequency=Frequency.QUARTERLY, disbursed_on=start).rows) == [
            date(2024, 2, 29),
            date(2024, 5, 30),
        ]
        assert dues(
            build(1000, 12, 2, frequency=Frequency.HALF_YEARLY, disbursed_on=start).rows
        ) == [date(2024, 5, 30), date(2024, 11, 30)]
        leap = date(2024, 2, 29)
        assert dues(build(1000, 12, 2, frequency=Frequency.YEARLY, disbursed_on=leap).rows) == [
            date(2025, 2, 28),
            date(2026, 2, 28),
        ]
        assert dues(build(1000, 12, 2, every=2, disbursed_on=date(2024, 1, 15)).rows) == [
            date(2024, 3, 15),
            date(2024, 5, 15),
        ]

    def test_fortnightly_and_every_n_days(self) -> None:
        assert dues(build(1000, 12, 2, frequency=Frequency.FORTNIGHTLY).rows) == [
            date(2024, 1, 15),
            date(2024, 1, 29),
        ]
        assert dues(build(1000, 12, 2, frequency=Frequency.DAYS, every=10).rows) == [
            date(2024, 1, 11),
            date(2024, 1, 21),
        ]
        assert dues(build(1000, 12, 2, frequency=Frequency.WEEKLY, every=2).rows) == [
            date(2024, 1, 15),
            date(2024, 1, 29),
        ]

    def test_add_months_backwards_and_across_years(self) -> None:
        assert add_months(date(2024, 3, 31), -1) == date(2024, 2, 29)
        assert add_months(date(2024, 1, 15), -2) == date(2023, 11, 15)
        assert add_months(date(2024, 2, 29), 1, day=31) == date(2024, 3, 31)
        assert one_period_before(date(2024, 1, 15), Frequency.WEEKLY, 1) == date(2024, 1, 8)

    def test_day_counts(self) -> None:
        assert day_count(date(2024, 1, 31), date(2024, 2, 29), DaysInMonth.ACTUAL) == 29
        assert day_count(date(2024, 1, 31), date(2024, 2, 29), DaysInMonth.D30) == 29
        assert day_count(date(2024, 1, 15), date(2024, 2, 15), DaysInMonth.D30) == 30
        assert day_count(date(2024, 1, 31), date(2024, 3, 31), DaysInMonth.D30) == 60
        assert year_fraction(
            date(2024, 1, 1),
            date(2024, 2, 1),
            days_in_year=DaysInYear.D360,
            days_in_month_rule=DaysInMonth.D30,
        ) == (D(30), 360)
        assert year_fraction(
            date(2023, 1, 1),
            date(2023, 2, 1),
            days_in_year=DaysInYear.ACTUAL,
            days_in_month_rule=DaysInMonth.D30,
        ) == (D(30), 365)
        numerator, denominator = year_fraction(
            date(2023, 12, 1),
            date(2024, 1, 31),
            days_in_year=DaysInYear.ACTUAL,
            days_in_month_rule=DaysInMonth.ACTUAL,
        )
        assert numerator / denominator == D(31) / 365 + D(30) / 366


class TestRates:
    def test_every_n_days_rate_without_and_with_floor(self) -> None:
        plain = terms(1000, "10", 1, frequency=Frequency.DAYS, every=15)
        with localcontext(MONEY_CONTEXT):
            assert periodic_rate(plain) == D(10) * 15 / 36500
            assert periods_per_year(plain) == D(365) / 15
        floor = terms(
            1000, "10", 1, frequency=Frequency.DAYS, every=15, periods_per_year_floor=True
        )
        with localcontext(MONEY_CONTEXT):
            assert periodic_rate(floor) == D("0.1") / 24

    def test_repeat_multiplier(self) -> None:
        biweekly = terms(1000, "26", 1, frequency=Frequency.WEEKLY, every=2)
        assert periodic_rate(biweekly) == D("0.01")
        assert periods_per_year(biweekly) == 26
        assert biweekly.repeat == 2
        assert terms(1000, "26", 1).repeat == 1


class TestBrokenFirstPeriod:
    def test_longer_first_period_charges_pro_rata_interest(self) -> None:
        schedule = build(100000, 12, 12, first_due_on=date(2024, 2, 16))
        # 46 actual days against a regular period of 31 (16 Jan → 16 Feb).
        with localcontext(MONEY_CONTEXT):
            assert schedule.first_period_fraction == D(46) / 31
        assert schedule.rows[0].interest == D("1483.87")
        assert schedule.rows[1].interest == (schedule.rows[0].balance * D("0.01")).quantize(
            D("0.01")
        )
        assert schedule.total_principal == D("100000.00")

    def test_shorter_weekly_first_period(self) -> None:
        schedule = build(52000, 52, 10, frequency=Frequency.WEEKLY, first_due_on=date(2024, 1, 5))
        assert schedule.rows[0].interest == D("297.14")  # 52000 × 1 % × 4/7
        with localcontext(MONEY_CONTEXT):
            assert schedule.first_period_fraction == D(4) / 7

    def test_first_due_must_follow_disbursement(self) -> None:
        with pytest.raises(TermsError) as caught:
            build(1000, 12, 2, first_due_on=date(2024, 1, 1))
        assert caught.value.field == "first_due_on"


class TestDailyInterest:
    def test_daily_interest_follows_days_between_dues(self) -> None:
        schedule = build(
            36500,
            10,
            3,
            interest_period=InterestPeriod.DAILY,
            days_in_year=DaysInYear.D365,
            disbursed_on=date(2023, 1, 1),
        )
        # 31 days in January, 28 in February 2023.
        assert schedule.rows[0].interest == D("310.00")
        assert schedule.rows[1].interest == (
            schedule.rows[0].balance * D("0.1") * 28 / 365
        ).quantize(D("0.01"))

    def test_360_and_364_day_years_and_30_day_months(self) -> None:
        for year, expected in ((DaysInYear.D360, "300.00"), (DaysInYear.D364, "296.70")):
            schedule = build(
                36000,
                10,
                2,
                interest_period=InterestPeriod.DAILY,
                days_in_year=year,
                days_in_month=DaysInMonth.D30,
                disbursed_on=date(2023, 1, 31),
            )
            # 31 Jan → 28 Feb counts 28 days under 30E/360.
            assert schedule.rows[0].interest == (
                D(36000) * D("0.1") * 28 / int(year.value)
            ).quantize(D("0.01"))
            assert expected  # the two year lengths give different numbers
        first = build(
            36000,
            10,
            2,
            interest_period=InterestPeriod.DAILY,
            days_in_year=DaysInYear.D360,
            days_in_month=DaysInMonth.D30,
        )
        assert first.rows[0].interest == D("300.00")

    def test_bullet_with_daily_interest(self) -> None:
        schedule = build(
            36500,
            10,
            2,
            amortization=Amortization.BULLET,
            interest_period=InterestPeriod.DAILY,
            days_in_year=DaysInYear.D365,
            disbursed_on=date(2023, 1, 1),
        )
        (row,) = schedule.rows
        assert row.interest == D("590.00")  # (31 + 28) days × 10.00 a day
        assert row.due_date == date(2023, 3, 1)


class TestGrace:
    def test_principal_grace_pays_interest_only_then_amortises(self) -> None:
        schedule = build(100000, 12, 12, grace_principal=2)
        assert [r.principal for r in schedule.rows[:2]] == [D(0), D(0)]
        assert [r.interest for r in schedule.rows[:2]] == [D("1000.00"), D("1000.00")]
        # EMI over the 10 remaining installments.
        assert schedule.installment_amount == installment_amount(terms(100000, 12, 10))
        assert schedule.total_principal == D("100000.00")

    def test_interest_grace_defers_to_the_next_installment(self) -> None:
        schedule = build(100000, 12, 12, grace_interest=2, grace_principal=2)
        assert [r.interest for r in schedule.rows[:3]] == [D(0), D(0), D("3000.00")]
        assert [r.interest_for_period for r in schedule.rows[:3]] == [D("1000.00")] * 3
        assert schedule.total_interest == sum(r.interest_for_period for r in schedule.rows)

    def test_interest_free_periods(self) -> None:
        schedule = build(12000, 12, 12, interest_free=3)
        assert [r.interest for r in schedule.rows[:3]] == [D(0)] * 3
        assert schedule.rows[3].interest > 0
        assert schedule.total_principal == D("12000.00")

    def test_deferred_interest_is_kept_when_the_loan_ends_early(self) -> None:
        # A huge installment multiple pays the loan off in two installments, inside the
        # interest grace: the deferred interest must still be charged, on the last one.
        schedule = build(
            1000,
            12,
            6,
            grace_interest=3,
            installment_multiple=D(1000),
            installment_rounding=RoundingMode.UP,
        )
        assert len(schedule.rows) == 2
        assert [r.interest for r in schedule.rows] == [D("0.00"), D("10.10")]
        assert schedule.total_interest == sum(r.interest_for_period for r in schedule.rows)


class TestRounding:
    def test_round_to_multiple_modes(self) -> None:
        value = D("8884.50")
        assert round_to_multiple(value, D(1), RoundingMode.HALF_UP) == D("8885.00")
        assert round_to_multiple(value, D(1), RoundingMode.HALF_EVEN) == D("8884.00")
        assert round_to_multiple(value, D(10), RoundingMode.UP) == D("8890.00")
        assert round_to_multiple(value, D(10), RoundingMode.DOWN) == D("8880.00")
        assert round_to_multiple(D("1.005"), D("0.01"), RoundingMode.HALF_EVEN) == D("1.00")

    def test_interest_rounding_half_even(self) -> None:
        # 100.50 × 1 % = 1.005: half-up 1.01, half-even 1.00.
        up = build("100.50", 12, 2)
        even = build("100.50", 12, 2, interest_rounding=InterestRounding.HALF_EVEN)
        assert up.rows[0].interest == D("1.01")
        assert even.rows[0].interest == D("1.00")

    def test_unrounded_interest_rounds_only_the_rows(self) -> None:
        schedule = build(100000, 12, 12, interest_rounding=InterestRounding.NONE)
        assert schedule.total_principal == D("100000.00")
        assert schedule.rows[0].interest == D("1000.00")
        # Close to, but not the same as, the per-row rounded schedule (6618.53).
        assert abs(schedule.total_interest - D("6618.53")) <= D("0.05")

    def test_equal_principal_part_rounds_to_the_multiple(self) -> None:
        schedule = build(
            10000, 12, 12, amortization=Amortization.EQUAL_PRINCIPAL, installment_multiple=D(1)
        )
        assert schedule.rows[0].principal == D("833.00")
        assert schedule.rows[-1].principal == D("837.00")
        assert schedule.installment_amount == D("933.00")

    def test_flat_interest_with_unrounded_rows_and_equal_principal(self) -> None:
        schedule = build(
            10000,
            10,
            3,
            interest_method=InterestMethod.FLAT,
            amortization=Amortization.EQUAL_PRINCIPAL,
            interest_rounding=InterestRounding.NONE,
        )
        assert [r.interest for r in schedule.rows] == [D("83.33"), D("83.34"), D("83.33")]
        assert schedule.total_interest == D("250.00")

    def test_bullet_with_unrounded_interest(self) -> None:
        schedule = build(
            10000, 10, 3, amortization=Amortization.BULLET, interest_rounding=InterestRounding.NONE
        )
        assert schedule.rows[0].interest == D("250.00")


class TestFees:
    def test_disbursement_fee_percent_is_deducted(self) -> None:
        schedule = build(100000, 12, 12, fees=(Fee.parse("processing:disbursement:percent:2"),))
        assert schedule.deducted_fees == D("2000.00")
        assert schedule.net_disbursement == D("98000.00")
        assert schedule.total_fees == 0

    def test_fee_added_to_first_installment(self) -> None:
        schedule = build(100000, 12, 12, fees=(Fee.parse("processing:first-installment:flat:500"),))
        assert schedule.net_disbursement == D("100000.00")
        assert schedule.rows[0].fees == D("500")
        assert schedule.rows[0].total == D("9384.88")
        assert schedule.upfront_fees_in_first_installment == D("500")

    def test_installment_fees(self) -> None:
        schedule = build(
            100000,
            12,
            12,
            fees=(
                Fee.parse("service:installment:percent-of-total:1.5"),
                Fee.parse("insurance:installment:percent-of-principal:1"),
                Fee.parse("sms:installment:flat:5"),
            ),
        )
        first = schedule.rows[0]
        # 1.5 % of 8884.88 = 133.27; 1 % of 7884.88 = 78.85; + 5.
        assert first.fees == D("133.27") + D("78.85") + D("5")
        assert first.total == first.principal + first.interest + first.fees

    def test_bullet_with_fees(self) -> None:
        schedule = build(
            10000,
            12,
            12,
            amortization=Amortization.BULLET,
            fees=(
                Fee.parse("processing:first-installment:flat:100"),
                Fee.parse("service:installment:flat:10"),
            ),
        )
        assert schedule.rows[0].fees == D("110")


class TestReschedule:
    def test_prepayment_shortens_the_loan_keeping_the_installment(self) -> None:
        schedule = build(100000, 12, 12)
        balance = schedule.rows[2].balance - D("20000.00")
        new = reschedule_after_prepayment(schedule=schedule, paid_through=3, balance=balance)
        assert new.rows[:3] == schedule.rows[:3]
        assert len(new.rows) < 12
        assert all(r.total == D("8884.88") for r in new.rows[3:-1])
        assert new.total_principal == D("80000.00")
        assert new.rows[3].interest == (balance * D("0.01")).quantize(D("0.01"))

    def test_prepaying_everything_closes_the_schedule(self) -> None:
        schedule = build(100000, 12, 12)
        new = reschedule_after_prepayment(schedule=schedule, paid_through=2, balance=D("0.00"))
        assert len(new.rows) == 2

    def test_bullet_prepayment(self) -> None:
        schedule = build(10000, 12, 12, amortization=Amortization.BULLET)
        new = reschedule_after_prepayment(schedule=schedule, paid_through=0, balance=D("4000.00"))
        assert new.rows[0].principal == D("4000.00")
        assert new.rows[0].interest == D("480.00")

    def test_deferred_interest_survives_a_reschedule(self) -> None:
        schedule = build(100000, 12, 12, grace_interest=2)
        new = reschedule_after_prepayment(
            schedule=schedule, paid_through=1, balance=schedule.rows[0].balance
        )
        assert new.total_interest == sum(r.interest_for_period for r in new.rows)

    @pytest.mark.parametrize(
        ("paid_through", "balance", "field"),
        [(-1, "0.00", "paid_through"), (13, "0.00", "paid_through"), (1, "99999.00", "balance")],
    )
    def test_invalid_reschedule(self, paid_through: int, balance: str, field: str) -> None:
        schedule = build(100000, 12, 12)
        with pytest.raises(TermsError) as caught:
            reschedule_after_prepayment(
                schedule=schedule, paid_through=paid_through, balance=Decimal(balance)
            )
        assert caught.value.field == field


def test_generate_schedule_accepts_any_valid_terms_object() -> None:
    t = terms(5000, 20, 5, frequency=Frequency.WEEKLY)
    schedule = generate_schedule(t, disbursed_on=date(2024, 3, 1))
    assert schedule.terms is t
    assert schedule.first_due_on == date(2024, 3, 8)
