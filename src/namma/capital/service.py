"""Capital: owners' investments, borrowings and their repayments (commands).

Every command posts its journal and its audit entry in the caller's transaction; nothing here
commits. A borrowing is a loan seen from the other side: its schedule, the split of a repayment
and the payoff come from the money core (`generate_schedule`, `advance_apply`,
`payoff_quote`) — this module only stores and adds up what those return.

Postings (docs/ledger.md): an investment Dr bank (or head-office cash) / Cr capital; a borrowing
received Dr bank / Cr borrowings; a repayment Dr borrowings (principal), Dr interest expense
(interest) / Cr bank. Method ``cash`` uses the head-office branch's cash instead of the bank.

Corrections are reversals (docs/capital.md): the mirror of the row's journal is posted, the row
is kept and marked reversed. Reversing a repayment replays the borrowing's standing repayments
in the order they were applied, so the installments and balances are what they would have been
without it; a later repayment whose split changes gets a reallocation entry.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import audit_record
from namma.auth.deps import Principal
from namma.finance import (
    AllocationError,
    AllocationLine,
    Amortization,
    Due,
    FinanceError,
    Frequency,
    InterestMethod,
    LoanTerms,
    PayoffError,
    Schedule,
    advance_apply,
    generate_schedule,
    payoff_quote,
)
from namma.kit.apitypes import RequestModel
from namma.kit.clock import today_india
from namma.kit.errors import ConflictError, InvalidInputError, NotFoundError
from namma.ledger.service import Leg, journal_post, record_reverse
from namma.models import (
    AccountKind,
    Borrowing,
    BorrowingInstallment,
    BorrowingRepayment,
    BorrowingStatus,
    Branch,
    CapitalMethod,
    Investment,
    JournalLine,
    LedgerAccount,
)

ZERO = Decimal("0.00")
# ₹10,000 crore: far above any microfinance lender's capital, far below what NUMERIC(20,2) holds.
MAX_INVESTMENT = Decimal(10) ** 11


class BorrowingTerms(RequestModel):
    """How a borrowing's schedule computes: the money core's vocabulary (a subset of a loan
    product's terms; no fees or penalties). Stored as the borrowing's ``terms``."""

    model_config = ConfigDict(extra="forbid")
    frequency: Frequency = Frequency.MONTHLY
    every: int | None = Field(default=None, ge=1, le=366)
    interest_method: InterestMethod = InterestMethod.DECLINING
    amortization: Amortization = Amortization.EQUAL_INSTALLMENTS

    def loan_terms(
        self, *, principal: Decimal, annual_rate: Decimal, installments: int
    ) -> LoanTerms:
        return LoanTerms(
            principal=principal,
            annual_rate=annual_rate,
            installments=installments,
            frequency=self.frequency,
            every=self.every,
            interest_method=self.interest_method,
            amortization=self.amortization,
            # Not a microfinance loan, but no prepayment penalty is modelled for borrowings.
            microfinance=False,
        )


def _finance_error(exc: FinanceError) -> InvalidInputError:
    error = InvalidInputError(exc.errors[0].field, exc.message)
    error.details = [{"field": e.field, "message": e.message} for e in exc.errors]
    return error


def borrowing_schedule(borrowing: Borrowing) -> Schedule:
    """The borrowing's schedule, recomputed by the money core from its stored terms."""
    terms = BorrowingTerms.model_validate(borrowing.terms).loan_terms(
        principal=borrowing.principal,
        annual_rate=borrowing.annual_rate,
        installments=borrowing.installments,
    )
    return generate_schedule(
        terms, disbursed_on=borrowing.received_on, first_due_on=borrowing.first_due_on
    )


def installment_owed(row: BorrowingInstallment) -> tuple[Decimal, Decimal]:
    """(principal, interest) still owed on the installment."""
    return (
        row.principal_due - row.principal_paid,
        row.interest_due - row.interest_paid - row.interest_waived,
    )


def _dues(rows: list[BorrowingInstallment]) -> list[Due]:
    out = []
    for row in rows:
        principal, interest = installment_owed(row)
        if principal or interest:
            out.append(Due(row.number, row.due_date, principal=principal, interest=interest))
    return out


def _refresh_balances(borrowing: Borrowing, rows: list[BorrowingInstallment]) -> None:
    borrowing.outstanding_principal = sum((installment_owed(r)[0] for r in rows), ZERO)
    borrowing.outstanding_interest = sum((installment_owed(r)[1] for r in rows), ZERO)


async def _cash_leg(
    session: AsyncSession,
    method: CapitalMethod,
    *,
    debit: Decimal = ZERO,
    credit: Decimal = ZERO,
    branch_id: uuid.UUID | None = None,
) -> Leg:
    """The bank, or for method ``cash`` the cash of ``branch_id`` (default: the head office)."""
    if method is CapitalMethod.BANK:
        if branch_id is not None:
            raise InvalidInputError("branch_id", "Only cash is held at a branch; leave it out")
        return Leg(AccountKind.BANK, debit=debit, credit=credit)
    if branch_id is not None:
        if await session.get(Branch, branch_id) is None:
            raise InvalidInputError("branch_id", "No such branch")
        return Leg(AccountKind.BRANCH_CASH, debit=debit, credit=credit, branch_id=branch_id)
    head_office = await session.scalar(
        select(Branch.id).where(Branch.is_head_office.is_(True)).order_by(Branch.code).limit(1)
    )
    if head_office is None:
        raise InvalidInputError(
            "method", "There is no head-office branch to hold cash; use method bank"
        )
    return Leg(AccountKind.BRANCH_CASH, debit=debit, credit=credit, branch_id=head_office)


def _clean(text: str | None) -> str | None:
    return text.strip() if text and text.strip() else None


def _not_future(field: str, on: dt.date) -> None:
    if on > today_india():
        raise InvalidInputError(field, "The date cannot be in the future")


# --- investments ------------------------------------------------------------------------------


async def investment_record(
    session: AsyncSession,
    *,
    principal: Principal,
    amount: Decimal,
    source: str,
    invested_on: dt.date,
    method: CapitalMethod,
    reference: str | None,
    description: str | None,
    branch_id: uuid.UUID | None = None,
) -> Investment:
    """Record owners' money put in: Dr bank (or cash: the head office's, or ``branch_id``'s),
    Cr capital. 422 for an amount not above 0 or implausibly large, an empty source or a
    future date."""
    if amount <= 0:
        raise InvalidInputError("amount", "The amount must be greater than 0")
    if amount > MAX_INVESTMENT:
        raise InvalidInputError(
            "amount", f"An investment of more than {MAX_INVESTMENT:f} is not plausible"
        )
    source = source.strip()
    if not source:
        raise InvalidInputError("source", "Say who invested")
    _not_future("invested_on", invested_on)
    entry = await journal_post(
        session,
        kind="capital.investment",
        entry_date=invested_on,
        memo=f"Capital from {source}",
        created_by_id=principal.user_id,
        legs=[
            await _cash_leg(session, method, debit=amount, branch_id=branch_id),
            Leg(AccountKind.CAPITAL, credit=amount),
        ],
    )
    investment = Investment(
        amount=amount,
        source=source,
        invested_on=invested_on,
        method=method,
        reference=_clean(reference),
        description=_clean(description),
        journal_entry_id=entry.id,
        created_by_id=principal.user_id,
    )
    session.add(investment)
    await session.flush()
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="capital.investment_recorded",
        entity_type="investment",
        entity_id=str(investment.id),
        after={
            "amount": amount,
            "source": source,
            "invested_on": invested_on,
            "method": method.value,
            "journal_entry_id": entry.id,
        },
    )
    return investment


