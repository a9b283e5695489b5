"""Restructuring active loans, with a maker-checker step (docs/money.md §3, D-195…D-197).

A maker asks (`restructure_request`): one loan, or every active loan of a village of a branch
(natural-calamity relief), under one change — a new next due date, a moratorium of N periods,
a new rate, term or installment. The money core rebuilds the installments still to fall due
(`namma.finance.restructure_schedule`); the request keeps that preview. Another officer decides
(`restructure_approve` / `restructure_reject`); whoever asked never decides.

An approval is one transaction for the whole request: each loan is locked (in id order) and
computed again; if any loan's schedule is no longer what the preview shows (a payment came in,
a day passed a due date) nothing is written and the answer is 409 naming the loan. Otherwise,
per loan: the replaced installments are kept in a `LoanScheduleRevision` (policy
``restructure``), the installments rewritten, the loan flagged (`restructured_on`,
`restructure_reason`), interest a moratorium capitalises posted (Dr loan portfolio, Cr interest
capitalised — cash basis: not income until received, D-196), audited, and the customer
notified. Services never commit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import audit_record
from namma.auth.deps import Principal
from namma.auth.scope import loan_scope
from namma.calendars.queries import branch_calendar
from namma.finance import (
    Restructure,
    Restructured,
    RestructureKind,
    TermsError,
    restructure_schedule,
)
from namma.finance.owed import paid as paid_total
from namma.finance.owed import waived as waived_total
from namma.kit.clock import today_india
from namma.kit.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from namma.ledger.service import Leg, journal_post
from namma.loans.cache import loan_changed
from namma.loans.service import (
    INSTALLMENT_SCHEDULED,
    dropped_check,
    installment_blank,
    installment_rows,
    loan_balances_refresh,
    loan_dates_on_calendar,
    loan_due_dates_basis,
    loan_schedule_stored,
    loan_terms_of,
)
from namma.loans.store import loan_locked
from namma.models import (
    AccountKind,
    Customer,
    Loan,
    LoanInstallment,
    LoanProductVersion,
    LoanRestructureRequest,
    LoanScheduleRevision,
    LoanStatus,
    RestructureStatus,
    Role,
)
from namma.notifications.service import notify_loan_restructured
from namma.products.schemas import ProductTerms

ZERO = Decimal("0.00")
PARAM_OF = {
    RestructureKind.NEXT_DUE_DATE: "next_due_on",
    RestructureKind.MORATORIUM: "periods",
    RestructureKind.RATE: "annual_rate",
    RestructureKind.TERM: "installments",
    RestructureKind.INSTALLMENT: "installment_amount",
}


def restructure_change(
    kind: RestructureKind, params: dict[str, Any], version: LoanProductVersion
) -> Restructure:
    """The money core's change from a request's stored ``params`` (strings) and the product
    version's moratorium rule."""
    name = PARAM_OF[kind]
    raw = params.get(name)
    if raw is None:
        raise InvalidInputError(name, f"A {kind.value} restructuring needs {name}")
    value: Any
    if name == "next_due_on":
        value = dt.date.fromisoformat(str(raw))
    elif name in ("periods", "installments"):
        value = int(raw)
    else:
        value = Decimal(str(raw))
    treatment = ProductTerms.model_validate(version.terms).moratorium_interest
    return Restructure(kind=kind, moratorium_interest=treatment, **{name: value})


def _row_json(r: Any) -> dict[str, str | int]:
    return {
        "number": r.number,
        "due_date": r.due_date.isoformat(),
        "principal": str(r.principal),
        "interest": str(r.interest),
        "fees": str(r.fees),
        "total": str(r.total),
        "balance": str(r.balance),
    }


