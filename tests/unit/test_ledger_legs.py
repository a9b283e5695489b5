"""legs_check: what a journal must be before it is written (exact Decimal comparisons)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from namma.ledger.service import LedgerError, Leg, legs_check
from namma.models import AccountKind

D = Decimal
PORTFOLIO = AccountKind.LOAN_PORTFOLIO
BANK = AccountKind.BANK
FEES = AccountKind.FEE_INCOME


def test_a_balanced_journal_passes() -> None:
    legs_check(
        [
            Leg(PORTFOLIO, debit=D("10000.00")),
            Leg(BANK, credit=D("9823.50")),
            Leg(FEES, credit=D("176.50")),
        ]
    )


def test_amounts_with_fewer_decimals_are_whole_paise() -> None:
    legs_check([Leg(PORTFOLIO, debit=D("100")), Leg(BANK, credit=D("100.0"))])


@pytest.mark.parametrize(
    ("legs", "message"),
    [
        ([Leg(PORTFOLIO, debit=D("100.00")), Leg(BANK, credit=D("99.99"))], "≠"),
        (
            [
                Leg(PORTFOLIO, debit=D("100.00")),
                Leg(BANK, credit=D("33.33")),
                Leg(BANK, credit=D("33.33")),
                Leg(FEES, credit=D("33.33")),
            ],
            "debits 100.00 ≠ credits 99.99",
        ),
        ([Leg(PORTFOLIO, debit=D("-5.00")), Leg(BANK, debit=D("5.00"))], "negative"),
        ([Leg(PORTFOLIO, debit=D("100.00")), Leg(BANK, credit=D("-100.00"))], "negative"),
        ([Leg(PORTFOLIO, debit=D("0.005")), Leg(BANK, credit=D("0.005"))], "whole paise"),
        ([Leg(PORTFOLIO, debit=D("1.001")), Leg(BANK, credit=D("1.001"))], "whole paise"),
        (
            [Leg(PORTFOLIO, debit=D("5.00"), credit=D("5.00")), Leg(BANK, credit=D("0.00"))],
            "not both or neither",
        ),
        ([Leg(PORTFOLIO), Leg(BANK)], "not both or neither"),
        ([Leg(PORTFOLIO, debit=D("0")), Leg(BANK, debit=D("0"))], "not both or neither"),
        ([Leg(PORTFOLIO, debit=D("100.00"))], "at least two lines"),
        ([], "at least two lines"),
    ],
)
def test_bad_journals_are_refused(legs: list[Leg], message: str) -> None:
    with pytest.raises(LedgerError, match=message):
        legs_check(legs)


def test_float_noise_would_be_caught() -> None:
    # 0.1 + 0.2 as binary floats is not 0.30: a Decimal made from floats is refused.
    with pytest.raises(LedgerError):
        legs_check(
            [
                Leg(PORTFOLIO, debit=D(0.1) + D(0.2)),
                Leg(BANK, credit=D("0.30")),
            ]
        )


def test_one_paisa_difference_is_not_rounded_away() -> None:
    with pytest.raises(LedgerError, match=r"debits 1000000000\.01 ≠ credits 1000000000\.00"):
        legs_check([Leg(PORTFOLIO, debit=D("1000000000.01")), Leg(BANK, credit=D("1000000000.00"))])