# --- borrowings -------------------------------------------------------------------------------


async def borrowing_record(
    session: AsyncSession,
    *,
    principal: Principal,
    lender_name: str,
    lender_contact: str | None,
    amount: Decimal,
    annual_rate: Decimal,
    installments: int,
    terms: BorrowingTerms,
    received_on: dt.date,
    first_due_on: dt.date | None,
    method: CapitalMethod,
    reference: str | None,
    remarks: str | None,
) -> tuple[Borrowing, list[BorrowingInstallment]]:
    """Record money received from a lender with its repayment schedule (from the money core):
    Dr bank (or head-office cash), Cr borrowings. 422 for invalid terms (every problem listed)
    or a future date."""
    lender_name = lender_name.strip()
    if not lender_name:
        raise InvalidInputError("lender_name", "Say who lent the money")
    _not_future("received_on", received_on)
    try:
        loan_terms = terms.loan_terms(
            principal=amount, annual_rate=annual_rate, installments=installments
        )
        schedule = generate_schedule(
            loan_terms, disbursed_on=received_on, first_due_on=first_due_on
        )
    except FinanceError as exc:
        raise _finance_error(exc) from None
    entry = await journal_post(
        session,
        kind="capital.borrowing",
        entry_date=received_on,
        memo=f"Borrowing from {lender_name}",
        created_by_id=principal.user_id,
        legs=[
            await _cash_leg(session, method, debit=amount),
            Leg(AccountKind.BORROWINGS, credit=amount),
        ],
    )
    borrowing = Borrowing(
        lender_name=lender_name,
        lender_contact=_clean(lender_contact),
        principal=amount,
        annual_rate=annual_rate,
        installments=installments,
        terms=terms.model_dump(mode="json"),
        received_on=received_on,
        first_due_on=first_due_on,
        method=method,
        reference=_clean(reference),
        remarks=_clean(remarks),
        status=BorrowingStatus.ACTIVE,
        installment_amount=schedule.installment_amount,
        total_interest=schedule.total_interest,
        outstanding_principal=schedule.total_principal,
        outstanding_interest=schedule.total_interest,
        total_repaid=ZERO,
        journal_entry_id=entry.id,
        created_by_id=principal.user_id,
    )
    session.add(borrowing)
    await session.flush()
    rows = [
        BorrowingInstallment(
            borrowing_id=borrowing.id,
            number=row.number,
            due_date=row.due_date,
            period_start=row.period_start,
            principal_due=row.principal,
            interest_due=row.interest,
            interest_for_period=row.interest_for_period,
            balance_after=row.balance,
            principal_paid=ZERO,
            interest_paid=ZERO,
            interest_waived=ZERO,
        )
        for row in schedule.rows
    ]
    session.add_all(rows)
    await session.flush()
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="capital.borrowing_recorded",
        entity_type="borrowing",
        entity_id=str(borrowing.id),
        after={
            "lender_name": lender_name,
            "principal": amount,
            "annual_rate": annual_rate,
            "installments": installments,
            "terms": borrowing.terms,
            "received_on": received_on,
            "method": method.value,
            "installment_amount": schedule.installment_amount,
            "total_interest": schedule.total_interest,
            "journal_entry_id": entry.id,
        },
    )
    return borrowing, rows