async def _compute(
    session: AsyncSession,
    *,
    loan: Loan,
    installments: list[LoanInstallment],
    kind: RestructureKind,
    params: dict[str, Any],
    on: dt.date,
) -> tuple[Restructured, dict[str, Any]]:
    """The loan's schedule after the change, as of ``on``, and its preview (JSON). 409 when the
    loan cannot be restructured as it stands; 422 when the change does not apply."""
    if loan.status is not LoanStatus.ACTIVE:
        raise ConflictError(
            f"Only an active loan can be restructured; {loan.loan_number} is {loan.status.value}"
        )
    version = await session.get(LoanProductVersion, loan.product_version_id)
    assert version is not None
    change = restructure_change(kind, params, version)
    future = [i for i in installments if i.due_date > on]
    if not future:
        raise ConflictError(f"{loan.loan_number} has no installment left to fall due")
    if any(paid_total(i) > 0 or waived_total(i) > 0 or i.penalty_due > 0 for i in future):
        raise ConflictError(
            f"An installment of {loan.loan_number} still to fall due was already paid on or "
            "waived: restructure it after its next due date"
        )
    kept = len(installments) - len(future)
    balance = sum((i.principal_due for i in future), ZERO)
    schedule = loan_schedule_stored(loan, version, installments)
    # The rebuilt dates go on the branch's calendar, from the regular date of the first row
    # rebuilt (not a date a holiday moved it to), as the loan's own dates do (D-208).
    calendar = await branch_calendar(session, loan.branch_id, since=on)
    try:
        regular, _ = loan_dates_on_calendar(
            loan_terms_of(loan, version),
            await loan_due_dates_basis(session, loan, installments),
            last_number=future[0].number,
            calendar=calendar,
        ).get(future[0].number, (future[0].due_date, future[0].due_date))
        result = restructure_schedule(
            schedule=schedule,
            paid_through=kept,
            balance=balance,
            change=change,
            calendar=calendar,
            regular_next_due_on=regular,
        )
    except TermsError as exc:
        first = exc.errors[0]
        raise InvalidInputError(first.field, f"{loan.loan_number}: {first.message}") from None
    rows = result.rows
    preview = {
        "loan_id": str(loan.id),
        "loan_number": loan.loan_number,
        "from_number": result.from_number,
        "principal_restructured": str(balance),
        "capitalised_interest": str(result.capitalised_interest),
        # The loan's rate and count as they stood (the first restructuring's are the contract's,
        # what its Key Facts Statement keeps showing).
        "contract_rate": str(loan.annual_rate),
        "contract_installments": loan.installments,
        "annual_rate_before": str(loan.annual_rate),
        "annual_rate_after": str(result.annual_rate),
        "installment_before": str(loan.installment_amount or schedule.installment_amount),
        "installment_after": str(result.schedule.installment_amount),
        "installments_before": len(installments),
        "installments_after": len(result.schedule.rows),
        "next_due_on": rows[0].due_date.isoformat(),
        "maturity_before": installments[-1].due_date.isoformat(),
        "maturity_after": rows[-1].due_date.isoformat(),
        "interest_before": str(sum((i.interest_due for i in future), ZERO)),
        "interest_after": str(sum((r.interest for r in rows), ZERO)),
        "rows": [_row_json(r) for r in rows],
    }
    return result, preview


def _params_clean(kind: RestructureKind, params: dict[str, Any]) -> dict[str, Any]:
    name = PARAM_OF[kind]
    value = params.get(name)
    if value is None or value == "":
        raise InvalidInputError(name, f"A {kind.value} restructuring needs {name}")
    return {name: value.isoformat() if isinstance(value, dt.date) else str(value)}


async def _pending_for(session: AsyncSession, loan_ids: Sequence[uuid.UUID]) -> str | None:
    """The loan number of one of these loans already in a pending request, if any (one
    statement for a whole village)."""
    keys = [str(i) for i in loan_ids]
    previews = await session.scalars(
        select(LoanRestructureRequest.preview["loans"])
        .where(LoanRestructureRequest.status == RestructureStatus.PENDING.value)
        .where(LoanRestructureRequest.preview["loans"].has_any(postgresql.array(keys)))
    )
    for loans in previews:
        for key in keys:
            if key in loans:
                return str(loans[key]["loan_number"])
    return None


def village_key(village: str) -> str:
    return " ".join(village.split()).casefold()


async def village_loans(
    session: AsyncSession, principal: Principal, *, branch_id: uuid.UUID, village: str
) -> list[Loan]:
    """The active loans in the caller's scope of the branch's customers living in
    ``village`` (spaces and case ignored), in id order."""
    return list(
        await session.scalars(
            select(Loan)
            .join(Customer, Customer.id == Loan.customer_id)
            .where(Loan.branch_id == branch_id)
            .where(Loan.status == LoanStatus.ACTIVE)
            .where(
                func.lower(func.regexp_replace(func.trim(Customer.village), r"\s+", " ", "g"))
                == village_key(village)
            )
            .where(loan_scope(principal))
            .order_by(Loan.id)
        )
    )


