"""The back office's money received: collections (``/office/collections…``: the list, a
receipt with its split by installment and any re-allocation, the reversal with a reason and a
confirmation — one at a time, never in bulk) and the agents' cash hand-overs
(``/office/handovers…``: pending and received, the branch's count with the shortage or excess).
For the Admin and the Manager, scoped by the same queries as the API.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from namma.auth.permissions import Permission
from namma.collections import service as collections_service
from namma.collections.endpoints import ReverseIn
from namma.collections.queries import (
    COLLECTION_SORTS,
    collection_get,
    collection_reallocations,
    collections_page,
)
from namma.documents import queries as documents
from namma.documents import service as documents_service
from namma.documents.endpoints import document_pdf_response
from namma.handover import service as handover_service
from namma.handover.schemas import HandoverOut, HandoverStatus
from namma.kit.deps import ReadSessionDep, SessionDep
from namma.kit.errors import AppError
from namma.kit.money import Money
from namma.kit.pagination import Keyset
from namma.models import CollectionStatus, Customer, User
from namma.reports.base import ColumnType
from namma.web import i18n
from namma.web.forms import Form, empty_form, form_parse
from namma.web.i18n import N_, gettext
from namma.web.office import act_once, once_key_new
from namma.web.pages.office_loans import OFFICE, Confirming
from namma.web.tables import Column, table_csv, table_keyset, table_of
from namma.web.templating import render
from namma.web.viewer import Viewer, viewer_of

router = APIRouter(prefix="/office", include_in_schema=False)

CollectionReader = Annotated[Viewer, Depends(viewer_of(Permission.COLLECTION_READ, roles=OFFICE))]
Reverser = Annotated[
    Viewer, Depends(viewer_of(Permission.COLLECTION_REVERSE, roles=OFFICE, limit="money"))
]
ReceiptReader = Annotated[Viewer, Depends(viewer_of(Permission.DOCUMENT_READ, roles=OFFICE))]
HandoverReader = Annotated[Viewer, Depends(viewer_of(Permission.HANDOVER_READ, roles=OFFICE))]
Counter = Annotated[
    Viewer, Depends(viewer_of(Permission.HANDOVER_COUNT, roles=OFFICE, limit="money"))
]

COLUMNS = (
    Column("date", N_("Date")),
    Column("receipt", N_("Receipt"), sortable=False),
    Column("loan", N_("Loan"), sortable=False, phone=False),
    Column("amount", N_("Amount"), numeric=True),
    Column("method", N_("Paid by"), sortable=False, phone=False),
    Column("status", N_("Status"), sortable=False),
)
COLLECTION_FILTERS: tuple[tuple[str, str], ...] = (
    ("", N_("All")),
    ("posted", N_("Received")),
    ("reversed", N_("Reversed")),
)
HANDOVER_FILTERS: tuple[tuple[str, str], ...] = (
    ("pending", N_("Waiting to be counted")),
    ("received", N_("Received")),
    ("reversed", N_("Reversed")),
    ("", N_("All")),
)


def _date_param(request: Request, name: str) -> dt.date | None:
    text = request.query_params.get(name) or ""
    try:
        value = dt.date.fromisoformat(text)
    except ValueError:
        return None
    return value if dt.date(1900, 1, 1) <= value <= dt.date(2100, 12, 31) else None


# --- collections -------------------------------------------------------------------------------


@router.get("/collections")
async def collections(
    request: Request, session: ReadSessionDep, viewer: CollectionReader
) -> Response:
    status_text = request.query_params.get("status", "")
    status = (
        CollectionStatus(status_text)
        if status_text in {s.value for s in CollectionStatus}
        else None
    )
    from_date, to_date = _date_param(request, "from"), _date_param(request, "to")
    search = (request.query_params.get("q") or "").strip()[:100]
    filters = {
        "status": status.value if status else "",
        "from": from_date.isoformat() if from_date else "",
        "to": to_date.isoformat() if to_date else "",
        "q": search,
    }
    if request.query_params.get("format") == "csv":
        return await _collections_csv(request, session, viewer, status, from_date, to_date, search)
    keyset, after = table_keyset(request, COLLECTION_SORTS, default="date")
    page = await collections_page(
        session,
        viewer.principal,
        keyset,
        status=status,
        from_date=from_date,
        to_date=to_date,
        search=search,
    )
    table = table_of(request, COLUMNS, keyset, next_cursor=page.next, after=after, extra=filters)
    from urllib.parse import urlencode

    return render(
        request,
        "office/collections.html",
        {
            "rows": page.rows,
            "table": table,
            "filters": filters,
            "statuses": COLLECTION_FILTERS,
            "csv_query": urlencode({k: v for k, v in {**filters, "format": "csv"}.items() if v}),
        },
    )


async def _collections_csv(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    status: CollectionStatus | None,
    from_date: dt.date | None,
    to_date: dt.date | None,
    search: str,
) -> Response:
    keyset, _ = table_keyset(request, COLLECTION_SORTS, default="date", limit=500)
    rows: list[Sequence[Any]] = []
    while True:
        page = await collections_page(
            session,
            viewer.principal,
            keyset,
            status=status,
            from_date=from_date,
            to_date=to_date,
            search=search,
        )
        for c, loan, _sort in page.rows:
            rows.append(
                (
                    c.receipt_number,
                    loan.loan_number,
                    c.collected_on,
                    c.amount,
                    c.principal,
                    c.interest,
                    c.fee,
                    c.penalty,
                    c.recovery,
                    c.method.value,
                    c.status.value,
                )
            )
        if page.next is None:
            break
        last = page.rows[-1]
        keyset = Keyset(
            sort=keyset.sort,
            descending=keyset.descending,
            after=(last.sort_value, last[0].id),
            limit=keyset.limit,
        )
    money = ColumnType.MONEY
    return table_csv(
        "collections.csv",
        (
            ("receipt_number", ColumnType.TEXT),
            ("loan_number", ColumnType.TEXT),
            ("collected_on", ColumnType.DATE),
            ("amount", money),
            ("principal", money),
            ("interest", money),
            ("fee", money),
            ("penalty", money),
            ("recovery", money),
            ("method", ColumnType.TEXT),
            ("status", ColumnType.TEXT),
        ),
        rows,
    )


async def _collection_page(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    collection_id: uuid.UUID,
    *,
    form: Form[Any] | None = None,
    confirming: Confirming | None = None,
    status_code: int = 200,
) -> Response:
    found = await collection_get(session, viewer.principal, collection_id)
    wanted = [i for i in (found.collected_by_id, found.reversed_by_id) if i]
    rows = await session.execute(select(User.id, User.name).where(User.id.in_(wanted)))
    names = {user_id: name for user_id, name in rows.all()}
    customer = await session.get(Customer, found.customer_id)
    reason = None
    if found.status is CollectionStatus.REVERSED:
        reason = gettext(N_("This collection is already reversed."))
    elif not viewer.principal.can(Permission.COLLECTION_REVERSE):
        reason = gettext(N_("Your role does not have this permission."))
    return render(
        request,
        "office/collection.html",
        {
            "c": found,
            "customer": customer,
            "names": names,
            "reallocations": await collection_reallocations(session, found),
            "reverse_reason": reason,
            "form": form or empty_form(),
            "confirming": confirming,
            "idem": once_key_new(),
        },
        status_code=status_code,
    )


@router.get("/collections/{collection_id}")
async def collection(
    request: Request, collection_id: uuid.UUID, session: SessionDep, viewer: CollectionReader
) -> Response:
    """A receipt: the amount, its split by installment (as now, after any re-allocation), who
    collected it, and the reversal."""
    return await _collection_page(request, session, viewer, collection_id)


@router.post("/collections/{collection_id}/reverse")
async def collection_reverse(
    request: Request, collection_id: uuid.UUID, session: SessionDep, viewer: Reverser
) -> Response:
    """Reverse one collection, with a reason, after a confirmation step (never in bulk)."""
    form = await form_parse(request, ReverseIn)
    if form.ok and form.data is not None:
        reason = form.data.reason
        if not form.confirmed or form.editing:
            if form.editing:
                return await _collection_page(request, session, viewer, collection_id, form=form)
            found = await collection_get(session, viewer.principal, collection_id)
            rows = [
                (gettext(N_("Receipt")), found.receipt_number),
                (gettext(N_("Amount")), i18n.money(found.amount)),
                (gettext(N_("Reason")), reason),
            ]
            confirm = Confirming(
                "reverse",
                form,
                rows,
                gettext(N_("Reverse the collection")),
                gettext(N_("Reverse this collection? The loan is worked out again without it.")),
            )
            return await _collection_page(
                request, session, viewer, collection_id, confirming=confirm
            )

        async def act() -> str:
            await collections_service.collection_reverse(
                session, principal=viewer.principal, collection_id=collection_id, reason=reason
            )
            return f"/office/collections/{collection_id}"

        try:
            location = await act_once(
                session, viewer, request, form, act, body={"reason": reason.strip()}
            )
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return RedirectResponse(location, status_code=303)
    return await _collection_page(
        request, session, viewer, collection_id, form=form, status_code=422
    )


@router.get("/collections/{collection_id}/receipt")
async def collection_receipt(
    request: Request, collection_id: uuid.UUID, session: SessionDep, viewer: ReceiptReader
) -> Response:
    """The receipt's PDF: rendered and kept on its first download, from storage after that."""
    doc = await documents_service.receipt_for(
        session, viewer.principal, collection_id, settings=request.app.state.settings
    )
    found, name, receipt = await documents.document_get(
        session, viewer.principal, doc.id, with_content=True
    )
    return document_pdf_response(found, name, receipt)