async def borrowing_installments(
    session: AsyncSession, borrowing_id: uuid.UUID
) -> list[BorrowingInstallment]:
    return list(
        (
            await session.scalars(
                select(BorrowingInstallment)
                .where(BorrowingInstallment.borrowing_id == borrowing_id)
                .order_by(BorrowingInstallment.number)
            )
        ).all()
    )


@dataclass
class Placed:
    """What a repayment did on one installment."""

    number: int
    principal: Decimal = ZERO
    interest: Decimal = ZERO
    interest_waived: Decimal = ZERO


@dataclass
class RepaymentResult:
    repayment: BorrowingRepayment
    borrowing: Borrowing
    placed: list[Placed]
    installments: list[BorrowingInstallment]
    payoff: Decimal  # the payoff the amount was checked against


def _placed_from_lines(lines: tuple[AllocationLine, ...]) -> list[Placed]:
    return [Placed(x.number, x.principal, x.interest) for x in lines if x.total > 0]


def _placement(
    schedule: Schedule, rows: list[BorrowingInstallment], *, amount: Decimal, paid_on: dt.date
) -> tuple[list[Placed], bool, Decimal]:
    """Where ``amount`` paid on ``paid_on`` goes, by the money core: (per installment, whether
    it is the payoff, the payoff it was checked against). 422 above the payoff; 409 if the
    money core cannot quote one."""
    dues = _dues(rows)
    try:
        quote = payoff_quote(schedule=schedule, dues=dues, as_of=paid_on)
    except PayoffError as exc:
        raise ConflictError(exc.message) from None
    if amount > quote.total:
        raise InvalidInputError(
            "amount",
            f"The amount {amount} is more than the payoff of {quote.total} as of "
            f"{paid_on.isoformat()}; pay at most {quote.total}",
        )
    scheduled = sum((d.total for d in dues), ZERO)
    if amount == quote.total and quote.total < scheduled:
        waived = {w.number: w.interest for w in quote.waived}
        placed = [
            Placed(x.number, x.principal, x.interest, waived.get(x.number, ZERO))
            for x in quote.lines
        ]
        return placed, True, quote.total
    # What is due first, then the next installments at once, oldest first: a lender holds no
    # advance for us (the money core's `advance` policy is for borrowers; D-158), so an early
    # repayment is walked over every installment as if all had fallen due.
    last_due = max((d.due_date for d in dues), default=paid_on)
    try:
        allocation = advance_apply(advance=amount, dues=dues, as_of=max(last_due, paid_on))
    except AllocationError as exc:
        raise InvalidInputError("amount", exc.message) from None
    assert allocation.advance == 0  # the amount is at most the payoff, below the dues' total
    return _placed_from_lines(allocation.lines), False, quote.total


