"""The back office's loans (``/office/loans…``) and the checker inbox (``/office/inbox``), for
the Admin and the Manager (the queries scope a Manager to the branch: another branch's loan is
a 404 page).

Every action calls the service the JSON API calls; a money action goes through the confirmation
step and carries an idempotency key (a hidden field made when the form is shown): a second
submit of the same form replays the first answer and posts nothing twice (`web.office.act_once`).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from namma.audit.queries import audit_list
from namma.auth.permissions import Permission
from namma.collections import service as collections_service
from namma.collections import waivers
from namma.collections.queries import (
    COLLECTION_SORTS,
    collections_page,
    loan_penalties,
    loan_waivers,
    preclosure_quote,
)
from namma.documents.queries import documents_list
from namma.handover.schemas import HandoverOut
from namma.handover.service import cash_handovers_list
from namma.kit.deps import CacheDep, ReadSessionDep, SessionDep
from namma.kit.errors import AppError, ConflictError
from namma.kit.money import Money
from namma.kit.pagination import Keyset
from namma.ledger.queries import loan_journal
from namma.loans import service as loans_service
from namma.loans.endpoints import DisburseIn, RejectIn
from namma.loans.queries import LOAN_SORTS, loan_detail, loan_in_scope, loan_schedule, loans_page
from namma.models import (
    Branch,
    CollectionMethod,
    KycStatus,
    Loan,
    LoanProductVersion,
    LoanStatus,
    Role,
    User,
    WaiverComponent,
)
from namma.reports.base import ColumnType
from namma.web import i18n, labels
from namma.web.forms import FORM_ERROR, Form, empty_form, form_parse
from namma.web.i18n import N_, gettext
from namma.web.office import act_once, once_key_new
from namma.web.tables import Column, table_csv, table_keyset, table_of
from namma.web.templating import render
from namma.web.viewer import Viewer, viewer_of

router = APIRouter(prefix="/office", include_in_schema=False)

OFFICE = (Role.ADMIN, Role.MANAGER)
LoanReader = Annotated[Viewer, Depends(viewer_of(Permission.LOAN_READ, roles=OFFICE))]
Decider = Annotated[
    Viewer, Depends(viewer_of(Permission.LOAN_DECIDE, roles=OFFICE, limit="writes"))
]
Disburser = Annotated[
    Viewer, Depends(viewer_of(Permission.LOAN_DISBURSE, roles=OFFICE, limit="money"))
]
Collector = Annotated[
    Viewer, Depends(viewer_of(Permission.COLLECTION_RECORD, roles=OFFICE, limit="money"))
]
Waiver = Annotated[Viewer, Depends(viewer_of(Permission.LOAN_WAIVE, roles=OFFICE, limit="money"))]
WriterOff = Annotated[
    Viewer, Depends(viewer_of(Permission.LOAN_WRITE_OFF, roles=OFFICE, limit="money"))
]
Applier = Annotated[Viewer, Depends(viewer_of(Permission.LOAN_APPLY, roles=OFFICE, limit="writes"))]
Restructurer = Annotated[
    Viewer, Depends(viewer_of(Permission.LOAN_RESTRUCTURE, roles=OFFICE, limit="writes"))
]


LOAN_COLUMNS = (
    Column("number", N_("Loan number")),
    Column("customer", N_("Customer"), sortable=False),
    Column("principal", N_("Amount"), numeric=True, phone=False),
    Column("outstanding", N_("Outstanding"), numeric=True),
    Column("status", N_("Status")),
    Column("dpd", N_("Days late"), numeric=True, sortable=False, phone=False),
    Column("started", N_("Start date"), phone=False),
)
COLLECTION_COLUMNS = (
    Column("date", N_("Date")),
    Column("receipt", N_("Receipt"), sortable=False),
    Column("amount", N_("Amount"), numeric=True),
    Column("principal", N_("Principal"), numeric=True, sortable=False, phone=False),
    Column("interest", N_("Interest"), numeric=True, sortable=False, phone=False),
    Column("method", N_("Paid by"), sortable=False, phone=False),
)
LOAN_TABS = (
    ("summary", N_("Summary")),
    ("schedule", N_("Schedule")),
    ("collections", N_("Collections")),
    ("charges", N_("Charges and penalties")),
    ("waivers", N_("Waivers")),
    ("journal", N_("Journal")),
    ("documents", N_("Documents")),
    ("audit", N_("Audit trail")),
)
STATUS_FILTERS: tuple[tuple[str, str], ...] = (
    ("", N_("All")),
    ("applied", N_("Applied")),
    ("approved", N_("Approved")),
    ("active", N_("Active")),
    ("overdue", N_("Overdue")),
    ("closed", N_("Closed")),
    ("preclosed", N_("Paid off early")),
    ("written_off", N_("Written off")),
    ("rejected", N_("Rejected")),
)


# --- idempotent page actions ----------------------------------------------------------------------


def _see_other(location: str) -> Response:
    return RedirectResponse(location, status_code=303)


# --- what a loan's state allows -------------------------------------------------------------------


@dataclass(frozen=True)
class Action:
    name: str
    label: str  # N_() marked
    allowed: bool
    reason: str | None = None  # translated: why not


def _needs(viewer: Viewer, permission: Permission) -> str | None:
    if viewer.principal.can(permission):
        return None
    return gettext(N_("Your role does not have this permission."))


def loan_actions(viewer: Viewer, loan: Loan, *, kyc: KycStatus) -> list[Action]:
    """The actions of the loan's status, each allowed or disabled with the reason (the
    services refuse the same things; this only says so before the click)."""
    out: list[Action] = []
    status = loan.status
    maker = (
        gettext(N_("You applied for this loan; another officer must decide it."))
        if loan.applied_by_id == viewer.principal.user_id
        else None
    )
    if status is LoanStatus.APPLIED:
        reason = _needs(viewer, Permission.LOAN_DECIDE) or maker
        kyc_reason = (
            gettext(N_("Verify the customer's KYC before approving."))
            if kyc is not KycStatus.VERIFIED
            else None
        )
        out.append(
            Action("approve", N_("Approve"), not (reason or kyc_reason), reason or kyc_reason)
        )
        out.append(Action("reject", N_("Reject"), reason is None, reason))
    elif status is LoanStatus.APPROVED:
        reason = _needs(viewer, Permission.LOAN_DISBURSE)
        out.append(Action("disburse", N_("Disburse"), reason is None, reason))
    elif status is LoanStatus.ACTIVE:
        for name, label, permission in (
            ("preclose", N_("Pre-closure quote and settle"), Permission.COLLECTION_RECORD),
            ("waive", N_("Waive"), Permission.LOAN_WAIVE),
            ("write_off", N_("Write off"), Permission.LOAN_WRITE_OFF),
            ("top_up", N_("Top-up"), Permission.LOAN_APPLY),
            ("restructure", N_("Restructure"), Permission.LOAN_RESTRUCTURE),
        ):
            reason = _needs(viewer, permission)
            out.append(Action(name, label, reason is None, reason))
    elif status is LoanStatus.WRITTEN_OFF:
        reason = _needs(viewer, Permission.COLLECTION_RECORD)
        out.append(Action("recover", N_("Record a recovery"), reason is None, reason))
    return out


# --- forms ----------------------------------------------------------------------------------------


class SettleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    total: Money | None = None  # the quote's total, as confirmed
    method: CollectionMethod = CollectionMethod.CASH
    reference: str | None = Field(default=None, max_length=100)


class WaiveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    component: WaiverComponent
    amount: Money
    reason: str = Field(min_length=1, max_length=1000)


class WriteOffForm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=1000)


class RecoverIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: Money
    method: CollectionMethod = CollectionMethod.CASH
    reference: str | None = Field(default=None, max_length=100)


class TopUpIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount: Money
    installments: int = Field(ge=1, le=10_000)
    purpose: str | None = Field(default=None, max_length=500)


@dataclass(frozen=True)
class Confirming:
    action: str
    form: Form[Any]
    rows: Sequence[tuple[str, str]]
    label: str
    question: str


# --- the list -------------------------------------------------------------------------------------


def _status_filter(request: Request) -> tuple[str, LoanStatus | None, bool]:
    text = request.query_params.get("status", "")
    if request.query_params.get("overdue") == "1":
        text = "overdue"
    if text == "overdue":
        return text, None, True
    try:
        return text, LoanStatus(text), False
    except ValueError:
        return "", None, False


@router.get("/loans")
async def loans(request: Request, session: ReadSessionDep, viewer: LoanReader) -> Response:
    status_text, status, overdue = _status_filter(request)
    search = (request.query_params.get("q") or "").strip()[:100]
    branches, branch_id = await _branch_filter(request, session, viewer)
    filters = {"status": status_text, "q": search, "branch": str(branch_id or "")}
    if request.query_params.get("format") == "csv":
        return await _loans_csv(request, session, viewer, status, overdue, search, branch_id)
    keyset, after = table_keyset(request, LOAN_SORTS, default="started")
    page = await loans_page(
        session,
        viewer.principal,
        keyset,
        status=status,
        overdue=overdue,
        search=search,
        branch_id=branch_id,
    )
    table = table_of(
        request, LOAN_COLUMNS, keyset, next_cursor=page.next, after=after, extra=filters
    )
    return render(
        request,
        "office/loans.html",
        {
            "rows": page.rows,
            "table": table,
            "status": status_text,
            "q": search,
            "statuses": STATUS_FILTERS,
            "branches": branches,
            "branch": str(branch_id or ""),
            "csv_query": _query({**filters, "format": "csv"}),
        },
    )


async def _branch_filter(
    request: Request, session: SessionDep, viewer: Viewer
) -> tuple[list[tuple[str, str]], uuid.UUID | None]:
    """The Admin's branch filter (a Manager's queries keep to the branch anyway)."""
    if viewer.role is not Role.ADMIN:
        return [], None
    rows = await session.execute(select(Branch.id, Branch.code, Branch.name).order_by(Branch.code))
    branches = [(str(i), f"{code} {name}") for i, code, name in rows.all()]
    try:
        wanted = uuid.UUID(request.query_params.get("branch") or "")
    except ValueError:
        return branches, None
    return branches, wanted if str(wanted) in {b for b, _ in branches} else None


def _query(values: Mapping[str, str]) -> str:
    from urllib.parse import urlencode

    return urlencode({k: v for k, v in values.items() if v})


async def _loans_csv(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    status: LoanStatus | None,
    overdue: bool,
    search: str,
    branch_id: uuid.UUID | None,
) -> Response:
    keyset, _ = table_keyset(request, LOAN_SORTS, default="started", limit=500)
    rows: list[Sequence[Any]] = []
    while True:
        page = await loans_page(
            session,
            viewer.principal,
            keyset,
            status=status,
            overdue=overdue,
            search=search,
            branch_id=branch_id,
        )
        for row in page.rows:
            rows.append(
                (
                    row.loan_number,
                    row.customer_name,
                    row.status.value,
                    row.principal,
                    row.outstanding_total,
                    row.days_past_due,
                    row.started_on,
                )
            )
        if page.next is None:
            break
        last = page.rows[-1]
        keyset = Keyset(
            sort=keyset.sort,
            descending=keyset.descending,
            after=(last.sort_value, last.id),
            limit=keyset.limit,
        )
    return table_csv(
        "loans.csv",
        (
            ("loan_number", ColumnType.TEXT),
            ("customer", ColumnType.TEXT),
            ("status", ColumnType.TEXT),
            ("principal", ColumnType.MONEY),
            ("outstanding", ColumnType.MONEY),
            ("days_past_due", ColumnType.INT),
            ("started_on", ColumnType.DATE),
        ),
        rows,
    )


# --- the loan page --------------------------------------------------------------------------------


async def _loan_page(
    request: Request,
    session: SessionDep,
    cache: CacheDep,
    viewer: Viewer,
    loan_id: uuid.UUID,
    *,
    forms: Mapping[str, Form[Any]] | None = None,
    confirming: Confirming | None = None,
    status_code: int = 200,
) -> Response:
    tab = request.query_params.get("tab", "summary")
    if tab not in {key for key, _ in LOAN_TABS}:
        tab = "summary"
    loan, customer = await loan_in_scope(session, viewer.principal, loan_id)
    detail: Any = await loan_detail(session, viewer.principal, loan_id, cache=cache)
    context: dict[str, Any] = {
        "loan": detail,
        # Receivable and suspense mean something only where interest is accrued (D-200, D-215).
        "accrual": loan.terms.get("interest_accounting") == "accrual",
        "customer": customer,
        "tab": tab,
        "tabs": LOAN_TABS,
        "actions": loan_actions(viewer, loan, kyc=customer.kyc_status),
        "forms": forms or {},
        "confirming": confirming,
        "blank": empty_form(),
        "idem": once_key_new(),
        "today": loans_service.today_india(),
    }
    if tab == "schedule":
        context["schedule"] = await loan_schedule(session, viewer.principal, loan_id)
    elif tab == "collections":
        keyset, after = table_keyset(request, COLLECTION_SORTS, default="date")
        page = await collections_page(session, viewer.principal, keyset, loan_id=loan_id)
        context["collections"] = page.rows
        context["table"] = table_of(
            request,
            COLLECTION_COLUMNS,
            keyset,
            next_cursor=page.next,
            after=after,
            extra={"tab": "collections"},
        )
    elif tab == "charges":
        context["penalties"] = await loan_penalties(session, viewer.principal, loan_id)
    elif tab == "waivers":
        context["waivers"] = (await loan_waivers(session, viewer.principal, loan_id)).waivers
    elif tab == "journal":
        context["journal"] = await loan_journal(session, loan.id)
    elif tab == "documents":
        context["documents"] = (
            await documents_list(
                session,
                viewer.principal,
                customer_id=None,
                kind=None,
                loan_id=loan_id,
                after=None,
                limit=50,
            )
        ).documents
    elif tab == "audit":
        context["audit_allowed"] = viewer.principal.can(Permission.AUDIT_READ)
        context["audit"] = (
            await audit_list(
                session, branch_id=None, entity_type="loan", entity_id=str(loan_id), limit=100
            )
            if context["audit_allowed"]
            else []
        )
        context["actors"] = await _names(session, {e.actor_id for e in context["audit"]})
    return render(request, "office/loan.html", context, block="tab", status_code=status_code)


async def _names(session: SessionDep, ids: set[uuid.UUID | None]) -> dict[uuid.UUID, str]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = await session.execute(select(User.id, User.name).where(User.id.in_(wanted)))
    return {user_id: name for user_id, name in rows.all()}


@router.get("/loans/{loan_id}")
async def loan(
    request: Request, loan_id: uuid.UUID, session: SessionDep, cache: CacheDep, viewer: LoanReader
) -> Response:
    """The loan as tabs (links that work without script; htmx fetches only the tab), with the
    actions its state allows."""
    return await _loan_page(request, session, cache, viewer, loan_id)


async def _failed(
    request: Request,
    session: SessionDep,
    cache: CacheDep,
    viewer: Viewer,
    loan_id: uuid.UUID,
    action: str,
    form: Form[Any],
) -> Response:
    return await _loan_page(
        request, session, cache, viewer, loan_id, forms={action: form}, status_code=422
    )


@router.post("/loans/{loan_id}/approve")
async def loan_approve(
    request: Request, loan_id: uuid.UUID, session: SessionDep, cache: CacheDep, viewer: Decider
) -> Response:
    form: Form[Any] = empty_form()
    try:
        await loans_service.loan_approve(session, principal=viewer.principal, loan_id=loan_id)
    except AppError as exc:
        await form.failed(session, exc)
        return await _failed(request, session, cache, viewer, loan_id, "approve", form)
    return _see_other(f"/office/loans/{loan_id}")


@router.post("/loans/{loan_id}/reject")
async def loan_reject(
    request: Request, loan_id: uuid.UUID, session: SessionDep, cache: CacheDep, viewer: Decider
) -> Response:
    form = await form_parse(request, RejectIn)
    if form.ok and form.data is not None:
        try:
            await loans_service.loan_reject(
                session, principal=viewer.principal, loan_id=loan_id, reason=form.data.reason
            )
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return _see_other(f"/office/loans/{loan_id}")
    return await _failed(request, session, cache, viewer, loan_id, "reject", form)


async def _acted(
    request: Request,
    session: SessionDep,
    cache: CacheDep,
    viewer: Viewer,
    loan_id: uuid.UUID,
    action: str,
    form: Form[Any],
    act: Callable[[], Awaitable[str]],
) -> Response:
    """A confirmed money action: ``act`` once for the form's key (``act_once``, keyed on the
    validated values), then to where it leads; the service's refusal shows on the form."""
    assert form.data is not None
    try:
        location = await act_once(
            session, viewer, request, form, act, body=form.data.model_dump(mode="json")
        )
    except AppError as exc:
        await form.failed(session, exc)
        return await _failed(request, session, cache, viewer, loan_id, action, form)
    return _see_other(location)