# --- cash hand-overs --------------------------------------------------------------------------


class CountIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    amount_counted: Money = Field(ge=0)
    remarks: str | None = Field(default=None, max_length=1000)


@router.get("/handovers")
async def handovers(request: Request, session: ReadSessionDep, viewer: HandoverReader) -> Response:
    """Hand-overs by state (pending first), with the totals of the received ones."""
    text = request.query_params.get("status", "pending")
    status: HandoverStatus | None = (
        text if text in ("pending", "received", "reversed") else None  # type: ignore[assignment]
    )
    listed = await handover_service.cash_handovers_list(
        session,
        viewer.principal,
        business_date=_date_param(request, "date"),
        agent_id=None,
        limit=200,
        status=status,
    )
    return render(
        request,
        "office/handovers.html",
        {"listed": listed, "status": status or "", "statuses": HANDOVER_FILTERS},
    )


async def _handover_page(
    request: Request,
    session: SessionDep,
    viewer: Viewer,
    handover_id: uuid.UUID,
    *,
    form: Form[Any] | None = None,
    confirming: Confirming | None = None,
    status_code: int = 200,
) -> Response:
    handover, agent = await handover_service.cash_handover_get(
        session, viewer.principal, handover_id
    )
    h = HandoverOut.of(handover, agent)
    reason = None
    if h.status != "pending":
        reason = gettext(N_("Only a hand-over waiting to be counted can be counted."))
    elif not viewer.principal.can(Permission.HANDOVER_COUNT):
        reason = gettext(N_("Your role does not have this permission."))
    elif h.recorded_by_id == viewer.principal.user_id:
        reason = gettext(N_("You declared this hand-over; another officer must count the cash."))
    ids = [i for i in (h.recorded_by_id, h.counted_by_id, h.reversed_by_id) if i]
    rows = await session.execute(select(User.id, User.name).where(User.id.in_(ids)))
    names = {user_id: name for user_id, name in rows.all()}
    return render(
        request,
        "office/handover.html",
        {
            "h": h,
            "names": names,
            "count_reason": reason,
            "form": form or empty_form(),
            "confirming": confirming,
            "idem": once_key_new(),
        },
        status_code=status_code,
    )


