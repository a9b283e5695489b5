"""The prudential class of a loan and the provision it needs (`namma.finance.provisioning`):
the boundaries of D-190 on dates worked out by hand, RBI's downgrade of a restructured standard
loan, and the paisa rounding of the provision."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from namma.finance.provisioning import (
    DEFAULT_RATES,
    class_boundaries,
    provision_class,
    provision_required,
)

D = Decimal
AS_OF = dt.date(2026, 12, 6)


def test_the_boundaries_are_twelve_and_thirty_six_months_back() -> None:
    assert class_boundaries(AS_OF) == (dt.date(2025, 12, 6), dt.date(2023, 12, 6))
    # Month ends clamp: 29 February → 28 February of the year before.
    assert class_boundaries(dt.date(2028, 2, 29)) == (dt.date(2027, 2, 28), dt.date(2025, 2, 28))


@pytest.mark.parametrize(
    ("asset_class", "npa_since", "restructured", "expected"),
    [
        ("standard", None, False, "standard"),
        ("sma_0", None, False, "standard"),
        ("sma_1", None, False, "standard"),
        ("sma_2", None, False, "standard"),
        # NPA for exactly 12 months: still sub-standard ("up to 12 months").
        ("npa", dt.date(2025, 12, 6), False, "sub_standard"),
        ("npa", dt.date(2026, 12, 6), False, "sub_standard"),  # NPA since today
        ("npa", dt.date(2025, 12, 5), False, "doubtful"),  # a day more than 12 months
        ("npa", dt.date(2023, 12, 7), False, "doubtful"),  # a day short of 36 months
        ("npa", dt.date(2023, 12, 6), False, "loss"),  # 36 months
        ("npa", dt.date(2019, 1, 1), False, "loss"),
        # RBI: a restructured standard asset is downgraded to sub-standard …
        ("standard", None, True, "sub_standard"),
        ("sma_2", None, True, "sub_standard"),
        # … and an NPA restructured keeps the class its age gives it (no upgrade).
        ("npa", dt.date(2025, 1, 1), True, "doubtful"),
        ("npa", dt.date(2020, 1, 1), True, "loss"),
    ],
)
def test_the_class_of_a_loan(
    asset_class: str, npa_since: dt.date | None, restructured: bool, expected: str
) -> None:
    assert (
        provision_class(
            asset_class=asset_class, npa_since=npa_since, restructured=restructured, as_of=AS_OF
        )
        == expected
    )


def test_the_provision_is_the_rate_of_the_principal_to_the_paisa_half_up() -> None:
    assert provision_required(D("20000.00"), D("0.40")) == D("80.00")
    assert provision_required(D("10001.25"), D("0.40")) == D("40.01")  # 40.005: half-up
    assert provision_required(D("10001.24"), D("0.40")) == D("40.00")  # 40.00496
    assert provision_required(D("12345.67"), D("10")) == D("1234.57")  # 1234.567
    assert provision_required(D("33333.33"), D("100")) == D("33333.33")
    assert provision_required(D("0.00"), D("100")) == D("0.00")
    assert provision_required(D("1000.00"), D("0.0625")) == D("0.63")  # 0.625: half-up


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(ValueError):
        provision_required(D("-1.00"), D("1"))
    with pytest.raises(ValueError):
        provision_required(D("1.00"), D("100.01"))


def test_the_defaults_are_rbi_style() -> None:
    assert {
        "standard": D("0.40"),
        "sub_standard": D("10"),
        "doubtful": D("100"),
        "loss": D("100"),
    } == DEFAULT_RATES