@router.post("/loans/{loan_id}/disburse")
async def loan_disburse(
    request: Request, loan_id: uuid.UUID, session: SessionDep, cache: CacheDep, viewer: Disburser
) -> Response:
    form = await form_parse(request, DisburseIn)
    if form.ok and form.data is not None:
        data = form.data
        if not form.confirmed or form.editing:
            if form.editing:
                return await _failed(request, session, cache, viewer, loan_id, "disburse", form)
            detail: Any = await loan_detail(session, viewer.principal, loan_id, cache=cache)
            rows = [
                (gettext(N_("Loan")), detail["loan_number"]),
                (gettext(N_("Customer")), detail["customer"]["name"]),
                (gettext(N_("Amount")), i18n.money(detail["principal"])),
                (gettext(N_("Disbursed on")), i18n.date(data.disbursed_on)),
                (gettext(N_("Paid by")), gettext(labels.method[data.method.value])),
            ]
            confirm = Confirming(
                "disburse", form, rows, gettext(N_("Disburse")), gettext(N_("Disburse this loan?"))
            )
            return await _loan_page(request, session, cache, viewer, loan_id, confirming=confirm)

        async def act() -> str:
            await loans_service.loan_disburse(
                session,
                principal=viewer.principal,
                loan_id=loan_id,
                disbursed_on=data.disbursed_on,
                method=data.method,
                reference=data.reference,
            )
            return f"/office/loans/{loan_id}?tab=schedule"

        return await _acted(request, session, cache, viewer, loan_id, "disburse", form, act)
    return await _failed(request, session, cache, viewer, loan_id, "disburse", form)


