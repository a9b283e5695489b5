"""Provisioning: the prudential asset class of a loan and the provision it needs (docs/ledger.md
"Provisioning", D-190, D-191). Pure: no I/O, nothing of the rest of namma.

The class is an ordered table of rules (`PROVISION_CLASS_RULES`, the first that holds), read two
ways like `namma.finance.owed`: on Python values (`provision_class`) and, through
`namma.kit.sqltext.sql_case`, as the SQL the close of business runs over every loan. A rule sees
the loan's RBI delinquency class (``asset_class``: ``npa`` beyond 90 days past due, kept NPA
until every arrear is paid), the day it became NPA (``npa_since``), whether it was restructured
(``restructured``), and the two boundary days of the business date (`class_boundaries`):

- **loss**: NPA since ``LOSS_AFTER_MONTHS`` months or more (our simplification of RBI's "loss
  asset: identified as loss but not written off", D-190);
- **doubtful**: NPA since more than ``DOUBTFUL_AFTER_MONTHS`` months (RBI: remained
  sub-standard for 12 months);
- **sub-standard**: any other NPA (NPA for up to 12 months), or a loan restructured while
  standard (RBI: a restructured standard asset is downgraded to sub-standard) and not yet
  upgraded;
- **standard**: the rest (current and SMA-0/1/2 loans).

A loan that is NPA or restructured-and-not-upgraded is a non-performing asset
(`non_performing`): its interest is income only when collected, so accrual stops for it
(`namma.finance.accrual`). A restructured loan is upgraded after a year of satisfactory
performance (`restructure_upgrade_due`, D-210): every installment due by the year's end paid,
none more than ``PROBATION_MAX_DAYS_PAST_DUE`` days past due on a day of that year.

The provision is the class's rate (percent) of the loan's outstanding principal, rounded to the
paisa half-up (`provision_required`). Interest and fees are not provided for: on cash basis they
were never recognised (docs/ledger.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from namma.finance.dates import add_months

CENT = Decimal("0.01")
HUNDRED = Decimal(100)

DOUBTFUL_AFTER_MONTHS = 12
LOSS_AFTER_MONTHS = 36
# A restructured loan's specified period of satisfactory performance (D-210): a year from the
# restructuring, in which no installment may be more than 30 days past due.
RESTRUCTURE_PROBATION_MONTHS = 12
PROBATION_MAX_DAYS_PAST_DUE = 30

STANDARD = "standard"
SUB_STANDARD = "sub_standard"
DOUBTFUL = "doubtful"
LOSS = "loss"
CLASSES: tuple[str, ...] = (STANDARD, SUB_STANDARD, DOUBTFUL, LOSS)

# The rates a new installation starts with (percent of outstanding principal; D-191): RBI's
# prudential norms for NBFCs on unsecured loans — standard 0.40 %, sub-standard 10 %, doubtful
# 100 % (the unsecured portion), loss 100 %. The Admin changes them (`provisioning_rates`).
DEFAULT_RATES: dict[str, Decimal] = {
    STANDARD: Decimal("0.40"),
    SUB_STANDARD: Decimal("10"),
    DOUBTFUL: Decimal("100"),
    LOSS: Decimal("100"),
}

NPA = "npa"  # the delinquency class of a non-performing asset (loans.asset_class)


def _npa(loan: Any) -> Any:
    return loan.asset_class == NPA


def _loss(loan: Any, doubtful_from: Any, loss_from: Any) -> Any:
    return _npa(loan) & (loan.npa_since <= loss_from)


def _doubtful(loan: Any, doubtful_from: Any, loss_from: Any) -> Any:
    return _npa(loan) & (loan.npa_since < doubtful_from)


def non_performing(loan: Any) -> Any:
    """A non-performing asset under RBI's income recognition and asset classification norms:
    NPA by its days past due, or restructured (``restructured``: and not yet upgraded) — a
    restructured standard asset is downgraded to sub-standard, which is an NPA. Its interest is
    income only when collected (read as SQL by the close's accrual step, D-210)."""
    return _npa(loan) | loan.restructured


def _sub_standard(loan: Any, doubtful_from: Any, loss_from: Any) -> Any:
    return non_performing(loan)


# A loan's prudential class: the first rule that holds, else `STANDARD_OTHERWISE`.
PROVISION_CLASS_RULES: tuple[tuple[str, Callable[[Any, Any, Any], Any]], ...] = (
    (LOSS, _loss),
    (DOUBTFUL, _doubtful),
    (SUB_STANDARD, _sub_standard),
)
STANDARD_OTHERWISE = STANDARD


def class_boundaries(as_of: date) -> tuple[date, date]:
    """``(doubtful_from, loss_from)`` for the business date ``as_of``: an NPA since *before*
    ``doubtful_from`` (more than 12 months) is doubtful; since ``loss_from`` or earlier (36
    months or more), loss."""
    return add_months(as_of, -DOUBTFUL_AFTER_MONTHS), add_months(as_of, -LOSS_AFTER_MONTHS)


@dataclass(frozen=True)
class _LoanClassFacts:
    asset_class: str
    npa_since: date
    restructured: bool


def provision_class(
    *, asset_class: str, npa_since: date | None, restructured: bool, as_of: date
) -> str:
    """The prudential class of a loan on ``as_of`` (the rules above, read on Python values)."""
    doubtful_from, loss_from = class_boundaries(as_of)
    # A loan that is not NPA has no NPA date; its rules never look at it (the NPA test fails).
    facts = _LoanClassFacts(asset_class, npa_since or as_of, restructured)
    for name, holds in PROVISION_CLASS_RULES:
        if holds(facts, doubtful_from, loss_from):
            return name
    return STANDARD_OTHERWISE


def provision_required(outstanding_principal: Decimal, rate_percent: Decimal) -> Decimal:
    """The provision a loan needs: ``rate_percent`` % of its outstanding principal, rounded to
    the paisa half-up (``round(principal * rate / 100, 2)`` in SQL, the same digits)."""
    if outstanding_principal < 0 or not (0 <= rate_percent <= HUNDRED):
        raise ValueError("the principal is never negative and a rate is between 0 and 100")
    return (outstanding_principal * rate_percent / HUNDRED).quantize(CENT, rounding=ROUND_HALF_UP)


def restructure_probation_end(restructured_on: date) -> date:
    """The last day of the year of satisfactory performance a restructured loan must show."""
    return add_months(restructured_on, RESTRUCTURE_PROBATION_MONTHS)


@dataclass(frozen=True)
class ProbationInstallment:
    """What the upgrade rule reads of an installment: its due date, whether it asks any money
    (a moratorium's rows may ask none), whether it still owes any, and the day it was paid in
    full (None if it never owed anything or still owes)."""

    due_date: date
    asks: bool
    owes: bool
    paid_on: date | None


def restructure_upgrade_due(
    *,
    restructured_on: date,
    as_of: date,
    npa: bool,
    installments: Sequence[ProbationInstallment],
) -> bool:
    """Whether a restructured loan is upgraded on ``as_of`` (D-210): a year has passed since
    the restructuring (``as_of`` on or after `restructure_probation_end`); the loan is not NPA;
    at least one installment asking money fell due in the year (a year of moratorium shows no
    performance); every installment due by the year's end is paid; and none was more than
    ``PROBATION_MAX_DAYS_PAST_DUE`` days past due on any day of the year (an arrear kept from
    before the restructuring counts from its own due date)."""
    end = restructure_probation_end(restructured_on)
    if as_of < end or npa:
        return False
    in_year = [i for i in installments if i.due_date <= end]
    if not any(i.asks and i.due_date > restructured_on for i in in_year):
        return False
    late_from = timedelta(days=PROBATION_MAX_DAYS_PAST_DUE + 1)
    for i in in_year:
        if i.owes:
            return False
        if i.paid_on is None:
            continue
        # Unpaid on the days due_date … paid_on − 1: late on those of the year from the 31st.
        first_late = max(i.due_date + late_from, restructured_on + timedelta(days=1))
        last_unpaid = min(i.paid_on - timedelta(days=1), end)
        if first_late <= last_unpaid:
            return False
    return True
