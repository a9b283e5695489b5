"""``/office/capital`` (Admin): the capital summary (utilisation), investments, borrowings with
their schedules and repayments, and the forms the API offers — record an investment, a
borrowing, a repayment — each with its confirmation step, acting once however often the
confirmation is posted. Figures come from ``capital.queries``; commands from
``capital.service`` (the same as ``/api/capital``)."""

from __future__ import annotations

import uuid
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from namma.auth.permissions import Permission
from namma.capital import queries, service
from namma.capital.endpoints import BorrowingIn, InvestmentIn, RepaymentIn
from namma.capital.service import BorrowingTerms
from namma.finance import Amortization, Frequency, InterestMethod
from namma.kit.clock import today_india
from namma.kit.deps import SessionDep
from namma.kit.errors import AppError
from namma.models import BorrowingStatus, CapitalMethod
from namma.reports.base import ColumnType as CT
from namma.web import i18n, labels
from namma.web.forms import Form, form_parse
from namma.web.i18n import N_, gettext
from namma.web.office import ADMIN, act_once, param_enum, request_key_new
from namma.web.tables import table_csv
from namma.web.templating import render
from namma.web.viewer import Viewer, viewer_of

router = APIRouter(prefix="/office/capital", include_in_schema=False)

Reader = Annotated[Viewer, Depends(viewer_of(Permission.CAPITAL_READ, roles=ADMIN))]
Recorder = Annotated[
    Viewer, Depends(viewer_of(Permission.CAPITAL_MANAGE, roles=ADMIN, limit="money"))
]
LIST_LIMIT = 500


@router.get("")
async def capital(request: Request, session: SessionDep, viewer: Reader) -> Response:
    status = param_enum(request, "status", BorrowingStatus)
    summary = await queries.capital_summary(session)
    investments = await queries.investments_list(session, limit=LIST_LIMIT)
    borrowings = await queries.borrowings_list(session, status=status, limit=LIST_LIMIT)
    download = request.query_params.get("format")
    if download == "investments.csv":
        return table_csv(
            "investments.csv",
            [
                ("invested_on", CT.DATE),
                ("source", CT.TEXT),
                ("amount", CT.MONEY),
                ("method", CT.TEXT),
                ("reference", CT.TEXT),
                ("status", CT.TEXT),
            ],
            (
                (i.invested_on, i.source, i.amount, i.method.value, i.reference, i.status)
                for i in investments.items
            ),
        )
    if download == "borrowings.csv":
        return table_csv(
            "borrowings.csv",
            [
                ("received_on", CT.DATE),
                ("lender", CT.TEXT),
                ("principal", CT.MONEY),
                ("annual_rate", CT.PERCENT),
                ("installments", CT.INT),
                ("outstanding_principal", CT.MONEY),
                ("total_repaid", CT.MONEY),
                ("status", CT.TEXT),
            ],
            (
                (
                    b.received_on,
                    b.lender_name,
                    b.principal,
                    b.annual_rate,
                    b.installments,
                    b.outstanding_principal,
                    b.total_repaid,
                    b.status.value,
                )
                for b in borrowings.items
            ),
        )
    return render(
        request,
        "office/capital.html",
        {
            "s": summary,
            "investments": investments,
            "borrowings": borrowings,
            "status": status.value if status else None,
        },
    )


def _options() -> dict[str, Any]:
    return {
        "methods": [(m.value, gettext(labels.capital_method[m.value])) for m in CapitalMethod],
        "frequencies": [
            (f.value, gettext(labels.frequency[f.value]))
            for f in Frequency
            if f is not Frequency.DAYS
        ],
        "interest_methods": [
            (m.value, gettext(labels.interest_method[m.value])) for m in InterestMethod
        ],
        "amortizations": [(a.value, gettext(labels.amortization[a.value])) for a in Amortization],
    }


def _capital_form(
    request: Request,
    kind: str,
    form: Form[Any],
    *,
    confirm_rows: list[tuple[str, str]] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "office/capital_form.html",
        {"kind": kind, "form": form, "confirm_rows": confirm_rows, **_options()},
        status_code=status_code,
    )


def _positive(form: Form[Any], name: str) -> None:
    """An amount below one paisa is refused before the confirmation step (the service refuses
    it too)."""
    try:
        value = Decimal(form.value(name))
    except InvalidOperation:
        return
    if value.is_finite() and value <= 0:
        form.add_error(name, gettext(N_("Enter an amount above zero.")))


def _method(value: CapitalMethod) -> str:
    return gettext(labels.capital_method[value.value])


# --- an investment -------------------------------------------------------------------------------


@router.get("/investments/new")
async def investment_new(request: Request, viewer: Recorder) -> Response:
    form: Form[Any] = Form(values={"invested_on": today_india().isoformat(), "method": "bank"})
    return _capital_form(request, "investment", form)


@router.post("/investments/new")
async def investment_record(request: Request, session: SessionDep, viewer: Recorder) -> Response:
    form = await form_parse(request, InvestmentIn)
    _positive(form, "amount")
    if form.ok and form.data is not None and not form.editing:
        data = form.data
        if not form.confirmed:
            request_key_new(form)
            rows = [
                (gettext(N_("Amount")), i18n.money(data.amount)),
                (gettext(N_("Who invested")), data.source),
                (gettext(N_("Date")), i18n.date(data.invested_on or today_india())),
                (gettext(N_("Received in")), _method(data.method)),
            ]
            return _capital_form(request, "investment", form, confirm_rows=rows)

        async def produce() -> str:
            await service.investment_record(
                session,
                principal=viewer.principal,
                amount=data.amount,
                source=data.source,
                invested_on=data.invested_on or today_india(),
                method=data.method,
                reference=data.reference,
                description=data.description,
            )
            return "/office/capital?recorded=investment"

        try:
            location = await act_once(session, viewer, request, form, produce)
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return RedirectResponse(location, status_code=303)
    return _capital_form(request, "investment", form, status_code=200 if form.ok else 422)


