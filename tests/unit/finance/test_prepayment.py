"""Rescheduling after a principal prepayment: the `reduce-term` and `reduce-installment` excess
policies (docs/decisions.md D-163)."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from namma.finance import (
    MONEY_CONTEXT,
    Amortization,
    ExcessPolicy,
    InterestMethod,
    RoundingMode,
    Schedule,
    TermsError,
    reschedule_after_prepayment,
    schedule_as_stored,
)

from .conftest import D, build
from .test_properties import PROPERTY, schedules

TERM = ExcessPolicy.REDUCE_TERM
INSTALLMENT = ExcessPolicy.REDUCE_INSTALLMENT


def _emi(balance: Decimal, rate: Decimal, periods: int) -> Decimal:
    with localcontext(MONEY_CONTEXT):
        growth = (1 + rate) ** periods
        return (balance * rate * growth / (growth - 1)).quantize(D("0.01"))


class TestReduceInstallment:
    def test_keeps_the_count_and_lowers_the_emi(self) -> None:
        schedule = build(100000, 12, 12)
        balance = schedule.rows[2].balance - D("20000.00")
        new = reschedule_after_prepayment(
            schedule=schedule, paid_through=3, balance=balance, policy=INSTALLMENT
        )
        emi = _emi(balance, D("0.01"), 9)
        assert new.rows[:3] == schedule.rows[:3]
        assert len(new.rows) == 12
        assert new.installment_amount == emi < D("8884.88")
        assert all(r.total == emi for r in new.rows[3:-1])
        assert new.total_principal == D("80000.00")
        assert new.rows[3].interest == (balance * D("0.01")).quantize(D("0.01"))

    def test_flat_interest_stays_on_the_original_principal(self) -> None:
        schedule = build(12000, 24, 12, interest_method=InterestMethod.FLAT)
        balance = schedule.rows[5].balance - D("3000.00")
        new = reschedule_after_prepayment(
            schedule=schedule, paid_through=6, balance=balance, policy=INSTALLMENT
        )
        assert len(new.rows) == 12
        assert all(r.interest == D("240.00") for r in new.rows[6:])
        assert all(r.principal == D("500.00") for r in new.rows[6:])  # 3000 over 6 periods
        assert new.installment_amount == D("740.00")

    def test_equal_principal_spreads_the_balance_over_the_periods_left(self) -> None:
        schedule = build(12000, 12, 12, amortization=Amortization.EQUAL_PRINCIPAL)
        new = reschedule_after_prepayment(
            schedule=schedule, paid_through=4, balance=D("4000.00"), policy=INSTALLMENT
        )
        assert len(new.rows) == 12
        assert [r.principal for r in new.rows[4:]] == [D("500.00")] * 8
        assert new.installment_amount == D("540.00")  # 500 + 1 % of 4000

    def test_principal_grace_still_ahead_is_kept(self) -> None:
        schedule = build(100000, 12, 12, grace_principal=3)
        balance = D("60000.00")
        new = reschedule_after_prepayment(
            schedule=schedule, paid_through=1, balance=balance, policy=INSTALLMENT
        )
        assert [r.principal for r in new.rows[1:3]] == [D("0.00"), D("0.00")]
        assert new.installment_amount == _emi(balance, D("0.01"), 9)
        assert len(new.rows) == 12

    def test_a_second_reschedule_starts_from_the_first(self) -> None:
        schedule = build(100000, 12, 12)
        once = reschedule_after_prepayment(
            schedule=schedule, paid_through=2, balance=D("70000.00"), policy=INSTALLMENT
        )
        stored = schedule_as_stored(schedule, once.rows, installment_amount=once.installment_amount)
        twice = reschedule_after_prepayment(
            schedule=stored, paid_through=5, balance=once.rows[4].balance - D("10000.00"),
            policy=TERM,
        )  # fmt: skip
        assert twice.rows[:5] == once.rows[:5]
        assert all(r.total == once.installment_amount for r in twice.rows[5:-1])
        assert len(twice.rows) < 12


class TestReduceTerm:
    def test_equal_principal_keeps_its_part_and_ends_sooner(self) -> None:
        schedule = build(12000, 12, 12, amortization=Amortization.EQUAL_PRINCIPAL)
        new = reschedule_after_prepayment(
            schedule=schedule, paid_through=4, balance=D("4000.00"), policy=TERM
        )
        assert [r.principal for r in new.rows[4:]] == [D("1000.00")] * 4
        assert len(new.rows) == 8

    def test_the_last_installment_is_the_smaller_one(self) -> None:
        schedule = build(100000, 12, 12)
        new = reschedule_after_prepayment(
            schedule=schedule, paid_through=3, balance=D("50000.00"), policy=TERM
        )
        assert new.rows[-1].total < new.installment_amount == D("8884.88")
        assert new.rows[-1].balance == 0


def test_a_bullet_loan_owes_less_at_the_end_under_either_policy() -> None:
    schedule = build(10000, 12, 12, amortization=Amortization.BULLET)
    for policy in (TERM, INSTALLMENT):
        new = reschedule_after_prepayment(
            schedule=schedule, paid_through=0, balance=D("4000.00"), policy=policy
        )
        assert (new.rows[0].principal, new.rows[0].interest) == (D("4000.00"), D("480.00"))
    assert new.installment_amount == D("4480.00")  # reduce-installment: the one installment


def test_a_schedule_ended_early_by_rounding_is_not_lengthened() -> None:
    """Rounded up to ₹10, an installment of 20 pays 299.81 off in 15 rows of the terms' 20:
    spreading what is left keeps to the 5 rows left, not the terms' 10 (which would halve the
    installment and lengthen the loan)."""
    schedule = build(
        "299.81", 0, 20, installment_multiple=D("10"), installment_rounding=RoundingMode.UP
    )
    assert (len(schedule.rows), schedule.installment_amount) == (15, D("20.00"))
    new = reschedule_after_prepayment(
        schedule=schedule,
        paid_through=10,
        balance=schedule.rows[9].balance - D("0.81"),
        policy=INSTALLMENT,
    )
    assert len(new.rows) == 15
    assert new.installment_amount == D("20.00")
    assert new.rows[-1].principal == D("19.00")


def test_refuses_other_policies() -> None:
    schedule = build(100000, 12, 12)
    with pytest.raises(TermsError) as caught:
        reschedule_after_prepayment(
            schedule=schedule, paid_through=1, balance=D("1000.00"), policy=ExcessPolicy.ADVANCE
        )
    assert caught.value.field == "policy"


def _prepaid(schedule: Schedule, data: st.DataObject) -> tuple[int, Decimal, Decimal]:
    paid_through = data.draw(st.integers(0, len(schedule.rows)))
    before = schedule.rows[paid_through - 1].balance if paid_through else schedule.terms.principal
    prepaid = Decimal(data.draw(st.integers(0, int(before * 100)))) / 100
    return paid_through, before, prepaid


@PROPERTY
@given(schedules(), st.data(), st.sampled_from([TERM, INSTALLMENT]))
def test_prepayment_keeps_principal_exact_and_never_lengthens(
    schedule: Schedule, data: st.DataObject, policy: ExcessPolicy
) -> None:
    paid_through, before, prepaid = _prepaid(schedule, data)
    new = reschedule_after_prepayment(
        schedule=schedule, paid_through=paid_through, balance=before - prepaid, policy=policy
    )
    future = new.rows[paid_through:]
    assert sum((r.principal for r in future), D(0)) == before - prepaid
    assert new.rows[:paid_through] == schedule.rows[:paid_through]
    assert len(new.rows) <= len(schedule.rows)
    previous = before - prepaid
    for row in future:
        for amount in (row.principal, row.interest, row.fees, row.total, row.balance):
            assert amount >= 0
            assert amount == amount.quantize(D("0.01"))
        assert row.total == row.principal + row.interest + row.fees
        assert row.balance == previous - row.principal
        previous = row.balance
    if future:
        assert future[-1].balance == 0
    assert new.installment_amount >= 0


@PROPERTY
@given(schedules(), st.data())
def test_reduce_term_keeps_the_installment(schedule: Schedule, data: st.DataObject) -> None:
    paid_through, before, prepaid = _prepaid(schedule, data)
    new = reschedule_after_prepayment(
        schedule=schedule, paid_through=paid_through, balance=before - prepaid, policy=TERM
    )
    assert new.installment_amount == schedule.installment_amount
