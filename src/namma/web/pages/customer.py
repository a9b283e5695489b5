"""The customer's portal (``/customer…``), phone first: dashboard, loans, a loan's page (summary,
schedule, payments, charges; its Key Facts Statement), payments, documents (receipts and
monthly statements as PDF). Every figure comes from the services and queries the JSON API uses,
in the customer's scope (another customer's loan is a 404 page).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from namma.auth.permissions import Permission
from namma.collections.queries import COLLECTION_SORTS, collections_page
from namma.documents import queries as documents
from namma.documents import service as documents_service
from namma.documents.endpoints import StatementIn, document_pdf_response
from namma.kit.deps import CacheDep, SessionDep
from namma.kit.errors import AppError, NotFoundError
from namma.loans.queries import LOAN_SORTS, loan_detail, loan_schedule, loans_page
from namma.models import DocumentKind, DocumentStatus, Role
from namma.reports.dashboard import dashboard_cached
from namma.web import i18n
from namma.web.charts import bar_chart
from namma.web.forms import Form, empty_form, form_parse
from namma.web.i18n import N_, gettext
from namma.web.tables import Column, table_keyset, table_of
from namma.web.templating import render
from namma.web.viewer import Viewer, viewer_of

router = APIRouter(prefix="/customer", include_in_schema=False)


CUSTOMER = (Role.CUSTOMER,)
DashboardReader = Annotated[Viewer, Depends(viewer_of(Permission.DASHBOARD_READ, roles=CUSTOMER))]
LoanReader = Annotated[Viewer, Depends(viewer_of(Permission.LOAN_READ, roles=CUSTOMER))]
PaymentReader = Annotated[Viewer, Depends(viewer_of(Permission.COLLECTION_READ, roles=CUSTOMER))]
DocumentReader = Annotated[Viewer, Depends(viewer_of(Permission.DOCUMENT_READ, roles=CUSTOMER))]
DocumentRequester = Annotated[
    Viewer, Depends(viewer_of(Permission.DOCUMENT_READ, roles=CUSTOMER, limit="writes"))
]

LOAN_COLUMNS = (
    Column("number", N_("Loan number")),
    Column("principal", N_("Amount borrowed"), numeric=True, phone=False),
    Column("rate", N_("Interest rate"), numeric=True, sortable=False, phone=False),
    Column("frequency", N_("Repayment"), sortable=False, phone=False),
    Column("outstanding", N_("Still to pay"), numeric=True),
    Column("status", N_("Status")),
    Column("started", N_("Start date"), phone=False),
)
PAYMENT_COLUMNS = (
    Column("date", N_("Date")),
    Column("loan", N_("Loan"), sortable=False, phone=False),
    Column("amount", N_("Amount"), numeric=True),
    Column("principal", N_("Principal"), numeric=True, sortable=False, phone=False),
    Column("interest", N_("Interest"), numeric=True, sortable=False, phone=False),
    Column("method", N_("Paid by"), sortable=False, phone=False),
    Column("receipt", N_("Receipt"), sortable=False),
)
LOAN_TABS = (
    ("summary", N_("Summary")),
    ("schedule", N_("Schedule")),
    ("payments", N_("Payments")),
    ("charges", N_("Charges")),
)


@router.get("")
async def dashboard(
    request: Request, session: SessionDep, cache: CacheDep, viewer: DashboardReader
) -> Response:
    data: Any = await dashboard_cached(session, cache, viewer.principal)
    totals = data["totals"] if isinstance(data, dict) else data.totals
    chart = None
    if totals:
        chart = bar_chart(
            gettext(N_("Paid and still to pay")),
            [
                (gettext(N_("Paid")), _get(totals, "total_paid"), _m(totals, "total_paid"), "paid"),
                (
                    gettext(N_("Principal to pay")),
                    _get(totals, "outstanding_principal"),
                    _m(totals, "outstanding_principal"),
                    "principal",
                ),
                (
                    gettext(N_("Interest to pay")),
                    _get(totals, "outstanding_interest"),
                    _m(totals, "outstanding_interest"),
                    "interest",
                ),
                (
                    gettext(N_("Fees to pay")),
                    _get(totals, "outstanding_fees"),
                    _m(totals, "outstanding_fees"),
                    "fees",
                ),
                (
                    gettext(N_("Penalties to pay")),
                    _get(totals, "outstanding_penalties"),
                    _m(totals, "outstanding_penalties"),
                    "penalties",
                ),
            ],
            chart_id="paid-outstanding",
        )
    return render(request, "customer/dashboard.html", {"d": data, "chart": chart})


def _get(values: Any, key: str) -> Any:
    return values[key] if isinstance(values, dict) else getattr(values, key)


def _m(values: Any, key: str) -> str:
    return i18n.money(_get(values, key))


@router.get("/loans")
async def loans(request: Request, session: SessionDep, viewer: LoanReader) -> Response:
    keyset, after = table_keyset(request, LOAN_SORTS, default="started")
    page = await loans_page(session, viewer.principal, keyset, customer_id=viewer.customer_id)
    table = table_of(request, LOAN_COLUMNS, keyset, next_cursor=page.next, after=after)
    return render(request, "customer/loans.html", {"rows": page.rows, "table": table})


@router.get("/loans/{loan_id}")
async def loan(
    request: Request,
    loan_id: uuid.UUID,
    session: SessionDep,
    cache: CacheDep,
    viewer: LoanReader,
) -> Response:
    """The loan as tabs (links that work without script; htmx fetches only the tab's part)."""
    tab = request.query_params.get("tab", "summary")
    if tab not in {key for key, _ in LOAN_TABS}:
        tab = "summary"
    found: Any = await loan_detail(session, viewer.principal, loan_id, cache=cache)
    context: dict[str, Any] = {"loan": found, "tab": tab, "tabs": LOAN_TABS}
    if tab == "schedule":
        context["schedule"] = await loan_schedule(session, viewer.principal, loan_id)
    if tab == "payments":
        keyset, after = table_keyset(request, COLLECTION_SORTS, default="date")
        page = await collections_page(session, viewer.principal, keyset, loan_id=loan_id)
        context["payments"] = page.rows
        context["table"] = table_of(
            request,
            PAYMENT_COLUMNS,
            keyset,
            next_cursor=page.next,
            after=after,
            extra={"tab": "payments"},
        )
    return render(request, "customer/loan.html", context, block="tab")


@router.get("/payments")
async def payments(
    request: Request, session: SessionDep, cache: CacheDep, viewer: PaymentReader
) -> Response:
    keyset, after = table_keyset(request, COLLECTION_SORTS, default="date")
    page = await collections_page(session, viewer.principal, keyset)
    table = table_of(request, PAYMENT_COLUMNS, keyset, next_cursor=page.next, after=after)
    data: Any = await dashboard_cached(session, cache, viewer.principal)
    totals = data["totals"] if isinstance(data, dict) else data.totals
    return render(
        request,
        "customer/payments.html",
        {"rows": page.rows, "table": table, "totals": totals},
    )


@router.get("/payments/{collection_id}/receipt")
async def receipt(
    request: Request, collection_id: uuid.UUID, session: SessionDep, viewer: DocumentReader
) -> Response:
    """The payment's receipt: rendered now if this is its first download (as the API does),
    then its document page."""
    doc = await documents_service.receipt_for(
        session, viewer.principal, collection_id, settings=request.app.state.settings
    )
    return RedirectResponse(f"/customer/documents/{doc.id}", status_code=303)


async def _documents_page(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    *,
    form: Form[Any] | None = None,
    status_code: int = 200,
) -> Response:
    after = request.query_params.get("after") or None
    listed = await documents.documents_list(
        session,
        viewer.principal,
        customer_id=viewer.customer_id,
        kind=None,
        loan_id=None,
        after=after,
        limit=20,
    )
    return render(
        request,
        "customer/documents.html",
        {"documents": listed.documents, "next": listed.next, "form": form or empty_form()},
        status_code=status_code,
    )


@router.get("/documents")
async def documents_index(
    request: Request, session: SessionDep, viewer: DocumentReader
) -> Response:
    return await _documents_page(request, session, viewer)


@router.post("/statements")
async def statement_request(
    request: Request, session: SessionDep, viewer: DocumentRequester
) -> Response:
    """Ask for a month's statement (the API's ``POST /api/customers/{id}/statements``)."""
    form = await form_parse(request, StatementIn)
    if form.ok and form.data is not None:
        if viewer.customer_id is None:
            raise NotFoundError("Customer not found")
        try:
            doc = await documents_service.statement_request(
                session,
                principal=viewer.principal,
                customer_id=viewer.customer_id,
                month=documents.parse_month(form.data.month),
            )
        except AppError as exc:
            await form.failed(session, exc)
            if "month" in form.errors:
                form.errors["month"] = gettext(N_("Choose a month that has begun."))
        else:
            return RedirectResponse(f"/customer/documents/{doc.id}", status_code=303)
    return await _documents_page(request, session, viewer, form=form, status_code=422)


@router.get("/documents/{document_id}")
async def document(
    request: Request, document_id: uuid.UUID, session: SessionDep, viewer: DocumentReader
) -> Response:
    """A receipt or statement: its state (the page asks again every 2 s while a statement is
    being made) and the download. A receipt that a reversal changed is rendered again now."""
    doc, _, receipt_number = await documents.document_get(session, viewer.principal, document_id)
    if doc.kind is DocumentKind.RECEIPT and doc.status is not DocumentStatus.READY:
        doc, _, receipt_number = await documents_service.document_with_content(
            session, viewer.principal, document_id, settings=request.app.state.settings
        )
    return render(
        request,
        "customer/document.html",
        {"doc": doc, "receipt_number": receipt_number, "kind": doc.kind.value},
        block="status",
    )


@router.get("/documents/{document_id}/pdf")
async def document_pdf(
    request: Request, document_id: uuid.UUID, session: SessionDep, viewer: DocumentReader
) -> Response:
    doc, name, receipt_number = await documents_service.document_with_content(
        session, viewer.principal, document_id, settings=request.app.state.settings
    )
    if doc.status is not DocumentStatus.READY:
        return RedirectResponse(f"/customer/documents/{doc.id}", status_code=303)
    return document_pdf_response(doc, name, receipt_number)
