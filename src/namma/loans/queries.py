"""Reads of loans, scoped in the query (`loan_scope`: out of scope answers like unknown, 404),
answered as the typed models of `namma.loans.schemas`."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, cast, exists, func, literal_column, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.auth.deps import Principal
from namma.auth.scope import loan_scope
from namma.calendars.queries import branch_calendar
from namma.config import Settings
from namma.finance import apr_percent, periods_per_year, schedule_fee_amounts
from namma.finance.owed import loan_outstanding
from namma.kit.cache import Cache, cache_get_or_load, shape_of
from namma.kit.db import table_of
from namma.kit.errors import ConflictError, NotFoundError
from namma.kit.pagination import Keyset, KeysetPage, SortColumn, keyset_page, keyset_select
from namma.kit.sqltext import expression_of
from namma.loans.cache import LOAN_TTL_SECONDS, loan_key
from namma.loans.schemas import (
    ChargeOut,
    InstallmentOut,
    KeyFactsStatement,
    KfsBorrower,
    KfsCharge,
    KfsLender,
    KfsProduct,
    LoanDetail,
    LoanList,
    LoanOut,
    ProjectedInstallment,
    ScheduleOut,
    ScheduleRevisionOut,
)
from namma.loans.service import loan_schedule_compute, today_india
from namma.models import (
    Branch,
    Collection,
    Customer,
    Loan,
    LoanCharge,
    LoanInstallment,
    LoanProduct,
    LoanProductVersion,
    LoanScheduleRevision,
    LoanStatus,
)

# The Key Facts Statement exists from approval on.
KFS_FROM = (
    LoanStatus.APPROVED,
    LoanStatus.ACTIVE,
    LoanStatus.CLOSED,
    LoanStatus.PRECLOSED,
    LoanStatus.REFINANCED,
    LoanStatus.WRITTEN_OFF,
)


async def loan_in_scope(
    session: AsyncSession, principal: Principal, loan_id: uuid.UUID
) -> tuple[Loan, Customer]:
    """The loan and its customer, if the loan is in the caller's scope (else 404)."""
    row = (
        await session.execute(
            select(Loan, Customer)
            .join(Customer, Customer.id == Loan.customer_id)
            .where(Loan.id == loan_id)
            .where(loan_scope(principal))
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError("Loan not found")
    return row[0], row[1]


# --- the API's reads: Core statements, rows mapped straight into the answers ---------------------
# A read answers rows, not ORM objects: no identity map, no unit of work, nothing loaded lazily
# (D-170). Each is one statement; two for a loan not in the cache (its scope, then the loan with
# its charges) and for a schedule not written yet (projected from the ORM loan and version).

_LOANS = table_of(Loan)
_CUSTOMERS = table_of(Customer)
_INSTALLMENTS = table_of(LoanInstallment)
_CHARGES = table_of(LoanCharge)

# The columns `LoanOut.fields_of` reads, named as the `Loan` attributes. Of the terms only the
# frequency is answered, from its own column: no list or loan read joins the terms (D-212).
LOAN_ROW_COLUMNS = (
    *(
        _LOANS.c[name]
        for name in (
            "id",
            "loan_number",
            "status",
            "customer_id",
            "branch_id",
            "product_version_id",
            "principal",
            "annual_rate",
            "installments",
            "frequency",
            "purpose",
            "applied_by_id",
            "applied_at",
            "decided_by_id",
            "decided_at",
            "rejection_reason",
            "disbursed_on",
            "disbursement_method",
            "disbursement_reference",
            "net_disbursed",
            "installment_amount",
            "total_interest",
            "apr_percent",
            "outstanding_principal",
            "outstanding_interest",
            "outstanding_fees",
            "outstanding_penalties",
            "total_collected",
            "restructured_on",
            "restructure_reason",
            "advance_balance",
            "interest_receivable",
            "interest_suspense",
            "next_due_on",
            "days_past_due",
            "write_off_reason",
            "refinances_id",
        )
    ),
    _CUSTOMERS.c.name.label("customer_name"),
)
_LOAN_ROWS = select(*LOAN_ROW_COLUMNS).select_from(
    _LOANS.join(_CUSTOMERS, _CUSTOMERS.c.id == _LOANS.c.customer_id)
)
_CHARGE_COLUMNS = tuple(_CHARGES.c[name] for name in ("name", "timing", "basis", "value", "amount"))
_INSTALLMENT_COLUMNS = tuple(
    _INSTALLMENTS.c[name]
    for name in (
        "number",
        "due_date",
        "principal_due",
        "interest_due",
        "fee_due",
        "penalty_due",
        "balance_after",
        "principal_paid",
        "interest_paid",
        "fee_paid",
        "penalty_paid",
        "status",
    )
)


async def loans_list(
    session: AsyncSession,
    principal: Principal,
    *,
    status: LoanStatus | None,
    customer_id: uuid.UUID | None,
    branch_id: uuid.UUID | None,
    after: str | None,
    limit: int,
) -> LoanList:
    """Loans in the caller's scope, newest loan number first; ``next`` is the cursor. One
    statement."""
    query = _LOAN_ROWS.where(loan_scope(principal, _LOANS.c))
    if status is not None:
        query = query.where(_LOANS.c.status == status)
    if customer_id is not None:
        query = query.where(_LOANS.c.customer_id == customer_id)
    if branch_id is not None:
        query = query.where(_LOANS.c.branch_id == branch_id)
    if after is not None:
        query = query.where(_LOANS.c.loan_number < after)
    rows = (await session.execute(query.order_by(_LOANS.c.loan_number.desc()).limit(limit))).all()
    return LoanList(
        loans=[LoanOut.of(row, row.customer_name) for row in rows],
        next=rows[-1].loan_number if len(rows) == limit else None,
    )


_LOAN_DETAIL_SHAPE = shape_of(LoanDetail)


async def loan_detail(
    session: AsyncSession, principal: Principal, loan_id: uuid.UUID, *, cache: Cache
) -> dict[str, Any]:
    """The loan with its charges (`LoanDetail`, cached for a minute as JSON; the scope is
    checked on every call). One statement when cached (the scope), two when not (the loan
    with its charges, one row per charge)."""
    found = await session.scalar(
        select(_LOANS.c.id).where(_LOANS.c.id == loan_id, loan_scope(principal, _LOANS.c))
    )
    if found is None:
        raise NotFoundError("Loan not found")

    async def load() -> dict[str, Any]:
        rows = (
            await session.execute(
                select(*LOAN_ROW_COLUMNS, *_CHARGE_COLUMNS)
                .select_from(
                    _LOANS.join(_CUSTOMERS, _CUSTOMERS.c.id == _LOANS.c.customer_id).outerjoin(
                        _CHARGES, _CHARGES.c.loan_id == _LOANS.c.id
                    )
                )
                .where(_LOANS.c.id == loan_id)
            )
        ).all()
        if not rows:  # gone since the scope's statement
            raise NotFoundError("Loan not found")
        charges = [ChargeOut.of(row) for row in rows if row.name is not None]
        loan = rows[0]
        detail = LoanDetail(**LoanOut.fields_of(loan, loan.customer_name), charges=charges)
        return detail.model_dump(mode="json")

    result: dict[str, Any] = await cache_get_or_load(
        cache, loan_key(loan_id), ttl=LOAN_TTL_SECONDS, load=load, shape=_LOAN_DETAIL_SHAPE
    )
    return result


async def loan_schedule(
    session: AsyncSession, principal: Principal, loan_id: uuid.UUID
) -> ScheduleOut:
    """The installments (written with the disbursement): one statement, the loan in scope
    with its installments. Before disbursement: the projected schedule (as if disbursed
    today), from the loan and its product version. Reads only."""
    rows = (
        await session.execute(
            select(
                _LOANS.c.disbursed_on,
                exists().where(LoanScheduleRevision.loan_id == _LOANS.c.id).label("rescheduled"),
                *_INSTALLMENT_COLUMNS,
            )
            .select_from(_LOANS.outerjoin(_INSTALLMENTS, _INSTALLMENTS.c.loan_id == _LOANS.c.id))
            .where(_LOANS.c.id == loan_id, loan_scope(principal, _LOANS.c))
            .order_by(_INSTALLMENTS.c.number)
        )
    ).all()
    if not rows:
        raise NotFoundError("Loan not found")
    if rows[0].disbursed_on is not None:
        return ScheduleOut(
            projected=False,
            installments=[InstallmentOut.of(row) for row in rows if row.number is not None],
            # A second statement only for a loan a prepayment rescheduled (few are).
            rescheduled=(
                await loan_schedule_revisions(session, loan_id) if rows[0].rescheduled else []
            ),
        )
    # Not disbursed yet (an application): the money core projects it from the loan's terms.
    loan, version = (
        await session.execute(
            select(Loan, LoanProductVersion)
            .join(LoanProductVersion, LoanProductVersion.id == Loan.product_version_id)
            .where(Loan.id == loan_id)
        )
    ).one()
    calendar = await branch_calendar(session, loan.branch_id, since=today_india())
    schedule = loan_schedule_compute(loan, version, calendar)
    return ScheduleOut(projected=True, installments=ProjectedInstallment.rows(schedule))


async def loan_schedule_revisions(
    session: AsyncSession, loan_id: uuid.UUID
) -> list[ScheduleRevisionOut]:
    """The prepayments that rewrote the loan's schedule (their collections posted; a reversal
    drops its own), oldest first."""
    rows = await session.execute(
        select(LoanScheduleRevision, Collection.receipt_number, Collection.collected_on)
        .join(Collection, Collection.id == LoanScheduleRevision.collection_id)
        .where(LoanScheduleRevision.loan_id == loan_id)
        .order_by(Collection.seq)
    )
    return [
        ScheduleRevisionOut(
            collection_id=r.collection_id,
            receipt_number=receipt_number,
            collected_on=collected_on,
            policy=r.policy,  # a check constraint holds it to the two
            prepaid_principal=r.prepaid_principal,
            installments_before=r.installments_before,
            installments_after=r.installments_after,
            installment_before=r.installment_before,
            installment_after=r.installment_after,
        )
        for r, receipt_number, collected_on in rows
    ]


async def loan_kfs(
    session: AsyncSession, principal: Principal, loan_id: uuid.UUID, *, settings: Settings
) -> KeyFactsStatement:
    """The Key Facts Statement (RBI), from approval on (409 before)."""
    loan, customer = await loan_in_scope(session, principal, loan_id)
    if loan.status not in KFS_FROM:
        raise ConflictError(
            "The Key Facts Statement is available once the loan is approved",
            details={"status": loan.status.value},
        )
    version = await session.get(LoanProductVersion, loan.product_version_id)
    assert version is not None
    product = await session.get(LoanProduct, version.product_id)
    branch = await session.get(Branch, loan.branch_id)
    assert product is not None and branch is not None
    # On the branch's working calendar, as the disbursement writes it (D-186). A restructured
    # loan's KFS stays the one it was signed with (its first restructuring's "before"); the
    # restructured schedule is the loan's schedule.
    from namma.loans.restructure import loan_contract_terms

    calendar = await branch_calendar(
        session, loan.branch_id, since=loan.disbursed_on or today_india()
    )
    contract = await loan_contract_terms(session, loan)
    schedule = loan_schedule_compute(loan, version, calendar, contract=contract)
    terms = schedule.terms
    return KeyFactsStatement(
        lender=KfsLender(name=settings.lender_name, branch=f"{branch.code} {branch.name}"),
        borrower=KfsBorrower(id=customer.id, name=customer.name, phone=customer.phone),
        loan_number=loan.loan_number,
        product=KfsProduct(code=product.code, name=product.name, version=version.version),
        sanctioned_amount=terms.principal,
        charges=[
            KfsCharge(name=fee.name, when=fee.timing.value, amount=amount)
            for fee, amount in schedule_fee_amounts(schedule)
        ],
        deducted_at_disbursement=schedule.deducted_fees,
        net_disbursed=schedule.net_disbursement,
        annual_rate_percent=terms.annual_rate,
        interest_method=terms.interest_method.value,
        apr_percent=apr_percent(schedule),
        installments=len(schedule.rows),
        frequency=terms.frequency.value,
        installments_per_year=periods_per_year(terms),
        installment_amount=schedule.installment_amount,
        total_interest=schedule.total_interest,
        total_fees_in_installments=schedule.total_fees,
        total_repayable=schedule.total_amount,
        first_due_on=schedule.first_due_on,
        maturity_on=schedule.maturity_date,
        projected=loan.disbursed_on is None,
        penal_charges=loan.terms.get("penalty"),
        prepayment=(
            "No prepayment penalty (microfinance loan)"
            if version.microfinance
            else f"{terms.prepayment_penalty_percent} % of the principal prepaid"
        ),
        grievance_contact=settings.grievance_contact,
        schedule=ProjectedInstallment.rows(schedule),
    )


# What the loan still owes, every component: the money core's one definition, read as SQL.
OUTSTANDING_TOTAL = expression_of(loan_outstanding, _LOANS.c)
# A loan starts on its disbursement; one not disbursed yet, on its application.
# ``models.loan.STARTED_ON_SQL`` (its index serves the lists' default order): the zone is a
# literal, not a parameter, so that a prepared statement's generic plan still matches the index.
STARTED_ON = func.coalesce(
    _LOANS.c.disbursed_on,
    cast(func.timezone(literal_column("'Asia/Kolkata'"), _LOANS.c.applied_at), Date),
)

LOAN_SORTS: dict[str, SortColumn] = {
    "number": SortColumn("number", _LOANS.c.loan_number, str),
    "principal": SortColumn("principal", _LOANS.c.principal, Decimal),
    "outstanding": SortColumn("outstanding", OUTSTANDING_TOTAL, Decimal),
    "started": SortColumn("started", STARTED_ON, dt.date.fromisoformat),
    "status": SortColumn("status", _LOANS.c.status, LoanStatus),
}


async def loans_page(
    session: AsyncSession,
    principal: Principal,
    keyset: Keyset,
    *,
    customer_id: uuid.UUID | None = None,
    status: LoanStatus | None = None,
    overdue: bool = False,
    search: str | None = None,
    branch_id: uuid.UUID | None = None,
) -> KeysetPage[Any]:
    """Loans in the caller's scope as rows (id, loan_number, principal, annual_rate,
    frequency, status, days_past_due, customer_name, outstanding_total, started_on,
    sort_value), one statement for any page. Filters: ``status``; ``overdue`` (active loans
    with days past due); ``search`` (the loan number — as typed, any case — or a part of the
    customer's name, or their phone); ``branch_id``."""
    loans, customers = _LOANS.c, _CUSTOMERS.c
    query = (
        select(
            loans.id,
            loans.loan_number,
            loans.principal,
            loans.annual_rate,
            loans.frequency,
            loans.status,
            loans.days_past_due,
            customers.name.label("customer_name"),
            OUTSTANDING_TOTAL.label("outstanding_total"),
            STARTED_ON.label("started_on"),
            keyset.sort.column.label("sort_value"),
        )
        .select_from(_LOANS.join(_CUSTOMERS, customers.id == loans.customer_id))
        .where(loan_scope(principal, loans))
    )
    if customer_id is not None:
        query = query.where(loans.customer_id == customer_id)
    if status is not None:
        query = query.where(loans.status == status)
    if overdue:
        query = query.where(loans.status == LoanStatus.ACTIVE, loans.days_past_due > 0)
    if branch_id is not None:
        query = query.where(loans.branch_id == branch_id)
    text = (search or "").strip()
    if text:
        query = query.where(
            or_(
                func.upper(loans.loan_number) == text.upper(),
                customers.name.icontains(text, autoescape=True),
                customers.phone.contains(text, autoescape=True),
            )
        )
    rows = (await session.execute(keyset_select(query, keyset, loans.id))).all()
    return keyset_page(rows, keyset, lambda row: (row.sort_value, row.id))
