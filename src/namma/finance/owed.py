"""What an installment and a loan owe, per component, and an installment's status: the one
definition (docs/money.md, "Balances").

Every rule here is plain arithmetic and comparisons over an installment's columns
(``principal_due``, ``interest_paid``, ``fee_waived`` …), so one definition reads three ways:

- on Python values (an ORM row, an `InstallmentState`, any object with those attributes) it
  computes ``Decimal``s and ``bool``s — collections, waivers, the receipt, the statement;
- on SQLAlchemy columns (pass the mapped class or an alias; `namma.kit.sqltext.expression_of`)
  it builds an SQL expression — reports, dashboards;
- on SQL text (`namma.kit.sqltext.sql_of`) it writes the fragment that hand-written set-based
  statements use — the close of business, penalties, notices.

So the close of business computes the same balances and statuses as a collection, and a report
the same arrears, because they are the same functions. Conditions combine with ``&`` and ``|``
(never ``and`` / ``or``, which SQL cannot overload); a rule that needs a branch is an ordered
table (`STATUS_RULES`). Pure: no I/O, nothing of the rest of namma.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, Protocol

ZERO = Decimal("0.00")


class InstallmentAmounts(Protocol):
    """An installment's scheduled, paid and waived amounts (an ORM row or plain values)."""

    @property
    def due_date(self) -> date: ...
    @property
    def principal_due(self) -> Decimal: ...
    @property
    def interest_due(self) -> Decimal: ...
    @property
    def fee_due(self) -> Decimal: ...
    @property
    def penalty_due(self) -> Decimal: ...
    @property
    def principal_paid(self) -> Decimal: ...
    @property
    def interest_paid(self) -> Decimal: ...
    @property
    def fee_paid(self) -> Decimal: ...
    @property
    def penalty_paid(self) -> Decimal: ...
    @property
    def interest_waived(self) -> Decimal: ...
    @property
    def fee_waived(self) -> Decimal: ...
    @property
    def penalty_waived(self) -> Decimal: ...


class LoanOutstanding(Protocol):
    """A loan's stored balances (kept from its installments by `loan_balances`)."""

    @property
    def outstanding_principal(self) -> Decimal: ...
    @property
    def outstanding_interest(self) -> Decimal: ...
    @property
    def outstanding_fees(self) -> Decimal: ...
    @property
    def outstanding_penalties(self) -> Decimal: ...


# --- an installment: what it owes, per component ------------------------------------------------
# Principal is never waived: it is paid, pre-closed, refinanced or written off.


def owed_principal(i: InstallmentAmounts) -> Decimal:
    return i.principal_due - i.principal_paid


def owed_interest(i: InstallmentAmounts) -> Decimal:
    return i.interest_due - i.interest_paid - i.interest_waived


def owed_fee(i: InstallmentAmounts) -> Decimal:
    return i.fee_due - i.fee_paid - i.fee_waived


def owed_penalty(i: InstallmentAmounts) -> Decimal:
    return i.penalty_due - i.penalty_paid - i.penalty_waived


def owed(i: InstallmentAmounts) -> Decimal:
    """Everything the installment still owes: due less paid and waived, every component."""
    return owed_principal(i) + owed_interest(i) + owed_fee(i) + owed_penalty(i)


# Per component, by the name the money core's `Due` and allocation lines use.
OWED_BY_COMPONENT: dict[str, Callable[[InstallmentAmounts], Decimal]] = {
    "principal": owed_principal,
    "interest": owed_interest,
    "fee": owed_fee,
    "penalty": owed_penalty,
}


def due_total(i: InstallmentAmounts) -> Decimal:
    """What the installment asks in all: its schedule's principal, interest and fees and the
    penalties charged on it."""
    return i.principal_due + i.interest_due + i.fee_due + i.penalty_due


def paid(i: InstallmentAmounts) -> Decimal:
    return i.principal_paid + i.interest_paid + i.fee_paid + i.penalty_paid


def waived(i: InstallmentAmounts) -> Decimal:
    return i.interest_waived + i.fee_waived + i.penalty_waived


def demanded(i: InstallmentAmounts) -> Decimal:
    """The installment's demand: what its schedule asks (principal, interest, fees) less what
    was waived. Penalties are charges for lateness, not demand (the collection rate's dues)."""
    return i.principal_due + i.interest_due + i.fee_due - i.interest_waived - i.fee_waived


# --- arrears and status --------------------------------------------------------------------------