@router.post("/loans/{loan_id}/preclose")
async def loan_preclose(
    request: Request, loan_id: uuid.UUID, session: SessionDep, cache: CacheDep, viewer: Collector
) -> Response:
    """The pre-closure quote as of today; confirmed, the settlement: a collection of exactly
    what is payable (the quote's total less any advance held; the same service as a payment,
    which closes the loan as pre-closed)."""
    form = await form_parse(request, SettleIn)
    if form.ok and form.data is not None:
        data = form.data
        if not form.confirmed or form.editing:
            if form.editing:
                return await _failed(request, session, cache, viewer, loan_id, "preclose", form)
            try:
                quote = await preclosure_quote(
                    session, viewer.principal, loan_id=loan_id, as_of=None
                )
            except AppError as exc:
                await form.failed(session, exc)
                return await _failed(request, session, cache, viewer, loan_id, "preclose", form)
            rows = [
                (gettext(N_("Principal")), i18n.money(quote.principal)),
                (gettext(N_("Interest overdue")), i18n.money(quote.overdue_interest)),
                (gettext(N_("Interest accrued")), i18n.money(quote.accrued_interest)),
                (gettext(N_("Fees overdue")), i18n.money(quote.overdue_fees)),
                (gettext(N_("Fees of installment 1, not yet due")), i18n.money(quote.upfront_fees)),
                (gettext(N_("Penalties")), i18n.money(quote.penalties)),
                (gettext(N_("Prepayment charge")), i18n.money(quote.prepayment_penalty)),
                (gettext(N_("Total to settle today")), i18n.money(quote.total)),
            ]
            if quote.advance_held:
                rows += [
                    (gettext(N_("Advance used")), i18n.money(quote.advance_held)),
                    (gettext(N_("To collect today")), i18n.money(quote.payable)),
                ]
            form.values["total"] = str(quote.payable)  # repeated by the confirmation: checked
            confirm = Confirming(
                "preclose",
                form,
                rows,
                gettext(N_("Settle the loan")),
                gettext(N_("Settle the loan with %(amount)s?"))
                % {"amount": i18n.money(quote.payable)},
            )
            return await _loan_page(request, session, cache, viewer, loan_id, confirming=confirm)
        confirmed_total = data.total

        async def act() -> str:
            quote = await preclosure_quote(session, viewer.principal, loan_id=loan_id, as_of=None)
            if confirmed_total is not None and quote.payable != confirmed_total:
                raise ConflictError(
                    "The amount to settle has changed since the quote; ask for it again."
                )
            # What closes the loan: the payoff less the advance it already holds.
            await collections_service.collection_record(
                session,
                principal=viewer.principal,
                loan_id=loan_id,
                amount=quote.payable,
                collected_on=quote.as_of,
                method=data.method,
                reference=data.reference,
                remarks="Pre-closure settlement",
                client_id=None,
                backdate_days=request.app.state.settings.collection_backdate_days,
            )
            return f"/office/loans/{loan_id}?tab=collections"

        return await _acted(request, session, cache, viewer, loan_id, "preclose", form, act)
    return await _failed(request, session, cache, viewer, loan_id, "preclose", form)


