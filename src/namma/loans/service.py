"""The loan lifecycle: apply → approve / reject → disburse → active → closed / written off.

Every transition is its own command with its own permission; an illegal transition is a 409
that names the current state (`namma.loans.status`). Services never commit. Money comes from the
money core only. A command's side effects are its own: the notices it sends and the cache
entries it invalidates (after the commit) are recorded here, in its transaction, never by the
endpoint.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import AuditActor, audit_record
from namma.auth.deps import Principal
from namma.auth.scope import customer_scope
from namma.calendars.queries import branch_calendar
from namma.finance import (
    Due,
    PayoffQuote,
    Schedule,
    ScheduleRow,
    TermsError,
    WorkingCalendar,
    apr_percent,
    generate_schedule,
    monthly_repayment,
    payoff_quote,
    schedule_as_stored,
    schedule_dates,
    schedule_fee_amounts,
)
from namma.finance.owed import (
    loan_balances as owed_balances,
)
from namma.finance.owed import (
    owed_fee,
    owed_interest,
    owed_penalty,
    owed_principal,
)
from namma.finance.owed import paid as paid_total
from namma.finance.owed import waived as waived_total
from namma.finance.terms import LoanTerms
from namma.kit.clock import today_india as today_india  # re-exported: callers import it from here
from namma.kit.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from namma.ledger.service import Leg, journal_post, ledger_account_id
from namma.loans.cache import loan_changed
from namma.loans.capitalised import capitalised_settle
from namma.loans.status import LoanMove, loan_move, loan_move_target
from namma.loans.store import InstallmentLike, loan_locked, number_next
from namma.models import (
    AccountKind,
    AdvanceApplication,
    Branch,
    CollectionAllocation,
    Customer,
    CustomerStatus,
    DisbursementMethod,
    InstallmentStatus,
    KycStatus,
    Loan,
    LoanCharge,
    LoanInstallment,
    LoanPenaltyCharge,
    LoanProduct,
    LoanProductVersion,
    LoanScheduleRevision,
    LoanStatus,
    Role,
)
from namma.notifications.service import (
    DueDateMove,
    notify_due_dates_moved,
    notify_loan_approved,
    notify_loan_disbursed,
)
from namma.products.schemas import ProductTerms, loan_terms_from_stored
from namma.products.service import terms_error_to_input
from namma.provisioning.service import provision_release_legs

ZERO = Decimal("0.00")
BACKDATE_LIMIT = dt.timedelta(days=30)


def loan_terms_of(
    loan: Loan,
    version: LoanProductVersion,
    *,
    contract: tuple[Decimal, int] | None = None,
) -> LoanTerms:
    """The loan's money-core terms; ``contract`` (rate, installments) replaces the loan's
    current ones (a restructured loan's terms as signed, for its KFS)."""
    rate, count = contract or (loan.annual_rate, loan.installments)
    return loan_terms_from_stored(
        loan.terms,
        principal=loan.principal,
        annual_rate=rate,
        installments=count,
        microfinance=version.microfinance,
    )


def loan_schedule_compute(
    loan: Loan,
    version: LoanProductVersion,
    calendar: WorkingCalendar | None = None,
    *,
    contract: tuple[Decimal, int] | None = None,
) -> Schedule:
    """The loan's schedule from its disbursement date (or, before disbursement, as if disbursed
    today — what the KFS shows), its due dates moved by ``calendar`` (its branch's, from
    `calendars.queries.branch_calendar`) if given; ``contract``: see `loan_terms_of`."""
    disbursed_on = loan.disbursed_on or today_india()
    first_due = loan.requested_first_due_on
    if first_due is not None and first_due <= disbursed_on:
        first_due = None
    return generate_schedule(
        loan_terms_of(loan, version, contract=contract),
        disbursed_on=disbursed_on,
        first_due_on=first_due,
        calendar=calendar,
    )


def _row(i: LoanInstallment) -> ScheduleRow:
    return ScheduleRow(
        number=i.number,
        due_date=i.due_date,
        principal=i.principal_due,
        interest=i.interest_due,
        fees=i.fee_due,
        total=i.principal_due + i.interest_due + i.fee_due,
        balance=i.balance_after,
        period_start=i.period_start,
        interest_for_period=i.interest_for_period,
    )


def _as_computed(schedule: Schedule, installments: Sequence[InstallmentLike]) -> bool:
    """Whether the stored installments are still the schedule the terms give (no prepayment
    rewrote them, no calendar moved them): same rows, same dates, same amounts."""
    if len(installments) != len(schedule.rows):
        return False
    return all(
        (i.number, i.due_date, i.principal_due, i.interest_due, i.fee_due)
        == (r.number, r.due_date, r.principal, r.interest, r.fees)
        for i, r in zip(installments, schedule.rows, strict=True)
    )


def loan_schedule_stored(
    loan: Loan, version: LoanProductVersion, installments: Sequence[LoanInstallment]
) -> Schedule:
    """The loan's schedule as it now stands: the terms' schedule, or — after a prepayment
    rescheduled it, or a calendar moved its dates — the stored installments with the loan's
    current regular installment (what a payoff quote and the next reschedule must use)."""
    schedule = loan_schedule_compute(loan, version)
    if _as_computed(schedule, installments):
        return schedule
    return schedule_as_stored(
        schedule,
        [_row(i) for i in installments],
        installment_amount=loan.installment_amount or schedule.installment_amount,
    )


async def loan_schedule_current(
    session: AsyncSession,
    loan: Loan,
    version: LoanProductVersion,
    installments: Sequence[InstallmentLike],
) -> Schedule:
    """`loan_schedule_stored` for the posting path's plain installment states: the full rows
    are read only when a prepayment rescheduled the loan."""
    schedule = loan_schedule_compute(loan, version)
    if _as_computed(schedule, installments):
        return schedule
    return loan_schedule_stored(loan, version, await installment_rows(session, loan.id))


async def installment_rows(session: AsyncSession, loan_id: uuid.UUID) -> list[LoanInstallment]:
    return list(
        await session.scalars(
            select(LoanInstallment)
            .where(LoanInstallment.loan_id == loan_id)
            .order_by(LoanInstallment.number)
        )
    )


def _snapshot(loan: Loan) -> dict[str, object]:
    return {
        "status": loan.status.value,
        "principal": loan.principal,
        "annual_rate": loan.annual_rate,
        "installments": loan.installments,
        "outstanding_principal": loan.outstanding_principal,
    }


async def _monthly_obligations(
    session: AsyncSession, customer_id: uuid.UUID, *, excluding: uuid.UUID | None = None
) -> Decimal:
    """What the customer's open loans already ask per month (installment × periods / 12);
    a loan being refinanced does not count: the top-up pays it off."""
    total = ZERO
    query = (
        select(Loan, LoanProductVersion)
        .join(LoanProductVersion, LoanProductVersion.id == Loan.product_version_id)
        .where(Loan.customer_id == customer_id)
        .where(Loan.status.in_((LoanStatus.APPLIED, LoanStatus.APPROVED, LoanStatus.ACTIVE)))
    )
    if excluding is not None:
        query = query.where(Loan.id != excluding)
    rows = await session.execute(query)
    for loan, version in rows:
        schedule = loan_schedule_compute(loan, version)
        total += monthly_repayment(schedule)
    return total


async def _application_terms(
    session: AsyncSession,
    *,
    product_id: uuid.UUID,
    amount: Decimal,
    annual_rate: Decimal | None,
    installments: int,
) -> tuple[LoanProduct, LoanProductVersion, Decimal]:
    """The product's latest version and the rate, with the amount, rate and installments checked
    against its limits (422 by field)."""
    product = await session.get(LoanProduct, product_id)
    if product is None:
        raise InvalidInputError("product_id", "No such product")
    if not product.is_active:
        raise InvalidInputError("product_id", "This product is no longer offered")
    version = await session.scalar(
        select(LoanProductVersion)
        .where(LoanProductVersion.product_id == product.id)
        .where(LoanProductVersion.version == product.latest_version)
    )
    assert version is not None
    rate = version.default_rate if annual_rate is None else annual_rate
    if not version.min_principal <= amount <= version.max_principal:
        raise InvalidInputError(
            "amount",
            f"This product lends {version.min_principal} to {version.max_principal}",
        )
    if not version.min_rate <= rate <= version.max_rate:
        raise InvalidInputError(
            "annual_rate", f"This product's rate is {version.min_rate} % to {version.max_rate} %"
        )
    if not version.min_installments <= installments <= version.max_installments:
        raise InvalidInputError(
            "installments",
            f"This product has {version.min_installments} to {version.max_installments} "
            "installments",
        )
    return product, version, rate


async def loan_apply(
    session: AsyncSession,
    *,
    principal: Principal,
    customer_id: uuid.UUID,
    product_id: uuid.UUID,
    amount: Decimal,
    annual_rate: Decimal | None,
    installments: int,
    first_due_on: dt.date | None,
    purpose: str | None,
    refinances_id: uuid.UUID | None = None,
) -> Loan:
    # FOR SHARE: a concurrent close of the customer (which locks the row) waits for us, and
    # then sees this application as an open loan.
    customer = await session.scalar(
        select(Customer)
        .where(Customer.id == customer_id)
        .where(customer_scope(principal))
        .with_for_update(read=True)
    )
    if customer is None or principal.role is Role.CUSTOMER:
        raise NotFoundError("Customer not found")
    if customer.status is not CustomerStatus.ACTIVE:
        raise ConflictError("The customer is closed", details={"status": customer.status.value})
    product, version, rate = await _application_terms(
        session,
        product_id=product_id,
        amount=amount,
        annual_rate=annual_rate,
        installments=installments,
    )
    if first_due_on is not None and first_due_on <= today_india():
        raise InvalidInputError("first_due_on", "The first due date must be in the future")
    if first_due_on is not None:
        latest = ProductTerms.model_validate(version.terms).latest_first_due(today_india())
        if first_due_on > latest:
            raise InvalidInputError(
                "first_due_on",
                f"The first due date can be at most one period and the product's grace "
                f"after the disbursement: {latest.isoformat()} if disbursed today",
            )
    if refinances_id is not None:
        await _refinanceable(session, customer_id=customer.id, loan_id=refinances_id)
    loan = Loan(
        branch_id=customer.branch_id,
        customer_id=customer.id,
        product_version_id=version.id,
        status=LoanStatus.APPLIED,
        principal=amount,
        annual_rate=rate,
        installments=installments,
        terms=version.terms,
        requested_first_due_on=first_due_on,
        purpose=purpose,
        applied_by_id=principal.user_id,
        loan_number="",
        refinances_id=refinances_id,
    )
    try:
        schedule = loan_schedule_compute(loan, version)
    except TermsError as exc:
        raise terms_error_to_input(exc) from None
    if version.microfinance:
        income = customer.household_monthly_income
        if income is None or income <= 0:
            raise InvalidInputError(
                "customer_id",
                "Record the customer's household monthly income first (microfinance rule)",
            )
        monthly = monthly_repayment(schedule)
        existing = await _monthly_obligations(session, customer.id, excluding=refinances_id)
        limit = income * version.max_obligation_ratio
        if existing + monthly > limit:
            raise InvalidInputError(
                "amount",
                f"Repayments would be {(existing + monthly).quantize(Decimal('0.01'))} a month, "
                f"above {(version.max_obligation_ratio * 100).normalize():f} % of household income "
                f"({limit.quantize(Decimal('0.01'))})",
            )
    branch = await session.get(Branch, customer.branch_id)
    assert branch is not None
    year = today_india().year
    sequence = await number_next(session, branch_id=branch.id, kind="loan", year=year)
    loan.loan_number = f"{branch.code}-{year}-{sequence:06d}"
    session.add(loan)
    await session.flush()
    for fee in schedule.terms.fees:
        session.add(
            LoanCharge(
                loan_id=loan.id,
                name=fee.name,
                timing=fee.timing.value,
                basis=fee.basis.value,
                value=fee.value,
            )
        )
    await session.flush()
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="loan.applied",
        entity_type="loan",
        entity_id=str(loan.id),
        after={**_snapshot(loan), "loan_number": loan.loan_number, "product": product.code},
    )
    loan_changed(session, loan_id=loan.id, customer_id=loan.customer_id, branch_id=loan.branch_id)
    return loan


