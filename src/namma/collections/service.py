"""Collections: recording a repayment, reversing one, and the idempotency of both.

The flow of `collection_record` is DESIGN.md §5: lock the loan row, allocate the amount with the
money core by the product's strategy, update installments and the loan's balances, take a
receipt number, post the journal, audit. Services never commit; the request does, once, with
the idempotency record in the same transaction. Every amount comes from the money core
(`allocate_payment`, `payoff_quote`); this module only adds up what it returned.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import audit_record
from namma.auth.deps import Principal
from namma.collections.prepayments import prepayment_reschedule, schedule_restore
from namma.collections.sheet import sheet_line_renew
from namma.collections.tasks import collection_receipt_defer
from namma.documents.service import receipts_after_reversal
from namma.finance import (
    AllocationError,
    AllocationLine,
    AllocationStrategy,
    Due,
    ExcessPolicy,
    PayoffError,
    PayoffQuote,
    Schedule,
    advance_apply,
    allocate_payment,
    payoff_quote,
)
from namma.finance.accrual import InterestAccounting, receivable_settlement
from namma.finance.owed import loan_outstanding, owed
from namma.kit.errors import ConflictError, InvalidInputError, NotFoundError
from namma.ledger.service import Leg, journal_post, ledger_account_id, record_reverse
from namma.loans.cache import loan_changed
from namma.loans.capitalised import capitalised_settle
from namma.loans.service import (
    installment_rows,
    loan_balances,
    loan_balances_refresh,
    loan_dues,
    loan_payoff_settle,
    loan_schedule_current,
    loan_schedule_stored,
    loan_terms_of,
    today_india,
)
from namma.loans.status import LoanMove, loan_move, loan_move_target, loan_settle_move
from namma.loans.store import (
    InstallmentLike,
    InstallmentState,
    collection_insert_numbered,
    installment_changes,
    installment_states,
    installment_states_write,
    loan_columns_write,
    loan_locked,
    loan_version,
    receipt_prefix,
)
from namma.models import (
    AccountKind,
    AdvanceApplication,
    Collection,
    CollectionAllocation,
    CollectionMethod,
    CollectionStatus,
    JournalLine,
    LedgerAccount,
    Loan,
    LoanInstallment,
    LoanProductVersion,
    LoanScheduleRevision,
    LoanStatus,
    Role,
)
from namma.notifications.service import notify_collection_reversed

ZERO = Decimal("0.00")
COMPONENTS = ("principal", "interest", "fee", "penalty")
# A collection's split: the components, and what it held as an advance (negative: the advance a
# pre-closure used).
SPLIT = (*COMPONENTS, "advance")
OUTSTANDING = ("principal", "interest", "fees", "penalties")  # the loan's balance columns
REVERSIBLE_FROM = (LoanStatus.ACTIVE, LoanStatus.CLOSED, LoanStatus.PRECLOSED)


# --- shared state helpers ------------------------------------------------------------------


@dataclass(frozen=True)
class Placed:
    """What a collection did on one installment: paid per component, and waived (pre-closure)."""

    number: int
    principal: Decimal = ZERO
    interest: Decimal = ZERO
    fee: Decimal = ZERO
    penalty: Decimal = ZERO
    interest_waived: Decimal = ZERO
    fee_waived: Decimal = ZERO
    penalty_waived: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fee + self.penalty


@dataclass
class CollectionResult:
    collection: Collection
    loan: Loan
    placed: list[Placed]
    installments: Mapping[int, InstallmentLike]
    payoff: Decimal | None = None  # the payoff the amount was checked against
    # The allocation rows written, with their installments (a newly posted collection).
    allocations: list[tuple[CollectionAllocation, InstallmentLike]] = field(default_factory=list)
    # The schedule a prepayment rewrote (excess policy reduce-term or reduce-installment).
    revision: LoanScheduleRevision | None = None


async def _installments(session: AsyncSession, loan_id: uuid.UUID) -> list[LoanInstallment]:
    return list(
        (
            await session.scalars(
                select(LoanInstallment)
                .where(LoanInstallment.loan_id == loan_id)
                .order_by(LoanInstallment.number)
            )
        ).all()
    )


def _place(rows: Mapping[int, InstallmentLike], placed: Placed, paid_at: dt.datetime) -> None:
    row = rows[placed.number]
    row.principal_paid += placed.principal
    row.interest_paid += placed.interest
    row.fee_paid += placed.fee
    row.penalty_paid += placed.penalty
    row.interest_waived += placed.interest_waived
    row.fee_waived += placed.fee_waived
    row.penalty_waived += placed.penalty_waived
    if owed(row) == 0 and row.paid_at is None:
        row.paid_at = paid_at


def _from_allocation(lines: Sequence[AllocationLine]) -> list[Placed]:
    return [
        Placed(line.number, line.principal, line.interest, line.fee, line.penalty)
        for line in lines
        if line.total > 0
    ]


def _from_quote(quote: PayoffQuote) -> list[Placed]:
    waived = {w.number: w for w in quote.waived}
    out = []
    for line in quote.lines:
        w = waived.get(line.number, AllocationLine(line.number))
        p = Placed(
            line.number,
            line.principal,
            line.interest,
            line.fee,
            line.penalty,
            w.interest,
            w.fee,
            w.penalty,
        )
        if p.total > 0 or w.total > 0:
            out.append(p)
    return out


def _totals(placed: Sequence[Placed], *, extra_penalty: Decimal = ZERO) -> dict[str, Decimal]:
    totals = {c: sum((getattr(p, c) for p in placed), ZERO) for c in COMPONENTS}
    totals["penalty"] += extra_penalty
    return totals


def _allocate(
    amount: Decimal, dues: Sequence[Due], on: dt.date, strategy: AllocationStrategy
) -> tuple[list[Placed], Decimal, Decimal]:
    """The money core's allocation of ``amount`` by the product's strategy: what it places on
    the installments due by ``on``, what it holds as an advance (excess policy ``advance``) and
    what principal it prepays (``reduce-term``, ``reduce-installment``: the caller reschedules,
    `namma.collections.prepayments`)."""
    try:
        allocation = allocate_payment(amount=amount, dues=dues, as_of=on, strategy=strategy)
    except AllocationError as exc:
        raise InvalidInputError("amount", exc.message) from None
    if allocation.unallocated > 0:
        raise InvalidInputError(
            "amount", f"{allocation.unallocated} of the amount could not be allocated"
        )
    return _from_allocation(allocation.lines), allocation.advance, allocation.prepaid_principal


COMPONENT_ACCOUNTS = {
    "principal": AccountKind.LOAN_PORTFOLIO,
    "interest": AccountKind.INTEREST_INCOME,
    "fee": AccountKind.FEE_INCOME,
    "penalty": AccountKind.PENALTY_INCOME,
}
# Where each part of a collection's split is credited (an advance used: debited).
SPLIT_ACCOUNTS = {**COMPONENT_ACCOUNTS, "advance": AccountKind.CUSTOMER_ADVANCES}


def _income_legs(
    totals: dict[str, Decimal],
    loan_id: uuid.UUID,
    *,
    receivable: Decimal = ZERO,
    suspense: Decimal = ZERO,
) -> list[Leg]:
    """The credits of a collection: principal leaves the portfolio, the rest is income; money
    held as an advance is a liability (an advance a pre-closure used: a debit of it). On an
    accrual-basis loan, ``receivable`` of the interest settles the interest receivable (it was
    income when accrued) and only the rest is income now; on a non-performing one ``suspense``
    of it comes out of the interest-suspense memorandum (income now, no longer held there)."""
    legs = [Leg(COMPONENT_ACCOUNTS[c], credit=totals[c], loan_id=loan_id) for c in COMPONENTS]
    if receivable > 0:
        legs[COMPONENTS.index("interest")] = Leg(
            AccountKind.INTEREST_INCOME, credit=totals["interest"] - receivable, loan_id=loan_id
        )
        legs.append(Leg(AccountKind.INTEREST_RECEIVABLE, credit=receivable, loan_id=loan_id))
    if suspense > 0:
        legs.append(Leg(AccountKind.INTEREST_SUSPENSE_CONTRA, debit=suspense, loan_id=loan_id))
        legs.append(Leg(AccountKind.INTEREST_SUSPENSE, credit=suspense, loan_id=loan_id))
    advance = totals.get("advance", ZERO)
    if advance > 0:
        legs.append(Leg(AccountKind.CUSTOMER_ADVANCES, credit=advance, loan_id=loan_id))
    elif advance < 0:
        legs.append(Leg(AccountKind.CUSTOMER_ADVANCES, debit=-advance, loan_id=loan_id))
    return legs


async def _entry_split(session: AsyncSession, entry_id: int | None) -> dict[str, Decimal]:
    """What a collection's journal entry credited (less debited) to each part's account."""
    split = dict.fromkeys(SPLIT, ZERO)
    if entry_id is None:
        return split
    part_of = {kind: name for name, kind in SPLIT_ACCOUNTS.items()}
    # An accrual-basis loan's collection settles the receivable with part of its interest.
    part_of[AccountKind.INTEREST_RECEIVABLE] = "interest"
    rows = await session.execute(
        select(LedgerAccount.kind, JournalLine.credit - JournalLine.debit)
        .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
        .where(JournalLine.entry_id == entry_id)
        .where(LedgerAccount.kind.in_(list(part_of)))
    )
    for kind, net in rows:
        split[part_of[kind]] += net
    return split


def _reclass_legs(delta: dict[str, Decimal], loan_id: uuid.UUID) -> list[Leg]:
    """Move a re-allocated collection's (or advance application's) money between the
    portfolio, the income accounts and the advances held: a part that grew is credited, one
    that shrank debited (the deltas add up to 0)."""
    legs = []
    for c in SPLIT:
        amount = delta.get(c, ZERO)
        if amount > 0:
            legs.append(Leg(SPLIT_ACCOUNTS[c], credit=amount, loan_id=loan_id))
        elif amount < 0:
            legs.append(Leg(SPLIT_ACCOUNTS[c], debit=-amount, loan_id=loan_id))
    return legs


async def _reclass_post(
    session: AsyncSession,
    *,
    principal: Principal,
    loan: Loan,
    on: dt.date,
    delta: dict[str, Decimal],
    kind: str,
    memo: str,
) -> None:
    """Post a collection's change of split (`_reclass_legs`), when there is one."""
    legs = _reclass_legs(delta, loan.id)
    if legs:
        await journal_post(
            session,
            kind=kind,
            entry_date=on,
            memo=memo,
            branch_id=loan.branch_id,
            loan_id=loan.id,
            created_by_id=principal.user_id,
            legs=legs,
        )