@router.post("/loans/{loan_id}/waive")
async def loan_waive(
    request: Request, loan_id: uuid.UUID, session: SessionDep, cache: CacheDep, viewer: Waiver
) -> Response:
    form = await form_parse(request, WaiveIn)
    if form.ok and form.data is not None:
        data = form.data
        if not form.confirmed or form.editing:
            if form.editing:
                return await _failed(request, session, cache, viewer, loan_id, "waive", form)
            rows = [
                (gettext(N_("Waive")), gettext(labels.waiver_component[data.component.value])),
                (gettext(N_("Amount")), i18n.money(data.amount)),
                (gettext(N_("Reason")), data.reason),
            ]
            confirm = Confirming(
                "waive", form, rows, gettext(N_("Waive")), gettext(N_("Waive this amount?"))
            )
            return await _loan_page(request, session, cache, viewer, loan_id, confirming=confirm)

        async def act() -> str:
            await waivers.loan_waive(
                session,
                principal=viewer.principal,
                loan_id=loan_id,
                component=data.component,
                amount=data.amount,
                reason=data.reason,
            )
            return f"/office/loans/{loan_id}?tab=waivers"

        return await _acted(request, session, cache, viewer, loan_id, "waive", form, act)
    return await _failed(request, session, cache, viewer, loan_id, "waive", form)