@dataclass(frozen=True)
class ApplicationPreview:
    """What an application would give if disbursed today: the schedule and its APR."""

    schedule: Schedule
    apr_percent: Decimal
    annual_rate: Decimal


async def loan_application_preview(
    session: AsyncSession,
    *,
    customer_id: uuid.UUID,
    product_id: uuid.UUID,
    amount: Decimal,
    annual_rate: Decimal | None,
    installments: int,
) -> ApplicationPreview:
    """The schedule and APR of an application as the KFS would show them (disbursed today, on
    the customer's branch's calendar, D-209), with the same checks as `loan_apply`'s terms;
    writes nothing. The caller has checked the customer is in its scope."""
    customer = await session.get(Customer, customer_id)
    if customer is None:
        raise NotFoundError("Customer not found")
    _, version, rate = await _application_terms(
        session,
        product_id=product_id,
        amount=amount,
        annual_rate=annual_rate,
        installments=installments,
    )
    loan = Loan(
        principal=amount,
        annual_rate=rate,
        installments=installments,
        terms=version.terms,
        requested_first_due_on=None,
    )
    # The calendar the KFS reads (`loans.queries.loan_kfs`): the same schedule, to the day.
    calendar = await branch_calendar(session, customer.branch_id, since=today_india())
    try:
        schedule = loan_schedule_compute(loan, version, calendar)
    except TermsError as exc:
        raise terms_error_to_input(exc) from None
    return ApplicationPreview(
        schedule=schedule, apr_percent=apr_percent(schedule), annual_rate=rate
    )


