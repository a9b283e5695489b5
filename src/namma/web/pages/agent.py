"""The field agent's phone app (``/agent…``), designed at 360×740: dashboard, the day's
collection sheet (works offline: ``static/agent.js`` queues each payment in IndexedDB with its
client id and posts the queue to ``POST /api/collection-sheet/post``; ``static/sw.js`` serves the
app shell and the sheet without a connection), a collection's receipt, my customers, a customer,
a loan, onboarding, a loan application with its live schedule and APR, the cash hand-over.

Every figure comes from the services and queries of the JSON API, in the agent's scope (another
agent's customer or loan is a 404 page). Every agent page answers ``X-Namma-User`` (the signed-in
user's id): the service worker files the pages it keeps under that user, and forgets another
user's pages when someone else signs in.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import uuid
import zlib
from decimal import Decimal
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict, Field

from namma.auth.deps import request_settings
from namma.auth.permissions import Permission
from namma.collections import sheet as sheet_service
from namma.collections import sheet_post
from namma.collections.endpoints import RECORD_ROUTE, CollectionIn
from namma.collections.queries import COLLECTION_SORTS, collection_get, collections_page
from namma.collections.schemas import CollectionSheet, SheetGroup
from namma.customers import queries as customer_queries
from namma.customers import service as customer_service
from namma.customers.endpoints import CustomerCreateBody
from namma.handover import service as handover_service
from namma.kit.deps import AskedByRecentWriterDep, CacheDep, SessionDep
from namma.kit.errors import AppError, ConflictError
from namma.kit.idempotency import request_fingerprint
from namma.kit.money import Money
from namma.loans import service as loan_service
from namma.loans.cache import (
    SHEET_TTL_SECONDS,
    sheet_kept_read,
    sheet_page_key,
    sheet_village_key,
)
from namma.loans.queries import loan_detail, loan_schedule
from namma.models import CollectionMethod, KycDocumentType, LoanProduct, Role
from namma.reports.dashboard import dashboard_cached
from namma.web import i18n
from namma.web.forms import Form, empty_form, form_parse
from namma.web.i18n import N_, gettext, ngettext
from namma.web.tables import Column, table_keyset, table_of
from namma.web.templating import STATIC_DIR, TEMPLATES_DIR, render, render_text
from namma.web.viewer import Viewer, viewer_of

router = APIRouter(include_in_schema=False)

AGENT = (Role.AGENT,)
DashboardReader = Annotated[Viewer, Depends(viewer_of(Permission.DASHBOARD_READ, roles=AGENT))]
Collector = Annotated[Viewer, Depends(viewer_of(Permission.COLLECTION_RECORD, roles=AGENT))]
CollectionPoster = Annotated[
    Viewer, Depends(viewer_of(Permission.COLLECTION_RECORD, roles=AGENT, limit="money"))
]
CustomerReader = Annotated[Viewer, Depends(viewer_of(Permission.CUSTOMER_READ, roles=AGENT))]
CustomerCreator = Annotated[
    Viewer, Depends(viewer_of(Permission.CUSTOMER_CREATE, roles=AGENT, limit="writes"))
]
LoanReader = Annotated[Viewer, Depends(viewer_of(Permission.LOAN_READ, roles=AGENT))]
LoanApplicant = Annotated[
    Viewer, Depends(viewer_of(Permission.LOAN_APPLY, roles=AGENT, limit="writes"))
]
HandoverReader = Annotated[Viewer, Depends(viewer_of(Permission.HANDOVER_READ, roles=AGENT))]
HandoverRecorder = Annotated[
    Viewer, Depends(viewer_of(Permission.HANDOVER_RECORD, roles=AGENT, limit="money"))
]

METHODS: tuple[tuple[str, str], ...] = (
    (CollectionMethod.CASH.value, N_("Cash")),
    (CollectionMethod.UPI.value, N_("UPI")),
)
KYC_DOCUMENTS: tuple[tuple[str, str], ...] = (
    (KycDocumentType.AADHAAR.value, N_("Aadhaar")),
    (KycDocumentType.VOTER_ID.value, N_("Voter ID")),
    (KycDocumentType.PAN.value, N_("PAN")),
    (KycDocumentType.RATION_CARD.value, N_("Ration card")),
    (KycDocumentType.DRIVING_LICENCE.value, N_("Driving licence")),
    (KycDocumentType.PASSPORT.value, N_("Passport")),
)
PAYMENT_COLUMNS = (
    Column("date", N_("Date")),
    Column("amount", N_("Amount"), numeric=True),
    Column("method", N_("Paid by"), sortable=False, phone=False),
    Column("receipt", N_("Receipt"), sortable=False),
)


def _translated(options: tuple[tuple[str, str], ...]) -> list[tuple[str, str]]:
    return [(value, gettext(label)) for value, label in options]


def _agent_page(response: Response, viewer: Viewer) -> Response:
    """Whose page this is, for the service worker (see the module docstring)."""
    response.headers["X-Namma-User"] = str(viewer.principal.user_id)
    return response


# --- the app's files: the service worker and the manifest -------------------------------------


@router.get("/sw.js")
async def service_worker() -> Response:
    """The service worker, from the site's root so that it may control ``/agent``. Never kept by
    the HTTP cache (a new version must be seen at once) and never a cross-site script."""
    return FileResponse(
        STATIC_DIR / "sw.js",
        media_type="text/javascript",
        headers={
            "Cache-Control": "no-cache, no-store, must-revalidate",
            "Service-Worker-Allowed": "/agent",
        },
    )


@router.get("/agent.webmanifest")
async def manifest() -> Response:
    return FileResponse(
        STATIC_DIR / "agent.webmanifest",
        media_type="application/manifest+json",
        headers={"Cache-Control": "no-cache"},
    )


# --- dashboard -----------------------------------------------------------------------------------


@router.get("/agent")
async def agent_dashboard(
    request: Request,
    session: SessionDep,
    cache: CacheDep,
    viewer: DashboardReader,
    wrote_recently: AskedByRecentWriterDep,
) -> Response:
    """Today's demand, collected so far, overdue to visit, cash in hand (from the dashboard
    service, as ``GET /api/dashboard``); the phone's unsynced payments are counted by
    agent.js."""
    data: Any = await dashboard_cached(session, cache, viewer.principal, fresh=wrote_recently)
    return _agent_page(render(request, "agent/dashboard.html", {"d": data}), viewer)


# --- the collection sheet and recording ----------------------------------------------------------


@router.get("/agent/sheet")
async def agent_sheet(
    request: Request, session: SessionDep, cache: CacheDep, viewer: Collector
) -> Response:
    """Today's sheet (the same kept sheet as ``GET /api/collection-sheet``), by village; each
    line a form that records the payment (offline: agent.js queues it)."""
    lines = await _sheet_lines_kept(session, cache, viewer, loan_service.today_india())
    # Per request: the session's CSRF token, and a new client id for each line's form (the
    # key that makes a re-sent form record its payment once).
    lines = lines.replace(_CSRF_MARK, escape(getattr(request.state, "csrf_token", "")))
    parts = lines.split(_CLIENT_ID_MARK)
    filled = [parts[0]]
    for part in parts[1:]:
        filled += (str(uuid.uuid4()), part)
    html = Markup("".join(filled))  # noqa: S704 - rendered with autoescape; the token escaped
    return _agent_page(render(request, "agent/sheet.html", {"lines": html}), viewer)


# The sheet's lines as HTML are the same for every request of one sheet version and language
# but for two values: the session's CSRF token and each form's client id. So they are rendered
# with these marks in their place (marks no escaped value can contain: ``<`` is always escaped)
# and kept; each request fills the marks in (~1 ms for 400 lines). They are kept in two layers
# (D-223):
# - each village's HTML, compressed, under a key made of its content (the village's part of the
#   sheet, its place and the language): a collection changes one line, so after it only that
#   line's village is rendered again (a 400-line sheet is ~950 KB of HTML, ~30–70 ms of CPU to
#   render whole, ~70 KB compressed);
# - per agent, day and language, under the sheet version, the page's head and the keys of its
#   villages: an unchanged sheet is two cache reads and one multiple read.
_CSRF_MARK = "<!--csrf-->"
_CLIENT_ID_MARK = "<!--client-id-->"
_VILLAGES_MARK = "<!--villages-->"
# The templates' own version: a release that changes them does not serve what the last one kept.
_TEMPLATES = hashlib.blake2b(
    b"".join(
        (TEMPLATES_DIR / name).read_bytes()
        for name in ("agent/sheet_lines.html", "agent/sheet_village.html", "macros/forms.html")
    ),
    digest_size=8,
).hexdigest()


async def _sheet_lines_kept(
    session: SessionDep, cache: CacheDep, viewer: Viewer, today: dt.date
) -> str:
    agent_id, language = viewer.principal.user_id, i18n.language_current()
    key = sheet_page_key(agent_id, today, language)
    # As the kept sheet: a page made from a sheet read after a change is stored under the
    # version from before it, never served once it is old.
    version, kept = await sheet_kept_read(cache, agent_id, key)
    if kept is not None and kept.get("templates") == _TEMPLATES:
        villages = await cache.get_many(kept["villages"])
        if all(isinstance(village, str) for village in villages):
            lines = (_unpacked(str(village)) for village in villages)
            return str(kept["head"]) + "".join(lines) + str(kept["tail"])
    sheet_text = (
        await sheet_service.collection_sheet_kept(
            session, cache, viewer.principal, on=today, agent_id=None, branch_id=None
        )
    ).text
    sheet = orjson.loads(sheet_text)
    groups = sheet["groups"]
    keys = [
        sheet_village_key(
            language, index, hashlib.blake2b(_TEMPLATES.encode() + orjson.dumps(group)).hexdigest()
        )
        for index, group in enumerate(groups, start=1)
    ]
    villages = await cache.get_many(keys)
    context = _sheet_village_context()
    html: list[str] = []
    for index, (group, village_key, village) in enumerate(
        zip(groups, keys, villages, strict=True), start=1
    ):
        if isinstance(village, str):
            html.append(_unpacked(village))
            continue
        made = render_text(
            "agent/sheet_village.html",
            {**context, "g": SheetGroup.model_validate(group), "index": index},
        )
        await cache.add(village_key, _packed(made), SHEET_TTL_SECONDS)
        html.append(made)
    head, tail = render_text(
        "agent/sheet_lines.html",
        {
            "sheet": CollectionSheet.model_validate({**sheet, "groups": []}),
            "empty": not groups,
            "villages": Markup(_VILLAGES_MARK),  # noqa: S704 - our constant
        },
    ).split(_VILLAGES_MARK)
    entry = {"version": version, "templates": _TEMPLATES, "villages": keys}
    await cache.set(key, {**entry, "head": head, "tail": tail}, SHEET_TTL_SECONDS)
    return head + "".join(html) + tail


def _sheet_village_context() -> dict[str, Any]:
    """What every village's rendering shares within one page's rendering."""
    return {
        "methods_shown": _translated(METHODS),
        "csrf_token": Markup(_CSRF_MARK),  # noqa: S704 - our constant
        "client_id": Markup(_CLIENT_ID_MARK),  # noqa: S704 - our constant
        # The same amounts recur on a sheet (a group's loans are alike): format each once.
        "money_of": functools.lru_cache(maxsize=2048)(i18n.money),
        "days_late": functools.lru_cache(maxsize=512)(_days_late),
    }


def _packed(html: str) -> str:
    return base64.b64encode(zlib.compress(html.encode(), 1)).decode()


def _unpacked(packed: str) -> str:
    return zlib.decompress(base64.b64decode(packed)).decode()


def _days_late(days: int) -> str:
    return ngettext("%(num)d day late", "%(num)d days late", days) % {"num": days}


class CollectForm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    loan_id: uuid.UUID
    amount: Money
    method: CollectionMethod = CollectionMethod.CASH
    reference: str | None = Field(default=None, max_length=100)
    client_id: str = Field(min_length=1, max_length=100)
    collected_on: dt.date | None = None


@router.post("/agent/collect")
async def agent_collect(
    request: Request, session: SessionDep, viewer: CollectionPoster
) -> Response:
    """Record one payment without script (the sheet's form, or a retry of it): posted as a
    sheet line, idempotent on the form's client id, then the receipt."""
    form = await form_parse(request, CollectForm)
    if form.ok and form.data is not None:
        data = form.data
        on = data.collected_on or loan_service.today_india()
        single = CollectionIn(
            loan_id=data.loan_id,
            amount=data.amount,
            collected_on=on,
            method=data.method,
            reference=data.reference,
            client_id=data.client_id,
        )
        line = sheet_post.SheetLine(
            loan_id=data.loan_id,
            amount=data.amount,
            collected_on=on,
            method=data.method,
            reference=data.reference,
            remarks=None,
            client_id=data.client_id,
            fingerprint=request_fingerprint(RECORD_ROUTE, single.model_dump(mode="json")),
        )
        [result] = await sheet_post.collection_sheet_post(
            session,
            principal=viewer.principal,
            lines=[line],
            backdate_days=request.app.state.settings.collection_backdate_days,
        )
        if result.status == 201:
            collection_id = result.body["collection"]["id"]
            return RedirectResponse(f"/agent/collections/{collection_id}", status_code=303)
        error = result.body.get("error", {})
        details = error.get("details")
        message = str(error.get("message", ""))
        if result.status == 404:
            message = gettext(
                N_(
                    "This loan is not on your list any more (the customer may have moved to "
                    "another agent)."
                )
            )
        elif isinstance(details, list) and details:
            message = str(details[0].get("message", message))
        await form.failed(session, ConflictError(message))
    return render(request, "agent/collect_failed.html", {"form": form}, status_code=422)


@router.get("/agent/collections/{collection_id}")
async def agent_receipt(
    request: Request, collection_id: uuid.UUID, session: SessionDep, viewer: Collector
) -> Response:
    """A collection's receipt: number, amount, what it paid, the loan after it."""
    found = await collection_get(session, viewer.principal, collection_id)
    return _agent_page(render(request, "agent/receipt.html", {"c": found}), viewer)


# --- customers -----------------------------------------------------------------------------------


@router.get("/agent/customers")
async def agent_customers(
    request: Request, session: SessionDep, viewer: CustomerReader
) -> Response:
    q = (request.query_params.get("q") or "")[:120]
    after = request.query_params.get("after") or None
    try:
        page = await customer_queries.customers_search(
            session, principal=viewer.principal, q=q or None, after=after, limit=50
        )
    except AppError:
        page = await customer_queries.customers_search(
            session, principal=viewer.principal, q=q or None, limit=50
        )
    return _agent_page(
        render(
            request,
            "agent/customers.html",
            {"rows": page.rows, "next": page.next_cursor, "q": q},
            block="results",
        ),
        viewer,
    )


@router.get("/agent/customers/new")
async def agent_customer_new(request: Request, viewer: CustomerCreator) -> Response:
    return _agent_page(
        render(
            request,
            "agent/customer_new.html",
            {"form": empty_form(), "documents": _translated(KYC_DOCUMENTS)},
        ),
        viewer,
    )


@router.post("/agent/customers/new")
async def agent_customer_create(
    request: Request, session: SessionDep, viewer: CustomerCreator
) -> Response:
    """Onboard a customer with KYC (pending verification); the agent becomes their agent."""
    form = await form_parse(request, CustomerCreateBody)
    if form.ok and form.data is not None:
        body = form.data
        try:
            customer = await customer_service.customer_create(
                session,
                principal=viewer.principal,
                secret_key=request_settings(request).secret_key.get_secret_value(),
                branch_id=None,
                name=body.name,
                phone=body.phone,
                email=body.email,
                date_of_birth=body.date_of_birth,
                address=body.address,
                village=body.village,
                household_monthly_income=body.household_monthly_income,
                kyc_document_type=body.kyc_document_type,
                kyc_number=body.kyc_number,
                preferred_language=body.preferred_language,
            )
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return RedirectResponse(f"/agent/customers/{customer.id}", status_code=303)
    return render(
        request,
        "agent/customer_new.html",
        {"form": form, "documents": _translated(KYC_DOCUMENTS)},
        status_code=422,
    )


@router.get("/agent/customers/{customer_id}")
async def agent_customer(
    request: Request, customer_id: uuid.UUID, session: SessionDep, viewer: CustomerReader
) -> Response:
    detail = await customer_queries.customer_detail(
        session, principal=viewer.principal, customer_id=customer_id
    )
    return _agent_page(render(request, "agent/customer.html", {"c": detail}), viewer)


# --- loans ---------------------------------------------------------------------------------------


@router.get("/agent/loans/{loan_id}")
async def agent_loan(
    request: Request,
    loan_id: uuid.UUID,
    session: SessionDep,
    cache: CacheDep,
    viewer: LoanReader,
) -> Response:
    """The loan: balances, its schedule, its payments (links to their receipts)."""
    found: Any = await loan_detail(session, viewer.principal, loan_id, cache=cache)
    schedule = await loan_schedule(session, viewer.principal, loan_id)
    keyset, after = table_keyset(request, COLLECTION_SORTS, default="date")
    page = await collections_page(session, viewer.principal, keyset, loan_id=loan_id)
    table = table_of(request, PAYMENT_COLUMNS, keyset, next_cursor=page.next, after=after)
    return _agent_page(
        render(
            request,
            "agent/loan.html",
            {"loan": found, "schedule": schedule, "payments": page.rows, "table": table},
        ),
        viewer,
    )


class ApplyForm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    product_id: uuid.UUID
    amount: Money
    annual_rate: Decimal | None = Field(default=None, ge=0, le=100)
    installments: int = Field(ge=1, le=10_000)
    purpose: str | None = Field(default=None, max_length=500)


async def _products(session: SessionDep) -> list[tuple[str, str]]:
    from sqlalchemy import select

    rows = await session.scalars(
        select(LoanProduct).where(LoanProduct.is_active).order_by(LoanProduct.code)
    )
    return [(str(p.id), f"{p.name} ({p.code})") for p in rows]


async def _apply_page(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    customer_id: uuid.UUID,
    *,
    form: Form[Any],
    status_code: int = 200,
) -> Response:
    detail = await customer_queries.customer_detail(
        session, principal=viewer.principal, customer_id=customer_id
    )
    return _agent_page(
        render(
            request,
            "agent/apply.html",
            {"c": detail, "form": form, "products": await _products(session), "preview": None},
            status_code=status_code,
        ),
        viewer,
    )


@router.get("/agent/customers/{customer_id}/apply")
async def agent_apply_form(
    request: Request, customer_id: uuid.UUID, session: SessionDep, viewer: LoanApplicant
) -> Response:
    return await _apply_page(request, session, viewer, customer_id, form=empty_form())


@router.post("/agent/customers/{customer_id}/apply/preview")
async def agent_apply_preview(
    request: Request, customer_id: uuid.UUID, session: SessionDep, viewer: LoanApplicant
) -> Response:
    """The htmx partial under the form: the schedule and APR the money core gives for what is
    typed (nothing is written), or what is wrong with it."""
    await customer_queries.customer_detail(
        session, principal=viewer.principal, customer_id=customer_id
    )
    form = await form_parse(request, ApplyForm)
    preview = None
    if form.ok and form.data is not None:
        try:
            preview = await loan_service.loan_application_preview(
                session,
                customer_id=customer_id,
                product_id=form.data.product_id,
                amount=form.data.amount,
                annual_rate=form.data.annual_rate,
                installments=form.data.installments,
            )
        except AppError as exc:
            await form.failed(session, exc)
    return render(request, "agent/apply_preview.html", {"form": form, "preview": preview})


@router.post("/agent/customers/{customer_id}/apply")
async def agent_apply(
    request: Request, customer_id: uuid.UUID, session: SessionDep, viewer: LoanApplicant
) -> Response:
    form = await form_parse(request, ApplyForm)
    if form.ok and form.data is not None:
        try:
            loan = await loan_service.loan_apply(
                session,
                principal=viewer.principal,
                customer_id=customer_id,
                product_id=form.data.product_id,
                amount=form.data.amount,
                annual_rate=form.data.annual_rate,
                installments=form.data.installments,
                first_due_on=None,
                purpose=form.data.purpose,
            )
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return RedirectResponse(f"/agent/loans/{loan.id}", status_code=303)
    return await _apply_page(request, session, viewer, customer_id, form=form, status_code=422)


# --- cash hand-over ------------------------------------------------------------------------------


class HandoverForm(BaseModel):
    model_config = ConfigDict(extra="forbid")
    business_date: dt.date
    amount_deposited: Money
    remarks: str | None = Field(default=None, max_length=1000)


async def _handover_page(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    *,
    form: Form[Any],
    status_code: int = 200,
) -> Response:
    today = loan_service.today_india()
    expected, count = await handover_service.handover_expected(
        session, agent_id=viewer.principal.user_id, business_date=today
    )
    return _agent_page(
        render(
            request,
            "agent/handover.html",
            {"form": form, "today": today, "expected": expected, "count": count},
            status_code=status_code,
        ),
        viewer,
    )


@router.get("/agent/handover")
async def agent_handover(request: Request, session: SessionDep, viewer: HandoverReader) -> Response:
    return await _handover_page(request, session, viewer, form=empty_form())


@router.post("/agent/handover")
async def agent_handover_record(
    request: Request, session: SessionDep, viewer: HandoverRecorder
) -> Response:
    """The agent's declaration of the cash handed to the branch (the hand-over service as the
    API uses it), after a confirmation step."""
    form = await form_parse(request, HandoverForm)
    if form.ok and form.data is not None and form.confirmed and not form.editing:
        try:
            await handover_service.cash_handover_record(
                session,
                principal=viewer.principal,
                agent_id=None,
                business_date=form.data.business_date,
                amount_deposited=form.data.amount_deposited,
                remarks=form.data.remarks,
            )
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return RedirectResponse("/agent/handover?done=1", status_code=303)
    status = 200 if form.ok else 422
    return await _handover_page(request, session, viewer, form=form, status_code=status)
