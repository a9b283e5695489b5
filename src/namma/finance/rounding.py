"""Decimal context and named rounding policies.

Money is quantised to 0.01 only here, under a named policy. Intermediate values (rates,
unrounded interest) keep the context's precision.
"""

from __future__ import annotations

import decimal
from decimal import Decimal
from enum import StrEnum

# The origin computed with decimal.js at 20 significant digits, rounding half-up; the same
# context reproduces every one of its golden numbers. 20 digits keep sums of money exact up to
# 10^18 rupees, far beyond any loan. Traps turn silent NaN/Infinity into errors.
MONEY_CONTEXT = decimal.Context(
    prec=20,
    rounding=decimal.ROUND_HALF_UP,
    Emax=999_999,
    Emin=-999_999,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow],
)

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
ONE = Decimal(1)
HUNDRED = Decimal(100)


class RoundingMode(StrEnum):
    """How an installment (or an equal-principal part) is rounded to its multiple.

    `up` and `down` are towards and away from infinity for the (always positive) amounts here.
    """

    HALF_UP = "half-up"
    HALF_EVEN = "half-even"
    UP = "up"
    DOWN = "down"


class InterestRounding(StrEnum):
    """How each period's interest is rounded to 0.01.

    `none` keeps interest unrounded and carries the exact balance; each row then shows the
    difference of the rounded (half-up) cumulative interest, so no rounding residue accumulates.
    """

    HALF_UP = "half-up"
    HALF_EVEN = "half-even"
    NONE = "none"


DECIMAL_ROUNDING: dict[str, str] = {
    RoundingMode.HALF_UP: decimal.ROUND_HALF_UP,
    RoundingMode.HALF_EVEN: decimal.ROUND_HALF_EVEN,
    RoundingMode.UP: decimal.ROUND_CEILING,
    RoundingMode.DOWN: decimal.ROUND_FLOOR,
    InterestRounding.NONE: decimal.ROUND_HALF_UP,
}

# Fees and penalties computed as a percentage are rounded half-up (Indian practice, and what the
# origin did for every amount).
FEE_ROUNDING = RoundingMode.HALF_UP


def round_money(
    amount: Decimal, mode: RoundingMode | InterestRounding = RoundingMode.HALF_UP
) -> Decimal:
    """Round to 0.01 under `mode` (`InterestRounding.NONE` rounds half-up: rows are money)."""
    return amount.quantize(CENT, rounding=DECIMAL_ROUNDING[mode], context=MONEY_CONTEXT)


def round_to_multiple(amount: Decimal, multiple: Decimal, mode: RoundingMode) -> Decimal:
    """Round `amount` to a multiple of `multiple` (0.01, 1, 5, 10 …) under `mode`, as money."""
    if multiple == CENT:
        return round_money(amount, mode)
    units = MONEY_CONTEXT.divide(amount, multiple).quantize(
        ONE, rounding=DECIMAL_ROUNDING[mode], context=MONEY_CONTEXT
    )
    return MONEY_CONTEXT.multiply(units, multiple).quantize(CENT, context=MONEY_CONTEXT)


def percent_of(base: Decimal, percent: Decimal) -> Decimal:
    """`percent` % of `base`, rounded under the fee policy."""
    ctx = MONEY_CONTEXT
    return round_money(ctx.divide(ctx.multiply(base, percent), HUNDRED), FEE_ROUNDING)
