"""The head office's desk pages (issue 18 item 3, in part):

- ``/office/reports`` and ``/office/reports/<report>``: every report of ``/api/reports`` with its
  filters as a form, its table, a chart where it helps, CSV and XLSX downloads (the API's own
  ``report_filters`` scope and ``reports.export`` files);
- ``/office/cob``: close-of-business runs, their state and errors, "run for a date" (the API's
  ``cob_queue``);
- ``/office/audit``: the audit log with filters, keyset pages, "verify the chain"
  (``audit_verify``, as ``namma audit verify``);
- ``/office/jobs``: failed jobs, their history and error where a domain keeps one, retry
  (``namma.kit.jobs``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.queries import audit_list
from namma.audit.service import audit_record, audit_verify
from namma.auth.permissions import Permission
from namma.cob.endpoints import cob_queue, cob_runs_read
from namma.kit.clock import INDIA, today_india
from namma.kit.deps import ReadSessionDep, SessionDep
from namma.kit.errors import AppError, InvalidInputError, NotFoundError, PermissionDeniedError
from namma.kit.jobs import JobNotFailedError, job_failed_detail, job_retry, jobs_failed
from namma.models import CobRun, LoanProduct, Notification, Role, User
from namma.reports.base import ColumnType, Report, value_json
from namma.reports.endpoints import (
    DAILY,
    MAX_DAILY_RANGE_DAYS,
    REPORTS,
    ReportFormat,
    report_filters,
    report_response,
)
from namma.reports.queries import overdue_list
from namma.web import i18n, labels, report_labels
from namma.web.charts import BarChart, bar_chart
from namma.web.forms import FORM_ERROR, Form, message_translate
from namma.web.i18n import N_, gettext
from namma.web.templating import render
from namma.web.viewer import Viewer, viewer_of

router = APIRouter(prefix="/office", include_in_schema=False)

OFFICE = (Role.ADMIN, Role.MANAGER)
ReportViewer = Annotated[Viewer, Depends(viewer_of(Permission.REPORT_READ, roles=OFFICE))]
CobViewer = Annotated[Viewer, Depends(viewer_of(Permission.COB_READ, roles=(Role.ADMIN,)))]
CobRunner = Annotated[
    Viewer, Depends(viewer_of(Permission.COB_RUN, roles=(Role.ADMIN,), limit="writes"))
]
AuditViewer = Annotated[Viewer, Depends(viewer_of(Permission.AUDIT_READ, roles=OFFICE))]
AdminViewer = Annotated[Viewer, Depends(viewer_of(Permission.AUDIT_READ, roles=(Role.ADMIN,)))]
# Failed jobs are the operations desk's, as the close of business: ``cob:run`` (Admin).
JobsAdmin = Annotated[
    Viewer, Depends(viewer_of(Permission.COB_RUN, roles=(Role.ADMIN,), limit="writes"))
]

# --- reports -------------------------------------------------------------------------------------

REPORT_TITLES: dict[str, tuple[str, str]] = {
    "portfolio-summary": (
        N_("Portfolio summary"),
        N_(
            "Per branch: portfolio, overdue, PAR; the period's disbursements, dues and collections."
        ),
    ),
    "par": (N_("Portfolio at risk"), N_("Active loans by days past due; PAR 1, 30 and 90.")),
    "demand-collection": (
        N_("Demand and collection"),
        N_("Per day, branch and agent: dues, collected against them, collection rate."),
    ),
    "collections": (N_("Collection register"), N_("Every collection and reversal in the period.")),
    "disbursements": (N_("Disbursement register"), N_("Every loan paid out in the period.")),
    "agent-performance": (
        N_("Agent performance"),
        N_("Per agent: customers, portfolio, PAR, collection efficiency."),
    ),
    "overdue": (N_("Overdue loans"), N_("The defaulter list, longest overdue first.")),
    "loan-aging": (N_("Loan aging"), N_("What active loans owe, by how long it is overdue.")),
    "income": (N_("Income"), N_("Interest, fee, penalty and recovery income per branch.")),
    "trial-balance": (N_("Trial balance"), N_("The ledger's trial balance on a day.")),
    "income-statement": (
        N_("Income statement"),
        N_("Income and expenses of the period from the ledger, and profit."),
    ),
    "provisioning": (
        N_("Provisioning"),
        N_("Provision for loan losses per branch and asset class: required and held."),
    ),
    "capital-utilisation": (
        N_("Capital utilisation"),
        N_("Own capital, borrowings, loans outstanding and utilisation."),
    ),
}
REPORT_ROWS_SHOWN = 500
# Which filters each report's form offers.
PERIOD = {
    "portfolio-summary",
    "demand-collection",
    "collections",
    "disbursements",
    "agent-performance",
    "income",
    "income-statement",
}
AS_OF = {"trial-balance"}
BY_LOANS = PERIOD - {"income-statement"} | {"par", "overdue", "loan-aging", "provisioning"}
HEAD_OFFICE = {"capital-utilisation"}
# A chart where it helps: (row label key, value key, colour).
CHARTS: dict[str, tuple[str, str, str]] = {
    "portfolio-summary": ("branch_code", "outstanding_principal", "principal"),
    "par": ("bucket", "outstanding_principal", "penalties"),
    "agent-performance": ("agent_name", "outstanding_principal", "principal"),
    "loan-aging": ("bucket", "amount", "interest"),
    "income": ("branch_code", "total", "paid"),
}


# Code cells shown as words (the API and the files keep the codes).
CELL_LABELS = {"asset_class": labels.provision_class}


def _report_names(viewer: Viewer) -> list[str]:
    names = [*REPORTS, "overdue"]
    if not viewer.principal.can(Permission.CAPITAL_READ):
        names = [n for n in names if n not in HEAD_OFFICE]
    return sorted(names, key=lambda n: gettext(REPORT_TITLES[n][0]))


def _query_form(request: Request) -> Form[Any]:
    return Form(values={k: v.strip() for k, v in request.query_params.items()})


def _date(form: Form[Any], name: str) -> dt.date | None:
    raw = form.value(name)
    if not raw:
        return None
    try:
        return dt.date.fromisoformat(raw)
    except ValueError:
        form.add_error(name, gettext(N_("Enter a date.")))
        return None


def _uuid(form: Form[Any], name: str) -> uuid.UUID | None:
    raw = form.value(name)
    if not raw:
        return None
    try:
        return uuid.UUID(raw)
    except ValueError:
        form.add_error(name, gettext(N_("Choose one of the options.")))
        return None


def _cell(value: Any, kind: ColumnType) -> str:
    shown = value_json(value, kind)
    if shown is None or shown == "":
        return "—"
    if kind is ColumnType.MONEY:
        return i18n.money(shown)
    if kind is ColumnType.PERCENT:
        return i18n.percent(shown)
    if kind is ColumnType.INT:
        return i18n.number(shown)
    if kind is ColumnType.DATE:
        return i18n.date(shown)
    return str(shown)


def _chart(name: str, report: Report) -> BarChart | None:
    spec = CHARTS.get(name)
    if spec is None or not report.rows:
        return None
    label_key, value_key, kind = spec
    types = {c.key: c.type for c in report.columns}
    if value_key not in types:
        return None
    title = next((c.label for c in report.columns if c.key == value_key), value_key)
    return bar_chart(
        gettext(title),
        [
            (
                str(row.get(label_key) or "—"),
                value_json(row.get(value_key), types[value_key]) or 0,
                _cell(row.get(value_key), types[value_key]),
                kind,
            )
            for row in report.rows
        ],
        chart_id="chart-report",
    )


async def _choices(
    session: AsyncSession, viewer: Viewer
) -> tuple[list[tuple[str, str]], list[tuple[str, str]], list[tuple[str, str]]]:
    """Branches (Admin), agents and products to choose from, in the viewer's scope."""
    from namma.models import Branch

    branches: list[tuple[str, str]] = []
    agents_query = select(User.id, User.name).where(User.role == Role.AGENT).order_by(User.name)
    if viewer.role is Role.ADMIN:
        rows = (
            await session.execute(select(Branch.id, Branch.code, Branch.name).order_by(Branch.code))
        ).all()
        branches = [(str(i), f"{c} · {n}") for i, c, n in rows]
    else:
        agents_query = agents_query.where(User.branch_id == viewer.principal.branch_id)
    agents = [(str(i), n) for i, n in (await session.execute(agents_query)).all()]
    products = [
        (str(i), f"{c} · {n}")
        for i, c, n in (
            await session.execute(
                select(LoanProduct.id, LoanProduct.code, LoanProduct.name).order_by(
                    LoanProduct.code
                )
            )
        ).all()
    ]
    return branches, agents, products


