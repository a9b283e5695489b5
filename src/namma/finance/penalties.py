"""Overdue penalties and days past due, as of a date.

Days overdue are whole calendar days from the due date: an installment due on 1 January and
unpaid on 8 January is 7 days overdue. Penalties are charged only on the overdue amount
(Indian practice) and only after the grace days.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from namma.finance.allocation import Due
from namma.finance.owed import arrears
from namma.finance.rounding import FEE_ROUNDING, HUNDRED, MONEY_CONTEXT, ZERO, round_money
from namma.finance.terms import PenaltyBasis, PenaltyRecurrence, PenaltyTerms


def days_overdue(due_date: date, as_of: date) -> int:
    """Whole days `as_of` is past `due_date` (0 on or before the due date)."""
    return max(0, (as_of - due_date).days)


def _in_arrears(due: Due) -> bool:
    # Penalties alone do not make an installment past due: only what the schedule demanded.
    result: bool = arrears(due.principal, due.interest, due.fee)
    return result


def days_past_due(*, dues: Sequence[Due], as_of: date) -> int:
    """DPD: days since the oldest installment with principal, interest or fees unpaid fell due."""
    overdue = [d.due_date for d in dues if d.due_date < as_of and _in_arrears(d)]
    if not overdue:
        return 0
    return (as_of - min(overdue)).days


def penalty_for_installment(
    *,
    penalty: PenaltyTerms,
    overdue_principal: Decimal,
    overdue_interest: Decimal,
    days_late: int,
) -> Decimal:
    """The penalty one installment has accrued after `days_late` days, as of now (in total).

    Nothing within the grace days. `once`: one charge (flat, or a percent of the base).
    `daily`: the same for every day beyond the grace days. Capped at `penalty.cap` if set.
    """
    chargeable_days = days_late - penalty.grace_days
    if chargeable_days <= 0:
        return ZERO
    with decimal.localcontext(MONEY_CONTEXT):
        if penalty.basis is PenaltyBasis.FLAT:
            amount = penalty.value
        else:
            base = overdue_principal
            if penalty.basis is PenaltyBasis.PERCENT_OF_OVERDUE_TOTAL:
                base += overdue_interest
            amount = base * penalty.value / HUNDRED
        if penalty.recurrence is PenaltyRecurrence.DAILY:
            amount *= chargeable_days
        amount = round_money(amount, FEE_ROUNDING)
        if penalty.cap is not None and amount > penalty.cap:
            amount = penalty.cap
        return amount


@dataclass(frozen=True, slots=True)
class PenaltyLine:
    number: int
    days_overdue: int
    amount: Decimal


def overdue_penalties(
    *, penalty: PenaltyTerms, dues: Sequence[Due], as_of: date
) -> tuple[PenaltyLine, ...]:
    """The penalty each overdue installment has accrued as of `as_of` (totals, not increments:
    the caller charges the difference from what it has already charged)."""
    lines: list[PenaltyLine] = []
    for due in sorted(dues, key=lambda d: (d.due_date, d.number)):
        late = days_overdue(due.due_date, as_of)
        if not late or not _in_arrears(due):
            continue
        amount = penalty_for_installment(
            penalty=penalty,
            overdue_principal=due.principal,
            overdue_interest=due.interest,
            days_late=late,
        )
        if amount:
            lines.append(PenaltyLine(number=due.number, days_overdue=late, amount=amount))
    return tuple(lines)
