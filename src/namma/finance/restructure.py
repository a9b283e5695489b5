"""Restructuring an active loan: the installments still to fall due rebuilt under new terms.

`restructure_schedule(schedule=…, paid_through=k, balance=B, change=…)` keeps rows 1..k (what
fell due before the restructuring, paid or not) and rebuilds the rest as a loan of principal
``B`` (the principal still to fall due) starting where row k+1's period starts (row k's due
date, or the disbursement), under the loan's conventions (frequency, interest method and
period, rounding, per-installment fees) with one change:

- ``next-due-date``: the first rebuilt row falls due on the date given (a broken first period,
  pro rata for its actual days as `generate_schedule` does); the count is kept;
- ``moratorium``: N more periods first, in which no principal is due; the interest of those
  periods follows the product's `MoratoriumInterest`: ``capitalise`` (added to the principal
  when the moratorium ends, and repaid with it), ``carry`` (deferred: paid with the first
  installment after the moratorium), ``waive`` (not charged); the installments after it are
  as many as were left, so the term grows by N;
- ``rate``: a new annual rate; ``term``: a new number of installments left;
- ``installment``: a new regular installment: as many rows as it takes to repay ``B`` (the last
  one takes what is left).

The installment of the rebuilt part is worked out again as `installment_amount` does for a new
loan (declining: the annuity of ``B`` — ``B`` plus the capitalised interest — over the
amortising rows; flat: interest on ``B``), rounded to the installment multiple. Interest
deferred by the original terms and not yet paid (interest grace) is added to the first rebuilt
row that charges interest. The rebuilt rows' regular dates run from the regular date of the
first one (or the new next due date) by the frequency, and the branch's calendar, if given,
moves those on non-working days by the terms' rule (D-208). Pure: no I/O. Conventions:
docs/money.md §3.
"""

from __future__ import annotations

import dataclasses
import decimal
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum

from namma.finance.calendar import WorkingCalendar
from namma.finance.charges import installment_fees
from namma.finance.errors import FieldError, TermsError
from namma.finance.rounding import CENT, MONEY_CONTEXT, ZERO, round_money
from namma.finance.schedule import (
    Schedule,
    ScheduleRow,
    _amortize,
    _bullet,
    _plan,
    _replace_rows,
    installment_amount,
    periodic_rate,
)
from namma.finance.terms import Amortization, FeeTiming, InterestMethod, LoanTerms

MAX_INSTALLMENTS = 10_000


class RestructureKind(StrEnum):
    NEXT_DUE_DATE = "next-due-date"
    MORATORIUM = "moratorium"
    RATE = "rate"
    TERM = "term"
    INSTALLMENT = "installment"


class MoratoriumInterest(StrEnum):
    """What happens to the interest of a moratorium's periods (a product setting)."""

    CAPITALISE = "capitalise"  # added to the principal when the moratorium ends
    CARRY = "carry"  # deferred: paid with the first installment after the moratorium
    WAIVE = "waive"  # not charged


@dataclass(frozen=True, slots=True)
class Restructure:
    """One change to a loan's terms; only the field its ``kind`` names is read."""

    kind: RestructureKind
    next_due_on: date | None = None
    periods: int | None = None
    annual_rate: Decimal | None = None
    installments: int | None = None
    installment_amount: Decimal | None = None
    moratorium_interest: MoratoriumInterest = MoratoriumInterest.CARRY


@dataclass(frozen=True, slots=True)
class Restructured:
    """The schedule after a restructuring: ``schedule`` (rows 1..``paid_through`` as they were,
    then the rebuilt rows, numbered on), its regular installment, the rate and count of the
    rebuilt part, and the interest a ``capitalise`` moratorium added to the principal."""

    schedule: Schedule
    from_number: int
    annual_rate: Decimal
    installments_left: int
    capitalised_interest: Decimal
    # The rebuilt rows' first regular due date, before a calendar moved it: the later ones
    # follow it by the frequency, and a calendar changed later moves them from there (D-208).
    regular_first_due_on: date

    @property
    def rows(self) -> tuple[ScheduleRow, ...]:
        """The rebuilt rows only."""
        return self.schedule.rows[self.from_number - 1 :]


def _fail(field: str, message: str) -> TermsError:
    return TermsError([FieldError(field, message)])


def _count_for_installment(terms: LoanTerms, balance: Decimal, amount: Decimal, limit: int) -> int:
    """How many rows an installment of ``amount`` takes to repay ``balance`` at the nominal
    periodic rate (the rows' own interest then decides the last one). Inside MONEY_CONTEXT."""
    rate = periodic_rate(terms)
    flat = terms.interest_method is InterestMethod.FLAT
    left, count = balance, 0
    while left > 0:
        interest = round_money((balance if flat else left) * rate, terms.interest_rounding)
        if amount <= interest:
            raise _fail(
                "installment_amount",
                f"An installment of {amount} does not repay the loan: it must be more than a "
                f"period's interest ({interest})",
            )
        left -= amount - interest
        count += 1
        if count > limit:
            raise _fail(
                "installment_amount",
                f"An installment of {amount} takes more than {limit} installments to repay "
                "the loan",
            )
    return count