@router.post("/loans/{loan_id}/restructure")
async def loan_restructure(
    request: Request,
    loan_id: uuid.UUID,
    session: SessionDep,
    cache: CacheDep,
    viewer: Restructurer,
) -> Response:
    """Ask for a restructuring: its page shows the preview and waits for a checker."""
    from namma.web.pages.office_restructure import restructure_from_loan_page

    form, done = await restructure_from_loan_page(request, session, viewer, loan_id)
    if done is not None:
        return done
    return await _failed(request, session, cache, viewer, loan_id, "restructure", form)


@router.post("/loans/{loan_id}/write-off")
async def loan_write_off(
    request: Request, loan_id: uuid.UUID, session: SessionDep, cache: CacheDep, viewer: WriterOff
) -> Response:
    form = await form_parse(request, WriteOffForm)
    if form.ok and form.data is not None:
        data = form.data
        if not form.confirmed or form.editing:
            if form.editing:
                return await _failed(request, session, cache, viewer, loan_id, "write_off", form)
            detail: Any = await loan_detail(session, viewer.principal, loan_id, cache=cache)
            rows = [
                (gettext(N_("Principal outstanding")), i18n.money(detail["outstanding_principal"])),
                (gettext(N_("Reason")), data.reason),
            ]
            confirm = Confirming(
                "write-off",
                form,
                rows,
                gettext(N_("Write off")),
                gettext(N_("Write this loan off?")),
            )
            return await _loan_page(request, session, cache, viewer, loan_id, confirming=confirm)

        async def act() -> str:
            await loans_service.loan_write_off(
                session,
                principal=viewer.principal,
                loan_id=loan_id,
                reason=data.reason,
                on=loans_service.today_india(),
            )
            return f"/office/loans/{loan_id}?tab=journal"

        return await _acted(request, session, cache, viewer, loan_id, "write_off", form, act)
    return await _failed(request, session, cache, viewer, loan_id, "write_off", form)