async def loan_withdraw(session: AsyncSession, *, principal: Principal, loan_id: uuid.UUID) -> Loan:
    loan = await loan_locked(session, principal, loan_id)
    loan_move(loan, LoanMove.WITHDRAW)
    loan.withdrawn_at = dt.datetime.now(dt.UTC)
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="loan.withdrawn",
        entity_type="loan",
        entity_id=str(loan.id),
    )
    loan_changed(session, loan_id=loan.id, customer_id=loan.customer_id, branch_id=loan.branch_id)
    return loan


def _check_decider(principal: Principal, loan: Loan) -> None:
    # Maker-checker: whoever applied never decides.
    if loan.applied_by_id == principal.user_id:
        raise PermissionDeniedError("You applied for this loan; another officer must decide it.")


async def loan_approve(session: AsyncSession, *, principal: Principal, loan_id: uuid.UUID) -> Loan:
    loan = await loan_locked(session, principal, loan_id)
    _check_decider(principal, loan)
    approved = loan_move_target(loan.status, LoanMove.APPROVE)
    customer = await session.get(Customer, loan.customer_id)
    assert customer is not None
    if customer.kyc_status is not KycStatus.VERIFIED:
        raise ConflictError(
            "Verify the customer's KYC before approving",
            details={"kyc_status": customer.kyc_status.value},
        )
    loan.status = approved
    loan.decided_by_id = principal.user_id
    loan.decided_at = dt.datetime.now(dt.UTC)
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="loan.approved",
        entity_type="loan",
        entity_id=str(loan.id),
    )
    await notify_loan_approved(session, loan=loan)
    loan_changed(session, loan_id=loan.id, customer_id=loan.customer_id, branch_id=loan.branch_id)
    return loan


async def loan_reject(
    session: AsyncSession, *, principal: Principal, loan_id: uuid.UUID, reason: str
) -> Loan:
    if not reason.strip():
        raise InvalidInputError("reason", "Say why the application is rejected")
    loan = await loan_locked(session, principal, loan_id)
    _check_decider(principal, loan)
    loan_move(loan, LoanMove.REJECT)
    loan.decided_by_id = principal.user_id
    loan.decided_at = dt.datetime.now(dt.UTC)
    loan.rejection_reason = reason.strip()
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="loan.rejected",
        entity_type="loan",
        entity_id=str(loan.id),
        after={"reason": loan.rejection_reason},
    )
    loan_changed(session, loan_id=loan.id, customer_id=loan.customer_id, branch_id=loan.branch_id)
    return loan


async def loan_approval_undo(
    session: AsyncSession, *, principal: Principal, loan_id: uuid.UUID
) -> Loan:
    """Back to `applied` (before disbursement), e.g. when the approval was a mistake."""
    loan = await loan_locked(session, principal, loan_id)
    loan_move(loan, LoanMove.UNDO_APPROVAL)
    loan.decided_by_id = None
    loan.decided_at = None
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="loan.approval_undone",
        entity_type="loan",
        entity_id=str(loan.id),
    )
    loan_changed(session, loan_id=loan.id, customer_id=loan.customer_id, branch_id=loan.branch_id)
    return loan