@router.get("/reports")
async def reports_index(request: Request, viewer: ReportViewer) -> Response:
    items = [
        (name, REPORT_TITLES[name][0], REPORT_TITLES[name][1]) for name in _report_names(viewer)
    ]
    return render(request, "office/reports.html", {"items": items})


@router.get("/reports/{name}")
async def report_page(
    request: Request, name: str, session: ReadSessionDep, viewer: ReportViewer
) -> Response:
    if name not in REPORT_TITLES:
        raise NotFoundError("No such report.")
    if name in HEAD_OFFICE and not viewer.principal.can(Permission.CAPITAL_READ):
        raise PermissionDeniedError("Capital is a head-office report.")
    form = _query_form(request)
    date_from = _date(form, "from") if name in PERIOD else None
    date_to = _date(form, "to") if name in PERIOD | AS_OF else None
    branch_id = _uuid(form, "branch_id")  # a Manager naming another branch: 404, as the API
    agent_id = _uuid(form, "agent_id") if name in BY_LOANS else None
    product_id = _uuid(form, "product_id") if name in BY_LOANS else None
    min_dpd = 1
    if name == "overdue" and form.value("min_dpd"):
        try:
            min_dpd = int(form.value("min_dpd"))
            if not 1 <= min_dpd <= 10000:
                raise ValueError
        except ValueError:
            form.add_error("min_dpd", gettext(N_("Enter a whole number from 1 to 10000.")))
    report = None
    scope = "all"
    if not form.errors:
        try:
            filters, scope = await report_filters(
                session,
                viewer.principal,
                date_from=date_from,
                date_to=date_to,
                branch_id=branch_id,
                agent_id=agent_id,
                product_id=product_id,
            )
            if name in DAILY and (filters.date_to - filters.date_from).days >= MAX_DAILY_RANGE_DAYS:
                raise InvalidInputError(
                    "from", f"A daily report covers at most {MAX_DAILY_RANGE_DAYS} days."
                )
        except InvalidInputError as exc:
            await form.failed(session, exc)
        else:
            if name == "overdue":
                report = await overdue_list(session, filters, min_dpd=min_dpd)
            else:
                report = await REPORTS[name][0](session, filters)
    fmt = form.value("format")
    if report is not None and fmt in (ReportFormat.CSV.value, ReportFormat.XLSX.value):
        answer = report_response(report, ReportFormat(fmt), scope)
        assert isinstance(answer, Response)
        return answer
    branches, agents, products = await _choices(session, viewer)
    kept = {k: v for k, v in form.values.items() if k != "format" and v}
    context: dict[str, Any] = {
        "name": name,
        "title": REPORT_TITLES[name][0],
        "summary_text": REPORT_TITLES[name][1],
        "form": form,
        "report": report,
        "shows": {
            "period": name in PERIOD,
            "as_of": name in AS_OF,
            "loans": name in BY_LOANS,
            "branch": viewer.role is Role.ADMIN and name not in HEAD_OFFICE,
            "min_dpd": name == "overdue",
        },
        "branches": branches,
        "agents": agents,
        "products": products,
        "csv_url": f"{request.url.path}?{urlencode(kept | {'format': 'csv'})}",
        "xlsx_url": f"{request.url.path}?{urlencode(kept | {'format': 'xlsx'})}",
        "chart": None,
    }
    if report is not None:
        types = {c.key: c.type for c in report.columns}
        context["columns"] = report.columns
        context["labels"] = [gettext(c.label) for c in report.columns]
        context["numeric"] = {c.key for c in report.columns if c.type is not ColumnType.TEXT}
        # A long report (a defaulter list of thousands) shows its first rows; the files and the
        # totals keep every row.
        context["rows"] = [
            [
                gettext(CELL_LABELS[c.key][row[c.key]])
                if c.key in CELL_LABELS and row.get(c.key)
                else _cell(row.get(c.key), c.type)
                for c in report.columns
            ]
            for row in report.rows[:REPORT_ROWS_SHOWN]
        ]
        context["rows_total"] = len(report.rows)
        context["totals"] = (
            [
                _cell(report.totals[c.key], c.type) if c.key in report.totals else ""
                for c in report.columns
            ]
            if report.totals
            else None
        )
        context["summary"] = [
            (
                key,
                gettext(report_labels.SUMMARY[key]) if key in report_labels.SUMMARY else key,
                _cell(
                    value,
                    report.summary_types.get(
                        key, ColumnType.MONEY if isinstance(value, Decimal) else ColumnType.TEXT
                    ),
                ),
            )
            for key, value in report.summary.items()
        ]
        context["reconciliation"] = report.reconciliation
        context["types"] = types
        context["chart"] = _chart(name, report)
    return render(request, "office/report.html", context, status_code=422 if form.errors else 200)


