"""Waivers: a Manager or Admin forgives interest, fees or penalties owed on a loan, with a reason.

The amount is spread over the installments that owe the component, oldest first — only those
due on or before the waiver's date, unless one installment is named (then only that one, due or
not: a concession on a future installment). It can never exceed what is owed. The installments
record it (`interest_waived`, `fee_waived`, `penalty_waived`), the loan's balances are refreshed
and it closes if nothing is owed any more.

Ledger: interest, fees and penalties are income only when collected (cash basis,
docs/ledger.md), so a waiver takes nothing off the books; it is posted to the memorandum pair
(Dr `waivers_memo`, Cr `waivers_memo_contra`, both tagged with the loan), which keeps every
waiver in the ledger, per loan, without touching the balance sheet or income.

A reversed collection replays the loan's remaining collections (`collection_reverse`): the
waivers stay on the installments and the replay allocates around them.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import audit_record
from namma.auth.deps import Principal
from namma.finance.owed import OWED_BY_COMPONENT, loan_outstanding, owed
from namma.kit.errors import ConflictError, InvalidInputError, NotFoundError
from namma.ledger.service import Leg, journal_post
from namma.loans.cache import loan_changed
from namma.loans.service import (
    loan_balances_refresh,
    today_india,
)
from namma.loans.status import LoanMove, loan_move
from namma.loans.store import loan_locked
from namma.models import (
    AccountKind,
    LoanInstallment,
    LoanStatus,
    LoanWaiver,
    Role,
    WaiverComponent,
)

ZERO = Decimal("0.00")


def component_owed(row: LoanInstallment, component: WaiverComponent) -> Decimal:
    """What the installment still owes of one component (`namma.finance.owed`)."""
    return OWED_BY_COMPONENT[component.value](row)


@dataclass(frozen=True)
class WaiverLine:
    number: int
    amount: Decimal


def waiver_spread(
    installments: Sequence[LoanInstallment],
    *,
    component: WaiverComponent,
    amount: Decimal,
    on: dt.date,
    installment_number: int | None,
) -> list[WaiverLine]:
    """How ``amount`` is taken off the installments (oldest first). 422 when it is more than
    what they owe of the component (the message says how much that is)."""
    if installment_number is not None:
        eligible = [i for i in installments if i.number == installment_number]
        if not eligible:
            raise InvalidInputError(
                "installment_number", f"The loan has no installment {installment_number}"
            )
    else:
        eligible = [i for i in installments if i.due_date <= on]
    eligible.sort(key=lambda i: (i.due_date, i.number))
    owed = sum((component_owed(i, component) for i in eligible), ZERO)
    if amount > owed:
        where = (
            f"installment {installment_number}"
            if installment_number is not None
            else f"the installments due by {on.isoformat()}"
        )
        raise InvalidInputError(
            "amount",
            f"The amount {amount} is more than the {component.value} owed on {where} "
            f"({owed}); waive at most {owed}",
        )
    lines = []
    left = amount
    for row in eligible:
        take = min(left, component_owed(row, component))
        if take > 0:
            lines.append(WaiverLine(row.number, take))
            left -= take
        if left == 0:
            break
    return lines


async def loan_waive(
    session: AsyncSession,
    *,
    principal: Principal,
    loan_id: uuid.UUID,
    component: WaiverComponent,
    amount: Decimal,
    reason: str,
    installment_number: int | None = None,
) -> LoanWaiver:
    """Waive ``amount`` of a component owed on an active loan (see the module docstring).

    422: amount not positive or above what is owed (the message says the most), no reason.
    409: the loan is not active. 404: unknown or out of scope (a Manager: their branch)."""
    reason = reason.strip()
    if not reason:
        raise InvalidInputError("reason", "Say why the amount is waived")
    if amount <= 0:
        raise InvalidInputError("amount", "The amount must be greater than 0")
    if principal.role not in (Role.ADMIN, Role.MANAGER):  # the permission already refuses
        raise NotFoundError("Loan not found")
    loan = await loan_locked(session, principal, loan_id)
    if loan.status is not LoanStatus.ACTIVE:
        raise ConflictError(
            f"Cannot waive on a loan that is {loan.status.value}",
            details={"status": loan.status.value},
        )
    installments = list(
        (
            await session.scalars(
                select(LoanInstallment)
                .where(LoanInstallment.loan_id == loan.id)
                .order_by(LoanInstallment.number)
                .execution_options(populate_existing=True)
            )
        ).all()
    )
    today = today_india()
    lines = waiver_spread(
        installments,
        component=component,
        amount=amount,
        on=today,
        installment_number=installment_number,
    )
    before = {
        "status": loan.status.value,
        f"outstanding_{_loan_column(component)}": getattr(
            loan, f"outstanding_{_loan_column(component)}"
        ),
    }
    rows = {i.number: i for i in installments}
    column = f"{component.value}_waived"
    now = dt.datetime.now(dt.UTC)
    for line in lines:
        row = rows[line.number]
        setattr(row, column, getattr(row, column) + line.amount)
        if owed(row) == 0 and row.paid_at is None:
            row.paid_at = now
    loan_balances_refresh(loan, installments)
    if loan.advance_balance > loan_outstanding(loan):
        # The advance held could never be applied in full: nothing here refunds it.
        raise InvalidInputError(
            "amount",
            f"The loan holds an advance of {loan.advance_balance}; after this waiver it would "
            f"owe only {loan_outstanding(loan)}. Waive less, or reverse the collection that "
            "paid in advance first",
        )
    if all(owed(i) == 0 for i in installments):
        loan_move(loan, LoanMove.CLOSE)
        loan.closed_at = now
        loan.next_due_on = None
    entry = await journal_post(
        session,
        kind="loan.waiver",
        entry_date=today,
        memo=f"Waiver of {component.value} on {loan.loan_number}: {reason}",
        branch_id=loan.branch_id,
        loan_id=loan.id,
        created_by_id=principal.user_id,
        legs=[
            Leg(AccountKind.WAIVERS_MEMO, debit=amount, loan_id=loan.id),
            Leg(AccountKind.WAIVERS_MEMO_CONTRA, credit=amount, loan_id=loan.id),
        ],
    )
    waiver = LoanWaiver(
        loan_id=loan.id,
        branch_id=loan.branch_id,
        component=component,
        amount=amount,
        reason=reason,
        waived_on=today,
        lines=[{"number": line.number, "amount": str(line.amount)} for line in lines],
        waived_by_id=principal.user_id,
        journal_entry_id=entry.id,
    )
    session.add(waiver)
    await session.flush()
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="loan.waived",
        entity_type="loan",
        entity_id=str(loan.id),
        before=before,
        after={
            "waiver_id": waiver.id,
            "component": component.value,
            "amount": amount,
            "reason": reason,
            "lines": waiver.lines,
            "journal_entry_id": entry.id,
            "status": loan.status.value,
            f"outstanding_{_loan_column(component)}": getattr(
                loan, f"outstanding_{_loan_column(component)}"
            ),
        },
    )
    loan_changed(session, loan_id=loan.id, customer_id=loan.customer_id, branch_id=loan.branch_id)
    await session.refresh(waiver)  # its created_at, for the answer
    return waiver


def _loan_column(component: WaiverComponent) -> str:
    return {"interest": "interest", "fee": "fees", "penalty": "penalties"}[component.value]
