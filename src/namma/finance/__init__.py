"""The money core: exact loan mathematics as pure functions (no I/O, no ORM, no framework).

Build `LoanTerms` (validated on construction), then:

- `generate_schedule(terms, disbursed_on=…, first_due_on=…, calendar=…)` → `Schedule` (rows,
  totals); a `WorkingCalendar` (holidays, non-working weekdays) moves due dates by the terms'
  `NonWorkingDayRule`;
- `installment_amount(terms)`, `total_interest(schedule)`, `apr_percent(schedule)`;
- `dues_from_schedule(schedule)` → `Due`s; `allocate_payment(amount=…, dues=…, as_of=…,
  strategy=…)` → `Allocation`; `advance_apply(advance=…, dues=…, as_of=…, strategy=…)` →
  `Allocation`; `apply_allocation(dues, allocation)`;
- `reschedule_after_prepayment(schedule=…, paid_through=…, balance=…, policy=…)` (reduce the
  term or the installment), `schedule_as_stored(schedule, rows, installment_amount=…)`;
- `outstanding_as_of(…)`, `payoff_quote(…)`;
- `days_past_due(dues=…, as_of=…)`, `overdue_penalties(penalty=…, dues=…, as_of=…)`.

Conventions: docs/money.md.
"""

from namma.finance.allocation import (
    Allocation,
    AllocationLine,
    Due,
    advance_apply,
    allocate_payment,
    apply_allocation,
    dues_from_schedule,
)
from namma.finance.apr import AprConvention, apr_percent, cash_flows, periodic_irr
from namma.finance.calendar import WEEKDAYS, WorkingCalendar, calendar_due_dates
from namma.finance.charges import deducted_fees, first_installment_fees, installment_fees
from namma.finance.dates import add_months, due_dates
from namma.finance.errors import (
    AllocationError,
    FieldError,
    FinanceError,
    PayoffError,
    TermsError,
)
from namma.finance.payoff import Outstanding, PayoffQuote, outstanding_as_of, payoff_quote
from namma.finance.penalties import (
    PenaltyLine,
    days_overdue,
    days_past_due,
    overdue_penalties,
    penalty_for_installment,
)
from namma.finance.restructure import (
    MoratoriumInterest,
    Restructure,
    Restructured,
    RestructureKind,
    restructure_schedule,
)
from namma.finance.rounding import (
    CENT,
    MONEY_CONTEXT,
    InterestRounding,
    RoundingMode,
    round_money,
    round_to_multiple,
)
from namma.finance.schedule import (
    Schedule,
    ScheduleRow,
    generate_schedule,
    installment_amount,
    monthly_repayment,
    periodic_rate,
    periods_per_year,
    reschedule_after_prepayment,
    schedule_as_stored,
    schedule_dates,
    schedule_fee_amounts,
    total_interest,
)
from namma.finance.terms import (
    DEFAULT_ORDER,
    INTEREST_BEFORE_PRINCIPAL,
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
    LoanTerms,
    NonWorkingDayRule,
    PenaltyBasis,
    PenaltyRecurrence,
    PenaltyTerms,
    ScheduleConvention,
)

__all__ = [
    "CENT",
    "DEFAULT_ORDER",
    "INTEREST_BEFORE_PRINCIPAL",
    "MONEY_CONTEXT",
    "WEEKDAYS",
    "Allocation",
    "AllocationError",
    "AllocationLine",
    "AllocationMode",
    "AllocationStrategy",
    "Amortization",
    "AprConvention",
    "Component",
    "DaysInMonth",
    "DaysInYear",
    "Due",
    "ExcessPolicy",
    "Fee",
    "FeeBasis",
    "FeeTiming",
    "FieldError",
    "FinanceError",
    "Frequency",
    "InterestMethod",
    "InterestPeriod",
    "InterestRounding",
    "LoanTerms",
    "MoratoriumInterest",
    "NonWorkingDayRule",
    "Outstanding",
    "PayoffError",
    "PayoffQuote",
    "PenaltyBasis",
    "PenaltyLine",
    "PenaltyRecurrence",
    "PenaltyTerms",
    "Restructure",
    "RestructureKind",
    "Restructured",
    "RoundingMode",
    "Schedule",
    "ScheduleConvention",
    "ScheduleRow",
    "TermsError",
    "WorkingCalendar",
    "add_months",
    "advance_apply",
    "allocate_payment",
    "apply_allocation",
    "apr_percent",
    "calendar_due_dates",
    "cash_flows",
    "days_overdue",
    "days_past_due",
    "deducted_fees",
    "due_dates",
    "dues_from_schedule",
    "first_installment_fees",
    "generate_schedule",
    "installment_amount",
    "installment_fees",
    "monthly_repayment",
    "outstanding_as_of",
    "overdue_penalties",
    "payoff_quote",
    "penalty_for_installment",
    "periodic_irr",
    "periodic_rate",
    "periods_per_year",
    "reschedule_after_prepayment",
    "restructure_schedule",
    "round_money",
    "round_to_multiple",
    "schedule_as_stored",
    "schedule_dates",
    "schedule_fee_amounts",
    "total_interest",
]