def _accrual_basis(loan: Loan) -> bool:
    """The loan's product accounts for interest on accrual basis (D-200): read from the terms
    the loan row carries, so a cash-basis collection asks nothing more."""
    return bool(loan.terms.get("interest_accounting") == InterestAccounting.ACCRUAL)


def _receivable_settle(loan: Loan, interest: Decimal) -> Decimal:
    """On an accrual-basis loan holding interest receivable, the part of a collection's
    ``interest`` that settles it (`namma.finance.accrual.receivable_settlement`), taken off the
    loan's receivable (written with the loan at the next flush); 0 otherwise."""
    if loan.interest_receivable <= 0 or interest <= 0 or not _accrual_basis(loan):
        return ZERO
    settled, _ = receivable_settlement(interest=interest, receivable=loan.interest_receivable)
    loan.interest_receivable -= settled
    return settled


def _suspense_release(loan: Loan, interest: Decimal) -> Decimal:
    """On an accrual-basis loan holding interest in suspense (non-performing, D-215), the part
    of the ``interest`` a collection makes income that leaves suspense — all of it, up to what
    is held (the split `receivable_settlement` makes for the receivable) — taken off the loan's
    suspense; 0 otherwise."""
    if loan.interest_suspense <= 0 or interest <= 0 or not _accrual_basis(loan):
        return ZERO
    released, _ = receivable_settlement(interest=interest, receivable=loan.interest_suspense)
    loan.interest_suspense -= released
    return released