def arrears(principal: Any, interest: Any, fee: Any) -> Any:
    """Whether these owed amounts put an installment in arrears: principal, interest or fees.
    Penalties alone never do (only what the schedule demanded)."""
    return (principal > 0) | (interest > 0) | (fee > 0)


def in_arrears(i: InstallmentAmounts) -> bool:
    result: bool = arrears(owed_principal(i), owed_interest(i), owed_fee(i))
    return result


def is_unpaid(i: InstallmentAmounts) -> bool:
    """Anything at all still owed (the loan's next due date is the earliest such one)."""
    return owed(i) > 0


# The status rules take the installment, the date and what it owes (`owed`, computed once by
# the caller: a loan's balances have it already).


def _settled(i: InstallmentAmounts, today: date, owing: Decimal) -> bool:
    return owing == 0


def _late(i: InstallmentAmounts, today: date, owing: Decimal) -> bool:
    return i.due_date < today


def _started(i: InstallmentAmounts, today: date, owing: Decimal) -> bool:
    return paid(i) > 0


# An installment's status as of ``today``: the first rule that holds, else `STATUS_OTHERWISE`.
# Paid when nothing is owed; overdue when something is owed after its due date; else partly
# paid when something was paid; else due. (The values are the database's `installment_status`.)
STATUS_RULES: tuple[tuple[str, Callable[[InstallmentAmounts, date, Decimal], bool]], ...] = (
    ("paid", _settled),
    ("overdue", _late),
    ("partly_paid", _started),
)
STATUS_OTHERWISE = "due"


def installment_status(i: InstallmentAmounts, today: date, *, owing: Decimal | None = None) -> str:
    """``owing``: what the installment owes (`owed`), when the caller has it already."""
    if owing is None:
        owing = owed(i)
    for status, holds in STATUS_RULES:
        if holds(i, today, owing):
            return status
    return STATUS_OTHERWISE


# --- a loan --------------------------------------------------------------------------------------


def loan_outstanding(loan: LoanOutstanding) -> Decimal:
    """Everything the loan still owes, from its stored balances (0 once every installment is
    paid: no component is ever negative)."""
    return (
        loan.outstanding_principal
        + loan.outstanding_interest
        + loan.outstanding_fees
        + loan.outstanding_penalties
    )


@dataclass(frozen=True, slots=True)
class LoanBalances:
    """A loan's balances from its installments, as of a date: what it still owes per
    component (future interest included), its next due date and days past due, and each
    installment's status (in the order given)."""

    principal: Decimal
    interest: Decimal
    fees: Decimal
    penalties: Decimal
    next_due_on: date | None
    days_past_due: int
    # What the installments that fell due before ``today`` still owe, every component (the
    # reports' "overdue amount"; kept on the loan row, `loans.overdue_amount`).
    overdue: Decimal
    statuses: tuple[str, ...]

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fees + self.penalties


def counts_past_due(i: InstallmentAmounts, today: date) -> bool:
    """Days past due count from the earliest installment that fell due before ``today`` and is
    still in arrears."""
    result: bool = (i.due_date < today) & in_arrears(i)
    return result


def loan_balances(installments: Sequence[InstallmentAmounts], today: date) -> LoanBalances:
    """Σ of what the installments owe per component; the next due date is the earliest
    installment still owing anything (`is_unpaid`); days past due count from the earliest
    `counts_past_due` installment."""
    principal = interest = fees = penalties = overdue = ZERO
    next_due: date | None = None
    oldest_arrear: date | None = None
    statuses = []
    # Each installment's parts are computed once and the rules above applied to them (the
    # collection's hot path reads fifty installments): `is_unpaid` is owing > 0,
    # `counts_past_due` is due before today and `arrears` of the parts.
    for i in installments:
        p, n, f, y = owed_principal(i), owed_interest(i), owed_fee(i), owed_penalty(i)
        owing = p + n + f + y  # = owed(i)
        principal += p
        interest += n
        fees += f
        penalties += y
        if owing > 0 and (next_due is None or i.due_date < next_due):
            next_due = i.due_date
        if i.due_date < today:
            overdue += owing
        if (
            i.due_date < today
            and arrears(p, n, f)
            and (oldest_arrear is None or i.due_date < oldest_arrear)
        ):
            oldest_arrear = i.due_date
        statuses.append(installment_status(i, today, owing=owing))
    return LoanBalances(
        principal=principal,
        interest=interest,
        fees=fees,
        penalties=penalties,
        next_due_on=next_due,
        days_past_due=0 if oldest_arrear is None else (today - oldest_arrear).days,
        overdue=overdue,
        statuses=tuple(statuses),
    )