@router.post("/loans/{loan_id}/recover")
async def loan_recover(
    request: Request, loan_id: uuid.UUID, session: SessionDep, cache: CacheDep, viewer: Collector
) -> Response:
    """A recovery on a written-off loan: the collection service, which books it as recovery."""
    form = await form_parse(request, RecoverIn)
    if form.ok and form.data is not None:
        data = form.data
        if not form.confirmed or form.editing:
            if form.editing:
                return await _failed(request, session, cache, viewer, loan_id, "recover", form)
            rows = [
                (gettext(N_("Amount")), i18n.money(data.amount)),
                (gettext(N_("Paid by")), gettext(labels.method[data.method.value])),
            ]
            confirm = Confirming(
                "recover",
                form,
                rows,
                gettext(N_("Record the recovery")),
                gettext(N_("Record this recovery?")),
            )
            return await _loan_page(request, session, cache, viewer, loan_id, confirming=confirm)

        async def act() -> str:
            await collections_service.collection_record(
                session,
                principal=viewer.principal,
                loan_id=loan_id,
                amount=data.amount,
                collected_on=loans_service.today_india(),
                method=data.method,
                reference=data.reference,
                remarks="Recovery",
                client_id=None,
                backdate_days=request.app.state.settings.collection_backdate_days,
            )
            return f"/office/loans/{loan_id}?tab=collections"

        return await _acted(request, session, cache, viewer, loan_id, "recover", form, act)
    return await _failed(request, session, cache, viewer, loan_id, "recover", form)


