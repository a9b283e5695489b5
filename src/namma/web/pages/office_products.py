"""``/office/products`` (Admin): loan products and their versions. Creating a product and
adding a version use the API's service (``products.service``); a new version is shown side by
side with the current one before it is made (the confirmation step). The schedule preview for
sample terms comes from the money core (``products.service.schedule_preview``), fetched by htmx
into the product's page; the page computes nothing."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any, Literal, get_args

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, Field, ValidationError

from namma.auth.permissions import Permission
from namma.finance import (
    Amortization,
    ExcessPolicy,
    FeeBasis,
    FeeTiming,
    Frequency,
    InterestMethod,
    MoratoriumInterest,
    NonWorkingDayRule,
    ScheduleConvention,
)
from namma.finance.accrual import InterestAccounting
from namma.kit.clock import today_india
from namma.kit.deps import SessionDep
from namma.kit.errors import AppError, ConflictError, InvalidInputError
from namma.kit.money import Money, Rate
from namma.models import LoanProductVersion
from namma.products import queries, service
from namma.products.schemas import FeeIn, ProductTerms
from namma.reports.base import ColumnType as CT
from namma.web import i18n, labels
from namma.web.forms import FORM_ERROR, Form, error_message, form_parse, message_translate
from namma.web.i18n import N_, gettext
from namma.web.office import ADMIN, csv_url, list_keyset, param_bool, param_text, wants_csv
from namma.web.tables import Column, table_csv, table_of
from namma.web.templating import render
from namma.web.viewer import Viewer, viewer_of

router = APIRouter(prefix="/office/products", include_in_schema=False)

Reader = Annotated[Viewer, Depends(viewer_of(Permission.PRODUCT_READ, roles=ADMIN))]
Manager = Annotated[
    Viewer, Depends(viewer_of(Permission.PRODUCT_MANAGE, roles=ADMIN, limit="writes"))
]

COLUMNS = (
    Column("code", N_("Code")),
    Column("name", N_("Name")),
    Column("version", N_("Version"), numeric=True, sortable=False),
    Column("frequency", N_("Repayment"), sortable=False, phone=False),
    Column("rates", N_("Interest rate (a year)"), sortable=False, phone=False),
    Column("principal", N_("Amount"), sortable=False, phone=False),
    Column("status", N_("Status"), sortable=False),
)
FEE_NAME = "Processing fee"


DueOnHoliday = Literal[
    "next-working-day", "previous-working-day", "next-meeting-day", "same-day", "extend-term"
]
DUE_ON_HOLIDAY: tuple[str, ...] = get_args(DueOnHoliday)
"""A due date on a holiday, as the form offers it: the product's `non_working_day` rule, or
`extend-term` (the next working day's rule with `extend_term`)."""


def _due_on_holiday(terms: dict[str, Any]) -> str:
    if terms.get("extend_term"):
        return "extend-term"
    return str(terms.get("non_working_day", NonWorkingDayRule.NEXT_WORKING_DAY.value))


class VersionForm(BaseModel):
    """The terms a page edits (the rest of a version's terms are kept as they are)."""

    frequency: Frequency = Frequency.MONTHLY
    interest_method: InterestMethod = InterestMethod.DECLINING
    amortization: Amortization = Amortization.EQUAL_INSTALLMENTS
    # None (not sent): the convention the version is made from, else ours (D-211).
    schedule_convention: ScheduleConvention | None = None
    excess: ExcessPolicy = ExcessPolicy.ADVANCE
    due_on_holiday: DueOnHoliday = "next-working-day"
    moratorium_interest: MoratoriumInterest = MoratoriumInterest.CARRY
    interest_accounting: InterestAccounting = InterestAccounting.CASH
    processing_fee_percent: Rate | None = None
    min_principal: Money
    max_principal: Money
    min_rate: Rate
    max_rate: Rate
    default_rate: Rate
    min_installments: int = Field(ge=1, le=10_000)
    max_installments: int = Field(ge=1, le=10_000)
    microfinance: bool = False

    def limits(self) -> service.ProductLimits:
        return service.ProductLimits(
            min_principal=self.min_principal,
            max_principal=self.max_principal,
            min_rate=self.min_rate,
            max_rate=self.max_rate,
            default_rate=self.default_rate,
            min_installments=self.min_installments,
            max_installments=self.max_installments,
            microfinance=self.microfinance,
        )

    def terms(self, base: dict[str, Any] | None = None) -> ProductTerms:
        terms = ProductTerms.model_validate(base or {})
        fees = [f for f in terms.fees if f.name != FEE_NAME]
        if self.processing_fee_percent:
            fees.insert(
                0,
                FeeIn(
                    name=FEE_NAME,
                    timing=FeeTiming.DISBURSEMENT,
                    basis=FeeBasis.PERCENT,
                    value=self.processing_fee_percent,
                ),
            )
        return terms.model_copy(
            update={
                "frequency": self.frequency,
                "interest_method": self.interest_method,
                "amortization": self.amortization,
                "schedule_convention": self.schedule_convention or terms.schedule_convention,
                "allocation": terms.allocation.model_copy(update={"excess": self.excess}),
                "moratorium_interest": self.moratorium_interest,
                "interest_accounting": self.interest_accounting,
                "fees": fees,
                "non_working_day": NonWorkingDayRule.NEXT_WORKING_DAY
                if self.due_on_holiday == "extend-term"
                else NonWorkingDayRule(self.due_on_holiday),
                "extend_term": self.due_on_holiday == "extend-term",
            }
        )


class ProductForm(VersionForm):
    code: str = Field(min_length=2, max_length=20)
    name: str = Field(min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=2000)


class PreviewForm(BaseModel):
    principal: Money
    annual_rate: Rate
    installments: int = Field(ge=1, le=10_000)


def _fee_percent(terms: dict[str, Any]) -> Decimal | None:
    for fee in terms.get("fees") or []:
        if fee.get("name") == FEE_NAME:
            return Decimal(str(fee["value"]))
    return None


def _moratorium_of(terms: dict[str, Any]) -> str:
    """What a restructuring's moratorium does with its interest under a version."""
    return str(terms.get("moratorium_interest", MoratoriumInterest.CARRY.value))


def _convention_of(terms: dict[str, Any]) -> str:
    """How a version's schedule is worked out (D-180; versions that say nothing: ours)."""
    return str(terms.get("schedule_convention", ScheduleConvention.NAMMA.value))


def _accounting_of(terms: dict[str, Any]) -> str:
    """When a version's interest becomes income (D-200; versions made before it: cash)."""
    return str(terms.get("interest_accounting", InterestAccounting.CASH.value))


def _excess_of(terms: dict[str, Any]) -> str:
    """A version's excess policy (what money beyond the dues does)."""
    return str((terms.get("allocation") or {}).get("excess", ExcessPolicy.ADVANCE.value))


def _plain(rate: Decimal) -> str:
    """A rate as typed (24, 26.5), not as stored (24.0000)."""
    return format(rate.normalize(), "f")


def _values_of(version: LoanProductVersion) -> dict[str, str]:
    """A version as a form's values (to start a new version from the current one)."""
    fee = _fee_percent(version.terms)
    return {
        "frequency": str(version.terms.get("frequency", "monthly")),
        "interest_method": str(version.terms.get("interest_method", "declining")),
        "amortization": str(version.terms.get("amortization", "equal-installments")),
        "schedule_convention": _convention_of(version.terms),
        "excess": _excess_of(version.terms),
        "due_on_holiday": _due_on_holiday(version.terms),
        "moratorium_interest": _moratorium_of(version.terms),
        "interest_accounting": _accounting_of(version.terms),
        "processing_fee_percent": "" if fee is None else _plain(fee),
        "min_principal": str(version.min_principal),
        "max_principal": str(version.max_principal),
        "min_rate": _plain(version.min_rate),
        "max_rate": _plain(version.max_rate),
        "default_rate": _plain(version.default_rate),
        "min_installments": str(version.min_installments),
        "max_installments": str(version.max_installments),
        "microfinance": "yes" if version.microfinance else "",
    }


def _shown(key: str, value: Any) -> str:
    """A version's value as people read it (for the side-by-side comparison)."""
    if value in (None, ""):
        return "—"
    if key in ("min_principal", "max_principal"):
        return i18n.money(Decimal(str(value)))
    if key in ("min_rate", "max_rate", "default_rate", "processing_fee_percent"):
        return i18n.percent(Decimal(str(value)))
    if key in ("min_installments", "max_installments"):
        return i18n.number(int(value))
    if key == "frequency":
        return gettext(labels.frequency[str(value)])
    if key == "interest_method":
        return gettext(labels.interest_method[str(value)])
    if key == "amortization":
        return gettext(labels.amortization[str(value)])
    if key == "schedule_convention":
        return gettext(labels.schedule_convention[str(value)])
    if key == "excess":
        return gettext(labels.excess_policy[str(value)])
    if key == "due_on_holiday":
        return gettext(labels.due_on_holiday[str(value)])
    if key == "moratorium_interest":
        return gettext(labels.moratorium_interest[str(value)])
    if key == "interest_accounting":
        return gettext(labels.interest_accounting[str(value)])
    if key == "microfinance":
        return gettext(N_("Yes")) if value in (True, "yes", "on", "true") else gettext(N_("No"))
    return str(value)


DIFF_FIELDS: tuple[tuple[str, str], ...] = (
    ("frequency", N_("Repayment")),
    ("interest_method", N_("Interest method")),
    ("amortization", N_("Installments")),
    ("schedule_convention", N_("Schedule convention")),
    ("excess", N_("Money beyond the dues")),
    ("due_on_holiday", N_("A due date on a holiday")),
    ("moratorium_interest", N_("Interest of a restructuring's moratorium")),
    ("interest_accounting", N_("Interest accounting")),
    ("processing_fee_percent", N_("Processing fee (percent of the amount)")),
    ("min_principal", N_("Smallest amount")),
    ("max_principal", N_("Largest amount")),
    ("min_rate", N_("Lowest rate")),
    ("default_rate", N_("Usual rate")),
    ("max_rate", N_("Highest rate")),
    ("min_installments", N_("Fewest installments")),
    ("max_installments", N_("Most installments")),
    ("microfinance", N_("Microfinance loan (RBI rules)")),
)


def _diff(current: dict[str, str], proposed: dict[str, str]) -> list[tuple[str, str, str, bool]]:
    rows = []
    for key, label in DIFF_FIELDS:
        before, after = _shown(key, current.get(key)), _shown(key, proposed.get(key))
        rows.append((gettext(label), before, after, before != after))
    return rows


def _fields_unprefixed(exc: AppError) -> AppError:
    """The service names the terms' fields ``terms.x``; the page's inputs are ``x``."""
    if isinstance(exc.details, list):
        for item in exc.details:
            if isinstance(item, dict) and str(item.get("field", "")).startswith("terms."):
                item["field"] = str(item["field"]).removeprefix("terms.")
    return exc


# --- the list ------------------------------------------------------------------------------------


@router.get("")
async def products(request: Request, session: SessionDep, viewer: Reader) -> Response:
    keyset, after = list_keyset(request, queries.PRODUCT_SORTS, default="code")
    filters = {"q": param_text(request, "q"), "active": request.query_params.get("active")}
    page = await queries.products_page(
        session, keyset, q=filters["q"], active=param_bool(request, "active")
    )
    if wants_csv(request):
        return table_csv(
            "products.csv",
            [
                ("code", CT.TEXT),
                ("name", CT.TEXT),
                ("version", CT.INT),
                ("frequency", CT.TEXT),
                ("min_rate", CT.PERCENT),
                ("max_rate", CT.PERCENT),
                ("min_principal", CT.MONEY),
                ("max_principal", CT.MONEY),
                ("active", CT.TEXT),
            ],
            (
                (
                    p.code,
                    p.name,
                    p.latest_version,
                    v.terms.get("frequency") if v else None,
                    v.min_rate if v else None,
                    v.max_rate if v else None,
                    v.min_principal if v else None,
                    v.max_principal if v else None,
                    "yes" if p.is_active else "no",
                )
                for p, v, _ in page.rows
            ),
        )
    table = table_of(request, COLUMNS, keyset, next_cursor=page.next, after=after, extra=filters)
    return render(
        request,
        "office/products.html",
        {"rows": page.rows, "table": table, "filters": filters, "csv": csv_url(request)},
    )


_NEW_DEFAULTS = {
    "frequency": "weekly",
    "interest_method": "declining",
    "amortization": "equal-installments",
    "schedule_convention": ScheduleConvention.NAMMA.value,
    "microfinance": "yes",
}


def _form_page(
    request: Request,
    form: Form[Any],
    *,
    product: Any = None,
    current: LoanProductVersion | None = None,
    diff: list[tuple[str, str, str, bool]] | None = None,
    status_code: int = 200,
) -> Response:
    return render(
        request,
        "office/product_form.html",
        {
            "form": form,
            "product": product,
            "current": current,
            "diff": diff,
            "frequencies": [f.value for f in Frequency if f is not Frequency.DAYS],
            "methods": [m.value for m in InterestMethod],
            "amortizations": [a.value for a in Amortization],
            "conventions": [c.value for c in ScheduleConvention],
            "excess_policies": [e.value for e in ExcessPolicy],
            "holiday_rules": list(DUE_ON_HOLIDAY),
            "moratorium_rules": [m.value for m in MoratoriumInterest],
            "accounting_bases": [a.value for a in InterestAccounting],
        },
        status_code=status_code,
    )


@router.get("/new")
async def product_new(request: Request, viewer: Manager) -> Response:
    return _form_page(request, Form(values=dict(_NEW_DEFAULTS)))


@router.post("/new")
async def product_create(request: Request, session: SessionDep, viewer: Manager) -> Response:
    form = await form_parse(request, ProductForm)
    form.values.setdefault("microfinance", "")
    if form.ok and form.data is not None:
        try:
            product, _ = await service.product_create(
                session,
                actor=viewer.principal.audit_actor,
                created_by_id=viewer.principal.user_id,
                code=form.data.code,
                name=form.data.name,
                description=form.data.description,
                terms=form.data.terms(),
                limits=form.data.limits(),
            )
        except AppError as exc:
            await form.failed(session, _fields_unprefixed(exc))
        else:
            return RedirectResponse(f"/office/products/{product.id}", status_code=303)
    return _form_page(request, form, status_code=422)


# --- one product ---------------------------------------------------------------------------------


@router.get("/{product_id}")
async def product(
    request: Request, product_id: uuid.UUID, session: SessionDep, viewer: Reader
) -> Response:
    found, versions = await queries.product_with_versions(session, product_id)
    latest = versions[0]
    values = {
        "principal": str(latest.min_principal),
        "annual_rate": _plain(latest.default_rate),
        "installments": str(latest.min_installments),
    }
    return render(
        request,
        "office/product.html",
        {
            "product": found,
            "versions": versions,
            "latest": latest,
            "fee_percent": _fee_percent(latest.terms),
            "excess": _excess_of(latest.terms),
            "due_on_holiday": _due_on_holiday(latest.terms),
            "moratorium": _moratorium_of(latest.terms),
            "preview_form": Form(values=values),
            "schedule": None,
            "excess_example": None,
        },
    )


@router.get("/{product_id}/preview")
async def product_preview(
    request: Request, product_id: uuid.UUID, session: SessionDep, viewer: Reader
) -> Response:
    """The schedule for sample terms (an htmx partial of the product's page; a full page
    without script)."""
    found, versions = await queries.product_with_versions(session, product_id)
    latest = versions[0]
    form, data = _preview_parse(request)
    schedule = None
    if data is not None:
        try:
            schedule = await service.schedule_preview(
                session,
                latest,
                principal=data.principal,
                annual_rate=data.annual_rate,
                installments=data.installments,
                disbursed_on=today_india(),
            )
        except InvalidInputError as exc:
            details = exc.details if isinstance(exc.details, list) else []
            for item in details:
                if isinstance(item, dict):
                    name = str(item.get("field", ""))
                    form.add_error(
                        name if name in PreviewForm.model_fields else FORM_ERROR,
                        message_translate(str(item.get("message", exc.message))),
                    )
            form.add_error(FORM_ERROR, message_translate(exc.message))
    return render(
        request,
        "office/product.html",
        {
            "product": found,
            "versions": versions,
            "latest": latest,
            "fee_percent": _fee_percent(latest.terms),
            "excess": _excess_of(latest.terms),
            "due_on_holiday": _due_on_holiday(latest.terms),
            "moratorium": _moratorium_of(latest.terms),
            "preview_form": form,
            "schedule": schedule,
            "excess_example": service.excess_example(schedule) if schedule else None,
        },
        block="preview",
        status_code=200 if schedule is not None else 422,
    )


def _preview_parse(request: Request) -> tuple[Form[Any], PreviewForm | None]:
    """The preview's inputs (in the address) checked like a posted form: errors by field."""
    values = {
        k: v.strip() for k, v in request.query_params.items() if k in PreviewForm.model_fields
    }
    form: Form[Any] = Form(values=values)
    try:
        data = PreviewForm.model_validate({k: v for k, v in values.items() if v})
    except ValidationError as exc:
        for error in exc.errors():
            name = ".".join(str(p) for p in error["loc"])
            form.add_error(
                name if name in PreviewForm.model_fields else FORM_ERROR, error_message(error)
            )
        return form, None
    return form, data


# --- a new version -------------------------------------------------------------------------------


@router.get("/{product_id}/versions/new")
async def version_new(
    request: Request, product_id: uuid.UUID, session: SessionDep, viewer: Manager
) -> Response:
    found, versions = await queries.product_with_versions(session, product_id)
    form: Form[Any] = Form(values=_values_of(versions[0]))
    return _form_page(request, form, product=found, current=versions[0])


@router.post("/{product_id}/versions/new")
async def version_create(
    request: Request, product_id: uuid.UUID, session: SessionDep, viewer: Manager
) -> Response:
    """First post: the new version side by side with the current one (nothing changes yet);
    the confirmed post makes it."""
    found, versions = await queries.product_with_versions(session, product_id)
    current = versions[0]
    form = await form_parse(request, VersionForm)
    form.values.setdefault("microfinance", "")
    if form.ok and form.data is not None:
        if form.editing:
            return _form_page(request, form, product=found, current=current)
        if not form.confirmed:
            # What the new version will hold: a field not sent takes the form's default (the
            # convention: the current version's).
            proposed = {
                "schedule_convention": (
                    form.data.schedule_convention
                    or ScheduleConvention(_convention_of(current.terms))
                ).value,
                "excess": form.data.excess.value,
                "due_on_holiday": form.data.due_on_holiday,
                "moratorium_interest": form.data.moratorium_interest.value,
                "interest_accounting": form.data.interest_accounting.value,
                **form.values,
            }
            diff = _diff(_values_of(current), proposed)
            return _form_page(request, form, product=found, current=current, diff=diff)
        try:
            await service.product_revise(
                session,
                actor=viewer.principal.audit_actor,
                created_by_id=viewer.principal.user_id,
                product_id=found.id,
                terms=form.data.terms(current.terms),
                limits=form.data.limits(),
            )
        except AppError as exc:
            await form.failed(session, _fields_unprefixed(exc))
        else:
            return RedirectResponse(f"/office/products/{found.id}", status_code=303)
    return _form_page(request, form, product=found, current=current, status_code=422)


@router.post("/{product_id}/active")
async def product_active(
    request: Request, product_id: uuid.UUID, session: SessionDep, viewer: Manager
) -> Response:
    """Offer the product for new loans again, or stop offering it (loans made keep it)."""
    found, _ = await queries.product_with_versions(session, product_id)
    posted = await request.form()
    try:
        await service.product_set_active(
            session,
            actor=viewer.principal.audit_actor,
            product_id=found.id,
            active=posted.get("active") == "yes",
        )
    except ConflictError:  # already so (a repeated post): nothing to change
        await session.rollback()
    return RedirectResponse(f"/office/products/{found.id}", status_code=303)