async def restructure_request(
    session: AsyncSession,
    *,
    principal: Principal,
    kind: RestructureKind,
    params: dict[str, Any],
    reason: str,
    loan_id: uuid.UUID | None = None,
    village: str | None = None,
    branch_id: uuid.UUID | None = None,
    on: dt.date | None = None,
) -> LoanRestructureRequest:
    """A pending request with its preview. One loan (``loan_id``), or a village of a branch:
    every active loan of its customers; a loan that cannot be restructured as it stands is
    left out with the reason (``preview.skipped``). Nothing is changed on any loan."""
    if not reason.strip():
        raise InvalidInputError("reason", "Say why the loan is restructured")
    if (loan_id is None) == (village is None or not village.strip()):
        raise InvalidInputError("loan_id", "Name one loan or one village")
    on = on or today_india()
    clean = _params_clean(kind, params)
    loans_preview: dict[str, Any] = {}
    skipped: dict[str, str] = {}
    if loan_id is not None:
        loan = await session.scalar(select(Loan).where(Loan.id == loan_id, loan_scope(principal)))
        if loan is None:
            raise NotFoundError("Loan not found")
        _, loans_preview[str(loan.id)] = await _compute(
            session,
            loan=loan,
            installments=await installment_rows(session, loan.id),
            kind=kind,
            params=clean,
            on=on,
        )
        branch = loan.branch_id
    else:
        assert village is not None
        branch_of = principal.branch_id if principal.role is not Role.ADMIN else branch_id
        if branch_of is None:
            raise InvalidInputError("branch_id", "Name the branch of the village")
        if principal.role is not Role.ADMIN and branch_id not in (None, principal.branch_id):
            raise NotFoundError("Branch not found")
        branch = branch_of
        found = await village_loans(session, principal, branch_id=branch, village=village)
        if not found:
            raise InvalidInputError("village", f"No active loan in the village {village.strip()}")
        for loan in found:
            try:
                _, loans_preview[str(loan.id)] = await _compute(
                    session,
                    loan=loan,
                    installments=await installment_rows(session, loan.id),
                    kind=kind,
                    params=clean,
                    on=on,
                )
            except (ConflictError, InvalidInputError) as exc:
                skipped[loan.loan_number] = str(exc.message)
        if not loans_preview:
            raise InvalidInputError(
                "village",
                "No loan of this village can be restructured: "
                + "; ".join(f"{n}: {why}" for n, why in skipped.items()),
            )
    pending = await _pending_for(session, [uuid.UUID(k) for k in loans_preview])
    if pending is not None:
        raise ConflictError(f"A restructuring of {pending} is already waiting for a decision")
    request = LoanRestructureRequest(
        branch_id=branch,
        loan_id=loan_id,
        village=" ".join(village.split()) if village is not None and loan_id is None else None,
        kind=kind.value,
        params=clean,
        reason=reason.strip(),
        status=RestructureStatus.PENDING.value,
        preview={"on": on.isoformat(), "loans": loans_preview, "skipped": skipped},
        loan_count=len(loans_preview),
        requested_by_id=principal.user_id,
    )
    session.add(request)
    await session.flush()
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="loan.restructure_requested",
        entity_type="loan_restructure_request",
        entity_id=str(request.id),
        after={
            "kind": kind.value,
            "params": clean,
            "reason": request.reason,
            "loan_id": str(loan_id) if loan_id else None,
            "village": request.village,
            "loans": request.loan_count,
            "skipped": skipped,
        },
    )
    return request


async def restructure_get(
    session: AsyncSession, principal: Principal, request_id: uuid.UUID, *, lock: bool = False
) -> LoanRestructureRequest:
    """The request, if its branch is in the caller's scope (404 otherwise)."""
    query = select(LoanRestructureRequest).where(LoanRestructureRequest.id == request_id)
    if principal.role is not Role.ADMIN:
        query = query.where(LoanRestructureRequest.branch_id == principal.branch_id)
    if lock:
        query = query.with_for_update()
    request = await session.scalar(query)
    if request is None:
        raise NotFoundError("Restructuring request not found")
    return request