async def loan_disburse(
    session: AsyncSession,
    *,
    principal: Principal,
    loan_id: uuid.UUID,
    disbursed_on: dt.date,
    method: DisbursementMethod,
    reference: str | None,
    refuse_below_zero: bool = False,
) -> Disbursed:
    """Pay the loan out. The loan row is locked first: of two concurrent disbursements one
    wins, the other finds the loan active and gets 409. One transaction: loan, its schedule
    (the installments, with balances and statuses as of today), charges, journal, audit.

    If the account it is paid from (the branch's cash, or the bank) is below zero afterwards,
    the answer carries a warning; with ``refuse_below_zero`` it is a 409 instead."""
    loan = await loan_locked(session, principal, loan_id)
    active = loan_move_target(loan.status, LoanMove.DISBURSE)
    today = today_india()
    if disbursed_on > today:
        raise InvalidInputError("disbursed_on", "The disbursement date cannot be in the future")
    if disbursed_on < today - BACKDATE_LIMIT:
        raise InvalidInputError("disbursed_on", f"At most {BACKDATE_LIMIT.days} days back")
    if method is not DisbursementMethod.CASH and not (reference and reference.strip()):
        raise InvalidInputError("reference", "A bank transfer or UPI payment needs its reference")
    version = await session.get(LoanProductVersion, loan.product_version_id)
    assert version is not None
    first_due = loan.requested_first_due_on
    if first_due is not None:
        latest = ProductTerms.model_validate(loan.terms).latest_first_due(disbursed_on)
        if first_due > latest:
            raise InvalidInputError(
                "disbursed_on",
                f"The loan's first due date {first_due.isoformat()} is more than one period "
                f"and the product's grace after this date (at most {latest.isoformat()}); "
                "disburse later or apply again",
            )
    loan.disbursed_on = disbursed_on
    calendar = await branch_calendar(session, loan.branch_id, since=disbursed_on)
    try:
        schedule = loan_schedule_compute(loan, version, calendar)
    except TermsError as exc:  # a calendar with no working day within a year of a date
        raise terms_error_to_input(exc) from None
    loan.status = active
    loan.disbursed_by_id = principal.user_id
    loan.disbursed_at = dt.datetime.now(dt.UTC)
    loan.disbursement_method = method
    loan.disbursement_reference = reference.strip() if reference else None
    loan.net_disbursed = schedule.net_disbursement
    loan.installment_amount = schedule.installment_amount
    loan.total_interest = schedule.total_interest
    loan.apr_percent = apr_percent(schedule)
    installments = await loan_schedule_write(session, loan, schedule)

    charges = (await session.scalars(select(LoanCharge).where(LoanCharge.loan_id == loan.id))).all()
    amounts = {fee.name: amount for fee, amount in schedule_fee_amounts(schedule)}
    for charge in charges:
        charge.amount = amounts.get(charge.name, ZERO)

    payout = AccountKind.BRANCH_CASH if method is DisbursementMethod.CASH else AccountKind.BANK
    legs = [
        Leg(AccountKind.LOAN_PORTFOLIO, debit=loan.principal, loan_id=loan.id),
        Leg(AccountKind.FEE_INCOME, credit=schedule.deducted_fees, loan_id=loan.id),
    ]
    paid_out = schedule.net_disbursement
    payoff: PayoffQuote | None = None
    old: Loan | None = None
    if loan.refinances_id is not None:
        # A top-up: its disbursement first pays the old loan off, interest and all.
        old = await session.scalar(
            select(Loan).where(Loan.id == loan.refinances_id).with_for_update(of=Loan)
        )
        assert old is not None
        if old.status is not LoanStatus.ACTIVE:
            raise ConflictError(
                f"The loan to refinance is {old.status.value}; undo the approval and reapply",
                details={"refinanced_status": old.status.value},
            )
        payoff = await loan_payoff_settle(session, loan=old, on=disbursed_on)
        # An advance held on the old loan pays its part of the payoff (the liability goes).
        advance = old.advance_balance
        if payoff.total - advance >= schedule.net_disbursement:
            raise ConflictError(
                f"The old loan's payoff {payoff.total - advance} is not less than this loan's "
                f"net disbursement {schedule.net_disbursement}",
                details={"payoff": str(payoff.total - advance)},
            )
        loan_move(old, LoanMove.REFINANCE)
        paid_out = schedule.net_disbursement - (payoff.total - advance)
        legs += _payoff_legs(payoff, old.id)
        if advance > 0:
            legs.append(Leg(AccountKind.CUSTOMER_ADVANCES, debit=advance, loan_id=old.id))
            old.total_collected -= advance  # counted when it was collected
            old.advance_balance = ZERO
    legs.append(Leg(payout, credit=paid_out, branch_id=loan.branch_id, loan_id=loan.id))
    await journal_post(
        session,
        kind="loan.disbursement",
        entry_date=disbursed_on,
        memo=f"Disbursement of {loan.loan_number}",
        branch_id=loan.branch_id,
        loan_id=loan.id,
        created_by_id=principal.user_id,
        legs=legs,
    )
    if payoff is not None and old is not None:
        await capitalised_settle(
            session, loan=old, on=disbursed_on, created_by_id=principal.user_id
        )
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="loan.disbursed",
        entity_type="loan",
        entity_id=str(loan.id),
        after={
            "disbursed_on": disbursed_on,
            "method": method.value,
            "net_disbursed": schedule.net_disbursement,
            "deducted_fees": schedule.deducted_fees,
            "paid_out": paid_out,
            "refinanced_payoff": payoff.total if payoff else None,
        },
    )
    warnings: list[BelowZero] = []
    if paid_out > 0:
        balance = await _balance_after(session, payout, loan.branch_id)
        if balance < 0:
            below = BelowZero(payout, balance)
            if refuse_below_zero:
                raise ConflictError(
                    below.message,
                    details={"account": payout.value, "balance_after": str(balance)},
                )
            warnings.append(below)
    await notify_loan_disbursed(session, loan=loan, schedule=schedule)
    loan_changed(session, loan_id=loan.id, customer_id=loan.customer_id, branch_id=loan.branch_id)
    if loan.refinances_id is not None:
        loan_changed(
            session,
            loan_id=loan.refinances_id,
            customer_id=loan.customer_id,
            branch_id=loan.branch_id,
        )
    return Disbursed(loan, installments, warnings)