async def _receivable_and_suspense_restore(
    session: AsyncSession, loan: Loan, entry_id: int | None
) -> None:
    """A reversed collection's receivable settlement and suspense release are mirrored by its
    reversal: the loan carries that receivable and that suspense again (accrual basis only;
    the next close of business brings both to their targets)."""
    if entry_id is None or not _accrual_basis(loan):
        return
    by_kind = dict(
        (
            await session.execute(
                select(LedgerAccount.kind, func.sum(JournalLine.credit - JournalLine.debit))
                .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
                .where(JournalLine.entry_id == entry_id)
                .where(
                    LedgerAccount.kind.in_(
                        [AccountKind.INTEREST_RECEIVABLE, AccountKind.INTEREST_SUSPENSE]
                    )
                )
                .group_by(LedgerAccount.kind)
            )
        ).all()
    )
    loan.interest_receivable += Decimal(by_kind.get(AccountKind.INTEREST_RECEIVABLE, 0))
    loan.interest_suspense += Decimal(by_kind.get(AccountKind.INTEREST_SUSPENSE, 0))


def _cash_leg(principal: Principal, loan: Loan, method: CollectionMethod, amount: Decimal) -> Leg:
    """Dr the collector's cash (an agent's own cash account; branch cash for a manager or an
    admin at the counter), or the bank for UPI, cheque and bank transfer."""
    if method is not CollectionMethod.CASH:
        return Leg(AccountKind.BANK, debit=amount, loan_id=loan.id)
    if principal.role is Role.AGENT:
        return Leg(
            AccountKind.AGENT_CASH, debit=amount, agent_id=principal.user_id, loan_id=loan.id
        )
    return Leg(AccountKind.BRANCH_CASH, debit=amount, branch_id=loan.branch_id, loan_id=loan.id)


def _balances(loan: Loan) -> dict[str, object]:
    return {
        "status": loan.status.value,
        "outstanding_principal": loan.outstanding_principal,
        "outstanding_interest": loan.outstanding_interest,
        "outstanding_fees": loan.outstanding_fees,
        "outstanding_penalties": loan.outstanding_penalties,
        "total_collected": loan.total_collected,
        "advance_balance": loan.advance_balance,
        "next_due_on": loan.next_due_on,
        "days_past_due": loan.days_past_due,
    }


# --- recording -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Payment:
    """A collection as asked: who, how much, when and how (checked by `_payment_checked`)."""

    principal: Principal
    amount: Decimal
    collected_on: dt.date
    method: CollectionMethod
    reference: str | None
    remarks: str | None
    client_id: str | None


@dataclass
class _Applied:
    """What a payment did to the loan's installments (`_payment_apply`)."""

    placed: list[Placed]
    rows: Mapping[int, InstallmentLike]
    preclosure: bool
    extra_penalty: Decimal = ZERO
    advance: Decimal = ZERO  # held (positive), or the advance a pre-closure used (negative)
    prepaid: Decimal = ZERO  # principal prepaid beyond the dues (part of the principal)
    revision: LoanScheduleRevision | None = None  # the schedule the prepayment rewrote


async def collection_record(
    session: AsyncSession,
    *,
    principal: Principal,
    loan_id: uuid.UUID,
    amount: Decimal,
    collected_on: dt.date,
    method: CollectionMethod,
    reference: str | None,
    remarks: str | None,
    client_id: str | None,
    backdate_days: int,
) -> CollectionResult:
    """Record a repayment of ``amount`` on the loan (see the module docstring).

    422: amount not positive, a date in the future, before the disbursement or beyond the
    back-dating window, a non-cash payment without its reference, an amount above the payoff
    less the advance already held (the most is in the message), money beyond the dues when the
    product refuses it. 409: the loan is not active. 404: unknown or out of scope. Exactly the
    payoff less the advance held (when the payoff is less than everything still scheduled)
    pre-closes, using the advance; money beyond the dues is held as an advance (the product's
    excess policy `advance`), applied by the close of business as installments fall due.

    The steps keep the lock order and the statement order of docs/collections.md: the loan's
    row lock first, the branch's receipt number last.
    """
    pay = _payment_checked(
        principal=principal,
        amount=amount,
        collected_on=collected_on,
        method=method,
        reference=reference,
        remarks=remarks,
        client_id=client_id,
        backdate_days=backdate_days,
    )
    # The row lock: every change to a loan's money takes it first, so concurrent collections on
    # one loan queue here and each allocates against the state the previous one left.
    loan = await loan_locked(session, principal, loan_id)
    if loan.status is LoanStatus.WRITTEN_OFF:
        return await _recovery_record(session, loan=loan, pay=pay)
    _loan_collectable(loan, pay.collected_on)
    await _client_id_unused(session, principal, client_id)
    version = await loan_version(session, loan)
    installments = await installment_states(session, loan.id)
    dues = loan_dues(installments)
    before = _balances(loan)
    payoff = await _payoff_limit(session, loan, version, installments, dues, pay)
    applied = await _payment_apply(session, loan, version, installments, dues, pay, payoff)
    totals = _totals(applied.placed, extra_penalty=applied.extra_penalty)
    totals["principal"] += applied.prepaid
    totals["advance"] = applied.advance
    assert sum(totals.values(), ZERO) == amount, (totals, amount)
    settled = _receivable_settle(loan, totals["interest"])
    released = _suspense_release(loan, totals["interest"] - settled)
    collection, allocations = await _collection_write(
        session, loan, pay, applied, totals, receivable=settled, suspense=released
    )
    await capitalised_settle(
        session, loan=loan, on=pay.collected_on, created_by_id=principal.user_id
    )
    revision = applied.revision
    if revision is not None:
        revision.collection_id = collection.id
        session.add(revision)
        await session.flush()
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="collection.recorded",
        entity_type="collection",
        entity_id=str(collection.id),
        before={"loan": before},
        after={
            "receipt_number": collection.receipt_number,
            "loan_id": loan.id,
            "amount": amount,
            "collected_on": pay.collected_on,
            "method": method.value,
            "preclosure": applied.preclosure,
            **totals,
            **_revision_audit(revision),
            **({"interest_receivable_settled": settled} if settled else {}),
            **({"interest_suspense_released": released} if released else {}),
            "loan": _balances(loan),
        },
    )
    agent_id = principal.user_id if principal.role is Role.AGENT else None
    loan_changed(
        session,
        loan_id=loan.id,
        customer_id=loan.customer_id,
        branch_id=loan.branch_id,
        agent_id=agent_id,
    )
    if agent_id is not None:
        sheet_line_renew(session, agent_id=agent_id, loan_id=loan.id)
    return CollectionResult(
        collection, loan, applied.placed, applied.rows, payoff, allocations, revision
    )


