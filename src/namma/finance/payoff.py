"""Outstanding balance and payoff (foreclosure) quotes, as of a date.

Paying a loan off on `as_of` costs:
- every unpaid principal (overdue and future);
- unpaid interest, fees and penalties of installments due on or before `as_of`;
- interest accrued but not yet due: interest earned up to `as_of` (whole periods, plus the
  current period pro rata for its elapsed days) less the interest already billed, less interest
  paid in advance on future installments;
- fees charged at disbursement but collected with the first installment, if that is still ahead;
- a prepayment penalty (a percent of the unpaid principal), refused on microfinance loans (RBI).

Interest and per-installment fees of future installments are waived. The quote says, per
installment, what the payoff amount pays and what is waived, so that paying it closes the loan
with nothing left.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from namma.finance.allocation import AllocationLine, Due
from namma.finance.errors import PayoffError
from namma.finance.rounding import MONEY_CONTEXT, ZERO, percent_of, round_money
from namma.finance.schedule import Schedule


@dataclass(frozen=True, slots=True)
class Outstanding:
    """What a loan owes as of `as_of`, by kind. `total` is the payoff before any penalty."""

    as_of: date
    principal: Decimal  # all unpaid principal, overdue and future
    overdue_principal: Decimal
    overdue_interest: Decimal
    accrued_interest: Decimal  # earned, not yet due
    overdue_fees: Decimal
    upfront_fees: Decimal  # disbursement fees collected with installment 1, not yet due
    penalties: Decimal

    @property
    def total_overdue(self) -> Decimal:
        return self.overdue_principal + self.overdue_interest + self.overdue_fees + self.penalties

    @property
    def total(self) -> Decimal:
        return (
            self.principal
            + self.overdue_interest
            + self.accrued_interest
            + self.overdue_fees
            + self.upfront_fees
            + self.penalties
        )


@dataclass(frozen=True, slots=True)
class PayoffQuote:
    """A foreclosure quote. `lines[i]` is what `total` pays on an installment and `waived[i]`
    what is forgiven on it (future interest and fees); the prepayment penalty is separate."""

    outstanding: Outstanding
    prepayment_penalty: Decimal
    total: Decimal
    lines: tuple[AllocationLine, ...]
    waived: tuple[AllocationLine, ...]


def _settle(
    *, schedule: Schedule, dues: Sequence[Due], as_of: date
) -> tuple[Outstanding, tuple[AllocationLine, ...], tuple[AllocationLine, ...]]:
    rows = {row.number: row for row in schedule.rows}
    owed = {due.number: due for due in dues}
    unknown = sorted(set(owed) - set(rows))
    if unknown:
        raise PayoffError.single("dues", f"Installment {unknown[0]} is not in the schedule")

    earned = billed = advance_paid = ZERO
    for row in schedule.rows:
        if row.due_date <= as_of:
            earned += row.interest_for_period
            billed += row.interest
            continue
        due = owed.get(row.number)
        advance_paid += row.interest - (due.interest if due is not None else ZERO)
        if row.period_start < as_of:
            elapsed = (as_of - row.period_start).days
            length = (row.due_date - row.period_start).days
            earned += round_money(
                row.interest_for_period * elapsed / length, schedule.terms.interest_rounding
            )
    accrued_left = max(ZERO, earned - billed - advance_paid)
    upfront_left = schedule.upfront_fees_in_first_installment
    first_number = schedule.rows[0].number

    lines: list[AllocationLine] = []
    waived: list[AllocationLine] = []
    totals = dict.fromkeys(
        ("principal", "overdue_principal", "overdue_interest", "accrued", "fees", "upfront", "pen"),
        ZERO,
    )
    for due in sorted(dues, key=lambda d: (d.due_date, d.number)):
        totals["principal"] += due.principal
        totals["pen"] += due.penalty
        if due.due_date <= as_of:
            lines.append(
                AllocationLine(due.number, due.principal, due.interest, due.fee, due.penalty)
            )
            waived.append(AllocationLine(due.number))
            totals["overdue_principal"] += due.principal
            totals["overdue_interest"] += due.interest
            totals["fees"] += due.fee
            continue
        interest = min(accrued_left, due.interest)
        accrued_left -= interest
        fee = min(upfront_left, due.fee) if due.number == first_number else ZERO
        totals["accrued"] += interest
        totals["upfront"] += fee
        lines.append(AllocationLine(due.number, due.principal, interest, fee, due.penalty))
        waived.append(AllocationLine(due.number, ZERO, due.interest - interest, due.fee - fee))
    outstanding = Outstanding(
        as_of=as_of,
        principal=totals["principal"],
        overdue_principal=totals["overdue_principal"],
        overdue_interest=totals["overdue_interest"],
        accrued_interest=totals["accrued"],
        overdue_fees=totals["fees"],
        upfront_fees=totals["upfront"],
        penalties=totals["pen"],
    )
    return outstanding, tuple(lines), tuple(waived)


def outstanding_as_of(*, schedule: Schedule, dues: Sequence[Due], as_of: date) -> Outstanding:
    """What the loan owes on `as_of`.

    `dues` lists every installment with something still owed (paid installments may be left
    out); `schedule` is the loan's current schedule.
    """
    with decimal.localcontext(MONEY_CONTEXT):
        return _settle(schedule=schedule, dues=dues, as_of=as_of)[0]


def payoff_quote(
    *,
    schedule: Schedule,
    dues: Sequence[Due],
    as_of: date,
    prepayment_penalty_percent: Decimal | None = None,
) -> PayoffQuote:
    """The amount that closes the loan on `as_of` (see the module docstring).

    `prepayment_penalty_percent` defaults to the terms'; a non-zero penalty on a microfinance
    loan raises `PayoffError` (field `prepayment_penalty_percent`).
    """
    terms = schedule.terms
    percent = (
        terms.prepayment_penalty_percent
        if prepayment_penalty_percent is None
        else prepayment_penalty_percent
    )
    if percent < 0 or percent > 100:
        raise PayoffError.single(
            "prepayment_penalty_percent",
            "Prepayment penalty must be a percentage between 0 and 100",
        )
    if terms.microfinance and percent > 0:
        raise PayoffError.single(
            "prepayment_penalty_percent",
            "A prepayment penalty is not allowed on microfinance loans (RBI)",
        )
    with decimal.localcontext(MONEY_CONTEXT):
        outstanding, lines, waived = _settle(schedule=schedule, dues=dues, as_of=as_of)
        penalty = percent_of(outstanding.principal, percent) if percent else ZERO
        return PayoffQuote(
            outstanding=outstanding,
            prepayment_penalty=penalty,
            total=outstanding.total + penalty,
            lines=lines,
            waived=waived,
        )
