"""A loan product's terms as data: what the API accepts and what a product version stores.

Everything of the money core's `LoanTerms` except the three amounts chosen per loan
(principal, rate, installments), which the product bounds with limits instead.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from pydantic import ConfigDict, Field

from namma.finance import (
    AllocationMode,
    AllocationStrategy,
    Amortization,
    Component,
    DaysInMonth,
    DaysInYear,
    ExcessPolicy,
    Fee,
    FeeBasis,
    FeeTiming,
    Frequency,
    InterestMethod,
    InterestPeriod,
    InterestRounding,
    LoanTerms,
    MoratoriumInterest,
    NonWorkingDayRule,
    PenaltyBasis,
    PenaltyRecurrence,
    PenaltyTerms,
    RoundingMode,
    ScheduleConvention,
)
from namma.finance.accrual import InterestAccounting
from namma.finance.dates import one_period_after
from namma.kit.apitypes import RequestModel
from namma.kit.money import Money, Rate
from namma.kit.schemas import ApiModel, Timestamp
from namma.models import LoanProductVersion

FIRST_DUE_GRACE_DAYS = 30
"""A product's default ``first_due_grace_days``."""


class FeeIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=60)
    timing: FeeTiming
    basis: FeeBasis
    value: Rate


class PenaltyIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    basis: PenaltyBasis
    value: Rate
    recurrence: PenaltyRecurrence = PenaltyRecurrence.ONCE
    grace_days: int = Field(default=0, ge=0, le=365)
    cap: Money | None = None


class AllocationIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    order: list[Component] = Field(
        default_factory=lambda: [
            Component.PENALTY,
            Component.FEE,
            Component.INTEREST,
            Component.PRINCIPAL,
        ],
        min_length=4,
        max_length=4,
    )
    mode: AllocationMode = AllocationMode.BY_INSTALLMENT
    excess: ExcessPolicy = ExcessPolicy.ADVANCE


