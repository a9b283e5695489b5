"""Shared helpers for the money-core tests."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from namma.finance import LoanTerms, Schedule, generate_schedule

D = Decimal
START = date(2024, 1, 1)


def terms(principal: str | int, rate: str | int, n: int, **kwargs: object) -> LoanTerms:
    return LoanTerms(principal=D(principal), annual_rate=D(rate), installments=n, **kwargs)  # type: ignore[arg-type]


def build(principal: str | int, rate: str | int, n: int, **kwargs: object) -> Schedule:
    first_due_on = kwargs.pop("first_due_on", None)
    disbursed_on = kwargs.pop("disbursed_on", START)
    return generate_schedule(
        terms(principal, rate, n, **kwargs),
        disbursed_on=disbursed_on,  # type: ignore[arg-type]
        first_due_on=first_due_on,  # type: ignore[arg-type]
    )
