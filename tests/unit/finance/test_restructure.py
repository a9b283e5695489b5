"""`restructure_schedule`: the rows still to fall due rebuilt under one change. Expected values
are worked out here (annuity formula, interest = balance × rate, day counts), not by the money
core."""

from __future__ import annotations

import datetime as dt
import decimal
from decimal import Decimal

import pytest

from namma.finance import (
    LoanTerms,
    MoratoriumInterest,
    Restructure,
    RestructureKind,
    TermsError,
    generate_schedule,
    restructure_schedule,
)

D = Decimal
CENT = D("0.01")
TERMS = LoanTerms(principal=D("100000"), annual_rate=D("12"), installments=12)
SCHEDULE = generate_schedule(TERMS, disbursed_on=dt.date(2026, 1, 1))
LEFT = D("51492.09")  # balance after row 6 (docs/money.md §9)


def half_up(x: D) -> D:
    return x.quantize(CENT, decimal.ROUND_HALF_UP)


def annuity(p: D, r: D, n: int) -> D:
    with decimal.localcontext() as ctx:
        ctx.prec = 40
        g = (1 + r) ** n
        return half_up(p * r * g / (g - 1))


def run(change: Restructure):  # type: ignore[no-untyped-def]
    return restructure_schedule(schedule=SCHEDULE, paid_through=6, balance=LEFT, change=change)


def test_rows_before_are_kept_and_principal_is_conserved() -> None:
    for change in (
        Restructure(RestructureKind.RATE, annual_rate=D("10")),
        Restructure(RestructureKind.TERM, installments=10),
        Restructure(RestructureKind.MORATORIUM, periods=3),
        Restructure(RestructureKind.NEXT_DUE_DATE, next_due_on=dt.date(2026, 8, 15)),
        Restructure(RestructureKind.INSTALLMENT, installment_amount=D("10000.00")),
    ):
        result = run(change)
        assert result.schedule.rows[:6] == SCHEDULE.rows[:6]
        assert sum((r.principal for r in result.rows), D(0)) == LEFT
        assert result.rows[-1].balance == 0
        assert [r.number for r in result.schedule.rows] == list(
            range(1, len(result.schedule.rows) + 1)
        )


def test_new_rate() -> None:
    result = run(Restructure(RestructureKind.RATE, annual_rate=D("10")))
    r = D("10") / 1200
    assert result.schedule.installment_amount == annuity(LEFT, r, 6)
    assert result.rows[0].interest == half_up(LEFT * r)
    assert result.rows[0].due_date == dt.date(2026, 8, 1)
    assert result.annual_rate == D("10") and result.installments_left == 6


def test_new_term() -> None:
    result = run(Restructure(RestructureKind.TERM, installments=10))
    assert result.schedule.installment_amount == annuity(LEFT, D("0.01"), 10)
    assert result.rows[-1].due_date == dt.date(2027, 5, 1)


def test_new_next_due_date_is_a_broken_period() -> None:
    result = run(Restructure(RestructureKind.NEXT_DUE_DATE, next_due_on=dt.date(2026, 8, 15)))
    # 1 July → 15 August: 45 days of a regular period of 31 (15 July → 15 August).
    assert result.rows[0].interest == half_up(LEFT * D("0.01") * 45 / 31)
    assert [r.due_date.day for r in result.rows] == [15] * 6


def test_moratorium_carry_capitalise_waive() -> None:
    month = half_up(LEFT * D("0.01"))  # 514.92
    carry = run(Restructure(RestructureKind.MORATORIUM, periods=3))
    assert [r.total for r in carry.rows[:3]] == [D("0.00")] * 3
    assert carry.rows[3].interest == 4 * month
    assert carry.schedule.installment_amount == annuity(LEFT, D("0.01"), 6)
    assert len(carry.rows) == 9

    cap = run(
        Restructure(
            RestructureKind.MORATORIUM,
            periods=3,
            moratorium_interest=MoratoriumInterest.CAPITALISE,
        )
    )
    assert cap.capitalised_interest == 3 * month
    grown = LEFT + 3 * month
    assert cap.schedule.installment_amount == annuity(grown, D("0.01"), 6)
    assert cap.rows[3].interest == half_up(grown * D("0.01"))
    assert sum((r.principal for r in cap.rows), D(0)) == grown

    waive = run(
        Restructure(
            RestructureKind.MORATORIUM, periods=3, moratorium_interest=MoratoriumInterest.WAIVE
        )
    )
    assert [r.interest_for_period for r in waive.rows[:3]] == [D("0.00")] * 3
    assert waive.rows[3].interest == month


def test_new_installment_sets_the_count() -> None:
    result = run(Restructure(RestructureKind.INSTALLMENT, installment_amount=D("10000.00")))
    balance, rows = LEFT, 0
    while balance > 0:
        balance -= D("10000.00") - half_up(balance * D("0.01"))
        rows += 1
    assert len(result.rows) == rows == 6
    assert all(r.total == D("10000.00") for r in result.rows[:-1])


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (Restructure(RestructureKind.INSTALLMENT, installment_amount=D("500.00")),
         "installment_amount"),
        (Restructure(RestructureKind.MORATORIUM, periods=0), "periods"),
        (Restructure(RestructureKind.RATE, annual_rate=D("12")), "annual_rate"),
        (Restructure(RestructureKind.NEXT_DUE_DATE, next_due_on=dt.date(2026, 6, 30)),
         "next_due_on"),
        (Restructure(RestructureKind.TERM, installments=6), "installments"),
    ],
)  # fmt: skip
def test_bad_changes_name_their_field(change: Restructure, field: str) -> None:
    with pytest.raises(TermsError) as caught:
        run(change)
    assert caught.value.field == field