def _revision_audit(revision: LoanScheduleRevision | None) -> dict[str, object]:
    if revision is None:
        return {}
    return {
        "prepaid_principal": revision.prepaid_principal,
        "rescheduled": {
            "policy": revision.policy,
            "installments": [revision.installments_before, revision.installments_after],
            "installment_amount": [revision.installment_before, revision.installment_after],
        },
    }


def _payment_checked(
    *,
    principal: Principal,
    amount: Decimal,
    collected_on: dt.date,
    method: CollectionMethod,
    reference: str | None,
    remarks: str | None,
    client_id: str | None,
    backdate_days: int,
) -> _Payment:
    """The request's own rules, before any row is read or locked."""
    if principal.role is Role.CUSTOMER:  # the permission already refuses; never by scope
        raise NotFoundError("Loan not found")
    if amount <= 0:
        raise InvalidInputError("amount", "The amount must be greater than 0")
    today = today_india()
    if collected_on > today:
        raise InvalidInputError("collected_on", "A collection cannot be dated in the future")
    if collected_on < today - dt.timedelta(days=backdate_days):
        raise InvalidInputError(
            "collected_on", f"A collection may be dated at most {backdate_days} days back"
        )
    reference = reference.strip() if reference and reference.strip() else None
    if method is not CollectionMethod.CASH and reference is None:
        raise InvalidInputError(
            "reference", f"A {method.value.replace('_', ' ')} payment needs its reference"
        )
    return _Payment(
        principal=principal,
        amount=amount,
        collected_on=collected_on,
        method=method,
        reference=reference,
        remarks=remarks.strip() if remarks and remarks.strip() else None,
        client_id=client_id,
    )


def _loan_collectable(loan: Loan, collected_on: dt.date) -> None:
    """Only an active loan takes a collection (409), dated on or after its disbursement."""
    if loan.status is not LoanStatus.ACTIVE:
        raise ConflictError(
            f"Cannot record a collection on a loan that is {loan.status.value}",
            details={"status": loan.status.value},
        )
    assert loan.disbursed_on is not None
    if collected_on < loan.disbursed_on:
        raise InvalidInputError(
            "collected_on",
            f"The loan was disbursed on {loan.disbursed_on.isoformat()}; "
            "a collection cannot be dated before that",
        )


async def _payoff_limit(
    session: AsyncSession,
    loan: Loan,
    version: LoanProductVersion,
    installments: Sequence[InstallmentState],
    dues: Sequence[Due],
    pay: _Payment,
) -> Decimal | None:
    """The payoff the amount is checked against, when it could reach it: 422 above the payoff
    less the advance already held (which pays its part of a pre-closure).

    The payoff is every unpaid principal plus what is due or accrued (never negative): an
    amount that with the advance held is below the unpaid principal can neither exceed it nor
    pay it, and needs no quote (building the schedule for one is most of a small collection's
    arithmetic)."""
    held = loan.advance_balance
    if pay.amount + held < sum((d.principal for d in dues), ZERO):
        return None
    try:
        schedule = await loan_schedule_current(session, loan, version, installments)
        quote = payoff_quote(schedule=schedule, dues=dues, as_of=pay.collected_on)
    except PayoffError as exc:
        raise ConflictError(exc.message) from None
    most = quote.total - held
    if most <= 0:
        raise InvalidInputError(
            "amount",
            f"The advance of {held} already held covers the payoff of {quote.total} as of "
            f"{pay.collected_on.isoformat()}; nothing more can be collected on this loan",
        )
    if pay.amount > most:
        if held:
            raise InvalidInputError(
                "amount",
                f"The amount {pay.amount} is more than the {most} that closes the loan on "
                f"{pay.collected_on.isoformat()} (its payoff of {quote.total} less the advance "
                f"of {held} already held); collect at most {most}",
            )
        raise InvalidInputError(
            "amount",
            f"The amount {pay.amount} is more than the payoff of {quote.total} as of "
            f"{pay.collected_on.isoformat()}; collect at most {quote.total}",
        )
    return quote.total


async def _payment_apply(
    session: AsyncSession,
    loan: Loan,
    version: LoanProductVersion,
    installments: list[InstallmentState],
    dues: Sequence[Due],
    pay: _Payment,
    payoff: Decimal | None,
) -> _Applied:
    """Put the payment on the installments and the loan's balances: exactly the payoff (less
    than everything still scheduled) pre-closes, anything else is allocated by the product's
    strategy. The changed installments and the loan are written."""
    now = dt.datetime.now(dt.UTC)
    scheduled = sum((d.total for d in dues), ZERO)
    held = loan.advance_balance
    if payoff is not None and pay.amount + held == payoff and payoff < scheduled:
        # Paying the payoff pre-closes: future interest (and per-installment fees) are waived;
        # an advance held pays its part.
        settled = await loan_payoff_settle(session, loan=loan, on=pay.collected_on)
        loan_move(loan, LoanMove.PRECLOSE)
        loan.closed_at = now
        loan.total_collected -= held  # the settlement counted the whole payoff
        loan.advance_balance = ZERO
        states = await installment_states(session, loan.id)  # as settled (flushed)
        return _Applied(
            placed=_from_quote(settled),
            rows={i.number: i for i in states},
            preclosure=True,
            extra_penalty=settled.prepayment_penalty,
            advance=-held,
        )
    rows: Mapping[int, InstallmentLike] = {i.number: i for i in installments}
    strategy = loan_terms_of(loan, version).allocation
    placed, advance, prepaid = _allocate(pay.amount, dues, pay.collected_on, strategy)
    unchanged = installment_changes(installments)
    for p in placed:
        _place(rows, p, now)
    revision = None
    if prepaid:
        # The installments paid now are written first; the ones still to fall due are then
        # rewritten for the prepaid principal, and read again for the loan's balances.
        await installment_states_write(session, installments, unchanged)
        revision, _ = await prepayment_reschedule(
            session,
            loan=loan,
            version=version,
            installments=await installment_rows(session, loan.id),
            on=pay.collected_on,
            prepaid=prepaid,
            policy=strategy.excess,
            payoff=payoff,
        )
        installments = await installment_states(session, loan.id)
        rows = {i.number: i for i in installments}
        unchanged = installment_changes(installments)
    balances = loan_balances(installments)
    balances["total_collected"] = loan.total_collected + pay.amount
    if advance:
        balances["advance_balance"] = held + advance
    if sum((balances[f"outstanding_{c}"] for c in OUTSTANDING), ZERO) == 0:
        balances.update(status=loan_move_target(loan.status, LoanMove.CLOSE), closed_at=now)
    await installment_states_write(session, installments, unchanged)
    await loan_columns_write(session, loan, balances)
    return _Applied(
        placed=placed,
        rows=rows,
        preclosure=False,
        advance=advance,
        prepaid=prepaid,
        revision=revision,
    )


