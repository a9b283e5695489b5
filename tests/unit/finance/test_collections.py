"""Allocation, payoff quotes, penalties, days past due and APR."""

from __future__ import annotations

from datetime import date

import pytest

from namma.finance import (
    INTEREST_BEFORE_PRINCIPAL,
    AllocationError,
    AllocationStrategy,
    Amortization,
    AprConvention,
    Component,
    Due,
    ExcessPolicy,
    Fee,
    FinanceError,
    PayoffError,
    PenaltyBasis,
    PenaltyRecurrence,
    PenaltyTerms,
    advance_apply,
    allocate_payment,
    apply_allocation,
    apr_percent,
    days_overdue,
    days_past_due,
    dues_from_schedule,
    outstanding_as_of,
    overdue_penalties,
    payoff_quote,
    penalty_for_installment,
    periodic_irr,
)

from .conftest import D, build

JAN = date(2024, 1, 1)
FEB = date(2024, 2, 1)
MAR = date(2024, 3, 1)
APR = date(2024, 4, 1)


def two_dues() -> list[Due]:
    return [
        Due(1, FEB, principal=D("800.00"), interest=D("200.00"), fee=D("10.00"), penalty=D("5.00")),
        Due(2, MAR, principal=D("850.00"), interest=D("150.00"), fee=D("10.00")),
    ]


class TestAllocation:
    def test_oldest_installment_first_then_components_in_order(self) -> None:
        allocation = allocate_payment(amount=D("1100.00"), dues=two_dues(), as_of=MAR)
        first, second = allocation.lines
        assert (first.penalty, first.fee, first.interest, first.principal) == (
            D("5.00"),
            D("10.00"),
            D("200.00"),
            D("800.00"),
        )
        assert (second.penalty, second.fee, second.interest, second.principal) == (
            D(0),
            D("10.00"),
            D("75.00"),
            D(0),
        )

    def test_component_by_component_pays_all_interest_before_principal(self) -> None:
        allocation = allocate_payment(
            amount=D("400.00"), dues=two_dues(), as_of=MAR, strategy=INTEREST_BEFORE_PRINCIPAL
        )
        assert allocation.total_of(Component.PENALTY) == D("5.00")
        assert allocation.total_of(Component.FEE) == D("20.00")
        assert allocation.total_of(Component.INTEREST) == D("350.00")
        assert allocation.total_of(Component.PRINCIPAL) == D("25.00")

    def test_excess_is_held_as_an_advance_by_default(self) -> None:
        """The future installment is not touched: the excess is held, then applied as it falls
        due (`advance_apply`), in the strategy's order."""
        allocation = allocate_payment(amount=D("1100.00"), dues=two_dues(), as_of=FEB)
        assert [line.number for line in allocation.lines] == [1]
        assert allocation.advance == D("85.00")
        assert allocation.allocated + allocation.advance == D("1100.00")
        assert allocation.unallocated == 0
        later = apply_allocation(two_dues(), allocation)
        early = advance_apply(advance=D("85.00"), dues=later, as_of=FEB)
        assert early.lines == () and early.advance == D("85.00")
        applied = advance_apply(advance=D("85.00"), dues=later, as_of=MAR)
        assert [line.number for line in applied.lines] == [2]
        assert applied.amount == D("85.00") and applied.advance == 0
        assert applied.lines[0].total == D("85.00")

    def test_an_advance_beyond_the_future_dues_is_unallocated(self) -> None:
        allocation = allocate_payment(amount=D("5000.00"), dues=two_dues(), as_of=FEB)
        assert allocation.advance == sum((d.total for d in two_dues()), D(0)) - D("1015.00")
        assert allocation.unallocated > 0

    def test_excess_reduces_future_principal(self) -> None:
        strategy = AllocationStrategy(excess=ExcessPolicy.REDUCE_TERM)
        allocation = allocate_payment(
            amount=D("2000.00"), dues=two_dues(), as_of=FEB, strategy=strategy
        )
        assert allocation.allocated == D("1015.00")
        assert allocation.prepaid_principal == D("850.00")
        assert allocation.unallocated == D("135.00")

    def test_excess_refused(self) -> None:
        strategy = AllocationStrategy(excess=ExcessPolicy.REFUSE)
        with pytest.raises(AllocationError) as caught:
            allocate_payment(amount=D("1015.01"), dues=two_dues(), as_of=FEB, strategy=strategy)
        assert caught.value.field == "amount"
        exact = allocate_payment(amount=D("1015.00"), dues=two_dues(), as_of=FEB, strategy=strategy)
        assert exact.unallocated == 0

    @pytest.mark.parametrize("amount", [D(0), D("-1"), D("1.001"), D("Infinity"), D("1e30")])
    def test_invalid_amounts(self, amount: D) -> None:
        with pytest.raises(AllocationError) as caught:
            allocate_payment(amount=amount, dues=two_dues(), as_of=FEB)
        assert caught.value.field == "amount"

    def test_invalid_dues(self) -> None:
        with pytest.raises(AllocationError, match="unique"):
            allocate_payment(amount=D(1), dues=[*two_dues(), two_dues()[0]], as_of=FEB)
        with pytest.raises(AllocationError) as caught:
            allocate_payment(amount=D(1), dues=[Due(1, FEB, principal=D(-1))], as_of=FEB)
        assert caught.value.field == "dues[1].principal"

    def test_apply_allocation_reduces_only_the_paid_dues(self) -> None:
        dues = two_dues()
        after = apply_allocation(dues, allocate_payment(amount=D("15.00"), dues=dues, as_of=FEB))
        assert after[0].total == dues[0].total - D("15.00")
        assert after[1] is dues[1]


