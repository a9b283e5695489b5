"""Allocating a payment over a loan's dues.

A `Due` is what is still owed on one installment, per component. The strategy is data
(`AllocationStrategy` on the terms): the component order, whether to walk installment by
installment (oldest first; the default) or component by component across all dues (all interest
before any principal), and what to do with money beyond the current dues.

Every paisa is accounted for: Σ lines + prepaid principal + unallocated = the payment, and no
component is paid more than it owes.
"""

from __future__ import annotations

import decimal
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from namma.finance.errors import AllocationError
from namma.finance.rounding import CENT, MONEY_CONTEXT, ZERO
from namma.finance.schedule import Schedule
from namma.finance.terms import (
    MAX_AMOUNT,
    AllocationMode,
    AllocationStrategy,
    Component,
    ExcessPolicy,
)

# Payments and dues far beyond any loan are refused before they can strain the 20-digit context.
_MAX_PAYMENT = MAX_AMOUNT * 1000


@dataclass(frozen=True, slots=True)
class Due:
    """What is still owed on installment `number` (due on `due_date`), per component."""

    number: int
    due_date: date
    principal: Decimal = ZERO
    interest: Decimal = ZERO
    fee: Decimal = ZERO
    penalty: Decimal = ZERO

    def owed(self, component: Component) -> Decimal:
        return getattr(self, component.value)  # type: ignore[no-any-return]

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fee + self.penalty


@dataclass(frozen=True, slots=True)
class AllocationLine:
    """What a payment pays on installment `number`, per component."""

    number: int
    principal: Decimal = ZERO
    interest: Decimal = ZERO
    fee: Decimal = ZERO
    penalty: Decimal = ZERO

    def paid(self, component: Component) -> Decimal:
        return getattr(self, component.value)  # type: ignore[no-any-return]

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fee + self.penalty


@dataclass(frozen=True, slots=True)
class Allocation:
    """The split of `amount`: `lines` (installment order, only installments that got money),
    principal prepaid beyond the dues (`reduce-term`, `reduce-installment`; reschedule with
    `reschedule_after_prepayment`), money held as an advance for the installments still to
    fall due (`advance`), and what could not be allocated (return it or hold it)."""

    amount: Decimal
    lines: tuple[AllocationLine, ...]
    prepaid_principal: Decimal
    unallocated: Decimal
    advance: Decimal = ZERO

    @property
    def allocated(self) -> Decimal:
        """Σ of the lines (excluding prepaid principal)."""
        return sum((line.total for line in self.lines), ZERO)

    def total_of(self, component: Component) -> Decimal:
        return sum((line.paid(component) for line in self.lines), ZERO)


def dues_from_schedule(schedule: Schedule) -> tuple[Due, ...]:
    """The dues of a fresh loan: every row, nothing paid (fees include per-installment fees)."""
    return tuple(
        Due(
            number=row.number,
            due_date=row.due_date,
            principal=row.principal,
            interest=row.interest,
            fee=row.fees,
        )
        for row in schedule.rows
    )


def _money_ok(value: Decimal, *, positive: bool) -> bool:
    if not isinstance(value, Decimal) or not value.is_finite():
        return False
    if value < 0 or (positive and value == 0):
        return False
    if not value:  # most fees and penalties: no further test needed
        return True
    return value <= _MAX_PAYMENT and value == value.quantize(CENT, context=MONEY_CONTEXT)


def _check_money(field: str, value: Decimal, *, positive: bool) -> None:
    if not _money_ok(value, positive=positive):
        what = "greater than 0" if positive else "at least 0"
        raise AllocationError.single(field, f"{field} must be an amount {what} (2 decimals)")


