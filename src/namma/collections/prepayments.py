"""Prepayments: money beyond a loan's dues under the product's excess policy ``reduce-term`` or
``reduce-installment`` prepays principal (the money core's ``prepaid_principal``). The
collection credits the loan portfolio with it (no advance is held) and, in the same
transaction, the installments still to fall due are rewritten by the money core
(`reschedule_after_prepayment`): the loan is shorter (same installment), or its installments
are lower (same count).

A `LoanScheduleRevision` keeps the installments it replaced. A reversal puts back the earliest
revision's installments (the schedule as it was before the first prepayment the replay will
redo), drops the revisions, and replays the loan's remaining collections in order: each
prepayment among them rewrites the schedule again (`namma.collections.service._loan_replay`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import delete, exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.finance import ExcessPolicy, TermsError, reschedule_after_prepayment
from namma.finance.owed import paid as paid_total
from namma.finance.owed import waived as waived_total
from namma.kit.errors import ConflictError, InvalidInputError
from namma.loans.service import (
    INSTALLMENT_SCHEDULED,
    dropped_check,
    installment_blank,
    loan_schedule_stored,
)
from namma.models import (
    Collection,
    Loan,
    LoanInstallment,
    LoanProductVersion,
    LoanScheduleRevision,
)

ZERO = Decimal("0.00")
RESCHEDULING = (ExcessPolicy.REDUCE_TERM, ExcessPolicy.REDUCE_INSTALLMENT)
# An installment's scheduled columns: what a revision replaces and restores.
SCHEDULED = INSTALLMENT_SCHEDULED


def _snapshot(i: LoanInstallment) -> dict[str, Any]:
    return {"number": i.number, **{name: str(getattr(i, name)) for name in SCHEDULED}}


def _restore(i: LoanInstallment, saved: dict[str, Any]) -> None:
    for name in SCHEDULED:
        value = saved[name]
        setattr(
            i,
            name,
            dt.date.fromisoformat(value)
            if name in ("due_date", "period_start")
            else Decimal(value),
        )


async def prepayment_reschedule(
    session: AsyncSession,
    *,
    loan: Loan,
    version: LoanProductVersion,
    installments: list[LoanInstallment],
    on: dt.date,
    prepaid: Decimal,
    policy: ExcessPolicy,
    payoff: Decimal | None = None,
) -> tuple[LoanScheduleRevision, list[LoanInstallment]]:
    """Rewrite the (locked) loan's installments due after ``on`` for ``prepaid`` principal,
    by ``policy``; set the loan's regular installment. Returns the revision (unsaved: the
    caller names its collection) and the installments as they now are.

    422 when an installment still to fall due already carries a payment or a waiver (a
    collection back-dated behind a later one), or when the prepayment would take all the
    principal left (that is a pre-closure: collect the payoff)."""
    if loan.restructured_on is not None:
        raise ConflictError(
            "This loan was restructured: money beyond its dues cannot shorten or lower its "
            "restructured schedule; collect up to the dues, or the payoff amount to close it"
        )
    kept = [i for i in installments if i.due_date <= on]
    future = [i for i in installments if i.due_date > on]
    if any(paid_total(i) > 0 or waived_total(i) > 0 or i.penalty_due > 0 for i in future):
        raise InvalidInputError(
            "collected_on",
            "An installment after this date was already paid on: a prepayment can be dated "
            "no earlier than the loan's last payment",
        )
    left = sum((i.principal_due for i in future), ZERO)
    if prepaid >= left:
        most = f" ({payoff})" if payoff is not None else ""
        raise InvalidInputError(
            "amount",
            f"This amount prepays all the {left} principal still to fall due: to close the loan, "
            f"collect the payoff amount{most}",
        )
    schedule = loan_schedule_stored(loan, version, installments)
    try:
        new = reschedule_after_prepayment(
            schedule=schedule, paid_through=len(kept), balance=left - prepaid, policy=policy
        )
    except TermsError as exc:  # the stored rows disagree with their balances
        raise ConflictError(f"The loan's schedule cannot be rewritten: {exc.message}") from None
    revision = LoanScheduleRevision(
        loan_id=loan.id,
        policy=policy.value,
        prepaid_principal=prepaid,
        from_number=future[0].number,
        installments_before=len(installments),
        installments_after=len(new.rows),
        installment_before=schedule.installment_amount,
        installment_after=new.installment_amount,
        replaced=[_snapshot(i) for i in future],
    )
    rebuilt = {r.number: r for r in new.rows[len(kept) :]}
    dropped = [i for i in future if i.number not in rebuilt]
    await dropped_check(session, dropped)
    for i in future:
        row = rebuilt.get(i.number)
        if row is None:
            continue
        i.due_date, i.period_start = row.due_date, row.period_start
        i.principal_due, i.interest_due, i.fee_due = row.principal, row.interest, row.fees
        i.interest_for_period, i.balance_after = row.interest_for_period, row.balance
    for i in dropped:
        await session.delete(i)
    loan.installment_amount = new.installment_amount
    await session.flush()
    return revision, [i for i in installments if i not in dropped]


async def schedule_restore(
    session: AsyncSession, *, loan: Loan, installments: list[LoanInstallment]
) -> list[LoanInstallment]:
    """Put back the (locked) loan's schedule as it was before its earliest revision and drop
    every revision (the replay makes them again). Returns the installments as they now are."""
    revisions = list(
        await session.scalars(
            select(LoanScheduleRevision)
            .join(Collection, Collection.id == LoanScheduleRevision.collection_id)
            .where(LoanScheduleRevision.loan_id == loan.id)
            .order_by(Collection.seq)
        )
    )
    if not revisions:
        return installments
    first = revisions[0]
    restructured_after = await session.scalar(
        select(
            exists().where(
                LoanScheduleRevision.loan_id == loan.id,
                LoanScheduleRevision.restructure_id.is_not(None),
                LoanScheduleRevision.created_at >= first.created_at,
            )
        )
    )
    if restructured_after:
        raise ConflictError(
            "The loan was restructured after this prepayment: its schedule cannot be put back"
        )
    rows = {i.number: i for i in installments}
    for saved in first.replaced:
        row = rows.get(saved["number"])
        if row is None:
            row = installment_blank(loan, saved["number"])
            session.add(row)
            rows[row.number] = row
        _restore(row, saved)
    loan.installment_amount = first.installment_before
    await session.execute(
        delete(LoanScheduleRevision)
        .where(LoanScheduleRevision.loan_id == loan.id)
        .where(LoanScheduleRevision.collection_id.is_not(None))
    )
    await session.flush()
    return [rows[n] for n in sorted(rows)]


async def collection_revisions(
    session: AsyncSession, collection_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, LoanScheduleRevision]:
    """The schedule revision of each of these collections that made one."""
    if not collection_ids:
        return {}
    rows = await session.scalars(
        select(LoanScheduleRevision).where(
            LoanScheduleRevision.collection_id.in_(list(collection_ids))
        )
    )
    return {r.collection_id: r for r in rows if r.collection_id is not None}
