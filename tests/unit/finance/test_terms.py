"""Validation of terms: every problem named, with the field and a specific message."""

from __future__ import annotations

from decimal import Decimal

import pytest

from namma.finance import (
    AllocationStrategy,
    Amortization,
    Component,
    Fee,
    FeeBasis,
    FeeTiming,
    FieldError,
    FinanceError,
    Frequency,
    LoanTerms,
    PenaltyBasis,
    PenaltyTerms,
    TermsError,
)

from .conftest import D


def problems(**kwargs: object) -> list[tuple[str, str]]:
    base: dict[str, object] = {"principal": D(10000), "annual_rate": D(12), "installments": 12}
    base.update(kwargs)
    with pytest.raises(TermsError) as caught:
        LoanTerms(**base)  # type: ignore[arg-type]
    return [(e.field, e.message) for e in caught.value.errors]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"principal": 1000.0}, ("principal", "Invalid principal amount")),
        ({"principal": D("NaN")}, ("principal", "Invalid principal amount")),
        (
            {"principal": D("100.001")},
            ("principal", "Principal must have at most 2 decimal places"),
        ),
        ({"principal": D("1e13")}, ("principal", "Principal cannot exceed 1000000000000")),
        ({"annual_rate": "12"}, ("annual_rate", "Invalid interest rate")),
        ({"installments": 10_001}, ("installments", "Tenure cannot exceed 10000 installments")),
        ({"installments": True}, ("installments", "Tenure must be at least 1 installment")),
        ({"every": 0}, ("every", "Repeat-every multiplier must be at least 1")),
        (
            {"periods_per_year_floor": True},
            (
                "periods_per_year_floor",
                "Periods per year ⌊365/N⌋ applies only to the every-N-days frequency",
            ),
        ),
        (
            {"frequency": Frequency.DAYS, "every": 400, "periods_per_year_floor": True},
            ("every", "With periods per year ⌊365/N⌋, the period cannot exceed 365 days"),
        ),
        (
            {"installment_multiple": D("0.001")},
            (
                "installment_multiple",
                "Installment multiple must be a positive multiple of 0.01, at most 1000",
            ),
        ),
        (
            {"installment_multiple": D(0)},
            (
                "installment_multiple",
                "Installment multiple must be a positive multiple of 0.01, at most 1000",
            ),
        ),
        (
            {"installment_multiple": D("1000.01")},
            (
                "installment_multiple",
                "Installment multiple must be a positive multiple of 0.01, at most 1000",
            ),
        ),
        (
            {"grace_principal": -1},
            ("grace_principal", "Grace periods must be a whole number of at least 0"),
        ),
        (
            {"grace_interest": 12},
            ("grace_interest", "Grace must leave at least one installment after it"),
        ),
        (
            {"interest_free": 13},
            ("interest_free", "Interest-free periods cannot exceed the installments"),
        ),
        (
            {"grace_principal": 1, "amortization": Amortization.BULLET},
            (
                "grace_principal",
                "Principal grace applies only to equal-installments and equal-principal",
            ),
        ),
        (
            {"fees": (Fee("p", FeeTiming.DISBURSEMENT, FeeBasis.FLAT, D(10000)),)},
            ("fees", "Charges cannot exceed principal amount"),
        ),
        (
            {"prepayment_penalty_percent": D(2)},
            (
                "prepayment_penalty_percent",
                "A prepayment penalty is not allowed on microfinance loans (RBI)",
            ),
        ),
        (
            {"prepayment_penalty_percent": D(101), "microfinance": False},
            (
                "prepayment_penalty_percent",
                "Prepayment penalty must be a percentage between 0 and 100",
            ),
        ),
        (
            {"allocation": AllocationStrategy(order=(Component.INTEREST,))},
            (
                "allocation",
                "Allocation order must list penalty, fee, interest and principal once each",
            ),
        ),
    ],
)
def test_specific_messages(kwargs: dict[str, object], expected: tuple[str, str]) -> None:
    assert expected in problems(**kwargs)


def test_every_problem_is_reported_at_once() -> None:
    found = problems(principal=D(-1), annual_rate=D(101), installments=0)
    assert [field for field, _ in found] == ["principal", "annual_rate", "installments"]