def _payoff_legs(quote: PayoffQuote, loan_id: uuid.UUID) -> list[Leg]:
    """The credits of a payoff: principal leaves the portfolio; interest, fees and penalties
    (and any prepayment penalty) are income."""
    principal = sum((line.principal for line in quote.lines), ZERO)
    interest = sum((line.interest for line in quote.lines), ZERO)
    fees = sum((line.fee for line in quote.lines), ZERO)
    penalties = sum((line.penalty for line in quote.lines), ZERO) + quote.prepayment_penalty
    return [
        Leg(AccountKind.LOAN_PORTFOLIO, credit=principal, loan_id=loan_id),
        Leg(AccountKind.INTEREST_INCOME, credit=interest, loan_id=loan_id),
        Leg(AccountKind.FEE_INCOME, credit=fees, loan_id=loan_id),
        Leg(AccountKind.PENALTY_INCOME, credit=penalties, loan_id=loan_id),
    ]


@dataclass(frozen=True)
class BelowZero:
    """A disbursement left the account it was paid from below zero."""

    account: AccountKind
    balance_after: Decimal

    @property
    def message(self) -> str:
        where = "branch's cash" if self.account is AccountKind.BRANCH_CASH else "bank account"
        return (
            f"The {where} is {self.balance_after} after this disbursement, below zero: record "
            "the money that paid it (a capital investment, a borrowing) or check the books"
        )


@dataclass(frozen=True)
class Disbursed:
    loan: Loan
    installments: list[LoanInstallment]
    warnings: list[BelowZero] = field(default_factory=list)


async def _balance_after(session: AsyncSession, kind: AccountKind, branch_id: uuid.UUID) -> Decimal:
    from namma.ledger.queries import account_balances

    account_id = await ledger_account_id(session, kind, branch_id=branch_id)
    debit, credit = (await account_balances(session, [account_id])).get(account_id, (ZERO, ZERO))
    return debit - credit


async def loan_schedule_write(
    session: AsyncSession, loan: Loan, schedule: Schedule
) -> list[LoanInstallment]:
    """Write the (locked) loan's installments from ``schedule`` ("EMI Gen"), and its balances,
    statuses and days past due as of today: a back-dated disbursement's late installments are
    overdue from the start."""
    written = [
        LoanInstallment(
            loan_id=loan.id,
            branch_id=loan.branch_id,
            number=row.number,
            due_date=row.due_date,
            period_start=row.period_start,
            principal_due=row.principal,
            interest_due=row.interest,
            fee_due=row.fees,
            interest_for_period=row.interest_for_period,
            balance_after=row.balance,
            status=InstallmentStatus.DUE,
        )
        for row in schedule.rows
    ]
    session.add_all(written)
    await session.flush()  # the paid and waived columns get their 0 defaults
    loan_balances_refresh(loan, written)
    await session.flush()
    return written


def installment_blank(loan: Loan, number: int) -> LoanInstallment:
    """A new installment row of a loan, nothing paid, waived or charged on it (a rewritten
    schedule that is longer than the one it replaces: the caller sets its schedule columns)."""
    return LoanInstallment(
        loan_id=loan.id,
        branch_id=loan.branch_id,
        number=number,
        penalty_due=ZERO,
        principal_paid=ZERO,
        interest_paid=ZERO,
        fee_paid=ZERO,
        penalty_paid=ZERO,
        interest_waived=ZERO,
        fee_waived=ZERO,
        penalty_waived=ZERO,
        status=InstallmentStatus.DUE,
    )


# What a stored installment keeps of its schedule row besides its number (compared by the
# regeneration; what a prepayment's revision replaces and restores, `collections.prepayments`).
INSTALLMENT_SCHEDULED = (
    "due_date",
    "period_start",
    "principal_due",
    "interest_due",
    "fee_due",
    "interest_for_period",
    "balance_after",
)


def _scheduled(i: LoanInstallment) -> tuple[object, ...]:
    return tuple(getattr(i, name) for name in ("number", *INSTALLMENT_SCHEDULED))


def _schedule_rows(schedule: Schedule) -> list[tuple[object, ...]]:
    return [
        (
            r.number,
            r.due_date,
            r.period_start,
            r.principal,
            r.interest,
            r.fees,
            r.interest_for_period,
            r.balance,
        )
        for r in schedule.rows
    ]


@dataclass
class ScheduleRegeneration:
    """What a bulk regeneration did, per loan id."""

    regenerated: list[uuid.UUID] = field(default_factory=list)
    unchanged: list[uuid.UUID] = field(default_factory=list)
    skipped: dict[uuid.UUID, str] = field(default_factory=dict)