class ProductTerms(RequestModel):
    """How loans of a product compute. Defaults are DESIGN.md §6 (declining balance, EMI)."""

    model_config = ConfigDict(extra="forbid")
    frequency: Frequency = Frequency.MONTHLY
    every: int | None = Field(default=None, ge=1, le=366)
    periods_per_year_floor: bool = False
    interest_method: InterestMethod = InterestMethod.DECLINING
    amortization: Amortization = Amortization.EQUAL_INSTALLMENTS
    interest_period: InterestPeriod = InterestPeriod.INSTALLMENT
    days_in_year: DaysInYear = DaysInYear.ACTUAL
    days_in_month: DaysInMonth = DaysInMonth.ACTUAL
    installment_multiple: Money = Decimal("0.01")
    installment_rounding: RoundingMode = RoundingMode.HALF_UP
    interest_rounding: InterestRounding = InterestRounding.HALF_UP
    grace_principal: int = Field(default=0, ge=0, le=520)
    grace_interest: int = Field(default=0, ge=0, le=520)
    interest_free: int = Field(default=0, ge=0, le=520)
    fees: list[FeeIn] = Field(default_factory=list, max_length=10)
    penalty: PenaltyIn | None = None
    allocation: AllocationIn = Field(default_factory=AllocationIn)
    prepayment_penalty_percent: Rate = Decimal("0")
    schedule_convention: ScheduleConvention = Field(
        default=ScheduleConvention.NAMMA,
        description="namma (the default): a nominal periodic rate and the annuity at it; "
        "fineract-progressive: each period's interest by its days and the installment over "
        "those periods (Apache Fineract's progressive schedule; needs interest_period daily, "
        "days_in_year 360, 364 or 365, equal installments on the declining balance)",
    )
    non_working_day: NonWorkingDayRule = Field(
        default=NonWorkingDayRule.NEXT_WORKING_DAY,
        description="Where a due date on a holiday or a non-working weekday of the branch goes: "
        "next-working-day, previous-working-day, next-meeting-day (group loans: the loan's next "
        "regular due date that is a working day, collected with that installment) or same-day",
    )
    extend_term: bool = Field(
        default=False,
        description="Skip such a due date instead: it and every later installment move on by "
        "whole periods, so the loan ends later",
    )
    moratorium_interest: MoratoriumInterest = Field(
        default=MoratoriumInterest.CARRY,
        description="A restructuring's moratorium: its interest is capitalised (added to the "
        "principal), carried (paid with the first installment after it) or waived",
    )
    interest_accounting: InterestAccounting = Field(
        default=InterestAccounting.CASH,
        description="cash (the default): interest is income when collected; accrual: the close "
        "of business accrues it daily into interest receivable, collections settle the "
        "receivable, and an NPA's accrued interest is reversed out of income "
        "(docs/ledger.md, D-200). Not a money-core term: schedules are the same either way",
    )
    first_due_grace_days: int = Field(
        default=FIRST_DUE_GRACE_DAYS,
        ge=0,
        le=366,
        description="A loan's first due date is at most one period and this many days after "
        "its disbursement",
    )

    def latest_first_due(self, disbursed_on: dt.date) -> dt.date:
        """The latest first due date a loan disbursed on ``disbursed_on`` may ask for."""
        return one_period_after(disbursed_on, self.frequency, self.every or 1) + dt.timedelta(
            days=self.first_due_grace_days
        )

    def stored(self) -> dict[str, Any]:
        """The JSON kept in a product version (and copied into each loan)."""
        return self.model_dump(mode="json")

    def loan_terms(
        self, *, principal: Decimal, annual_rate: Decimal, installments: int, microfinance: bool
    ) -> LoanTerms:
        """The money core's terms for one loan (raises ``TermsError`` listing every problem)."""
        return LoanTerms(
            principal=principal,
            annual_rate=annual_rate,
            installments=installments,
            frequency=self.frequency,
            every=self.every,
            periods_per_year_floor=self.periods_per_year_floor,
            interest_method=self.interest_method,
            amortization=self.amortization,
            interest_period=self.interest_period,
            days_in_year=self.days_in_year,
            days_in_month=self.days_in_month,
            installment_multiple=self.installment_multiple,
            installment_rounding=self.installment_rounding,
            interest_rounding=self.interest_rounding,
            grace_principal=self.grace_principal,
            grace_interest=self.grace_interest,
            interest_free=self.interest_free,
            fees=tuple(
                Fee(name=f.name, timing=f.timing, basis=f.basis, value=f.value) for f in self.fees
            ),
            penalty=None
            if self.penalty is None
            else PenaltyTerms(
                basis=self.penalty.basis,
                value=self.penalty.value,
                recurrence=self.penalty.recurrence,
                grace_days=self.penalty.grace_days,
                cap=self.penalty.cap,
            ),
            allocation=AllocationStrategy(
                order=tuple(self.allocation.order),
                mode=self.allocation.mode,
                excess=self.allocation.excess,
            ),
            microfinance=microfinance,
            prepayment_penalty_percent=self.prepayment_penalty_percent,
            schedule_convention=self.schedule_convention,
            non_working_day=self.non_working_day,
            extend_term=self.extend_term,
        )


def loan_terms_from_stored(
    stored: dict[str, Any],
    *,
    principal: Decimal,
    annual_rate: Decimal,
    installments: int,
    microfinance: bool,
) -> LoanTerms:
    return ProductTerms.model_validate(stored).loan_terms(
        principal=principal,
        annual_rate=annual_rate,
        installments=installments,
        microfinance=microfinance,
    )


# --- answers ---------------------------------------------------------------------------------


class LimitsOut(ApiModel):
    min_principal: Money
    max_principal: Money
    min_rate: Rate
    max_rate: Rate
    default_rate: Rate
    min_installments: int
    max_installments: int
    microfinance: bool
    max_obligation_ratio: Rate


class VersionOut(ApiModel):
    """One version of a product: its terms and limits, fixed once made."""

    id: uuid.UUID
    version: int
    terms: ProductTerms
    limits: LimitsOut
    created_at: Timestamp | None

    @classmethod
    def of(cls, version: LoanProductVersion) -> VersionOut:
        return cls(
            id=version.id,
            version=version.version,
            terms=ProductTerms.model_validate(version.terms),
            limits=LimitsOut.model_validate(version),
            created_at=version.created_at,
        )


class ProductOut(ApiModel):
    id: uuid.UUID
    code: str
    name: str
    description: str | None
    is_active: bool
    latest_version: VersionOut | None


class ProductDetailOut(ProductOut):
    versions: list[VersionOut] = Field(description="Every version, the latest first")


class ProductList(ApiModel):
    products: list[ProductOut]