@router.get("/handovers/{handover_id}")
async def handover(
    request: Request, handover_id: uuid.UUID, session: SessionDep, viewer: HandoverReader
) -> Response:
    return await _handover_page(request, session, viewer, handover_id)


@router.post("/handovers/{handover_id}/count")
async def handover_count(
    request: Request, handover_id: uuid.UUID, session: SessionDep, viewer: Counter
) -> Response:
    """The branch's count of a declared hand-over (never by the declarer), confirmed first;
    the shortage or excess is recorded on the agent's hand-over and posted."""
    form = await form_parse(request, CountIn)
    if form.ok and form.data is not None:
        data = form.data
        if not form.confirmed or form.editing:
            if form.editing:
                return await _handover_page(request, session, viewer, handover_id, form=form)
            handover, agent = await handover_service.cash_handover_get(
                session, viewer.principal, handover_id
            )
            rows = [
                (gettext(N_("Agent")), agent.name),
                (gettext(N_("Business date")), i18n.date(handover.business_date)),
                (gettext(N_("Declared")), i18n.money(handover.amount_declared)),
                (gettext(N_("Counted")), i18n.money(data.amount_counted)),
            ]
            confirm = Confirming(
                "count",
                form,
                rows,
                gettext(N_("Record the count")),
                gettext(N_("Record this count?")),
            )
            return await _handover_page(request, session, viewer, handover_id, confirming=confirm)

        async def act() -> str:
            await handover_service.cash_handover_count(
                session,
                principal=viewer.principal,
                handover_id=handover_id,
                amount_counted=data.amount_counted,
                remarks=data.remarks,
            )
            return f"/office/handovers/{handover_id}"

        try:
            location = await act_once(
                session, viewer, request, form, act, body=data.model_dump(mode="json")
            )
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return RedirectResponse(location, status_code=303)
    return await _handover_page(request, session, viewer, handover_id, form=form, status_code=422)
