"""Accrual accounting rules of the money core (`namma.finance.accrual`, docs/money.md §12):
an installment's interest earned day by day, the receivable a loan should carry, and how a
collection's interest settles it. Expected values are worked out here by hand."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from itertools import pairwise

from hypothesis import given
from hypothesis import strategies as st

from namma.finance.accrual import (
    interest_earned_to,
    receivable_settlement,
    receivable_target,
    suspense_target,
)

D = Decimal
ZERO = D("0.00")
START = dt.date(2026, 1, 31)
DUE = dt.date(2026, 2, 28)  # 28 days


def test_earned_is_pro_rata_rounded_half_up_and_whole_on_the_due_date() -> None:
    # 1000.00 over 28 days: 35.714285… a day.
    assert interest_earned_to(D("1000.00"), period_start=START, due_date=DUE, as_of=START) == ZERO
    day1 = interest_earned_to(
        D("1000.00"), period_start=START, due_date=DUE, as_of=START + dt.timedelta(days=1)
    )
    assert day1 == D("35.71")
    day2 = interest_earned_to(
        D("1000.00"), period_start=START, due_date=DUE, as_of=START + dt.timedelta(days=2)
    )
    assert day2 == D("71.43")  # 71.428571… rounds up: day 2 accrues 35.72
    assert interest_earned_to(D("1000.00"), period_start=START, due_date=DUE, as_of=DUE) == D(
        "1000.00"
    )
    # Before the period and after it.
    assert (
        interest_earned_to(
            D("1000.00"), period_start=START, due_date=DUE, as_of=dt.date(2026, 1, 1)
        )
        == ZERO
    )
    assert interest_earned_to(
        D("1000.00"), period_start=START, due_date=DUE, as_of=dt.date(2026, 6, 1)
    ) == D("1000.00")
    # Exactly half a paisa rounds up: 0.05 over 2 days, 1 day → 0.025 → 0.03.
    assert interest_earned_to(
        D("0.05"), period_start=START, due_date=START + dt.timedelta(days=2),
        as_of=START + dt.timedelta(days=1),
    ) == D("0.03")  # fmt: skip


def test_a_period_of_no_days_is_earned_on_its_due_date() -> None:
    assert interest_earned_to(D("5.00"), period_start=DUE, due_date=DUE, as_of=DUE) == D("5.00")
    before = DUE - dt.timedelta(days=1)
    assert interest_earned_to(D("5.00"), period_start=DUE, due_date=DUE, as_of=before) == ZERO


@given(
    interest=st.integers(min_value=0, max_value=10**9).map(lambda n: D(n) / 100),
    days=st.integers(min_value=1, max_value=400),
)
def test_the_days_of_a_period_add_up_to_its_interest_and_never_go_back(
    interest: Decimal, days: int
) -> None:
    due = START + dt.timedelta(days=days)
    cumulative = [
        interest_earned_to(
            interest, period_start=START, due_date=due, as_of=START + dt.timedelta(days=n)
        )
        for n in range(days + 1)
    ]
    increments = [b - a for a, b in pairwise(cumulative)]
    assert sum(increments, ZERO) == interest
    exact = interest / days
    for inc in increments:
        assert inc >= 0
        assert abs(inc - exact) < D("0.01")  # each day within a paisa of its exact share


def test_the_receivable_target() -> None:
    assert receivable_target(earned=D("700.00"), collected=D("200.00"), accruing=True) == D(
        "500.00"
    )
    # Interest collected ahead of accrual leaves nothing receivable (never negative).
    assert receivable_target(earned=D("100.00"), collected=D("300.00"), accruing=True) == ZERO
    # An NPA, or a loan no longer active: nothing.
    assert receivable_target(earned=D("700.00"), collected=ZERO, accruing=False) == ZERO


def test_the_suspense_target_is_the_receivable_of_a_non_performing_loan() -> None:
    # Earned 700, collected 200: 500 in suspense while active and non-performing.
    assert suspense_target(
        earned=D("700.00"), collected=D("200.00"), active=True, non_performing=True
    ) == D("500.00")
    # Paid ahead: nothing (never negative).
    assert (
        suspense_target(earned=D("100.00"), collected=D("300.00"), active=True, non_performing=True)
        == ZERO
    )
    # Performing (the receivable holds it), or no longer active (closed, written off): nothing.
    for active, non_performing in ((True, False), (False, True), (False, False)):
        assert (
            suspense_target(
                earned=D("700.00"), collected=ZERO, active=active, non_performing=non_performing
            )
            == ZERO
        )
    # Unpaid earned interest is in exactly one of the two, whatever the loan's state.
    for non_performing in (True, False):
        both = receivable_target(
            earned=D("700.00"), collected=D("200.00"), accruing=not non_performing
        ) + suspense_target(
            earned=D("700.00"), collected=D("200.00"), active=True, non_performing=non_performing
        )
        assert both == D("500.00")


def test_a_collection_settles_the_receivable_first() -> None:
    assert receivable_settlement(interest=D("1000.00"), receivable=D("964.29")) == (
        D("964.29"),
        D("35.71"),
    )
    assert receivable_settlement(interest=D("300.00"), receivable=D("964.29")) == (
        D("300.00"),
        ZERO,
    )
    assert receivable_settlement(interest=D("300.00"), receivable=ZERO) == (ZERO, D("300.00"))