# --- close of business -----------------------------------------------------------------------


@router.get("/cob")
async def cob_page(request: Request, session: SessionDep, viewer: CobViewer) -> Response:
    runs = await cob_runs_read(session, limit=30)
    form: Form[Any] = Form(
        values={"business_date": (today_india() - dt.timedelta(days=1)).isoformat()}
    )
    return render(
        request,
        "office/cob.html",
        {"runs": runs, "form": form, "queued": request.query_params.get("queued")},
        block="runs",
    )


@router.post("/cob")
async def cob_run(request: Request, session: SessionDep, viewer: CobRunner) -> Response:
    posted = await request.form()
    form: Form[Any] = Form(
        values={k: str(v).strip() for k, v in posted.items() if k in ("business_date", "force")}
    )
    day = _date(form, "business_date")
    if day is None and not form.errors:
        form.add_error("business_date", gettext(N_("Please fill this in.")))
    if day is not None:
        try:
            await cob_queue(
                session, viewer.principal, business_date=day, force=form.value("force") == "yes"
            )
        except AppError as exc:
            await form.failed(session, exc)
            if not form.errors:
                form.add_error(FORM_ERROR, message_translate(exc.message))
    if form.errors:
        runs = await cob_runs_read(session, limit=30)
        return render(
            request,
            "office/cob.html",
            {"runs": runs, "form": form, "queued": None},
            status_code=422,
        )
    await session.commit()
    assert day is not None
    return RedirectResponse(f"/office/cob?queued={day.isoformat()}", status_code=303)