def _place(rows: list[BorrowingInstallment], placed: list[Placed], paid_on: dt.date) -> None:
    by_number = {r.number: r for r in rows}
    for p in placed:
        row = by_number[p.number]
        row.principal_paid += p.principal
        row.interest_paid += p.interest
        row.interest_waived += p.interest_waived
        if installment_owed(row) == (ZERO, ZERO) and row.paid_on is None:
            row.paid_on = paid_on


async def borrowing_repay(
    session: AsyncSession,
    *,
    principal: Principal,
    borrowing_id: uuid.UUID,
    amount: Decimal,
    paid_on: dt.date,
    method: CapitalMethod,
    reference: str | None,
) -> RepaymentResult:
    """Repay the lender: the borrowing row is locked, the amount is allocated by the money core
    (oldest installment first; within it, interest then principal). Exactly the payoff amount
    settles the borrowing (interest not yet earned is waived); above it is refused (422, the
    payoff in the message). The borrowing closes when nothing is owed.

    404: unknown borrowing. 409: closed. 422: amount not above 0; a date in the future or
    before the money was received.
    """
    if amount <= 0:
        raise InvalidInputError("amount", "The amount must be greater than 0")
    _not_future("paid_on", paid_on)
    borrowing = await session.scalar(
        select(Borrowing).where(Borrowing.id == borrowing_id).with_for_update()
    )
    if borrowing is None:
        raise NotFoundError("Borrowing not found")
    if borrowing.status is not BorrowingStatus.ACTIVE:
        raise ConflictError(
            f"The borrowing is {borrowing.status.value}; nothing is owed on it",
            details={"status": borrowing.status.value},
        )
    if paid_on < borrowing.received_on:
        raise InvalidInputError(
            "paid_on",
            f"The money was received on {borrowing.received_on.isoformat()}; "
            "a repayment cannot be dated before that",
        )
    schedule = borrowing_schedule(borrowing)
    rows = await borrowing_installments(session, borrowing.id)
    placed, is_payoff, payoff = _placement(schedule, rows, amount=amount, paid_on=paid_on)
    _place(rows, placed, paid_on)
    principal_part = sum((p.principal for p in placed), ZERO)
    interest_part = sum((p.interest for p in placed), ZERO)
    assert principal_part + interest_part == amount, (principal_part, interest_part, amount)
    before = _balances(borrowing)
    _refresh_balances(borrowing, rows)
    borrowing.total_repaid += amount
    if borrowing.outstanding_principal == 0 and borrowing.outstanding_interest == 0:
        borrowing.status = BorrowingStatus.CLOSED
        borrowing.closed_at = dt.datetime.now(dt.UTC)
    entry = await journal_post(
        session,
        kind="capital.borrowing_repayment",
        entry_date=paid_on,
        memo=f"Repayment to {borrowing.lender_name}",
        created_by_id=principal.user_id,
        legs=[
            Leg(AccountKind.BORROWINGS, debit=principal_part),
            Leg(AccountKind.INTEREST_EXPENSE, debit=interest_part),
            await _cash_leg(session, method, credit=amount),
        ],
    )
    repayment = BorrowingRepayment(
        borrowing_id=borrowing.id,
        paid_on=paid_on,
        amount=amount,
        principal_paid=principal_part,
        interest_paid=interest_part,
        payoff=is_payoff,
        method=method,
        reference=_clean(reference),
        journal_entry_id=entry.id,
        created_by_id=principal.user_id,
    )
    session.add(repayment)
    await session.flush()
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="capital.borrowing_repaid",
        entity_type="borrowing",
        entity_id=str(borrowing.id),
        before=before,
        after={
            "repayment_id": repayment.id,
            "amount": amount,
            "paid_on": paid_on,
            "principal_paid": principal_part,
            "interest_paid": interest_part,
            "payoff": is_payoff,
            "journal_entry_id": entry.id,
            **_balances(borrowing),
        },
    )
    return RepaymentResult(repayment, borrowing, placed, rows, payoff)