async def _collection_write(
    session: AsyncSession,
    loan: Loan,
    pay: _Payment,
    applied: _Applied,
    totals: dict[str, Decimal],
    *,
    receivable: Decimal = ZERO,
    suspense: Decimal = ZERO,
) -> tuple[Collection, list[tuple[CollectionAllocation, InstallmentLike]]]:
    """The journal entry, the receipts job, then the receipt number with the collection and its
    allocation rows — last, because the branch's sequence row stays locked to the commit.
    ``receivable``: the interest receivable the collection settles (accrual basis);
    ``suspense``: the interest in suspense it releases (a non-performing accrual loan)."""
    legs = [
        _cash_leg(pay.principal, loan, pay.method, pay.amount),
        *_income_legs(totals, loan.id, receivable=receivable, suspense=suspense),
    ]
    for leg in legs:
        if leg.debit > 0 or leg.credit > 0:  # journal_post drops the zero legs
            await ledger_account_id(
                session, leg.kind, branch_id=leg.branch_id, agent_id=leg.agent_id
            )
    await session.flush()
    collection_id = uuid.uuid4()
    entry = await journal_post(
        session,
        kind="collection",
        entry_date=pay.collected_on,
        memo=f"Collection on {loan.loan_number}",
        branch_id=loan.branch_id,
        loan_id=loan.id,
        created_by_id=pay.principal.user_id,
        legs=legs,
    )
    # What the customer still has to pay: an advance held pays its part as installments fall due.
    await collection_receipt_defer(
        session,
        collection_id=collection_id,
        remaining=loan_outstanding(loan) - loan.advance_balance,
    )
    prefix = await receipt_prefix(session, loan.branch_id)
    collection = Collection(
        id=collection_id,
        recovery=ZERO,
        loan_id=loan.id,
        branch_id=loan.branch_id,
        collected_by_id=pay.principal.user_id,
        amount=pay.amount,
        collected_on=pay.collected_on,
        method=pay.method,
        reference=pay.reference,
        remarks=pay.remarks,
        client_id=pay.client_id,
        preclosure=applied.preclosure,
        status=CollectionStatus.POSTED,
        journal_entry_id=entry.id,
        prepaid_principal=applied.prepaid,
        **totals,
    )
    allocations = _allocation_rows(collection.id, applied.placed, applied.rows)
    # Everything else is written: the receipt number comes last (`collection_insert_numbered`).
    await collection_insert_numbered(
        session, collection, [a for a, _ in allocations], prefix=prefix
    )
    return collection, allocations


async def _client_id_unused(
    session: AsyncSession, principal: Principal, client_id: str | None
) -> None:
    if client_id is None:
        return
    used = await session.scalar(
        select(Collection.receipt_number)
        .where(Collection.collected_by_id == principal.user_id)
        .where(Collection.client_id == client_id)
    )
    if used is not None:
        raise ConflictError(
            f"Client id {client_id} was already recorded as receipt {used}",
            details={"receipt_number": used},
        )


async def recovery_headroom(session: AsyncSession, loan: Loan) -> Decimal:
    """What may still be recovered on a written-off loan: the principal written off and the
    interest, fees and penalties it owed then, less what was recovered since."""
    written_off = await session.scalar(
        select(func.coalesce(func.sum(JournalLine.debit - JournalLine.credit), 0))
        .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
        .where(LedgerAccount.kind == AccountKind.WRITE_OFF_EXPENSE)
        .where(JournalLine.loan_id == loan.id)
    )
    recovered = await session.scalar(
        select(func.coalesce(func.sum(Collection.recovery), 0))
        .where(Collection.loan_id == loan.id)
        .where(Collection.status == CollectionStatus.POSTED)
    )
    owed = loan.outstanding_interest + loan.outstanding_fees + loan.outstanding_penalties
    return Decimal(written_off or 0) + owed - Decimal(recovered or 0)