def _check_decider(principal: Principal, request: LoanRestructureRequest) -> None:
    # Maker-checker: whoever asked never decides.
    if request.requested_by_id == principal.user_id:
        raise PermissionDeniedError(
            "You asked for this restructuring; another officer must decide it."
        )
    if request.status != RestructureStatus.PENDING.value:
        raise ConflictError(
            f"This restructuring is already {request.status}", details={"status": request.status}
        )


def _snapshot(i: LoanInstallment) -> dict[str, Any]:
    return {"number": i.number, **{name: str(getattr(i, name)) for name in INSTALLMENT_SCHEDULED}}


async def _loan_rewrite(
    session: AsyncSession,
    *,
    principal: Principal,
    request: LoanRestructureRequest,
    loan: Loan,
    installments: list[LoanInstallment],
    result: Restructured,
    on: dt.date,
) -> None:
    """Write the (locked) loan's restructured schedule, its revision, flag, journal, audit
    and notice."""
    rebuilt = {r.number: r for r in result.rows}
    future = [i for i in installments if i.number >= result.from_number]
    before = {
        "installments": len(installments),
        "installment_amount": loan.installment_amount,
        "annual_rate": loan.annual_rate,
        "next_due_on": loan.next_due_on,
        "outstanding_principal": loan.outstanding_principal,
        "outstanding_interest": loan.outstanding_interest,
    }
    session.add(
        LoanScheduleRevision(
            loan_id=loan.id,
            restructure_id=request.id,
            policy="restructure",
            prepaid_principal=ZERO,
            from_number=result.from_number,
            installments_before=len(installments),
            installments_after=len(result.schedule.rows),
            installment_before=loan.installment_amount or ZERO,
            installment_after=result.schedule.installment_amount,
            replaced=[_snapshot(i) for i in future],
            regular_first_due_on=result.regular_first_due_on,
        )
    )
    dropped = [i for i in future if i.number not in rebuilt]
    if dropped:
        await dropped_check(session, dropped)
    by_number = {i.number: i for i in future}
    rows: list[LoanInstallment] = [i for i in installments if i.number < result.from_number]
    for number, row in rebuilt.items():
        i = by_number.get(number)
        if i is None:
            i = installment_blank(loan, number)
            session.add(i)
        i.due_date, i.period_start = row.due_date, row.period_start
        i.principal_due, i.interest_due, i.fee_due = row.principal, row.interest, row.fees
        i.interest_for_period, i.balance_after = row.interest_for_period, row.balance
        rows.append(i)
    for i in dropped:
        await session.delete(i)
    await session.flush()
    loan.installment_amount = result.schedule.installment_amount
    loan.annual_rate = result.annual_rate
    loan.installments = len(result.schedule.rows)
    loan.total_interest = result.schedule.total_interest
    loan.restructured_on = on
    loan.restructure_reason = request.reason
    # A new restructuring starts a new year of probation (D-210).
    loan.restructure_upgraded_on = None
    loan_balances_refresh(loan, rows)
    capitalised = result.capitalised_interest
    if capitalised > 0:
        await journal_post(
            session,
            kind="loan.restructure",
            entry_date=on,
            memo=f"Interest capitalised by the restructuring of {loan.loan_number}",
            branch_id=loan.branch_id,
            loan_id=loan.id,
            created_by_id=principal.user_id,
            legs=[
                Leg(AccountKind.LOAN_PORTFOLIO, debit=capitalised, loan_id=loan.id),
                Leg(AccountKind.INTEREST_CAPITALISED, credit=capitalised, loan_id=loan.id),
            ],
        )
    await session.flush()
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="loan.restructured",
        entity_type="loan",
        entity_id=str(loan.id),
        before=before,
        after={
            "request_id": str(request.id),
            "kind": request.kind,
            "params": request.params,
            "installments": loan.installments,
            "installment_amount": loan.installment_amount,
            "annual_rate": loan.annual_rate,
            "next_due_on": loan.next_due_on,
            "outstanding_principal": loan.outstanding_principal,
            "outstanding_interest": loan.outstanding_interest,
            "capitalised_interest": capitalised,
            "restructured_on": on,
        },
    )
    await notify_loan_restructured(
        session,
        loan=loan,
        request_id=request.id,
        schedule=result.schedule,
        from_number=result.from_number,
    )
    loan_changed(session, loan_id=loan.id, customer_id=loan.customer_id, branch_id=loan.branch_id)


