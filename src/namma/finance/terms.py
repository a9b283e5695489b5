"""Product terms: one typed, validated value object describing how a loan computes.

Enum values are the public spelling used by the CLI, the API and the database (store the
`.value`; rebuild with `Frequency("monthly")`). Constructing `LoanTerms` validates everything at
once and raises `TermsError` listing every problem, each with the field name and a message
(the origin's message strings are reused where it had one).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from enum import StrEnum

from namma.finance.errors import FieldError, TermsError
from namma.finance.rounding import (
    CENT,
    HUNDRED,
    MONEY_CONTEXT,
    InterestRounding,
    RoundingMode,
    percent_of,
)

MAX_INSTALLMENTS = (
    10_000  # ~27 years of daily installments; bounds the work one request can ask for
)
# A lakh crore; keeps every sum well inside the 20 significant digits of MONEY_CONTEXT.
MAX_AMOUNT = Decimal(10) ** 12
# Installments are rounded to the paisa, the rupee, or a few rupees (5, 10, 100): never more.
MAX_INSTALLMENT_MULTIPLE = Decimal(1000)


class InterestMethod(StrEnum):
    DECLINING = "declining"  # interest on the balance still outstanding (reducing balance)
    FLAT = "flat"  # interest on the original principal, every period


class Amortization(StrEnum):
    EQUAL_INSTALLMENTS = "equal-installments"  # EMI / EPI
    EQUAL_PRINCIPAL = "equal-principal"  # same principal each period, interest on top
    INTEREST_ONLY = "interest-only"  # interest each period, all principal in the last
    BULLET = "bullet"  # one installment at the end: principal and all interest


class Frequency(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"
    FORTNIGHTLY = "fortnightly"
    MONTHLY = "monthly"
    QUARTERLY = "quarterly"
    HALF_YEARLY = "half-yearly"
    YEARLY = "yearly"
    DAYS = "days"  # every N days; N is `LoanTerms.every`


class InterestPeriod(StrEnum):
    INSTALLMENT = "installment"  # annual rate / periods per year, each period
    DAILY = "daily"  # annual rate × actual days / days in year, between due dates


class DaysInYear(StrEnum):
    ACTUAL = "actual"  # 365 or 366, split at 1 January
    D360 = "360"
    D364 = "364"
    D365 = "365"


class DaysInMonth(StrEnum):
    ACTUAL = "actual"
    D30 = "30"  # 30E/360 day count: day 31 counts as 30


class ScheduleConvention(StrEnum):
    """How each period's interest factor and the equal installment are worked out.

    `namma` (the default, DESIGN.md §6): a nominal periodic rate; the installment is the
    annuity at that rate. `fineract-progressive`: each period's factor comes from its day
    count (the product's days in year and days in month), and the installment is the one that
    repays the principal over those very factors, broken first period included; a last
    installment far from the others is evened out (docs/money.md §3, D-180).
    """

    NAMMA = "namma"
    FINERACT_PROGRESSIVE = "fineract-progressive"


class FeeTiming(StrEnum):
    DISBURSEMENT = "disbursement"  # charged at disbursement, deducted from the amount paid out
    FIRST_INSTALLMENT = "first-installment"  # charged at disbursement, collected with installment 1
    INSTALLMENT = "installment"  # charged with every installment


class FeeBasis(StrEnum):
    FLAT = "flat"  # a fixed amount
    PERCENT = "percent"  # % of the loan principal (disbursement fees)
    PERCENT_OF_PRINCIPAL = "percent-of-principal"  # % of the installment's principal
    PERCENT_OF_TOTAL = "percent-of-total"  # % of the installment's principal + interest


class PenaltyBasis(StrEnum):
    FLAT = "flat"
    PERCENT_OF_OVERDUE_PRINCIPAL = "percent-of-overdue-principal"
    PERCENT_OF_OVERDUE_TOTAL = "percent-of-overdue-total"  # overdue principal + interest


class PenaltyRecurrence(StrEnum):
    ONCE = "once"  # once per missed installment, when the grace days have passed
    DAILY = "daily"  # for every day overdue beyond the grace days


class Component(StrEnum):
    PENALTY = "penalty"
    FEE = "fee"
    INTEREST = "interest"
    PRINCIPAL = "principal"


class AllocationMode(StrEnum):
    BY_INSTALLMENT = "installment"  # oldest installment first; within it, components in order
    BY_COMPONENT = "component"  # each component across all dues, oldest first, then the next


class NonWorkingDayRule(StrEnum):
    """Where a due date that falls on a holiday or a non-working weekday goes (docs/money.md §3)."""

    SAME_DAY = "same-day"  # stays where it is: the calendar is ignored
    NEXT_WORKING_DAY = "next-working-day"
    PREVIOUS_WORKING_DAY = "previous-working-day"
    # A group's schedule is its meeting cycle: the installment waits for the next meeting (the
    # loan's next regular due date) and is collected with that one (D-214).
    NEXT_MEETING_DAY = "next-meeting-day"


class ExcessPolicy(StrEnum):
    # Money beyond the current dues is held as an advance (a liability) and applied to the next
    # installments as they fall due (the close of business): the MFI default.
    ADVANCE = "advance"
    REDUCE_TERM = "reduce-term"  # it prepays future principal; the loan gets shorter
    REDUCE_INSTALLMENT = "reduce-installment"  # it prepays principal; later installments shrink
    REFUSE = "refuse"  # a payment above the current dues is an error


DEFAULT_ORDER: tuple[Component, ...] = (
    Component.PENALTY,
    Component.FEE,
    Component.INTEREST,
    Component.PRINCIPAL,
)

_DISBURSEMENT_BASES = (FeeBasis.FLAT, FeeBasis.PERCENT)
_INSTALLMENT_BASES = (FeeBasis.FLAT, FeeBasis.PERCENT_OF_PRINCIPAL, FeeBasis.PERCENT_OF_TOTAL)


def _is_decimal(value: object) -> bool:
    return isinstance(value, Decimal) and value.is_finite()


def _is_money(value: object) -> bool:
    """A finite Decimal with at most two decimal places (and small enough to stay exact)."""
    if not isinstance(value, Decimal) or not value.is_finite() or abs(value) > MAX_AMOUNT:
        return False
    return value == value.quantize(CENT, context=MONEY_CONTEXT)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class Fee:
    """A charge: when it is charged, what it is computed on, and its value (amount or percent)."""

    name: str
    timing: FeeTiming
    basis: FeeBasis
    value: Decimal

    @classmethod
    def parse(cls, spec: str) -> Fee:
        """Parse `NAME:WHEN:HOW:VALUE`, e.g. `processing:disbursement:percent:2`.

        Raises `TermsError` on field `fees` with a message that says what is wrong.
        """
        parts = spec.split(":")
        if len(parts) != 4:
            raise TermsError.single("fees", f"Fee '{spec}' must be NAME:WHEN:HOW:VALUE")
        name, when, how, raw_value = (p.strip() for p in parts)
        try:
            timing = FeeTiming(when)
        except ValueError:
            allowed = ", ".join(t.value for t in FeeTiming)
            raise TermsError.single(
                "fees", f"Fee '{spec}': WHEN must be one of {allowed}"
            ) from None
        try:
            basis = FeeBasis(how)
        except ValueError:
            allowed = ", ".join(b.value for b in FeeBasis)
            raise TermsError.single("fees", f"Fee '{spec}': HOW must be one of {allowed}") from None
        try:
            value = Decimal(raw_value)
        except InvalidOperation:
            raise TermsError.single("fees", f"Fee '{spec}': VALUE must be a number") from None
        fee = cls(name=name, timing=timing, basis=basis, value=value)
        problems = fee.problems()
        if problems:
            raise TermsError(problems)
        return fee

    def problems(self) -> list[FieldError]:
        """What is wrong with this fee (empty when valid)."""
        label = f"Fee '{self.name}'" if self.name else "Fee"
        out: list[FieldError] = []
        if not self.name:
            out.append(FieldError("fees", "Fee name must not be empty"))
        if not _is_decimal(self.value) or self.value < 0:
            out.append(FieldError("fees", f"{label}: value must be a number of at least 0"))
        elif self.basis is FeeBasis.FLAT:
            if self.value > MAX_AMOUNT:
                out.append(FieldError("fees", f"{label}: a flat fee cannot exceed {MAX_AMOUNT:f}"))
            elif not _is_money(self.value):
                out.append(FieldError("fees", f"{label}: a flat fee has at most 2 decimal places"))
        elif self.value > HUNDRED:
            out.append(FieldError("fees", f"{label}: a percentage cannot exceed 100"))
        if self.timing is FeeTiming.INSTALLMENT:
            if self.basis not in _INSTALLMENT_BASES:
                out.append(
                    FieldError(
                        "fees",
                        f"{label}: an installment fee is flat, percent-of-principal "
                        "or percent-of-total",
                    )
                )
        elif self.basis not in _DISBURSEMENT_BASES:
            out.append(
                FieldError("fees", f"{label}: a disbursement fee is flat or percent (of principal)")
            )
        return out


@dataclass(frozen=True, slots=True)
class PenaltyTerms:
    """Overdue penalty: what it is computed on, how often, after how many grace days, capped."""

    basis: PenaltyBasis = PenaltyBasis.FLAT
    value: Decimal = Decimal(0)  # an amount (flat) or a percent (per day when recurrence=daily)
    recurrence: PenaltyRecurrence = PenaltyRecurrence.ONCE
    grace_days: int = 0
    cap: Decimal | None = None  # the most one installment can be charged, or no cap

    def problems(self) -> list[FieldError]:
        out: list[FieldError] = []
        if not _is_decimal(self.value) or self.value < 0:
            out.append(FieldError("penalty", "Penalty value must be a number of at least 0"))
        elif self.basis is PenaltyBasis.FLAT and self.value > MAX_AMOUNT:
            out.append(FieldError("penalty", f"A flat penalty cannot exceed {MAX_AMOUNT:f}"))
        elif self.basis is PenaltyBasis.FLAT and not _is_money(self.value):
            out.append(FieldError("penalty", "A flat penalty has at most 2 decimal places"))
        elif self.basis is not PenaltyBasis.FLAT and self.value > HUNDRED:
            out.append(FieldError("penalty", "A penalty percentage cannot exceed 100"))
        if not _is_int(self.grace_days) or self.grace_days < 0:
            out.append(
                FieldError("penalty", "Penalty grace days must be a whole number of at least 0")
            )
        if self.cap is not None and (
            not _is_money(self.cap) or self.cap < 0 or self.cap > MAX_AMOUNT
        ):
            out.append(
                FieldError("penalty", f"Penalty cap must be an amount from 0 to {MAX_AMOUNT:f}")
            )
        return out


@dataclass(frozen=True, slots=True)
class AllocationStrategy:
    """How a payment is split over dues: component order, walk order, and excess handling."""

    order: tuple[Component, ...] = DEFAULT_ORDER
    mode: AllocationMode = AllocationMode.BY_INSTALLMENT
    excess: ExcessPolicy = ExcessPolicy.ADVANCE

    def problems(self) -> list[FieldError]:
        if sorted(self.order) != sorted(DEFAULT_ORDER) or len(self.order) != len(DEFAULT_ORDER):
            return [
                FieldError(
                    "allocation",
                    "Allocation order must list penalty, fee, interest and principal once each",
                )
            ]
        return []


# The RBI-style order: every due's interest is paid before any principal (component by component).
INTEREST_BEFORE_PRINCIPAL = AllocationStrategy(mode=AllocationMode.BY_COMPONENT)


@dataclass(frozen=True, slots=True)
class LoanTerms:
    """Everything that decides a loan's numbers, except its dates.

    `annual_rate` is a percent (12 means 12 % a year). `every` is the number of days for
    `Frequency.DAYS` and a repeat multiplier otherwise (None means 1). Amounts are Decimals with
    at most two decimal places. See docs/money.md for every convention.
    """

    principal: Decimal
    annual_rate: Decimal
    installments: int
    frequency: Frequency = Frequency.MONTHLY
    every: int | None = None
    periods_per_year_floor: bool = False  # origin: every-N-days has ⌊365/N⌋ periods a year
    interest_method: InterestMethod = InterestMethod.DECLINING
    amortization: Amortization = Amortization.EQUAL_INSTALLMENTS
    interest_period: InterestPeriod = InterestPeriod.INSTALLMENT
    days_in_year: DaysInYear = DaysInYear.ACTUAL
    days_in_month: DaysInMonth = DaysInMonth.ACTUAL
    installment_multiple: Decimal = CENT
    installment_rounding: RoundingMode = RoundingMode.HALF_UP
    interest_rounding: InterestRounding = InterestRounding.HALF_UP
    grace_principal: int = 0  # first N periods pay interest only
    grace_interest: int = 0  # first N periods' interest is deferred to the next installment
    interest_free: int = 0  # first N periods charge no interest
    fees: tuple[Fee, ...] = ()
    penalty: PenaltyTerms | None = None
    allocation: AllocationStrategy = field(default_factory=AllocationStrategy)
    microfinance: bool = True  # RBI: no prepayment penalty on microfinance loans
    prepayment_penalty_percent: Decimal = Decimal(0)
    schedule_convention: ScheduleConvention = ScheduleConvention.NAMMA
    # A due date on a non-working day (of the calendar given to the schedule) moves by this
    # rule; with `extend_term` it is skipped instead: it and every later installment move on
    # by whole periods until it falls on a working day, so the loan ends later.
    non_working_day: NonWorkingDayRule = NonWorkingDayRule.NEXT_WORKING_DAY
    extend_term: bool = False

    def __post_init__(self) -> None:
        problems = self.problems()
        if problems:
            raise TermsError(problems)

    @property
    def repeat(self) -> int:
        """The multiplier for fixed frequencies (1 unless `every` is given)."""
        if self.frequency is Frequency.DAYS or self.every is None:
            return 1
        return self.every

    def problems(self) -> list[FieldError]:
        """Every problem with these terms (empty when valid)."""
        out: list[FieldError] = []
        add = out.append

        if not _is_decimal(self.principal):
            add(FieldError("principal", "Invalid principal amount"))
        elif self.principal <= 0:
            add(FieldError("principal", "Principal must be greater than 0"))
        elif self.principal > MAX_AMOUNT:
            add(FieldError("principal", f"Principal cannot exceed {MAX_AMOUNT:f}"))
        elif not _is_money(self.principal):
            add(FieldError("principal", "Principal must have at most 2 decimal places"))

        if not _is_decimal(self.annual_rate):
            add(FieldError("annual_rate", "Invalid interest rate"))
        elif self.annual_rate < 0:
            add(FieldError("annual_rate", "Interest rate cannot be negative"))
        elif self.annual_rate > HUNDRED:
            add(FieldError("annual_rate", "Interest rate cannot exceed 100%"))

        n_ok = _is_int(self.installments) and self.installments >= 1
        if not n_ok:
            add(FieldError("installments", "Tenure must be at least 1 installment"))
        elif self.installments > MAX_INSTALLMENTS:
            add(FieldError("installments", f"Tenure cannot exceed {MAX_INSTALLMENTS} installments"))

        out.extend(self._frequency_problems())
        out.extend(self._convention_problems())

        if (
            not _is_decimal(self.installment_multiple)
            or self.installment_multiple <= 0
            or (self.installment_multiple % CENT != 0)
            or self.installment_multiple > MAX_INSTALLMENT_MULTIPLE
        ):
            add(
                FieldError(
                    "installment_multiple",
                    "Installment multiple must be a positive multiple of 0.01, "
                    f"at most {MAX_INSTALLMENT_MULTIPLE}",
                )
            )

        for name in ("grace_principal", "grace_interest", "interest_free"):
            value = getattr(self, name)
            if not _is_int(value) or value < 0:
                add(FieldError(name, "Grace periods must be a whole number of at least 0"))
            elif n_ok and value >= self.installments and name != "interest_free":
                add(FieldError(name, "Grace must leave at least one installment after it"))
            elif n_ok and value > self.installments:
                add(FieldError(name, "Interest-free periods cannot exceed the installments"))
        if self.grace_principal and self.amortization in (
            Amortization.INTEREST_ONLY,
            Amortization.BULLET,
        ):
            add(
                FieldError(
                    "grace_principal",
                    "Principal grace applies only to equal-installments and equal-principal",
                )
            )

        for fee in self.fees:
            out.extend(fee.problems())
        if not out and _is_money(self.principal):
            deducted = sum(
                (
                    self._disbursement_fee(f)
                    for f in self.fees
                    if f.timing is FeeTiming.DISBURSEMENT
                ),
                Decimal(0),
            )
            if deducted >= self.principal:
                add(FieldError("fees", "Charges cannot exceed principal amount"))

        if self.extend_term and self.non_working_day is NonWorkingDayRule.SAME_DAY:
            add(
                FieldError(
                    "extend_term",
                    "Extending the term needs a non-working-day rule other than same-day",
                )
            )
        if self.penalty is not None:
            out.extend(self.penalty.problems())
        out.extend(self.allocation.problems())

        if not _is_decimal(self.prepayment_penalty_percent) or not (
            0 <= self.prepayment_penalty_percent <= HUNDRED
        ):
            add(
                FieldError(
                    "prepayment_penalty_percent",
                    "Prepayment penalty must be a percentage between 0 and 100",
                )
            )
        elif self.microfinance and self.prepayment_penalty_percent > 0:
            add(
                FieldError(
                    "prepayment_penalty_percent",
                    "A prepayment penalty is not allowed on microfinance loans (RBI)",
                )
            )
        return out

    def _frequency_problems(self) -> list[FieldError]:
        out: list[FieldError] = []
        if self.frequency is Frequency.DAYS:
            if self.every is None:
                out.append(
                    FieldError("every", "Custom period days required for every-N-days frequency")
                )
            elif not _is_int(self.every) or self.every <= 0:
                out.append(FieldError("every", "Custom period days must be greater than 0"))
            elif self.periods_per_year_floor and self.every > 365:
                out.append(
                    FieldError(
                        "every",
                        "With periods per year ⌊365/N⌋, the period cannot exceed 365 days",
                    )
                )
        else:
            if self.every is not None and (not _is_int(self.every) or self.every < 1):
                out.append(FieldError("every", "Repeat-every multiplier must be at least 1"))
            if self.periods_per_year_floor:
                out.append(
                    FieldError(
                        "periods_per_year_floor",
                        "Periods per year ⌊365/N⌋ applies only to the every-N-days frequency",
                    )
                )
        return out

    def _convention_problems(self) -> list[FieldError]:
        """`fineract-progressive` is a day-counted, reducing-balance EMI schedule: the options it
        does not define are refused rather than guessed."""
        if self.schedule_convention is not ScheduleConvention.FINERACT_PROGRESSIVE:
            return []
        out: list[FieldError] = []
        name = "schedule_convention"
        if self.interest_period is not InterestPeriod.DAILY:
            out.append(
                FieldError(
                    name,
                    "The fineract-progressive convention counts each period's interest by its "
                    "days: choose the daily interest period",
                )
            )
        if self.days_in_year is DaysInYear.ACTUAL:
            out.append(
                FieldError(
                    name,
                    "The fineract-progressive convention needs a year of 360, 364 or 365 days",
                )
            )
        if (
            self.amortization is not Amortization.EQUAL_INSTALLMENTS
            or self.interest_method is not InterestMethod.DECLINING
        ):
            out.append(
                FieldError(
                    name,
                    "The fineract-progressive convention is for equal installments on the "
                    "declining balance",
                )
            )
        if self.grace_interest or self.interest_free:
            out.append(
                FieldError(
                    name,
                    "The fineract-progressive convention takes no interest grace or "
                    "interest-free periods",
                )
            )
        if self.periods_per_year_floor:
            out.append(
                FieldError(
                    name,
                    "The fineract-progressive convention counts days: periods per year ⌊365/N⌋ "
                    "does not apply",
                )
            )
        return out

    def _disbursement_fee(self, fee: Fee) -> Decimal:
        if fee.basis is FeeBasis.FLAT:
            return fee.value
        return percent_of(self.principal, fee.value)