def test_prepayment_penalty_allowed_when_not_microfinance() -> None:
    terms = LoanTerms(
        principal=D(1000),
        annual_rate=D(12),
        installments=2,
        microfinance=False,
        prepayment_penalty_percent=D(2),
    )
    assert terms.prepayment_penalty_percent == 2


@pytest.mark.parametrize(
    ("fee", "message"),
    [
        (Fee("", FeeTiming.INSTALLMENT, FeeBasis.FLAT, D(1)), "Fee name must not be empty"),
        (
            Fee("x", FeeTiming.INSTALLMENT, FeeBasis.FLAT, D(-1)),
            "Fee 'x': value must be a number of at least 0",
        ),
        (
            Fee("x", FeeTiming.INSTALLMENT, FeeBasis.FLAT, D("1.001")),
            "Fee 'x': a flat fee has at most 2 decimal places",
        ),
        (
            Fee("x", FeeTiming.INSTALLMENT, FeeBasis.FLAT, D("1e13")),
            "Fee 'x': a flat fee cannot exceed 1000000000000",
        ),
        (
            Fee("x", FeeTiming.DISBURSEMENT, FeeBasis.PERCENT, D(101)),
            "Fee 'x': a percentage cannot exceed 100",
        ),
        (
            Fee("x", FeeTiming.INSTALLMENT, FeeBasis.PERCENT, D(1)),
            "Fee 'x': an installment fee is flat, percent-of-principal or percent-of-total",
        ),
        (
            Fee("x", FeeTiming.DISBURSEMENT, FeeBasis.PERCENT_OF_TOTAL, D(1)),
            "Fee 'x': a disbursement fee is flat or percent (of principal)",
        ),
    ],
)
def test_fee_problems(fee: Fee, message: str) -> None:
    assert FieldError("fees", message) in fee.problems()


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("processing:disbursement:percent", "Fee 'processing:disbursement:percent' must be"),
        ("p:later:flat:1", "WHEN must be one of disbursement, first-installment, installment"),
        ("p:disbursement:lots:1", "HOW must be one of flat, percent"),
        ("p:disbursement:flat:abc", "VALUE must be a number"),
        ("p:installment:percent:1", "an installment fee is flat"),
    ],
)
def test_fee_parse_errors(spec: str, message: str) -> None:
    with pytest.raises(TermsError) as caught:
        Fee.parse(spec)
    assert caught.value.field == "fees"
    assert message in caught.value.message


def test_fee_parse() -> None:
    assert Fee.parse("service:installment:percent-of-total:1.5") == Fee(
        "service", FeeTiming.INSTALLMENT, FeeBasis.PERCENT_OF_TOTAL, D("1.5")
    )


@pytest.mark.parametrize(
    ("penalty", "message"),
    [
        (PenaltyTerms(value=D(-1)), "Penalty value must be a number of at least 0"),
        (PenaltyTerms(value=D("0.001")), "A flat penalty has at most 2 decimal places"),
        (
            PenaltyTerms(basis=PenaltyBasis.PERCENT_OF_OVERDUE_PRINCIPAL, value=D(101)),
            "A penalty percentage cannot exceed 100",
        ),
        (PenaltyTerms(grace_days=-1), "Penalty grace days must be a whole number of at least 0"),
        (PenaltyTerms(cap=D(-5)), "Penalty cap must be an amount from 0 to 1000000000000"),
        (
            PenaltyTerms(cap=D(10) ** 12 + 1),
            "Penalty cap must be an amount from 0 to 1000000000000",
        ),
        (PenaltyTerms(value=D(10) ** 12 + 1), "A flat penalty cannot exceed 1000000000000"),
    ],
)
def test_penalty_problems(penalty: PenaltyTerms, message: str) -> None:
    assert ("penalty", message) in problems(penalty=penalty)


def test_enums_are_built_from_stored_strings() -> None:
    assert Frequency("half-yearly") is Frequency.HALF_YEARLY
    assert Amortization("equal-principal") is Amortization.EQUAL_PRINCIPAL


def test_finance_error_needs_a_problem() -> None:
    with pytest.raises(ValueError, match="at least one"):
        FinanceError([])
    error = FinanceError.single("x", "bad")
    assert (error.field, error.message, str(error)) == ("x", "bad", "x: bad")


def test_terms_are_frozen() -> None:
    terms = LoanTerms(principal=D(1000), annual_rate=D(12), installments=2)
    with pytest.raises(AttributeError):
        terms.principal = Decimal(5)  # type: ignore[misc]