def allocate_payment(
    *,
    amount: Decimal,
    dues: Sequence[Due],
    as_of: date,
    strategy: AllocationStrategy | None = None,
) -> Allocation:
    """Split `amount` over `dues` as of `as_of`.

    Dues with `due_date <= as_of` are current and are paid first, in the strategy's order.
    Money left over follows `strategy.excess`: `advance` holds it (`advance`, at most what the
    future dues ask; `advance_apply` pays them with it as they fall due), `reduce-term` and
    `reduce-installment` prepay future principal (`prepaid_principal`), `refuse` raises
    `AllocationError` (field `amount`). Whatever still remains is `unallocated`.
    """
    strategy = strategy or AllocationStrategy()
    _check_money("amount", amount, positive=True)
    if len({d.number for d in dues}) != len(dues):
        raise AllocationError.single("dues", "Installment numbers must be unique")
    for due in dues:
        for component in Component:
            if not _money_ok(due.owed(component), positive=False):  # the message only if wrong
                _check_money(
                    f"dues[{due.number}].{component.value}", due.owed(component), positive=False
                )
    with decimal.localcontext(MONEY_CONTEXT):
        ordered = sorted(dues, key=lambda d: (d.due_date, d.number))
        current = [d for d in ordered if d.due_date <= as_of]
        future = [d for d in ordered if d.due_date > as_of]
        paid: dict[int, dict[Component, Decimal]] = {}
        remaining = _pay(amount, current, strategy, paid)
        prepaid = advance = ZERO
        if remaining:
            if strategy.excess is ExcessPolicy.ADVANCE:
                advance = min(remaining, sum((d.total for d in future), ZERO))
                remaining -= advance
            elif strategy.excess in (ExcessPolicy.REDUCE_TERM, ExcessPolicy.REDUCE_INSTALLMENT):
                future_principal = sum((d.principal for d in future), ZERO)
                prepaid = min(remaining, future_principal)
                remaining -= prepaid
            else:
                due_now = sum((d.total for d in current), ZERO)
                raise AllocationError.single(
                    "amount", f"Payment of {amount} exceeds the {due_now} due; excess is refused"
                )
        lines = tuple(
            AllocationLine(
                number=number,
                principal=parts.get(Component.PRINCIPAL, ZERO),
                interest=parts.get(Component.INTEREST, ZERO),
                fee=parts.get(Component.FEE, ZERO),
                penalty=parts.get(Component.PENALTY, ZERO),
            )
            for number, parts in sorted(paid.items())
        )
        return Allocation(
            amount=amount,
            lines=lines,
            prepaid_principal=prepaid,
            unallocated=remaining,
            advance=advance,
        )


def advance_apply(
    *,
    advance: Decimal,
    dues: Sequence[Due],
    as_of: date,
    strategy: AllocationStrategy | None = None,
) -> Allocation:
    """Pay the dues that have fallen due by `as_of` with an advance held (`advance`), in the
    strategy's order; `advance` of the answer is what stays held. Future dues are not touched."""
    strategy = strategy or AllocationStrategy()
    _check_money("advance", advance, positive=False)
    with decimal.localcontext(MONEY_CONTEXT):
        current = sorted(
            (d for d in dues if d.due_date <= as_of), key=lambda d: (d.due_date, d.number)
        )
        paid: dict[int, dict[Component, Decimal]] = {}
        left = _pay(advance, current, strategy, paid) if advance else ZERO
        lines = tuple(
            AllocationLine(
                number=number,
                principal=parts.get(Component.PRINCIPAL, ZERO),
                interest=parts.get(Component.INTEREST, ZERO),
                fee=parts.get(Component.FEE, ZERO),
                penalty=parts.get(Component.PENALTY, ZERO),
            )
            for number, parts in sorted(paid.items())
        )
        return Allocation(
            amount=advance - left,
            lines=lines,
            prepaid_principal=ZERO,
            unallocated=ZERO,
            advance=left,
        )


def _pay(
    amount: Decimal,
    dues: list[Due],
    strategy: AllocationStrategy,
    paid: dict[int, dict[Component, Decimal]],
) -> Decimal:
    """Pay `amount` over `dues` in the strategy's walk order; record into `paid`; return rest."""
    if strategy.mode is AllocationMode.BY_INSTALLMENT:
        walk = [(due, component) for due in dues for component in strategy.order]
    else:
        walk = [(due, component) for component in strategy.order for due in dues]
    remaining = amount
    for due, component in walk:
        if not remaining:
            break
        owed = due.owed(component)
        if not owed:
            continue
        take = owed if owed < remaining else remaining
        parts = paid.setdefault(due.number, {})
        parts[component] = parts.get(component, ZERO) + take
        remaining -= take
    return remaining


def apply_allocation(dues: Sequence[Due], allocation: Allocation) -> tuple[Due, ...]:
    """The dues after `allocation` was paid (prepaid principal is not applied: reschedule)."""
    by_number = {line.number: line for line in allocation.lines}
    out: list[Due] = []
    with decimal.localcontext(MONEY_CONTEXT):
        for due in dues:
            line = by_number.get(due.number)
            if line is None:
                out.append(due)
                continue
            out.append(
                Due(
                    number=due.number,
                    due_date=due.due_date,
                    principal=due.principal - line.principal,
                    interest=due.interest - line.interest,
                    fee=due.fee - line.fee,
                    penalty=due.penalty - line.penalty,
                )
            )
    return tuple(out)