@router.post("/loans/{loan_id}/top-up")
async def loan_top_up(
    request: Request, loan_id: uuid.UUID, session: SessionDep, cache: CacheDep, viewer: Applier
) -> Response:
    """A top-up: an application for the same customer and product that pays this loan off when
    disbursed (the API's ``POST /api/loans`` with ``refinances_id``); it then waits for a
    checker like any application."""
    form = await form_parse(request, TopUpIn)
    if form.ok and form.data is not None:
        data = form.data
        loan, _ = await loan_in_scope(session, viewer.principal, loan_id)
        version = await session.get(LoanProductVersion, loan.product_version_id)
        assert version is not None
        product_id = version.product_id
        try:
            new = await loans_service.loan_apply(
                session,
                principal=viewer.principal,
                customer_id=loan.customer_id,
                product_id=product_id,
                amount=data.amount,
                annual_rate=None,
                installments=data.installments,
                first_due_on=None,
                purpose=data.purpose,
                refinances_id=loan.id,
            )
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return _see_other(f"/office/loans/{new.id}")
    return await _failed(request, session, cache, viewer, loan_id, "top_up", form)


# --- the checker inbox ----------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxLoan:
    loan: Loan
    customer_name: str
    applied_by: str
    mine: bool  # the viewer applied: another officer must decide


async def _inbox_loans(
    session: SessionDep,
    viewer: Viewer,
    *,
    ids: Sequence[uuid.UUID] | None = None,
    status: LoanStatus = LoanStatus.APPLIED,
) -> list[InboxLoan]:
    """Loans in ``status`` in the viewer's scope (applications waiting for a decision; approved
    loans waiting to be disbursed), oldest first."""
    from namma.auth.scope import loan_scope
    from namma.models import Customer

    query = (
        select(Loan, Customer.name, User.name)
        .join(Customer, Customer.id == Loan.customer_id)
        .join(User, User.id == Loan.applied_by_id)
        .where(loan_scope(viewer.principal))
        .where(Loan.status == status)
        .order_by(Loan.applied_at, Loan.loan_number)
        .limit(200)
    )
    if ids is not None:
        query = query.where(Loan.id.in_(ids))
    rows = (await session.execute(query)).all()
    return [
        InboxLoan(loan, customer, applier, loan.applied_by_id == viewer.principal.user_id)
        for loan, customer, applier in rows
    ]