async def _recovery_record(session: AsyncSession, *, loan: Loan, pay: _Payment) -> CollectionResult:
    """Money received on a written-off (locked) loan: income (`recovery_income`), not allocated
    to installments (they left the books with the write-off). At most the headroom (422)."""
    principal, amount, collected_on = pay.principal, pay.amount, pay.collected_on
    method, client_id = pay.method, pay.client_id
    await _client_id_unused(session, principal, client_id)
    headroom = await recovery_headroom(session, loan)
    if amount > headroom:
        raise InvalidInputError(
            "amount",
            f"The amount {amount} is more than can still be recovered on this written-off "
            f"loan ({headroom}); collect at most {headroom}",
        )
    collection_id = uuid.uuid4()
    entry = await journal_post(
        session,
        kind="collection.recovery",
        entry_date=collected_on,
        memo=f"Recovery on written-off {loan.loan_number}",
        branch_id=loan.branch_id,
        loan_id=loan.id,
        created_by_id=principal.user_id,
        legs=[
            _cash_leg(principal, loan, method, amount),
            Leg(AccountKind.RECOVERY_INCOME, credit=amount, loan_id=loan.id),
        ],
    )
    await collection_receipt_defer(
        session, collection_id=collection_id, remaining=loan_outstanding(loan)
    )
    prefix = await receipt_prefix(session, loan.branch_id)
    collection = Collection(
        id=collection_id,
        loan_id=loan.id,
        branch_id=loan.branch_id,
        collected_by_id=principal.user_id,
        amount=amount,
        collected_on=collected_on,
        method=method,
        reference=pay.reference,
        remarks=pay.remarks,
        client_id=client_id,
        preclosure=False,
        status=CollectionStatus.POSTED,
        journal_entry_id=entry.id,
        principal=ZERO,
        interest=ZERO,
        fee=ZERO,
        penalty=ZERO,
        recovery=amount,
        advance=ZERO,
        prepaid_principal=ZERO,
    )
    receipt = await collection_insert_numbered(session, collection, prefix=prefix)
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="collection.recovered",
        entity_type="collection",
        entity_id=str(collection.id),
        after={
            "receipt_number": receipt,
            "loan_id": loan.id,
            "amount": amount,
            "collected_on": collected_on,
            "method": method.value,
            "recovery_headroom_after": headroom - amount,
        },
    )
    loan_changed(session, loan_id=loan.id, customer_id=loan.customer_id, branch_id=loan.branch_id)
    return CollectionResult(collection, loan, [], {})


def _allocation_rows(
    collection_id: uuid.UUID, placed: Sequence[Placed], rows: Mapping[int, InstallmentLike]
) -> list[tuple[CollectionAllocation, InstallmentLike]]:
    """A collection's allocation rows (one per installment it paid or waived on), unsaved."""
    added = []
    for p in sorted(placed, key=lambda p: p.number):
        allocation = CollectionAllocation(
            collection_id=collection_id,
            installment_number=p.number,
            installment_id=rows[p.number].id,
            principal=p.principal,
            interest=p.interest,
            fee=p.fee,
            penalty=p.penalty,
            interest_waived=p.interest_waived,
            fee_waived=p.fee_waived,
            penalty_waived=p.penalty_waived,
        )
        added.append((allocation, rows[p.number]))
    return added


# --- reversal ----------------------------------------------------------------------------------


async def collection_reverse(
    session: AsyncSession, *, principal: Principal, collection_id: uuid.UUID, reason: str
) -> CollectionResult:
    """Reverse a posted collection: a reversing journal, the collection kept and marked
    reversed, and the loan's state rebuilt by replaying its remaining collections in the order
    they were recorded (see `_loan_replay`). 409 if already reversed, or if the loan has since
    been refinanced or written off. The receipts it changed are made again, and the loan's
    cached reads go after the commit."""
    result = await _collection_reverse(
        session, principal=principal, collection_id=collection_id, reason=reason
    )
    loan_changed(
        session,
        loan_id=result.loan.id,
        customer_id=result.loan.customer_id,
        branch_id=result.loan.branch_id,
    )
    await receipts_after_reversal(session, collection_id=result.collection.id)
    # The receipt message already went: the customer is told that it no longer counts.
    await notify_collection_reversed(
        session,
        collection=result.collection,
        loan=result.loan,
        remaining=loan_outstanding(result.loan),
        reversed_on=today_india(),
    )
    return result


async def _collection_reverse(
    session: AsyncSession, *, principal: Principal, collection_id: uuid.UUID, reason: str
) -> CollectionResult:
    from namma.collections.queries import collection_in_scope

    reason = reason.strip()
    if not reason:
        raise InvalidInputError("reason", "Say why the collection is reversed")
    found = await collection_in_scope(session, principal, collection_id)
    if found is None:
        raise NotFoundError("Collection not found")
    loan = await loan_locked(session, principal, found.loan_id)
    collection = await session.scalar(
        select(Collection)
        .where(Collection.id == collection_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    assert collection is not None
    if collection.status is CollectionStatus.REVERSED:
        raise ConflictError(
            f"Receipt {collection.receipt_number} was already reversed",
            details={"status": collection.status.value},
        )
    if collection.recovery > 0:
        return await _recovery_reverse(
            session, principal=principal, loan=loan, collection=collection, reason=reason
        )
    if loan.status not in REVERSIBLE_FROM:
        raise ConflictError(
            f"Cannot reverse a collection of a loan that is {loan.status.value}",
            details={"status": loan.status.value},
        )
    before = _balances(loan)
    today = today_india()
    # The collection's split may have changed since it was posted (re-allocations after an
    # earlier reversal): mirror the original entry, then undo what the re-allocations moved,
    # so that everything this collection put on the books comes off.
    posted_split = await _entry_split(session, collection.journal_entry_id)
    reversal = await record_reverse(
        session,
        collection,
        by=principal.user_id,
        reason=reason,
        memo=f"receipt {collection.receipt_number}: {reason}",
        on=today,
    )
    await _reclass_post(
        session,
        principal=principal,
        loan=loan,
        on=today,
        delta={k: posted_split[k] - getattr(collection, k) for k in SPLIT},
        kind="collection.reversal_reallocation",
        memo=f"Receipt {collection.receipt_number}: undo its re-allocations",
    )
    await _receivable_and_suspense_restore(session, loan, collection.journal_entry_id)
    collection.status = CollectionStatus.REVERSED
    await session.flush()
    reallocated = await _loan_replay(
        session, principal=principal, loan=loan, on=today, reversed_now=collection.id
    )
    await capitalised_settle(session, loan=loan, on=today, created_by_id=principal.user_id)
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="collection.reversed",
        entity_type="collection",
        entity_id=str(collection.id),
        before={"status": "posted", "loan": before},
        after={
            "status": "reversed",
            "receipt_number": collection.receipt_number,
            "reason": reason,
            "reversal_entry_id": reversal.id,
            "reallocated_receipts": reallocated,
            "loan": _balances(loan),
        },
    )
    installments = await _installments(session, loan.id)
    return CollectionResult(collection, loan, [], {i.number: i for i in installments})


async def _recovery_reverse(
    session: AsyncSession,
    *,
    principal: Principal,
    loan: Loan,
    collection: Collection,
    reason: str,
) -> CollectionResult:
    """A recovery touched no installment: its journal is mirrored, nothing is replayed."""
    reversal = await record_reverse(
        session,
        collection,
        by=principal.user_id,
        reason=reason,
        memo=f"receipt {collection.receipt_number}: {reason}",
        on=today_india(),
    )
    collection.status = CollectionStatus.REVERSED
    await session.flush()
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="collection.reversed",
        entity_type="collection",
        entity_id=str(collection.id),
        before={"status": "posted"},
        after={
            "status": "reversed",
            "receipt_number": collection.receipt_number,
            "reason": reason,
            "reversal_entry_id": reversal.id,
            "recovery": collection.recovery,
        },
    )
    return CollectionResult(collection, loan, [], {})