def _balances(b: Borrowing) -> dict[str, Any]:
    return {
        "status": b.status.value,
        "outstanding_principal": b.outstanding_principal,
        "outstanding_interest": b.outstanding_interest,
        "total_repaid": b.total_repaid,
    }


# --- reversals ---------------------------------------------------------------------------------


def _reason(reason: str, what: str) -> str:
    reason = reason.strip()
    if not reason:
        raise InvalidInputError("reason", f"Say why the {what} is reversed")
    return reason


def _reversed_conflict(what: str, at: dt.datetime, entry_id: int | None) -> ConflictError:
    return ConflictError(
        f"The {what} was already reversed (on {at.date().isoformat()})",
        details={"reversal_entry_id": entry_id},
    )


async def investment_reverse(
    session: AsyncSession, *, principal: Principal, investment_id: uuid.UUID, reason: str
) -> Investment:
    """Reverse an investment recorded by mistake: the mirror of its journal (Dr capital, Cr
    bank or head-office cash) dated today; the row is kept, marked reversed, and no longer
    counts in own capital. 404: unknown. 409: already reversed. 422: no reason."""
    reason = _reason(reason, "investment")
    investment = await session.scalar(
        select(Investment)
        .where(Investment.id == investment_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if investment is None:
        raise NotFoundError("Investment not found")
    if investment.reversed_at is not None:
        raise _reversed_conflict("investment", investment.reversed_at, investment.reversal_entry_id)
    reversal = await record_reverse(
        session,
        investment,
        by=principal.user_id,
        reason=reason,
        memo=f"capital from {investment.source}: {reason}",
        on=today_india(),
    )
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="capital.investment_reversed",
        entity_type="investment",
        entity_id=str(investment.id),
        before={"status": "standing"},
        after={
            "status": "reversed",
            "amount": investment.amount,
            "source": investment.source,
            "reason": reason,
            "reversal_entry_id": reversal.id,
        },
    )
    return investment


async def _borrowing_for_update(session: AsyncSession, borrowing_id: uuid.UUID) -> Borrowing:
    borrowing = await session.scalar(
        select(Borrowing)
        .where(Borrowing.id == borrowing_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if borrowing is None:
        raise NotFoundError("Borrowing not found")
    return borrowing


async def _standing_repayments(
    session: AsyncSession, borrowing_id: uuid.UUID
) -> list[BorrowingRepayment]:
    """The borrowing's repayments not reversed, in the order they were applied."""
    return list(
        (
            await session.scalars(
                select(BorrowingRepayment)
                .where(BorrowingRepayment.borrowing_id == borrowing_id)
                .where(BorrowingRepayment.reversed_at.is_(None))
                .order_by(BorrowingRepayment.seq)
                .execution_options(populate_existing=True)
            )
        ).all()
    )


async def borrowing_reverse(
    session: AsyncSession, *, principal: Principal, borrowing_id: uuid.UUID, reason: str
) -> Borrowing:
    """Reverse a borrowing recorded by mistake — only while no repayment stands on it (reverse
    those first): the mirror of its journal (Dr borrowings, Cr bank or head-office cash) dated
    today; the borrowing is kept with its schedule, status ``reversed``, nothing outstanding.
    404: unknown. 409: already reversed, or repayments stand. 422: no reason."""
    reason = _reason(reason, "borrowing")
    borrowing = await _borrowing_for_update(session, borrowing_id)
    if borrowing.reversed_at is not None:
        raise _reversed_conflict("borrowing", borrowing.reversed_at, borrowing.reversal_entry_id)
    standing = await _standing_repayments(session, borrowing.id)
    if standing:
        raise ConflictError(
            f"{len(standing)} repayment(s) stand on this borrowing; reverse them first",
            details={"repayment_ids": [str(r.id) for r in standing]},
        )
    before = _balances(borrowing)
    reversal = await record_reverse(
        session,
        borrowing,
        by=principal.user_id,
        reason=reason,
        memo=f"borrowing from {borrowing.lender_name}: {reason}",
        on=today_india(),
    )
    borrowing.status = BorrowingStatus.REVERSED
    borrowing.outstanding_principal = ZERO
    borrowing.outstanding_interest = ZERO
    borrowing.closed_at = None
    await session.flush()
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="capital.borrowing_reversed",
        entity_type="borrowing",
        entity_id=str(borrowing.id),
        before=before,
        after={**_balances(borrowing), "reason": reason, "reversal_entry_id": reversal.id},
    )
    return borrowing


def _reclass_legs(delta_principal: Decimal) -> list[Leg]:
    """Move ``delta_principal`` from interest expense to the borrowing's principal (negative:
    the other way). Cash does not move."""
    if delta_principal > 0:
        return [
            Leg(AccountKind.BORROWINGS, debit=delta_principal),
            Leg(AccountKind.INTEREST_EXPENSE, credit=delta_principal),
        ]
    if delta_principal < 0:
        return [
            Leg(AccountKind.INTEREST_EXPENSE, debit=-delta_principal),
            Leg(AccountKind.BORROWINGS, credit=-delta_principal),
        ]
    return []


async def _posted_principal(session: AsyncSession, entry_id: int) -> Decimal:
    """The principal part a repayment's original entry took off the borrowings account."""
    return Decimal(
        await session.scalar(
            select(func.coalesce(func.sum(JournalLine.debit - JournalLine.credit), ZERO))
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .where(JournalLine.entry_id == entry_id)
            .where(LedgerAccount.kind == AccountKind.BORROWINGS)
        )
        or 0
    )


@dataclass
class RepaymentReversal:
    repayment: BorrowingRepayment
    borrowing: Borrowing
    reallocated: list[str]  # ids of later repayments whose split the replay changed


async def borrowing_repayment_reverse(
    session: AsyncSession,
    *,
    principal: Principal,
    borrowing_id: uuid.UUID,
    repayment_id: uuid.UUID,
    reason: str,
) -> RepaymentReversal:
    """Reverse a repayment recorded by mistake. The borrowing row is locked; the mirror of the
    repayment's journal is posted (with whatever earlier replays moved between principal and
    interest undone), the repayment is kept and marked reversed, and the borrowing is rebuilt
    by replaying its standing repayments in the order they were applied (`_borrowing_replay`):
    installments, outstanding principal and interest, total repaid, status (a closed borrowing
    re-opens when something is owed again).

    404: unknown borrowing, or a repayment not of it. 409: already reversed, or the borrowing
    itself was reversed. 422: no reason.
    """
    reason = _reason(reason, "repayment")
    borrowing = await _borrowing_for_update(session, borrowing_id)
    repayment = await session.scalar(
        select(BorrowingRepayment)
        .where(BorrowingRepayment.id == repayment_id)
        .where(BorrowingRepayment.borrowing_id == borrowing.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if repayment is None:
        raise NotFoundError("Repayment not found")
    if repayment.reversed_at is not None:
        raise _reversed_conflict("repayment", repayment.reversed_at, repayment.reversal_entry_id)
    if borrowing.status is BorrowingStatus.REVERSED:  # cannot happen: it had no repayments
        raise ConflictError("The borrowing was reversed", details={"status": "reversed"})
    before = _balances(borrowing)
    today = today_india()
    posted = await _posted_principal(session, repayment.journal_entry_id)
    reversal = await record_reverse(
        session,
        repayment,
        by=principal.user_id,
        reason=reason,
        memo=f"repayment of {repayment.paid_on.isoformat()} to {borrowing.lender_name}: {reason}",
        on=today,
    )
    undo = _reclass_legs(posted - repayment.principal_paid)
    if undo:
        await journal_post(
            session,
            kind="capital.borrowing_repayment.reversal_reallocation",
            entry_date=today,
            memo=f"Repayment to {borrowing.lender_name}: undo its re-allocations",
            created_by_id=principal.user_id,
            legs=undo,
        )
    await session.flush()
    reallocated = await _borrowing_replay(session, principal=principal, borrowing=borrowing)
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="capital.borrowing_repayment_reversed",
        entity_type="borrowing",
        entity_id=str(borrowing.id),
        before=before,
        after={
            **_balances(borrowing),
            "repayment_id": repayment.id,
            "amount": repayment.amount,
            "paid_on": repayment.paid_on,
            "reason": reason,
            "reversal_entry_id": reversal.id,
            "reallocated_repayments": reallocated,
        },
    )
    return RepaymentReversal(repayment, borrowing, reallocated)


async def _borrowing_replay(
    session: AsyncSession, *, principal: Principal, borrowing: Borrowing
) -> list[str]:
    """Rebuild the (locked) borrowing from its standing repayments: every installment's paid
    and waived amounts are cleared, then each repayment is placed again in the order it was
    first applied (``seq``), as of its own date, exactly as `borrowing_repay` placed it. A
    repayment whose principal/interest split comes out different is restated, and a
    ``capital.borrowing_repayment.reallocation`` entry moves the difference between the
    borrowings account and interest expense (cash does not move). Returns the restated ids."""
    schedule = borrowing_schedule(borrowing)
    rows = await borrowing_installments(session, borrowing.id)
    for row in rows:
        row.principal_paid = row.interest_paid = row.interest_waived = ZERO
        row.paid_on = None
    today = today_india()
    restated: list[str] = []
    repayments = await _standing_repayments(session, borrowing.id)
    for repayment in repayments:
        try:
            placed, is_payoff, _ = _placement(
                schedule, rows, amount=repayment.amount, paid_on=repayment.paid_on
            )
        except InvalidInputError as exc:  # cannot happen: less repaid means more is owed
            raise ConflictError(
                f"The repayment of {repayment.paid_on.isoformat()} no longer fits: {exc.message}"
            ) from None
        _place(rows, placed, repayment.paid_on)
        principal_part = sum((p.principal for p in placed), ZERO)
        delta = principal_part - repayment.principal_paid
        if delta:
            await journal_post(
                session,
                kind="capital.borrowing_repayment.reallocation",
                entry_date=today,
                memo=f"Repayment to {borrowing.lender_name} of "
                f"{repayment.paid_on.isoformat()}: re-allocated after a reversal",
                created_by_id=principal.user_id,
                legs=_reclass_legs(delta),
            )
            repayment.principal_paid = principal_part
            repayment.interest_paid = repayment.amount - principal_part
            restated.append(str(repayment.id))
        repayment.payoff = is_payoff
    _refresh_balances(borrowing, rows)
    borrowing.total_repaid = sum((r.amount for r in repayments), ZERO)
    if borrowing.outstanding_principal == 0 and borrowing.outstanding_interest == 0:
        borrowing.status = BorrowingStatus.CLOSED
        borrowing.closed_at = borrowing.closed_at or dt.datetime.now(dt.UTC)
    else:
        borrowing.status = BorrowingStatus.ACTIVE
        borrowing.closed_at = None
    await session.flush()
    return restated