async def _inbox_page(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    *,
    errors: Mapping[str, str] | None = None,
    done: Mapping[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    applications = await _inbox_loans(session, viewer)
    to_disburse: list[InboxLoan] = []
    if viewer.principal.can(Permission.LOAN_DISBURSE):
        to_disburse = await _inbox_loans(session, viewer, status=LoanStatus.APPROVED)
    handovers: list[HandoverOut] = []
    if viewer.principal.can(Permission.HANDOVER_COUNT):
        listed = await cash_handovers_list(
            session,
            viewer.principal,
            business_date=None,
            agent_id=None,
            limit=200,
            status="pending",
        )
        handovers = sorted(
            listed.cash_handovers, key=lambda h: (h.business_date, h.created_at or "")
        )
    from namma.loans.restructure import restructure_pending

    restructurings = await restructure_pending(session, viewer.principal)
    return render(
        request,
        "office/inbox.html",
        {
            "restructurings": restructurings,
            "restructure_by": await _names(session, {r.requested_by_id for r in restructurings}),
            "applications": applications,
            "to_disburse": to_disburse,
            "handovers": handovers,
            "can_decide": viewer.principal.can(Permission.LOAN_DECIDE),
            "errors": errors or {},
            "done": done or {},
            "form": empty_form(),
        },
        status_code=status_code,
    )


@router.get("/inbox")
async def inbox(request: Request, session: SessionDep, viewer: LoanReader) -> Response:
    """Everything waiting for this person, oldest first: applications to decide (their own
    shown, not decidable), approved loans to disburse, cash hand-overs to count."""
    return await _inbox_page(request, session, viewer)


@router.post("/inbox/{loan_id}/approve")
async def inbox_approve(
    request: Request, loan_id: uuid.UUID, session: SessionDep, viewer: Decider
) -> Response:
    """Approve in place: an htmx request gets the row back, saying what happened."""
    try:
        await loans_service.loan_approve(session, principal=viewer.principal, loan_id=loan_id)
    except AppError as exc:
        form: Form[Any] = empty_form()
        await form.failed(session, exc)
        return await _inbox_row(
            request, session, viewer, loan_id, error=next(iter(form.errors.values()))
        )
    return await _inbox_row(request, session, viewer, loan_id, done=gettext(N_("Approved")))


@router.post("/inbox/{loan_id}/reject")
async def inbox_reject(
    request: Request, loan_id: uuid.UUID, session: SessionDep, viewer: Decider
) -> Response:
    form = await form_parse(request, RejectIn)
    if form.ok and form.data is not None:
        try:
            await loans_service.loan_reject(
                session, principal=viewer.principal, loan_id=loan_id, reason=form.data.reason
            )
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return await _inbox_row(request, session, viewer, loan_id, done=gettext(N_("Rejected")))
    message = next(iter(form.errors.values()))
    return await _inbox_row(request, session, viewer, loan_id, error=message, reject_error=True)


async def _inbox_row(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    loan_id: uuid.UUID,
    *,
    done: str | None = None,
    error: str | None = None,
    reject_error: bool = False,
) -> Response:
    """The row after an action (htmx), or the whole inbox (without script)."""
    from namma.web.templating import is_partial

    if not is_partial(request):
        if error is None:
            return _see_other("/office/inbox")
        return await _inbox_page(
            request, session, viewer, errors={str(loan_id): error}, status_code=422
        )
    loan, customer = await loan_in_scope(session, viewer.principal, loan_id)
    applier = await session.get(User, loan.applied_by_id)
    item = InboxLoan(
        loan,
        customer.name,
        applier.name if applier else "",
        loan.applied_by_id == viewer.principal.user_id,
    )
    return render(
        request,
        "office/inbox.html",
        {
            "item": item,
            "done": {str(loan_id): done} if done else {},
            "errors": {str(loan_id): error} if error else {},
            "reject_error": reject_error,
            "can_decide": True,
        },
        block="row",
        status_code=422 if error else 200,
    )


@router.post("/inbox/approve")
async def inbox_bulk_approve(request: Request, session: SessionDep, viewer: Decider) -> Response:
    """Approve many applications at once: all of them or, if one is refused, none (the
    refusal is shown on its row)."""
    posted = await request.form()
    ids: list[uuid.UUID] = []
    for value in posted.getlist("loan_id"):
        try:
            ids.append(uuid.UUID(str(value)))
        except ValueError:
            continue
    if not ids:
        return await _inbox_page(
            request,
            session,
            viewer,
            errors={FORM_ERROR: gettext(N_("Choose the applications to approve."))},
            status_code=422,
        )
    for loan_id in ids:
        try:
            await loans_service.loan_approve(session, principal=viewer.principal, loan_id=loan_id)
        except AppError as exc:
            form: Form[Any] = empty_form()
            await form.failed(session, exc)
            return await _inbox_page(
                request,
                session,
                viewer,
                errors={
                    str(loan_id): next(iter(form.errors.values())),
                    FORM_ERROR: gettext(N_("Nothing was approved: one application was refused.")),
                },
                status_code=422,
            )
    return _see_other(f"/office/inbox?approved={len(ids)}")
