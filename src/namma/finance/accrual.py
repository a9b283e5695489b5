"""Accrual accounting: how much of a loan's interest belongs to each day (docs/money.md §12).

A product accounts for interest on **cash** basis (income when collected; the default) or on
**accrual** basis (income as it is earned, day by day, into interest receivable). These rules
say how much is earned by a date and how a collection or a classification moves it; the close
of business applies them to every loan at once as SQL (`namma.cob.service`), a collection to one
loan (`namma.collections.service`). Pure: no I/O.

- An installment's interest (what it asks, less what was waived) is earned evenly over the days
  of its period, ``period_start`` (exclusive) to ``due_date`` (inclusive): by the end of day
  ``as_of``, ``interest × elapsed / days`` rounded to the paisa half-up, where ``elapsed`` is
  the days from ``period_start`` to ``as_of`` clamped to the period. Cumulative-to-date, rounded
  once: the day's accrual is today's figure less yesterday's, so the paise of rounding fall on
  the day they make up and a period's days add up to its interest exactly (on its due date the
  whole interest is earned). A period of no days is earned whole on its due date.
- A loan's receivable target is what was earned and not collected, ``max(earned − collected,
  0)``, and nothing while the loan is a non-performing asset or no longer active (RBI income
  recognition: interest on an NPA is income only when collected). Non-performing: NPA by days
  past due, or restructured and not yet upgraded — a restructured standard asset is
  sub-standard (`namma.finance.provisioning.non_performing`, D-210). The close of business
  posts the difference between the target and the receivable held: an accrual when it grows, a
  reversal when it shrinks (a waiver, an NPA, interest collected another way).
- A collection's interest settles the receivable first (what was already recognised) and is
  income only beyond it.
- Interest in suspense (D-215): what a non-performing loan has earned and not collected is not
  income but is still owed; it is kept in a memorandum, ``max(earned − collected, 0)`` while
  the loan is active and non-performing and nothing otherwise — the receivable's target with
  the opposite condition, so a loan's unpaid earned interest is always in exactly one of the
  two. Interest collected on a non-performing loan is income (cash) and comes out of suspense
  up to what it holds (`receivable_settlement`'s split, the suspense in place of the
  receivable).
"""

from __future__ import annotations

import datetime as dt
import decimal
from decimal import Decimal
from enum import StrEnum

from namma.finance.rounding import CENT, MONEY_CONTEXT

ZERO = Decimal("0.00")


class InterestAccounting(StrEnum):
    """When a product's interest becomes income: ``cash`` when collected (the default),
    ``accrual`` day by day as it is earned (the close of business posts it)."""

    CASH = "cash"
    ACCRUAL = "accrual"


def interest_earned_to(
    interest: Decimal, *, period_start: dt.date, due_date: dt.date, as_of: dt.date
) -> Decimal:
    """The part of an installment's ``interest`` earned by the end of ``as_of``: the period's
    days elapsed over its days, rounded to the paisa half-up (cumulative, rounded once)."""
    days = (due_date - period_start).days
    if as_of >= due_date:
        return interest
    if days <= 0 or as_of <= period_start:
        return ZERO
    elapsed = (as_of - period_start).days
    share = MONEY_CONTEXT.divide(MONEY_CONTEXT.multiply(interest, Decimal(elapsed)), Decimal(days))
    return share.quantize(CENT, rounding=decimal.ROUND_HALF_UP, context=MONEY_CONTEXT)


def receivable_target(*, earned: Decimal, collected: Decimal, accruing: bool) -> Decimal:
    """The interest receivable a loan should carry: earned and not collected while it accrues
    (active and performing: standard or SMA, not restructured or upgraded since); nothing
    otherwise (an NPA, a restructured loan not yet upgraded, a loan closed or written off)."""
    if not accruing:
        return ZERO
    return max(earned - collected, ZERO)


def suspense_target(
    *, earned: Decimal, collected: Decimal, active: bool, non_performing: bool
) -> Decimal:
    """The interest in suspense a loan should carry: earned and not collected while it is
    active and non-performing (not income: RBI income recognition); nothing otherwise — a
    performing loan carries it as receivable, a loan closed or written off carries neither."""
    if not (active and non_performing):
        return ZERO
    return max(earned - collected, ZERO)


def receivable_settlement(*, interest: Decimal, receivable: Decimal) -> tuple[Decimal, Decimal]:
    """A collection's ``interest`` split into (what settles the receivable, what is income
    now): the receivable first, the rest is interest not accrued yet."""
    settled = min(interest, max(receivable, ZERO))
    return settled, interest - settled