# --- a borrowing ---------------------------------------------------------------------------------


@router.get("/borrowings/new")
async def borrowing_new(request: Request, viewer: Recorder) -> Response:
    form: Form[Any] = Form(
        values={
            "received_on": today_india().isoformat(),
            "method": "bank",
            "frequency": "monthly",
            "interest_method": "declining",
            "amortization": "equal-installments",
        }
    )
    return _capital_form(request, "borrowing", form)


@router.post("/borrowings/new")
async def borrowing_record(request: Request, session: SessionDep, viewer: Recorder) -> Response:
    form = await form_parse(request, BorrowingIn)
    _positive(form, "principal")
    if form.ok and form.data is not None and not form.editing:
        data = form.data
        if not form.confirmed:
            request_key_new(form)
            rows = [
                (gettext(N_("Lender")), data.lender_name),
                (gettext(N_("Amount received")), i18n.money(data.principal)),
                (gettext(N_("Interest rate (a year)")), i18n.percent(data.annual_rate)),
                (gettext(N_("Number of installments")), i18n.number(data.installments)),
                (gettext(N_("Repayment")), gettext(labels.frequency[data.frequency.value])),
                (gettext(N_("Received on")), i18n.date(data.received_on or today_india())),
            ]
            return _capital_form(request, "borrowing", form, confirm_rows=rows)

        async def produce() -> str:
            borrowing, _ = await service.borrowing_record(
                session,
                principal=viewer.principal,
                lender_name=data.lender_name,
                lender_contact=data.lender_contact,
                amount=data.principal,
                annual_rate=data.annual_rate,
                installments=data.installments,
                terms=BorrowingTerms(
                    frequency=data.frequency,
                    every=data.every,
                    interest_method=data.interest_method,
                    amortization=data.amortization,
                ),
                received_on=data.received_on or today_india(),
                first_due_on=data.first_due_on,
                method=data.method,
                reference=data.reference,
                remarks=data.remarks,
            )
            return f"/office/capital/borrowings/{borrowing.id}"

        try:
            location = await act_once(session, viewer, request, form, produce)
        except AppError as exc:
            _rename_field(exc, "amount", "principal")
            await form.failed(session, exc)
        else:
            return RedirectResponse(location, status_code=303)
    return _capital_form(request, "borrowing", form, status_code=200 if form.ok else 422)


def _rename_field(exc: AppError, old: str, new: str) -> None:
    if isinstance(exc.details, list):
        for item in exc.details:
            if isinstance(item, dict) and item.get("field") == old:
                item["field"] = new


# --- one borrowing and its repayments ------------------------------------------------------------


async def _borrowing_page(
    request: Request,
    session: SessionDep,
    borrowing_id: uuid.UUID,
    *,
    form: Form[Any] | None = None,
    confirm_rows: list[tuple[str, str]] | None = None,
    status_code: int = 200,
) -> Response:
    detail = await queries.borrowing_detail(session, borrowing_id)
    return render(
        request,
        "office/borrowing.html",
        {
            "b": detail,
            "form": form or Form(values={"paid_on": today_india().isoformat(), "method": "bank"}),
            "confirm_rows": confirm_rows,
            "methods": _options()["methods"],
        },
        status_code=status_code,
    )


@router.get("/borrowings/{borrowing_id}")
async def borrowing(
    request: Request, borrowing_id: uuid.UUID, session: SessionDep, viewer: Reader
) -> Response:
    return await _borrowing_page(request, session, borrowing_id)


@router.post("/borrowings/{borrowing_id}/repay")
async def borrowing_repay(
    request: Request, borrowing_id: uuid.UUID, session: SessionDep, viewer: Recorder
) -> Response:
    await queries.borrowing_detail(session, borrowing_id)  # 404 if unknown
    form = await form_parse(request, RepaymentIn)
    _positive(form, "amount")
    if form.ok and form.data is not None and not form.editing:
        data = form.data
        if not form.confirmed:
            request_key_new(form)
            rows = [
                (gettext(N_("Amount")), i18n.money(data.amount)),
                (gettext(N_("Paid on")), i18n.date(data.paid_on or today_india())),
                (gettext(N_("Paid from")), _method(data.method)),
            ]
            return await _borrowing_page(
                request, session, borrowing_id, form=form, confirm_rows=rows
            )

        async def produce() -> str:
            await service.borrowing_repay(
                session,
                principal=viewer.principal,
                borrowing_id=borrowing_id,
                amount=data.amount,
                paid_on=data.paid_on or today_india(),
                method=data.method,
                reference=data.reference,
            )
            return f"/office/capital/borrowings/{borrowing_id}"

        try:
            location = await act_once(session, viewer, request, form, produce)
        except AppError as exc:
            await form.failed(session, exc)
        else:
            return RedirectResponse(location, status_code=303)
    return await _borrowing_page(
        request, session, borrowing_id, form=form, status_code=200 if form.ok else 422
    )