async def _loan_replay(
    session: AsyncSession,
    *,
    principal: Principal,
    loan: Loan,
    on: dt.date,
    reversed_now: uuid.UUID,
) -> list[str]:
    """Rebuild the (locked) loan's installments from its schedule, its posted collections and
    its advance applications.

    Every payment is taken off the installments, and so are the waivers of the collections
    still applied (the posted ones and ``reversed_now``; earlier reversals took theirs off);
    then the posted collections and the advance applications are applied again, in the order
    they were first made (``seq``, one sequence for both). A collection is allocated by the
    money core as of its own date (money beyond its dues held as an advance again); a
    pre-closure whose amount, with the advance then held, is still exactly the payoff
    pre-closes again, otherwise it is allocated like any payment. An application applies the
    advance then held to what was due on its date. A collection or an application whose split
    changes gets its rows rewritten and a reclassifying journal entry (between the portfolio,
    the income accounts and the advances held: cash does not move). Returns the receipts
    whose split changed.
    """
    # A prepayment among them rewrote the schedule: put it back as it was before the first one
    # (each prepayment replayed below rewrites it again).
    installments = await schedule_restore(
        session, loan=loan, installments=await _installments(session, loan.id)
    )
    rows = {i.number: i for i in installments}
    collections = list(
        await session.scalars(
            select(Collection)
            .where(Collection.loan_id == loan.id)
            .order_by(Collection.seq)
            .execution_options(populate_existing=True)
        )
    )
    allocations = list(
        await session.scalars(
            select(CollectionAllocation).where(
                CollectionAllocation.collection_id.in_([c.id for c in collections])
            )
        )
    )
    applications: dict[int, list[AdvanceApplication]] = {}
    for application in await session.scalars(
        select(AdvanceApplication)
        .where(AdvanceApplication.loan_id == loan.id)
        .order_by(AdvanceApplication.seq, AdvanceApplication.installment_number)
    ):
        applications.setdefault(application.journal_entry_id, []).append(application)
    _replay_reset(installments, rows, collections, allocations, reversed_now=reversed_now)
    version = await loan_version(session, loan)
    strategy = loan_terms_of(loan, version).allocation
    previous: dict[uuid.UUID, list[CollectionAllocation]] = {}
    for a in allocations:
        previous.setdefault(a.collection_id, []).append(a)
    events: list[tuple[int, Collection | list[AdvanceApplication]]] = [
        (c.seq, c) for c in collections if c.status is CollectionStatus.POSTED
    ]
    events += [(group[0].seq, group) for group in applications.values()]
    events.sort(key=lambda e: e[0])
    reallocated: list[str] = []
    collected = held = ZERO
    preclosed = False
    for _, event in events:
        if not isinstance(event, Collection):
            held = await _replay_application(
                session, principal=principal, loan=loan, on=on, group=event, held=held,
                installments=installments, strategy=strategy,
            )  # fmt: skip
            continue
        c = event
        schedule = loan_schedule_stored(loan, version, installments)
        placed, preclosed, extra_penalty, advance, prepaid = _replay_placement(
            c, installments, schedule, held
        )
        held += advance
        for p in placed:
            _place(rows, p, c.created_at)
        if prepaid:
            installments = await _replay_reschedule(
                session, loan=loan, version=version, installments=installments, collection=c,
                prepaid=prepaid, policy=strategy.excess,
            )  # fmt: skip
            rows = {i.number: i for i in installments}
        collected += c.amount
        old = {
            (a.installment_number, a.principal, a.interest, a.fee, a.penalty)
            for a in previous.get(c.id, [])
        }
        new = {(p.number, p.principal, p.interest, p.fee, p.penalty) for p in placed}
        if (
            old == new
            and c.preclosure == preclosed
            and c.advance == advance
            and c.prepaid_principal == prepaid
        ):
            continue
        reallocated.append(c.receipt_number)
        totals = _totals(placed, extra_penalty=extra_penalty)
        totals["principal"] += prepaid
        totals["advance"] = advance
        c.prepaid_principal = prepaid
        await _reallocation_write(
            session,
            principal=principal,
            loan=loan,
            on=on,
            collection=c,
            placed=placed,
            totals=totals,
            preclosure=preclosed,
            previous=previous.get(c.id, []),
            rows=rows,
        )
    loan.total_collected = collected
    loan.advance_balance = held
    _loan_settle(loan, installments, preclosed=preclosed)
    await session.flush()
    return reallocated


async def _replay_reschedule(
    session: AsyncSession,
    *,
    loan: Loan,
    version: LoanProductVersion,
    installments: list[LoanInstallment],
    collection: Collection,
    prepaid: Decimal,
    policy: ExcessPolicy,
) -> list[LoanInstallment]:
    """A replayed collection's prepayment rewrites the schedule again (and keeps a new
    revision); 409 when it no longer can."""
    try:
        revision, installments = await prepayment_reschedule(
            session,
            loan=loan,
            version=version,
            installments=installments,
            on=collection.collected_on,
            prepaid=prepaid,
            policy=policy,
        )
    except InvalidInputError as exc:
        raise ConflictError(
            f"Receipt {collection.receipt_number} no longer fits the loan ({exc.message}); "
            "reverse it first",
            details={"receipt_number": collection.receipt_number},
        ) from None
    revision.collection_id = collection.id
    session.add(revision)
    return installments