async def loan_schedules_regenerate(
    session: AsyncSession, *, loan_ids: Sequence[uuid.UUID], actor: AuditActor
) -> ScheduleRegeneration:
    """Rewrite the schedules of many active loans from their terms as stored now (after the
    terms changed: a rescheduling, a holiday added to the calendar). The loans are locked in id
    order, as a collection locks its loan. A loan whose installments already are its schedule is
    left alone (so a second run changes nothing); a loan that is not active, or on which
    anything was paid, waived or charged, is skipped with the reason — moving payments onto a
    new schedule means replaying its collections, which comes with rescheduling. Each rewritten
    loan is audited (`loan.schedule_regenerated`)."""
    result = ScheduleRegeneration()
    wanted = sorted(set(loan_ids))
    loans = {
        loan.id: loan
        for loan in await session.scalars(
            select(Loan).where(Loan.id.in_(wanted)).order_by(Loan.id).with_for_update(of=Loan)
        )
    }
    for loan_id in wanted:
        loan = loans.get(loan_id)
        if loan is None:
            result.skipped[loan_id] = "no such loan"
            continue
        if loan.status is not LoanStatus.ACTIVE:
            result.skipped[loan_id] = f"the loan is {loan.status.value}"
            continue
        version = await session.get(LoanProductVersion, loan.product_version_id)
        assert version is not None
        assert loan.disbursed_on is not None
        calendar = await branch_calendar(session, loan.branch_id, since=loan.disbursed_on)
        schedule = loan_schedule_compute(loan, version, calendar)
        stored = list(
            await session.scalars(
                select(LoanInstallment)
                .where(LoanInstallment.loan_id == loan.id)
                .order_by(LoanInstallment.number)
            )
        )
        if [_scheduled(i) for i in stored] == _schedule_rows(schedule):
            result.unchanged.append(loan_id)
            continue
        if any(paid_total(i) > 0 or waived_total(i) > 0 or i.penalty_due > 0 for i in stored):
            result.skipped[loan_id] = (
                "payments, waivers or penalties stand on its installments; moving them to a new "
                "schedule means replaying its collections"
            )
            continue
        rescheduled = await session.scalar(
            select(func.count())
            .select_from(LoanScheduleRevision)
            .where(LoanScheduleRevision.loan_id == loan.id)
        )
        if rescheduled:
            result.skipped[loan_id] = (
                "a prepayment rescheduled its installments; moving them to a new schedule means "
                "replaying its collections"
            )
            continue
        if loan.advance_balance > 0:
            result.skipped[loan_id] = (
                "payments held as an advance stand for its installments; moving them to a new "
                "schedule means replaying its collections"
            )
            continue
        before = {
            "installments": len(stored),
            "first_due_on": stored[0].due_date if stored else None,
            "installment_amount": loan.installment_amount,
            "total_interest": loan.total_interest,
        }
        for i in stored:
            await session.delete(i)
        await session.flush()
        await loan_schedule_write(session, loan, schedule)
        loan.installment_amount = schedule.installment_amount
        loan.total_interest = schedule.total_interest
        await audit_record(
            session,
            actor=actor,
            action="loan.schedule_regenerated",
            entity_type="loan",
            entity_id=str(loan.id),
            before=before,
            after={
                "installments": len(schedule.rows),
                "first_due_on": schedule.first_due_on,
                "installment_amount": schedule.installment_amount,
                "total_interest": schedule.total_interest,
            },
        )
        loan_changed(
            session, loan_id=loan.id, customer_id=loan.customer_id, branch_id=loan.branch_id
        )
        result.regenerated.append(loan_id)
    return result


@dataclass(frozen=True)
class DueDatesBasis:
    """Where a loan's regular due dates run from: installment ``from_number``'s period starts on
    ``period_start`` and its regular due date is ``first_due_on`` (None: one period later); the
    later installments follow by the terms' frequency. A loan's basis is its disbursement, or
    after a restructuring the installments it rebuilt (D-208)."""

    from_number: int
    period_start: dt.date
    first_due_on: dt.date | None


async def loan_due_dates_basis(
    session: AsyncSession, loan: Loan, installments: Sequence[InstallmentLike]
) -> DueDatesBasis:
    """The basis of an active loan's due dates (`DueDatesBasis`): its latest restructuring's
    rebuilt installments if it was restructured, else its disbursement (and the first due date
    asked for)."""
    assert loan.disbursed_on is not None
    if loan.restructured_on is not None:
        revision = await session.scalar(
            select(LoanScheduleRevision)
            .where(LoanScheduleRevision.loan_id == loan.id)
            .where(LoanScheduleRevision.policy == "restructure")
            .order_by(LoanScheduleRevision.created_at.desc(), LoanScheduleRevision.id.desc())
            .limit(1)
        )
        if revision is not None and revision.regular_first_due_on is not None:
            before = [i.due_date for i in installments if i.number == revision.from_number - 1]
            return DueDatesBasis(
                from_number=revision.from_number,
                period_start=before[0] if before else loan.disbursed_on,
                first_due_on=revision.regular_first_due_on,
            )
    first_due = loan.requested_first_due_on
    return DueDatesBasis(
        from_number=1,
        period_start=loan.disbursed_on,
        first_due_on=first_due if first_due is not None and first_due > loan.disbursed_on else None,
    )


def loan_dates_on_calendar(
    terms: LoanTerms, basis: DueDatesBasis, *, last_number: int, calendar: WorkingCalendar | None
) -> dict[int, tuple[dt.date, dt.date]]:
    """Installment number → (regular date, due date) under ``calendar`` for the installments
    ``basis.from_number`` … ``last_number`` (the money core's `schedule_dates`; those before
    the basis are not its business: they had fallen due when the loan was restructured)."""
    count = last_number - basis.from_number + 1
    if count <= 0:
        return {}
    dates = schedule_dates(
        terms,
        period_start=basis.period_start,
        first_due_on=basis.first_due_on,
        count=count,
        calendar=calendar,
    )
    return {basis.from_number + k: pair for k, pair in enumerate(dates)}


@dataclass
class DueDatesMoved:
    """What a calendar's move did, per loan id: the loans whose dates moved (with the moves),
    those already on their calendar, and those skipped with the reason."""

    regenerated: dict[uuid.UUID, list[DueDateMove]] = field(default_factory=dict)
    unchanged: list[uuid.UUID] = field(default_factory=list)
    skipped: dict[uuid.UUID, str] = field(default_factory=dict)


