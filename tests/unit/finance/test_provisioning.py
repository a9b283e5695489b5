"""The prudential class of a loan and the provision it needs (`namma.finance.provisioning`):
the boundaries of D-190 on dates worked out by hand, RBI's downgrade of a restructured standard
loan, and the paisa rounding of the provision."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from namma.finance.provisioning import (
    DEFAULT_RATES,
    ProbationInstallment,
    class_boundaries,
    non_performing,
    provision_class,
    provision_required,
    restructure_upgrade_due,
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


# --- a restructured loan: non-performing until upgraded after a year (D-210) ---------------------

RESTRUCTURED_ON = dt.date(2025, 11, 10)  # its year ends on 10 November 2026
YEAR_END = dt.date(2026, 11, 10)


def _monthly(
    late: dict[int, int | None], *, first: dt.date = dt.date(2025, 12, 10)
) -> list[ProbationInstallment]:
    """Installments due on the 10th from ``first`` through November 2026, each paid 3 days
    after its due date, or ``late[k]`` days after (None: still owing)."""
    rows = []
    for k in range(12):
        due = dt.date(first.year + (first.month - 1 + k) // 12, (first.month - 1 + k) % 12 + 1, 10)
        days = late.get(k + 1, 3)
        rows.append(
            ProbationInstallment(
                due_date=due,
                asks=True,
                owes=days is None,
                paid_on=None if days is None else due + dt.timedelta(days=days),
            )
        )
    return rows


def _due(
    installments: list[ProbationInstallment], *, as_of: dt.date = AS_OF, npa: bool = False
) -> bool:
    return restructure_upgrade_due(
        restructured_on=RESTRUCTURED_ON, as_of=as_of, npa=npa, installments=installments
    )


class _Loan:
    def __init__(self, asset_class: str, restructured: bool) -> None:
        self.asset_class, self.restructured = asset_class, restructured


def test_a_restructured_or_npa_loan_is_non_performing() -> None:
    assert non_performing(_Loan("npa", False)) and non_performing(_Loan("sma_1", True))
    assert not non_performing(_Loan("standard", False))


def test_a_year_paid_on_time_upgrades_from_its_last_day() -> None:
    paid = _monthly({})
    assert _due(paid)
    assert _due(paid, as_of=YEAR_END)
    assert not _due(paid, as_of=YEAR_END - dt.timedelta(days=1))
    assert not _due(paid, npa=True)


def test_thirty_days_past_due_is_allowed_thirty_one_is_not() -> None:
    # Paid 31 days after its due date: unpaid on days 0…30, at most 30 days past due.
    assert _due(_monthly({4: 31}))
    assert not _due(_monthly({4: 32}))
    assert not _due(_monthly({12: None}))  # the year's last installment still owes


def test_an_arrear_from_before_the_restructuring_counts_from_its_own_due_date() -> None:
    """Due 1 October 2025, before the restructuring (10 November): paid 12 November, it was
    unpaid and 41 days past due on the year's first day (11 November); paid 11 November, it
    was never unpaid in the year."""
    arrear = dt.date(2025, 10, 1)

    def with_arrear(paid_on: dt.date) -> list[ProbationInstallment]:
        return [ProbationInstallment(arrear, True, False, paid_on), *_monthly({})]

    assert not _due(with_arrear(dt.date(2025, 11, 12)))
    assert _due(with_arrear(dt.date(2025, 11, 11)))


def test_a_year_of_moratorium_shows_no_performance() -> None:
    nothing_asked = [ProbationInstallment(i.due_date, False, False, None) for i in _monthly({})]
    assert not _due(nothing_asked)
    # After the year, installments not yet due are not its business.
    later = [*_monthly({}), ProbationInstallment(dt.date(2026, 12, 10), True, True, None)]
    assert _due(later, as_of=dt.date(2026, 12, 20))