async def _replay_application(
    session: AsyncSession,
    *,
    principal: Principal,
    loan: Loan,
    on: dt.date,
    group: list[AdvanceApplication],
    held: Decimal,
    installments: Sequence[LoanInstallment],
    strategy: AllocationStrategy,
) -> Decimal:
    """Apply the advance ``held`` again as the close of business did on the group's date (one
    journal entry's rows); if what it pays changed, move the difference between the advances
    held and the portfolio and income accounts, and rewrite the rows. Returns what stays held."""
    applied_on = group[0].applied_on
    allocation = advance_apply(
        advance=max(held, ZERO), dues=loan_dues(installments), as_of=applied_on, strategy=strategy
    )
    placed = _from_allocation(allocation.lines)
    rows = {i.number: i for i in installments}
    for p in placed:
        _place(rows, p, group[0].created_at)
    old = {(a.installment_number, a.principal, a.interest, a.fee, a.penalty) for a in group}
    new = {(p.number, p.principal, p.interest, p.fee, p.penalty) for p in placed}
    if old != new:
        before = {c: sum((getattr(a, c) for a in group), ZERO) for c in COMPONENTS}
        after = _totals(placed)
        delta = {c: after[c] - before[c] for c in COMPONENTS}
        delta["advance"] = -sum(delta.values(), ZERO)
        await _reclass_post(
            session,
            principal=principal,
            loan=loan,
            on=on,
            delta=delta,
            kind="advance.reapplication",
            memo=f"Advance applied on {applied_on.isoformat()} to {loan.loan_number} "
            "re-applied after a reversal",
        )
        seq, entry_id = group[0].seq, group[0].journal_entry_id
        for a in group:
            await session.delete(a)
        await session.flush()
        session.add_all(
            AdvanceApplication(
                seq=seq,
                loan_id=loan.id,
                installment_id=rows[p.number].id,
                installment_number=p.number,
                applied_on=applied_on,
                principal=p.principal,
                interest=p.interest,
                fee=p.fee,
                penalty=p.penalty,
                journal_entry_id=entry_id,
            )
            for p in placed
        )
    return held - allocation.amount


def _replay_reset(
    installments: Sequence[LoanInstallment],
    rows: Mapping[int, LoanInstallment],
    collections: Sequence[Collection],
    allocations: Sequence[CollectionAllocation],
    *,
    reversed_now: uuid.UUID,
) -> None:
    """Take every payment off the installments, and the waivers of the collections still
    applied (the posted ones and the one being reversed: earlier reversals took theirs off).
    A Manager's waivers stay."""
    applied = {c.id for c in collections if c.status is CollectionStatus.POSTED} | {reversed_now}
    for a in allocations:
        if a.collection_id not in applied:
            continue
        row = rows[a.installment_number]
        row.interest_waived -= a.interest_waived
        row.fee_waived -= a.fee_waived
        row.penalty_waived -= a.penalty_waived
    for row in installments:
        row.principal_paid = row.interest_paid = row.fee_paid = row.penalty_paid = ZERO
        row.paid_at = None


def _replay_placement(
    c: Collection, installments: Sequence[LoanInstallment], schedule: Schedule, held: Decimal
) -> tuple[list[Placed], bool, Decimal, Decimal, Decimal]:
    """Where a posted collection goes when the loan is replayed, as of its own date, with the
    advance ``held`` then: a pre-closure whose amount with the advance is still exactly the
    payoff pre-closes again (its placement, True, its prepayment penalty, the advance it uses
    as a negative); anything else is allocated like any payment (the advance it holds, the
    principal it prepays); 409 if it no longer fits the loan."""
    dues = loan_dues(installments)
    quote = payoff_quote(schedule=schedule, dues=dues, as_of=c.collected_on)
    scheduled = sum((d.total for d in dues), ZERO)
    if c.preclosure and c.amount + held == quote.total and quote.total < scheduled:
        return _from_quote(quote), True, quote.prepayment_penalty, -held, ZERO
    if c.amount + held > quote.total:
        raise ConflictError(
            f"Receipt {c.receipt_number} no longer fits the loan; reverse it first",
            details={"receipt_number": c.receipt_number},
        )
    placed, advance, prepaid = _allocate(c.amount, dues, c.collected_on, schedule.terms.allocation)
    return placed, False, ZERO, advance, prepaid


async def _reallocation_write(
    session: AsyncSession,
    *,
    principal: Principal,
    loan: Loan,
    on: dt.date,
    collection: Collection,
    placed: Sequence[Placed],
    totals: dict[str, Decimal],
    preclosure: bool,
    previous: Sequence[CollectionAllocation],
    rows: Mapping[int, LoanInstallment],
) -> None:
    """A collection whose split changed: move the difference between the portfolio and the
    income accounts (cash does not move), and rewrite its split and allocation rows."""
    c = collection
    await _reclass_post(
        session,
        principal=principal,
        loan=loan,
        on=on,
        delta={k: totals[k] - getattr(c, k) for k in SPLIT},
        kind="collection.reallocation",
        memo=f"Receipt {c.receipt_number} re-allocated after a reversal",
    )
    for k in SPLIT:
        setattr(c, k, totals[k])
    c.preclosure = preclosure
    for a in previous:
        await session.delete(a)
    await session.flush()
    session.add_all(a for a, _ in _allocation_rows(c.id, placed, rows))


def _loan_settle(loan: Loan, installments: Sequence[LoanInstallment], *, preclosed: bool) -> None:
    """The loan's balances from its installments, and its status where they put it: closed (or
    pre-closed) when nothing is owed, re-opened when something is (`loan_settle_move`)."""
    loan_balances_refresh(loan, installments)
    owed_nothing = loan_outstanding(loan) == 0
    move = loan_settle_move(loan.status, owed_nothing=owed_nothing, preclosed=preclosed)
    if move is not None:
        loan_move(loan, move)
    if owed_nothing:
        loan.closed_at = loan.closed_at or dt.datetime.now(dt.UTC)
        loan.next_due_on = None
    else:
        loan.closed_at = None