async def restructure_approve(
    session: AsyncSession, *, principal: Principal, request_id: uuid.UUID, on: dt.date | None = None
) -> LoanRestructureRequest:
    """Approve and write every loan of the request, or nothing (see the module docstring)."""
    request = await restructure_get(session, principal, request_id, lock=True)
    _check_decider(principal, request)
    on = on or today_india()
    kind = RestructureKind(request.kind)
    loans_preview: dict[str, Any] = request.preview["loans"]
    for key in sorted(loans_preview):
        loan = await loan_locked(session, principal, uuid.UUID(key))
        installments = await installment_rows(session, loan.id)
        try:
            result, preview = await _compute(
                session,
                loan=loan,
                installments=installments,
                kind=kind,
                params=request.params,
                on=on,
            )
        except (ConflictError, InvalidInputError) as exc:
            raise ConflictError(
                f"{exc.message} — nothing was restructured; reject this request and ask again",
                details={"loan_number": loan.loan_number},
            ) from None
        if preview != loans_preview[key]:
            raise ConflictError(
                f"The schedule of {loan.loan_number} changed since the request was made — "
                "nothing was restructured; reject this request and ask again",
                details={"loan_number": loan.loan_number},
            )
        await _loan_rewrite(
            session,
            principal=principal,
            request=request,
            loan=loan,
            installments=installments,
            result=result,
            on=on,
        )
    request.status = RestructureStatus.APPROVED.value
    request.decided_by_id = principal.user_id
    request.decided_at = dt.datetime.now(dt.UTC)
    request.decided_on = on
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="loan.restructure_approved",
        entity_type="loan_restructure_request",
        entity_id=str(request.id),
        after={"loans": request.loan_count, "decided_on": on},
    )
    return request


async def restructure_reject(
    session: AsyncSession, *, principal: Principal, request_id: uuid.UUID, reason: str
) -> LoanRestructureRequest:
    if not reason.strip():
        raise InvalidInputError("reason", "Say why the restructuring is rejected")
    request = await restructure_get(session, principal, request_id, lock=True)
    _check_decider(principal, request)
    request.status = RestructureStatus.REJECTED.value
    request.decided_by_id = principal.user_id
    request.decided_at = dt.datetime.now(dt.UTC)
    request.rejection_reason = reason.strip()
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="loan.restructure_rejected",
        entity_type="loan_restructure_request",
        entity_id=str(request.id),
        after={"reason": request.rejection_reason},
    )
    return request


async def loan_contract_terms(session: AsyncSession, loan: Loan) -> tuple[Decimal, int] | None:
    """A restructured loan's rate and number of installments as signed (before its first
    restructuring), or None if it was never restructured."""
    if loan.restructured_on is None:
        return None
    first = await session.scalar(
        select(LoanRestructureRequest.preview["loans"][str(loan.id)])
        .where(LoanRestructureRequest.status == RestructureStatus.APPROVED.value)
        .where(LoanRestructureRequest.preview["loans"].has_key(str(loan.id)))
        .order_by(LoanRestructureRequest.decided_at)
        .limit(1)
    )
    if not first:
        return None
    return Decimal(first["contract_rate"]), int(first["contract_installments"])


async def restructure_pending(
    session: AsyncSession, principal: Principal, *, loan_id: uuid.UUID | None = None
) -> list[LoanRestructureRequest]:
    """Pending requests in the caller's scope, oldest first (the checker inbox); with
    ``loan_id``, those that include that loan."""
    query = (
        select(LoanRestructureRequest)
        .where(LoanRestructureRequest.status == RestructureStatus.PENDING.value)
        .order_by(LoanRestructureRequest.requested_at)
    )
    if principal.role is not Role.ADMIN:
        query = query.where(LoanRestructureRequest.branch_id == principal.branch_id)
    if loan_id is not None:
        query = query.where(LoanRestructureRequest.preview["loans"].has_key(str(loan_id)))
    return list(await session.scalars(query))