def restructure_schedule(
    *,
    schedule: Schedule,
    paid_through: int,
    balance: Decimal,
    change: Restructure,
    calendar: WorkingCalendar | None = None,
    regular_next_due_on: date | None = None,
) -> Restructured:
    """The schedule after ``change`` (see the module docstring). Raises `TermsError` naming the
    field of ``change`` that cannot be applied.

    The rebuilt rows' regular dates start from ``regular_next_due_on`` — the regular date of
    the first row rebuilt, before any calendar moved it (default: its due date) — or from the
    new next due date, and ``calendar`` (the branch's) moves those on non-working days by the
    terms' rule, as at disbursement: a restructuring neither lands on a holiday nor carries a
    date a holiday moved into its later rows (D-208)."""
    rows = schedule.rows
    if not 0 <= paid_through < len(rows):
        raise _fail("paid_through", "There is no installment left to restructure")
    if balance <= 0 or balance != balance.quantize(CENT):
        raise _fail("balance", "The principal to restructure must be a positive amount")
    terms = schedule.terms
    future = rows[paid_through:]
    start = rows[paid_through - 1].due_date if paid_through else schedule.disbursed_on
    first_due: date = regular_next_due_on or future[0].due_date
    if first_due <= start:
        raise _fail(
            "regular_next_due_on",
            f"The first installment rebuilt must fall due after {start.isoformat()}",
        )
    left = len(future)
    rate = terms.annual_rate
    moratorium = 0
    treatment = change.moratorium_interest
    kind = change.kind
    bullet = terms.amortization is Amortization.BULLET
    limit = MAX_INSTALLMENTS - paid_through
    if kind is RestructureKind.NEXT_DUE_DATE:
        if change.next_due_on is None:
            raise _fail("next_due_on", "Give the new next due date")
        if change.next_due_on <= start:
            raise _fail(
                "next_due_on",
                f"The next due date must be after {start.isoformat()} (the last due date kept)",
            )
        first_due = change.next_due_on
    elif kind is RestructureKind.MORATORIUM:
        if change.periods is None or not 1 <= change.periods <= 520:
            raise _fail("periods", "A moratorium is 1 to 520 periods")
        if bullet:
            raise _fail("periods", "A bullet loan has no installments to defer")
        moratorium = change.periods
    elif kind is RestructureKind.RATE:
        if change.annual_rate is None or not ZERO <= change.annual_rate <= 100:
            raise _fail("annual_rate", "The rate must be between 0 and 100")
        if change.annual_rate == terms.annual_rate:
            raise _fail("annual_rate", f"The loan's rate already is {terms.annual_rate}")
        rate = change.annual_rate
    elif kind is RestructureKind.TERM:
        if change.installments is None or not 1 <= change.installments <= limit:
            raise _fail("installments", f"The installments left must be 1 to {limit}")
        if change.installments == left:
            raise _fail("installments", f"The loan already has {left} installments left")
        left = change.installments
    elif kind is RestructureKind.INSTALLMENT:
        if terms.amortization is not Amortization.EQUAL_INSTALLMENTS:
            raise _fail(
                "installment_amount",
                "Only a loan of equal installments can be given a new installment",
            )
        amount = change.installment_amount
        if amount is None or amount <= 0 or amount != amount.quantize(CENT):
            raise _fail("installment_amount", "Give the new installment as a positive amount")
    if left + moratorium > limit:
        raise _fail("periods", f"A loan has at most {MAX_INSTALLMENTS} installments")

    with decimal.localcontext(MONEY_CONTEXT):
        if kind is RestructureKind.INSTALLMENT:
            assert change.installment_amount is not None
            left = _count_for_installment(
                dataclasses.replace(terms, principal=balance),
                balance,
                change.installment_amount,
                limit,
            )
        base = dataclasses.replace(
            terms,
            principal=balance,
            annual_rate=rate,
            installments=left + moratorium,
            grace_principal=moratorium,
            grace_interest=moratorium if treatment is MoratoriumInterest.CARRY else 0,
            interest_free=moratorium if treatment is MoratoriumInterest.WAIVE else 0,
            fees=tuple(f for f in terms.fees if f.timing is FeeTiming.INSTALLMENT),
        )
        plan = _plan(base, start, first_due, calendar)
        deferred = sum((r.interest_for_period - r.interest for r in rows[:paid_through]), ZERO)
        capitalised = ZERO
        built: list[ScheduleRow] = []
        if bullet:
            built = _bullet(base, plan, ZERO)
            amount = built[0].principal + built[0].interest
        elif moratorium and treatment is MoratoriumInterest.CAPITALISE:
            row_fees = base.fees
            for k in range(moratorium):
                earned = round_money(
                    balance * plan.numerators[k] / plan.denominators[k], base.interest_rounding
                )
                capitalised += earned
                fees = installment_fees(row_fees, principal=ZERO, interest=ZERO)
                built.append(
                    ScheduleRow(
                        k + 1, plan.due[k], ZERO, ZERO, fees, fees, balance, plan.starts[k], ZERO
                    )
                )
            grown = dataclasses.replace(base, principal=balance + capitalised)
            amount = (
                change.installment_amount
                if kind is RestructureKind.INSTALLMENT and change.installment_amount
                else installment_amount(grown)
            )
            built += _amortize(
                grown,
                plan,
                start_number=moratorium + 1,
                balance=balance + capitalised,
                installment=amount,
                deferred=deferred,
                upfront=ZERO,
            )
        else:
            amount = (
                change.installment_amount
                if kind is RestructureKind.INSTALLMENT and change.installment_amount
                else installment_amount(base)
            )
            built = _amortize(
                base,
                plan,
                start_number=1,
                balance=balance,
                installment=amount,
                deferred=deferred,
                upfront=ZERO,
            )
        rebuilt = tuple(dataclasses.replace(r, number=r.number + paid_through) for r in built)
    return Restructured(
        schedule=_replace_rows(
            schedule, (*rows[:paid_through], *rebuilt), installment_amount=amount
        ),
        from_number=paid_through + 1,
        annual_rate=rate,
        installments_left=len(rebuilt),
        capitalised_interest=capitalised,
        regular_first_due_on=first_due,
    )
