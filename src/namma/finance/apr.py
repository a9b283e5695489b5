"""APR for the Key Facts Statement: the IRR of the borrower's net cash flows, annualised.

Cash flows: + the net disbursement (principal less fees deducted at disbursement) at time 0,
− each installment's total (principal + interest + fees) at its time. Time is counted in
periods: installment k is at t₁ + (k − 1), where t₁ is the first period's length over a regular
period (1 unless the first period is broken); a bullet's single installment is at the end of the
last period.

The periodic IRR i solves Σ CFₜ / (1 + i)ᵗ = 0, found by bisection in `Decimal` (no float).
Annualisation:
- `nominal` (default): i × periods per year. A loan with no fees has APR = its rate; this is how
  Indian lenders' KFS illustrations compute "annualised IRR" (monthly IRR × 12).
- `effective`: (1 + i)^(periods per year) − 1, the compounded annual rate.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from decimal import Decimal
from enum import StrEnum

from namma.finance.errors import FinanceError
from namma.finance.rounding import CENT, HUNDRED, MONEY_CONTEXT, ONE
from namma.finance.schedule import Schedule, periods_per_year
from namma.finance.terms import Amortization

# 30 significant digits and a 1e-18 bracket: the root is exact far beyond the 0.01 % shown.
_IRR_CONTEXT = decimal.Context(prec=30, rounding=decimal.ROUND_HALF_EVEN)
_TOLERANCE = Decimal("1e-18")


class AprConvention(StrEnum):
    NOMINAL = "nominal"
    EFFECTIVE = "effective"


def _npv(rate: Decimal, flows: Sequence[tuple[Decimal, Decimal]]) -> Decimal:
    growth = ONE + rate
    return sum((amount / growth**time for time, amount in flows), Decimal(0))


def periodic_irr(flows: Sequence[tuple[Decimal, Decimal]]) -> Decimal:
    """The per-period rate i > −1 with Σ amount / (1 + i)^time = 0.

    `flows` are (time in periods, amount): money received first (positive), then money paid
    (negative). Discounting shrinks the later payments, so the NPV rises with i and the root is
    unique. Raises `FinanceError` if there is none in (−99 %, 10⁶ per period).
    """
    with decimal.localcontext(_IRR_CONTEXT):
        low = Decimal("-0.99")
        high = Decimal(1)
        if _npv(low, flows) > 0:
            raise FinanceError.single("cash_flows", "The cash flows have no IRR above -99 %")
        while _npv(high, flows) < 0:
            high *= 2
            if high > 1_000_000:
                raise FinanceError.single("cash_flows", "The cash flows have no finite IRR")
        while high - low > _TOLERANCE:
            middle = (low + high) / 2
            if _npv(middle, flows) < 0:
                low = middle
            else:
                high = middle
        return (low + high) / 2


def cash_flows(schedule: Schedule) -> list[tuple[Decimal, Decimal]]:
    """The borrower's (time in periods, amount) flows: + net disbursement, − each installment."""
    first = schedule.first_period_fraction
    flows = [(Decimal(0), schedule.net_disbursement)]
    if schedule.terms.amortization is Amortization.BULLET:
        time = first + (schedule.terms.installments - 1)
        flows.extend((time, -row.total) for row in schedule.rows)
    else:
        flows.extend((first + (row.number - 1), -row.total) for row in schedule.rows)
    return flows


def apr_percent(
    schedule: Schedule, *, convention: AprConvention = AprConvention.NOMINAL
) -> Decimal:
    """The KFS APR in percent, rounded to 0.01 half-up (see the module docstring)."""
    rate = periodic_irr(cash_flows(schedule))
    per_year = periods_per_year(schedule.terms)
    with decimal.localcontext(_IRR_CONTEXT):
        if convention is AprConvention.NOMINAL:
            annual = rate * per_year
        else:
            annual = (ONE + rate) ** per_year - ONE
        return (annual * HUNDRED).quantize(
            CENT, rounding=decimal.ROUND_HALF_UP, context=MONEY_CONTEXT
        )