async def loan_due_dates_move(
    session: AsyncSession,
    *,
    loan_ids: Sequence[uuid.UUID],
    actor: AuditActor,
    holiday: str | None = None,
) -> DueDatesMoved:
    """Move the unpaid installments of many active loans to the due dates their branch's
    calendar gives now (a holiday added or removed, the working weekdays changed: the EMI Gen
    job in calendar mode). Only installments not yet paid and not yet fallen due (due today or
    later, to a date today or later) move; amounts never change — the interest was set at
    disbursement (D-187). The dates are worked out from the loan's basis: its disbursement, or
    for a restructured loan its latest restructuring (D-208). The loans are locked in id order;
    a loan already on its calendar is left alone (a second run changes nothing). Each moved loan
    is audited (`loan.due_dates_moved`), its balances (next due date) refreshed and its customer
    sent the notice (`due_date_moved`, naming ``holiday`` if given)."""
    result = DueDatesMoved()
    today = today_india()
    wanted = sorted(set(loan_ids))
    loans = {
        loan.id: loan
        for loan in await session.scalars(
            select(Loan).where(Loan.id.in_(wanted)).order_by(Loan.id).with_for_update(of=Loan)
        )
    }
    calendars: dict[uuid.UUID, WorkingCalendar] = {}
    for loan_id in wanted:
        loan = loans.get(loan_id)
        if loan is None:
            result.skipped[loan_id] = "no such loan"
            continue
        if loan.status is not LoanStatus.ACTIVE or loan.disbursed_on is None:
            result.skipped[loan_id] = f"the loan is {loan.status.value}"
            continue
        if loan.branch_id not in calendars:
            calendars[loan.branch_id] = await branch_calendar(session, loan.branch_id, since=today)
        version = await session.get(LoanProductVersion, loan.product_version_id)
        assert version is not None
        stored = await installment_rows(session, loan.id)
        if not stored:
            result.unchanged.append(loan_id)
            continue
        # From the loan's current schedule: a restructured loan's dates run from the
        # installments its restructuring rebuilt, never from its original terms (D-208).
        basis = await loan_due_dates_basis(session, loan, stored)
        try:
            target = {
                number: due
                for number, (_, due) in loan_dates_on_calendar(
                    loan_terms_of(loan, version),
                    basis,
                    last_number=stored[-1].number,
                    calendar=calendars[loan.branch_id],
                ).items()
            }
        except TermsError as exc:
            result.skipped[loan_id] = exc.errors[0].message
            continue
        moves: list[DueDateMove] = []
        previous = loan.disbursed_on
        for i in stored:
            new = target.get(i.number)
            if (
                new is not None
                and new != i.due_date
                and i.status is not InstallmentStatus.PAID
                and i.due_date >= today
                and new >= today
            ):
                moves.append(DueDateMove(i.number, i.due_date, new))
                i.due_date = new
                i.period_start = previous
            elif moves and i.status is not InstallmentStatus.PAID:
                i.period_start = previous  # the installment after a moved one starts there
            previous = i.due_date
        if not moves:
            result.unchanged.append(loan_id)
            continue
        await session.flush()
        loan_balances_refresh(loan, stored)
        await audit_record(
            session,
            actor=actor,
            action="loan.due_dates_moved",
            entity_type="loan",
            entity_id=str(loan.id),
            before={"due_dates": {str(m.number): m.old for m in moves}},
            after={"due_dates": {str(m.number): m.new for m in moves}, "holiday": holiday},
        )
        await notify_due_dates_moved(session, loan=loan, moves=moves, holiday=holiday)
        loan_changed(
            session, loan_id=loan.id, customer_id=loan.customer_id, branch_id=loan.branch_id
        )
        result.regenerated[loan_id] = moves
    return result


async def dropped_check(session: AsyncSession, dropped: Sequence[LoanInstallment]) -> None:
    """409 when an installment a shorter term drops is named by history (a reversed
    collection's allocation): it cannot be deleted, and the history must stay."""
    if not dropped:
        return
    ids = [i.id for i in dropped]
    named = await session.scalar(
        select(
            or_(
                *(
                    exists().where(model.installment_id.in_(ids))
                    for model in (CollectionAllocation, AdvanceApplication, LoanPenaltyCharge)
                )
            )
        )
    )
    if named:
        raise ConflictError(
            "An installment this change would drop is named by an earlier (reversed) "
            "payment; the term cannot be reduced on this loan"
        )


async def loan_write_off(
    session: AsyncSession, *, principal: Principal, loan_id: uuid.UUID, reason: str, on: dt.date
) -> Loan:
    """Remove an unrecoverable loan from the portfolio (an expense). Later recoveries are
    income (collections)."""
    if not reason.strip():
        raise InvalidInputError("reason", "A write-off needs a reason")
    loan = await loan_locked(session, principal, loan_id)
    written_off = loan_move_target(loan.status, LoanMove.WRITE_OFF)
    before = _snapshot(loan)
    amount = loan.outstanding_principal
    # The provision held for the loan is released in the same entry (D-193): the write-off's
    # expense stays the principal written off, and the provision already charged comes back.
    provision = loan.provision_held
    if amount > 0 or provision > 0:
        await journal_post(
            session,
            kind="loan.write_off",
            entry_date=on,
            memo=f"Write-off of {loan.loan_number}: {reason.strip()}",
            branch_id=loan.branch_id,
            loan_id=loan.id,
            created_by_id=principal.user_id,
            legs=[
                Leg(AccountKind.WRITE_OFF_EXPENSE, debit=amount, loan_id=loan.id),
                Leg(AccountKind.LOAN_PORTFOLIO, credit=amount, loan_id=loan.id),
                *provision_release_legs(loan.id, provision),
            ],
        )
    loan.provision_held = ZERO
    loan.status = written_off
    loan.written_off_at = dt.datetime.now(dt.UTC)
    loan.write_off_reason = reason.strip()
    loan.outstanding_principal = ZERO
    loan.next_due_on = None
    # Capitalised interest in the principal written off was never money lent (D-196).
    await capitalised_settle(
        session,
        loan=loan,
        on=on,
        created_by_id=principal.user_id,
        against=AccountKind.WRITE_OFF_EXPENSE,
    )
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="loan.written_off",
        entity_type="loan",
        entity_id=str(loan.id),
        before=before,
        after={
            "status": loan.status.value,
            "written_off_principal": amount,
            "provision_released": provision,
            "reason": loan.write_off_reason,
        },
    )
    loan_changed(session, loan_id=loan.id, customer_id=loan.customer_id, branch_id=loan.branch_id)
    return loan