# --- audit log ------------------------------------------------------------------------------------

AUDIT_PAGE = 50


@router.get("/audit")
async def audit_page(request: Request, session: SessionDep, viewer: AuditViewer) -> Response:
    form = _query_form(request)
    actor_id = _uuid(form, "actor_id")
    since = _date(form, "since")
    until = _date(form, "until")
    before_raw = form.value("before_id")
    before_id = int(before_raw) if before_raw.isdigit() else None
    if since and until and since > until:
        form.add_error("until", gettext(N_("The end date is before the start date.")))
    admin = viewer.role is Role.ADMIN
    entries: list[Any] = []
    if not form.errors and (admin or viewer.principal.branch_id is not None):
        entries = await audit_list(
            session,
            branch_id=None if admin else viewer.principal.branch_id,
            actor_id=actor_id,
            action=form.value("action") or None,
            entity_type=form.value("entity_type") or None,
            entity_id=form.value("entity_id") or None,
            since=dt.datetime.combine(since, dt.time(), tzinfo=INDIA) if since else None,
            until=dt.datetime.combine(until + dt.timedelta(days=1), dt.time(), tzinfo=INDIA)
            if until
            else None,
            before_id=before_id,
            limit=AUDIT_PAGE,
        )
    ids = {e.actor_id for e in entries if e.actor_id}
    names: dict[uuid.UUID, str] = {}
    if ids:
        found = await session.execute(select(User.id, User.name).where(User.id.in_(ids)))
        names = {i: n for i, n in found.all()}
    people_query = (
        select(User.id, User.name, User.role).where(User.role != Role.CUSTOMER).order_by(User.name)
    )
    if not admin:
        people_query = people_query.where(User.branch_id == viewer.principal.branch_id)
    people = [
        (str(i), f"{n} ({gettext(_role_label(r))})")
        for i, n, r in (await session.execute(people_query)).all()
    ]
    kept = {k: v for k, v in form.values.items() if k != "before_id" and v}
    next_url = None
    if len(entries) == AUDIT_PAGE:
        next_url = f"/office/audit?{urlencode(kept | {'before_id': str(entries[-1].id)})}"
    first_url = f"/office/audit?{urlencode(kept)}" if before_id else None
    return render(
        request,
        "office/audit.html",
        {
            "form": form,
            "entries": entries,
            "names": names,
            "people": people,
            "next_url": next_url,
            "first_url": first_url,
            "can_verify": admin,
            "result": None,
        },
        status_code=422 if form.errors else 200,
    )