class TestPenaltiesAndDpd:
    def test_days_overdue_and_dpd(self) -> None:
        assert days_overdue(FEB, FEB) == 0
        assert days_overdue(FEB, date(2024, 2, 11)) == 10
        dues = two_dues()
        assert days_past_due(dues=dues, as_of=FEB) == 0
        assert days_past_due(dues=dues, as_of=date(2024, 3, 5)) == 33
        only_penalty = [Due(1, FEB, penalty=D("5.00"))]
        assert days_past_due(dues=only_penalty, as_of=APR) == 0

    def test_once_per_installment_after_grace_with_cap(self) -> None:
        penalty = PenaltyTerms(
            basis=PenaltyBasis.PERCENT_OF_OVERDUE_TOTAL, value=D(10), grace_days=5, cap=D("90")
        )
        lines = overdue_penalties(penalty=penalty, dues=two_dues(), as_of=date(2024, 3, 5))
        # Installment 1: 32 days late, 10 % of 1000 capped at 90; installment 2 within grace.
        assert [(line.number, line.days_overdue, line.amount) for line in lines] == [
            (1, 33, D("90"))
        ]

    def test_daily_flat_penalty(self) -> None:
        penalty = PenaltyTerms(value=D("10.00"), recurrence=PenaltyRecurrence.DAILY, grace_days=2)
        amount = penalty_for_installment(
            penalty=penalty, overdue_principal=D(0), overdue_interest=D(0), days_late=7
        )
        assert amount == D("50.00")
        assert (
            penalty_for_installment(
                penalty=penalty, overdue_principal=D(0), overdue_interest=D(0), days_late=2
            )
            == 0
        )

    def test_paid_installments_get_no_penalty(self) -> None:
        penalty = PenaltyTerms(value=D("10.00"))
        paid = [Due(1, FEB), Due(2, MAR, penalty=D("3.00"))]
        assert overdue_penalties(penalty=penalty, dues=paid, as_of=APR) == ()