async def customer_open_loans(session: AsyncSession, customer_id: uuid.UUID) -> int:
    return int(
        await session.scalar(
            select(func.count())
            .where(Loan.customer_id == customer_id)
            .where(Loan.status.in_((LoanStatus.APPLIED, LoanStatus.APPROVED, LoanStatus.ACTIVE)))
        )
        or 0
    )


async def _refinanceable(
    session: AsyncSession, *, customer_id: uuid.UUID, loan_id: uuid.UUID
) -> Loan:
    old = await session.get(Loan, loan_id)
    if old is None or old.customer_id != customer_id:
        raise InvalidInputError("refinances_id", "No such loan of this customer")
    if old.status is not LoanStatus.ACTIVE:
        raise ConflictError(
            f"Only an active loan can be topped up; this one is {old.status.value}",
            details={"status": old.status.value},
        )
    pending = await session.scalar(
        select(Loan.loan_number)
        .where(Loan.refinances_id == loan_id)
        .where(Loan.status.in_((LoanStatus.APPLIED, LoanStatus.APPROVED)))
    )
    if pending is not None:
        raise ConflictError(f"Top-up {pending} for this loan is already in progress")
    return old


def loan_dues(installments: Sequence[InstallmentLike]) -> tuple[Due, ...]:
    """What is still owed on each installment, per component (`namma.finance.owed`)."""
    return tuple(
        Due(
            number=i.number,
            due_date=i.due_date,
            principal=owed_principal(i),
            interest=owed_interest(i),
            fee=owed_fee(i),
            penalty=owed_penalty(i),
        )
        for i in installments
    )


async def loan_payoff_settle(session: AsyncSession, *, loan: Loan, on: dt.date) -> PayoffQuote:
    """Pay the (locked) loan off on ``on``: its installments are paid per the money core's
    payoff quote, future interest and fees waived, its balances zeroed. The caller posts the
    journal and sets the loan's final status."""
    version = await session.get(LoanProductVersion, loan.product_version_id)
    assert version is not None
    installments = list(
        (
            await session.scalars(
                select(LoanInstallment)
                .where(LoanInstallment.loan_id == loan.id)
                .order_by(LoanInstallment.number)
                .with_for_update()
            )
        ).all()
    )
    quote = payoff_quote(
        schedule=loan_schedule_stored(loan, version, installments),
        dues=loan_dues(installments),
        as_of=on,
    )
    by_number = {i.number: i for i in installments}
    now = dt.datetime.now(dt.UTC)
    for line in quote.lines:
        row = by_number[line.number]
        row.principal_paid += line.principal
        row.interest_paid += line.interest
        row.fee_paid += line.fee
        row.penalty_paid += line.penalty
    for waived in quote.waived:
        row = by_number[waived.number]
        row.interest_waived += waived.interest
        row.fee_waived += waived.fee
        row.penalty_waived += waived.penalty
    for row in installments:
        row.status = InstallmentStatus.PAID
        row.paid_at = row.paid_at or now
    loan.total_collected += quote.total
    loan.outstanding_principal = ZERO
    loan.outstanding_interest = ZERO
    loan.outstanding_fees = ZERO
    loan.outstanding_penalties = ZERO
    loan.next_due_on = None
    loan.days_past_due = 0
    loan.overdue_amount = ZERO
    loan.balances_as_of = today_india()
    loan.closed_at = now
    await session.flush()
    return quote


def loan_balances(installments: Sequence[InstallmentLike]) -> dict[str, Any]:
    """The loan's denormalised balances from its installments as of today (column → value,
    by the money core's `loan_balances`, with the date they are for: ``balances_as_of``); sets
    each installment's status (and clears ``paid_at`` of one no longer paid) on the way."""
    today = today_india()
    balances = owed_balances(installments, today)
    # Assigned only where they change: an assignment marks an ORM row for the flush to examine,
    # and a collection changes one or two installments of fifty.
    for row, name in zip(installments, balances.statuses, strict=True):
        status = InstallmentStatus(name)
        if row.status is not status:
            row.status = status
        if status is not InstallmentStatus.PAID and row.paid_at is not None:
            row.paid_at = None
    return {
        "outstanding_principal": balances.principal,
        "outstanding_interest": balances.interest,
        "outstanding_fees": balances.fees,
        "outstanding_penalties": balances.penalties,
        "next_due_on": balances.next_due_on,
        "days_past_due": balances.days_past_due,
        "overdue_amount": balances.overdue,
        "balances_as_of": today,
    }


def loan_balances_refresh(loan: Loan, installments: Sequence[InstallmentLike]) -> None:
    """The loan's denormalised balances and each installment's status, from its installments."""
    for name, value in loan_balances(installments).items():
        setattr(loan, name, value)