def _role_label(role: Role) -> str:
    return str(labels.role[role.value])


@router.post("/audit/verify")
async def audit_verify_page(request: Request, session: SessionDep, viewer: AdminViewer) -> Response:
    """The whole chain checked, as ``namma audit verify``; an htmx request gets the result only."""
    result = await audit_verify(session)
    return render(
        request,
        "office/audit_verify.html",
        {"result": result},
        block="verify",
    )


# --- failed jobs -------------------------------------------------------------------------------


async def _job_error(
    session: AsyncSession, task_name: str, kwargs: dict[str, Any], job_id: int
) -> str | None:
    """The error a domain kept for the job: a notification's last error, a close of business's
    error. procrastinate keeps none of its own."""
    if task_name.startswith("notifications:"):
        return await session.scalar(
            select(Notification.last_error).where(Notification.job_id == job_id)
        )
    if task_name == "cob:run" and isinstance(kwargs.get("business_date"), str):
        try:
            day = dt.date.fromisoformat(kwargs["business_date"])
        except ValueError:
            return None
        return await session.scalar(select(CobRun.error).where(CobRun.business_date == day))
    return None


@router.get("/jobs")
async def jobs_page(request: Request, viewer: JobsAdmin) -> Response:
    failed = await jobs_failed(request.app.state.job_app, limit=100)
    return render(
        request,
        "office/jobs.html",
        {"jobs": failed, "retried": request.query_params.get("retried")},
    )


@router.get("/jobs/{job_id}")
async def job_page(
    request: Request, job_id: int, session: SessionDep, viewer: JobsAdmin
) -> Response:
    found = await job_failed_detail(request.app.state.job_app, job_id)
    if found is None:
        raise NotFoundError("No such failed job.")
    job, events = found
    error = await _job_error(session, job.task_name, job.task_kwargs, job.id)
    return render(request, "office/job.html", {"job": job, "events": events, "error": error})


@router.post("/jobs/{job_id}/retry")
async def job_retry_page(
    request: Request, job_id: int, session: SessionDep, viewer: JobsAdmin
) -> Response:
    try:
        await job_retry(request.app.state.job_app, job_id)
    except JobNotFailedError:
        raise NotFoundError("No such failed job.") from None
    await audit_record(
        session,
        actor=viewer.principal.audit_actor,
        action="job.retried",
        entity_type="job",
        entity_id=str(job_id),
    )
    await session.commit()
    return RedirectResponse(f"/office/jobs?retried={job_id}", status_code=303)