class TestPayoff:
    def test_mid_period_accrues_interest_pro_rata(self) -> None:
        schedule = build(100000, 12, 12)
        dues = dues_from_schedule(schedule)
        quote = payoff_quote(schedule=schedule, dues=dues, as_of=date(2024, 1, 16))
        # 15 of 31 days of 1000.00.
        assert quote.outstanding.accrued_interest == D("483.87")
        assert quote.total == D("100483.87")
        assert quote.outstanding.total_overdue == 0
        waived_interest = sum(w.interest for w in quote.waived)
        assert waived_interest == schedule.total_interest - D("483.87")

    def test_overdue_dues_are_paid_in_full(self) -> None:
        schedule = build(100000, 12, 12)
        dues = dues_from_schedule(schedule)
        as_of = date(2024, 3, 16)  # two installments missed, half of the third period gone
        outstanding = outstanding_as_of(schedule=schedule, dues=dues, as_of=as_of)
        assert outstanding.overdue_principal == D("15848.61")
        assert outstanding.overdue_interest == D("1921.15")
        assert outstanding.accrued_interest == D("407.18")  # 15/31 of 841.51
        assert outstanding.total_overdue == D("17769.76")

    def test_upfront_fee_collected_with_first_installment_is_kept(self) -> None:
        schedule = build(10000, 12, 12, fees=(Fee.parse("processing:first-installment:flat:200"),))
        quote = payoff_quote(
            schedule=schedule, dues=dues_from_schedule(schedule), as_of=schedule.disbursed_on
        )
        assert quote.outstanding.upfront_fees == D("200")
        assert quote.total == D("10200.00")

    def test_interest_accrued_during_interest_grace_is_charged(self) -> None:
        schedule = build(100000, 12, 12, grace_interest=2, grace_principal=2)
        quote = payoff_quote(
            schedule=schedule, dues=dues_from_schedule(schedule), as_of=date(2024, 3, 1)
        )
        assert quote.outstanding.accrued_interest == D("2000.00")

    def test_bullet_payoff_halfway(self) -> None:
        schedule = build(10000, 12, 2, amortization=Amortization.BULLET)
        quote = payoff_quote(
            schedule=schedule, dues=dues_from_schedule(schedule), as_of=date(2024, 2, 1)
        )
        assert quote.outstanding.accrued_interest == D("103.33")  # 31/60 days of 200.00

    def test_microfinance_loans_refuse_a_prepayment_penalty(self) -> None:
        schedule = build(10000, 12, 12)
        with pytest.raises(PayoffError) as caught:
            payoff_quote(
                schedule=schedule,
                dues=dues_from_schedule(schedule),
                as_of=FEB,
                prepayment_penalty_percent=D(2),
            )
        assert caught.value.field == "prepayment_penalty_percent"

    def test_penalty_percent_out_of_range(self) -> None:
        schedule = build(10000, 12, 12, microfinance=False)
        with pytest.raises(PayoffError):
            payoff_quote(
                schedule=schedule,
                dues=dues_from_schedule(schedule),
                as_of=FEB,
                prepayment_penalty_percent=D(-1),
            )

    def test_terms_penalty_is_the_default(self) -> None:
        schedule = build(10000, 12, 12, microfinance=False, prepayment_penalty_percent=D(3))
        quote = payoff_quote(schedule=schedule, dues=dues_from_schedule(schedule), as_of=JAN)
        assert quote.prepayment_penalty == D("300.00")

    def test_unknown_installment(self) -> None:
        schedule = build(10000, 12, 2)
        with pytest.raises(PayoffError, match="not in the schedule"):
            payoff_quote(schedule=schedule, dues=[Due(9, FEB)], as_of=FEB)


class TestApr:
    def test_no_fees_means_apr_equals_rate(self) -> None:
        assert apr_percent(build(100000, 12, 12)) == D("12.00")
        assert apr_percent(build(0 + 50000, 0, 10)) == D("0.00")

    def test_fees_raise_the_apr_and_effective_is_higher(self) -> None:
        schedule = build(100000, 12, 12, fees=(Fee.parse("processing:disbursement:flat:3000"),))
        nominal = apr_percent(schedule)
        effective = apr_percent(schedule, convention=AprConvention.EFFECTIVE)
        assert nominal == D("17.82")
        assert effective == D("19.36")

    def test_broken_period_and_bullet(self) -> None:
        broken = build(100000, 12, 12, first_due_on=date(2024, 2, 16))
        # The broken period's interest is simple (pro rata) while the IRR discounts its fraction
        # of a period by compounding, so the APR is a hair under the rate.
        assert apr_percent(broken) == D("11.99")
        bullet = build(100000, 12, 12, amortization=Amortization.BULLET)
        assert D("11") < apr_percent(bullet) < D("12")  # simple interest, paid at the end

    def test_irr_without_a_root(self) -> None:
        with pytest.raises(FinanceError, match="above -99"):
            periodic_irr([(D(0), D(100)), (D(1), D(5))])
        with pytest.raises(FinanceError, match="finite"):
            periodic_irr([(D(0), D(1)), (D(1), D(-10) ** 9)])
