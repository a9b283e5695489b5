"""`/api/reports/{name}`: the portfolio reports as JSON, CSV (`?format=csv`) or XLSX
(`?format=xlsx`). `report:read` — Admin: every branch, or one (`branch_id`); Manager: their own
branch only — another branch (or an agent of another branch) answers 404, as an unknown one.
Capital utilisation is a head-office figure: Admin only (403 for a Manager).

Filters: `from`, `to` (inclusive; default: the month to date, India), `branch_id`, `agent_id`,
`product_id` — each report uses those that make sense for it (docs/reports.md).
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.kit.apitypes import Day
from namma.kit.clock import today_india
from namma.kit.deps import AskedByRecentWriterDep, ReadCacheDep, ReadSessionDep
from namma.kit.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from namma.kit.openapi import error_responses
from namma.models import Branch, LoanProduct, Role, User
from namma.reports import queries
from namma.reports.base import Report, ReportFilters
from namma.reports.dashboard import DashboardPeriod, dashboard_cached
from namma.reports.export import (
    CSV_MEDIA_TYPE,
    XLSX_MEDIA_TYPE,
    report_csv,
    report_filename,
    report_xlsx,
)
from namma.reports.schemas import Dashboard, ReportIndex, ReportLink, ReportOut

router = APIRouter(prefix="/api/reports", tags=["reports"])

ReportReader = Annotated[Principal, Depends(require(Permission.REPORT_READ))]
MAX_DAILY_RANGE_DAYS = 366


class ReportFormat(enum.StrEnum):
    JSON = "json"
    CSV = "csv"
    XLSX = "xlsx"


ReportFunction = Callable[[AsyncSession, ReportFilters], Awaitable[Report]]

# name → (function, summary)
REPORTS: dict[str, tuple[ReportFunction, str]] = {
    "portfolio-summary": (
        queries.portfolio_summary,
        "Per branch: active portfolio, outstanding, overdue, PAR; the period's disbursements, "
        "dues, collections and collection rate.",
    ),
    "par": (queries.par_report, "Active loans by days-past-due bucket; PAR1, PAR30, PAR90."),
    "demand-collection": (
        queries.demand_collection,
        "Per day, branch and agent: dues falling due, collected against them, collection rate.",
    ),
    "collections": (
        queries.collection_register,
        "Collection register: every collection and reversal in the period.",
    ),
    "disbursements": (
        queries.disbursement_register,
        "Disbursement register: every loan paid out in the period.",
    ),
    "agent-performance": (
        queries.agent_performance,
        "Per agent: customers, portfolio, PAR, collection efficiency, collections made.",
    ),
    "loan-aging": (
        queries.loan_aging,
        "What active loans owe, by how long each installment has been overdue.",
    ),
    "income": (queries.income_report, "Interest, fee, penalty and recovery income per branch."),
    "trial-balance": (
        queries.trial_balance_report,
        "The ledger's trial balance as of `to`.",
    ),
    "income-statement": (
        queries.income_statement,
        "Income and expenses of the period from the ledger, and profit.",
    ),
    "provisioning": (
        queries.provisioning_report,
        "Provisioning for loan losses per branch and asset class: rates, provision required "
        "and held.",
    ),
    "capital-utilisation": (
        queries.capital_utilisation,
        "Own capital, borrowings, loans outstanding and utilisation (Admin only).",
    ),
}
OVERDUE_SUMMARY = "Overdue loans (defaulter list) with days past due, longest first."
DAILY = {"demand-collection"}


async def report_filters(
    session: AsyncSession,
    principal: Principal,
    *,
    date_from: dt.date | None,
    date_to: dt.date | None,
    branch_id: uuid.UUID | None,
    agent_id: uuid.UUID | None,
    product_id: uuid.UUID | None,
) -> tuple[ReportFilters, str]:
    """The request's filters, scoped to the caller; and a label of the scope for file names.

    A filter naming nothing is bad input (422, with the field) for an Admin. A Manager sees
    their branch only: another branch, an unknown one, or an agent who is not of their branch
    answers 404 — the same answer, so that scope reveals nothing (docs/api.md). Products are
    not scoped: an unknown product is a 422 for everyone."""
    today = today_india()
    date_to = date_to or today
    date_from = date_from or date_to.replace(day=1)
    if date_from > date_to:
        raise InvalidInputError("from", "The start date is after the end date.")
    manager = principal.role is Role.MANAGER
    if principal.role is Role.ADMIN:
        pass
    elif manager and principal.branch_id is not None:
        if branch_id not in (None, principal.branch_id):
            raise NotFoundError("No such branch.")
        branch_id = principal.branch_id
    else:  # the permission already refuses other roles
        raise PermissionDeniedError("You do not have permission to do this.")
    label = "all"
    if branch_id is not None:
        branch = await session.get(Branch, branch_id)
        if branch is None:
            raise InvalidInputError("branch_id", "No such branch.")
        label = branch.code
    if agent_id is not None:
        agent_query = select(User.id).where(User.id == agent_id).where(User.role == Role.AGENT)
        if branch_id is not None:
            agent_query = agent_query.where(User.branch_id == branch_id)
        if await session.scalar(agent_query) is None:
            if manager:
                raise NotFoundError("No such agent.")
            raise InvalidInputError(
                "agent_id",
                "No such agent in this branch." if branch_id else "No such agent.",
            )
    if product_id is not None and await session.get(LoanProduct, product_id) is None:
        raise InvalidInputError("product_id", "No such product.")
    return ReportFilters(date_from, date_to, branch_id, agent_id, product_id), label


def report_response(report: Report, fmt: ReportFormat, scope: str) -> ReportOut | Response:
    if fmt is ReportFormat.JSON:
        return ReportOut.of(report)
    if fmt is ReportFormat.CSV:
        content, media, ext = report_csv(report), CSV_MEDIA_TYPE, "csv"
    else:
        content, media, ext = report_xlsx(report), XLSX_MEDIA_TYPE, "xlsx"
    filename = report_filename(report, ext, scope=scope)
    return Response(
        content,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )


FromQ = Annotated[
    Day | None,
    Query(alias="from", description="First day of the period (default: 1st of `to`'s month)"),
]
ToQ = Annotated[Day | None, Query(alias="to", description="Last day (default: today)")]
BranchQ = Annotated[uuid.UUID | None, Query(description="One branch (a Manager: only their own)")]
AgentQ = Annotated[uuid.UUID | None, Query(description="One agent (their customers' loans)")]
ProductQ = Annotated[uuid.UUID | None, Query(description="One loan product")]
FormatQ = Annotated[ReportFormat, Query(alias="format", description="json, csv or xlsx")]


@router.get("")
async def reports_index(principal: ReportReader) -> ReportIndex:
    """The reports there are, with the URL of each."""
    items = [
        ReportLink(name=name, url=f"/api/reports/{name}", summary=summary)
        for name, (_, summary) in REPORTS.items()
        if name != "capital-utilisation" or principal.can(Permission.CAPITAL_READ)
    ]
    items.append(ReportLink(name="overdue", url="/api/reports/overdue", summary=OVERDUE_SUMMARY))
    return ReportIndex(reports=sorted(items, key=lambda i: i.name))


def _report_route(name: str, function: ReportFunction, summary: str) -> Callable[..., Any]:
    async def endpoint(
        session: ReadSessionDep,
        principal: ReportReader,
        date_from: FromQ = None,
        date_to: ToQ = None,
        branch_id: BranchQ = None,
        agent_id: AgentQ = None,
        product_id: ProductQ = None,
        fmt: FormatQ = ReportFormat.JSON,
    ) -> ReportOut | Response:
        if name == "capital-utilisation" and not principal.can(Permission.CAPITAL_READ):
            raise PermissionDeniedError("Capital is a head-office report.")
        filters, scope = await report_filters(
            session,
            principal,
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
        return report_response(await function(session, filters), fmt, scope)

    endpoint.__name__ = "report_" + name.replace("-", "_")
    endpoint.__doc__ = summary
    return endpoint


FILE = {"schema": {"type": "string", "format": "binary"}}
REPORT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The report (JSON), or the file with `format=csv` / `format=xlsx`",
        "content": {CSV_MEDIA_TYPE: FILE, XLSX_MEDIA_TYPE: FILE},
    },
    **error_responses(404),
}

for _name, (_function, _summary) in REPORTS.items():
    router.add_api_route(
        f"/{_name}",
        _report_route(_name, _function, _summary),
        methods=["GET"],
        response_model=ReportOut,
        summary=_summary.split(":")[0].split(";")[0][:80],
        description=_summary,
        responses=REPORT_RESPONSES,
    )


@router.get(
    "/overdue",
    summary="Overdue loans (defaulter list)",
    response_model=ReportOut,
    responses=REPORT_RESPONSES,
)
async def report_overdue(
    session: ReadSessionDep,
    principal: ReportReader,
    branch_id: BranchQ = None,
    agent_id: AgentQ = None,
    product_id: ProductQ = None,
    min_dpd: Annotated[int, Query(ge=1, le=10000, description="At least this many DPD")] = 1,
    fmt: FormatQ = ReportFormat.JSON,
) -> ReportOut | Response:
    """Active loans at least `min_dpd` days past due, the longest overdue first."""
    filters, scope = await report_filters(
        session,
        principal,
        date_from=None,
        date_to=None,
        branch_id=branch_id,
        agent_id=agent_id,
        product_id=product_id,
    )
    report = await queries.overdue_list(session, filters, min_dpd=min_dpd)
    return report_response(report, fmt, scope)


# --- dashboards ----------------------------------------------------------------------------------

dashboard_router = APIRouter(prefix="/api/dashboard", tags=["dashboard"])


@dashboard_router.get("", response_model=Dashboard)
async def dashboard(
    session: ReadSessionDep,
    cache: ReadCacheDep,
    principal: Annotated[Principal, Depends(require(Permission.DASHBOARD_READ))],
    wrote_recently: AskedByRecentWriterDep,
    period: Annotated[
        DashboardPeriod,
        Query(
            description="The flows' period, ending today: today, week (the last 7 days), month, "
            "quarter, half-year, year (financial, from 1 April; to date) or all"
        ),
    ] = DashboardPeriod.MONTH,
) -> Any:
    """The caller's dashboard: Admin the institution (per branch), Manager their branch (per
    agent), Agent their portfolio and cash in hand, Customer their loans. Cached 30 s; after a
    write by someone else in its scope, the last one built is answered (`stale`, with
    `figures_at`) while a new one is built for the next request."""
    return await dashboard_cached(session, cache, principal, period, fresh=wrote_recently)
