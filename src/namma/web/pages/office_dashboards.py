"""``/admin`` and ``/manager``: the back office's dashboards (issue 18 items 1 and 2).

Every figure comes from ``namma.reports`` — the cached dashboard (``dashboard_cached``, the same
as ``GET /api/dashboard``), the PAR report (buckets, SMA-0/1/2 and NPA) and, for a Manager, the
branch's desk (``branch_desk``: today per agent, overdue customers to visit, cash) — and is only
formatted here. An Admin may look at one branch (``?branch_id=``); a Manager's branch is fixed
by scope. Every figure links to the list behind it (``_links``; docs/pages.md lists the
addresses and their parameters).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.auth.permissions import Permission
from namma.kit.deps import AskedByRecentWriterDep, ReadCacheDep, ReadSessionDep
from namma.kit.errors import NotFoundError
from namma.models import Branch, LoanStatus, Role
from namma.reports.dashboard import (
    DashboardPeriod,
    branch_desk_cached,
    dashboard_cached,
    par_cached,
)
from namma.reports.queries import report_reads_shared
from namma.web import i18n, labels
from namma.web.charts import BarChart, LineChart, bar_chart, line_chart
from namma.web.i18n import N_, gettext
from namma.web.templating import render
from namma.web.viewer import Viewer, viewer_of

router = APIRouter(include_in_schema=False)

AdminViewer = Annotated[Viewer, Depends(viewer_of(Permission.DASHBOARD_READ, roles=(Role.ADMIN,)))]
ManagerViewer = Annotated[
    Viewer, Depends(viewer_of(Permission.DASHBOARD_READ, roles=(Role.MANAGER,)))
]

PERIODS: tuple[tuple[DashboardPeriod, str], ...] = (
    (DashboardPeriod.TODAY, N_("Today")),
    (DashboardPeriod.WEEK, N_("Last 7 days")),
    (DashboardPeriod.MONTH, N_("This month")),
    (DashboardPeriod.QUARTER, N_("This quarter")),
    (DashboardPeriod.HALF_YEAR, N_("This half-year")),
    (DashboardPeriod.YEAR, N_("This financial year")),
    (DashboardPeriod.ALL, N_("All time")),
)
# The PAR report's buckets under the names of the RBI's early-warning classes.
CLASSES: tuple[tuple[str, str], ...] = (
    ("current", N_("Standard (not overdue)")),
    ("1-30", N_("SMA-0 (1–30 days)")),
    ("31-60", N_("SMA-1 (31–60 days)")),
    ("61-90", N_("SMA-2 (61–90 days)")),
    ("90+", N_("NPA (over 90 days)")),
)
BUCKET_MIN_DPD = {"current": 0, "1-30": 1, "31-60": 31, "61-90": 61, "90+": 91}


def _period(request: Request) -> DashboardPeriod:
    try:
        return DashboardPeriod(request.query_params.get("period", DashboardPeriod.MONTH.value))
    except ValueError:
        return DashboardPeriod.MONTH


async def _branch_choice(
    request: Request, session: AsyncSession
) -> tuple[uuid.UUID | None, list[tuple[str, str]]]:
    """The Admin's branch filter: the chosen branch (None: all) and the choices. An unknown or
    malformed branch is a 404 page, as an unknown record."""
    rows = (
        await session.execute(select(Branch.id, Branch.code, Branch.name).order_by(Branch.code))
    ).all()
    choices = [(str(i), f"{code} · {name}") for i, code, name in rows]
    raw = request.query_params.get("branch_id") or ""
    if not raw:
        return None, choices
    try:
        chosen = uuid.UUID(raw)
    except ValueError:
        raise NotFoundError("No such branch.") from None
    if chosen not in {i for i, _, _ in rows}:
        raise NotFoundError("No such branch.")
    return chosen, choices


def _links(d: dict[str, Any], branch_id: uuid.UUID | None, *, admin: bool) -> dict[str, str]:
    """The list behind each figure. State lists (loans, customers, staff, hand-overs, inbox)
    are the back office's lists; a period's flows open the report that lists them."""
    span = d["period"]
    branch = {"branch_id": str(branch_id)} if admin and branch_id is not None else {}
    period = {"from": span["from"], "to": span["to"]}
    today = {"from": d["as_of"], "to": d["as_of"]}

    def url(path: str, **params: str) -> str:
        # The loan list names its branch filter ``branch``; the others ``branch_id``.
        key = {"/office/loans": "branch"}.get(path, "branch_id")
        named = {key: branch["branch_id"]} if branch else {}
        values = {k: v for k, v in (params | named).items() if v}
        return f"{path}?{urlencode(values)}" if values else path

    links = {
        "active_loans": url("/office/loans", status="active"),
        "outstanding": url("/office/reports/portfolio-summary"),
        "overdue": url("/office/loans", status="active", overdue="1"),
        "par": url("/office/reports/par"),
        "disbursed": url("/office/reports/disbursements", **period),
        "collected": url("/office/collections", **period),
        "due": url("/office/reports/demand-collection", **period),
        "profit": url("/office/reports/income-statement", **period),
        "income": url("/office/reports/income", **period),
        "customers": url("/office/customers", status="active"),
        "agents": url("/office/staff", role="agent", active="yes"),
        "today_due": url("/office/reports/demand-collection", **today),
        "today_collected": url("/office/collections", **today),
        "inbox": "/office/inbox",
        "handovers": url("/office/handovers", date=d["as_of"]),
        "capital": "/office/capital",
        "agent_performance": url("/office/reports/agent-performance", **period),
    }
    for status in LoanStatus:
        links[f"status_{status.value}"] = url("/office/loans", status=status.value)
    for bucket, least in BUCKET_MIN_DPD.items():
        links[f"bucket_{bucket}"] = (
            url("/office/reports/overdue", min_dpd=str(least))
            if least
            else url("/office/loans", status="active", overdue="0")
        )
    for n, least in ((1, 1), (30, 31), (60, 61), (90, 91)):
        links[f"par_{n}"] = url("/office/reports/overdue", min_dpd=str(least))
    return links


def _charts(d: dict[str, Any]) -> tuple[BarChart | None, BarChart, LineChart | None]:
    monthly = None
    if d.get("monthly"):
        items: list[tuple[str, Any, str, str]] = []
        months = list(d["monthly"])
        # From the first month with any movement (the trend's empty months say nothing).
        while len(months) > 1 and not any(
            Decimal(months[0][k]) for k in ("disbursed_amount", "collected_amount")
        ):
            months.pop(0)
        for m in months:
            name = i18n.month(m["month"])
            items.append(
                (
                    gettext(N_("%(month)s: disbursed")) % {"month": name},
                    m["disbursed_amount"],
                    i18n.money(m["disbursed_amount"]),
                    "disbursed",
                )
            )
            items.append(
                (
                    gettext(N_("%(month)s: collected")) % {"month": name},
                    m["collected_amount"],
                    i18n.money(m["collected_amount"]),
                    "paid",
                )
            )
        monthly = bar_chart(
            gettext(N_("Disbursed and collected by month")), items, chart_id="chart-monthly"
        )
    by_status = bar_chart(
        gettext(N_("Loans by status")),
        [
            (gettext(labels.loan_status[s]), n, i18n.number(n), "principal")
            for s, n in d["loan_counts"].items()
        ],
        chart_id="chart-status",
    )
    trend = None
    if d.get("trend"):
        points = d["trend"]
        trend = line_chart(
            gettext(N_("Portfolio at risk, last 30 business days")),
            [i18n.date(p["date"]) for p in points],
            [
                (
                    gettext(N_("PAR 1")),
                    "interest",
                    [p["par_1"] for p in points],
                    [i18n.percent(p["par_1"]) for p in points],
                ),
                (
                    gettext(N_("PAR 30")),
                    "penalties",
                    [p["par_30"] for p in points],
                    [i18n.percent(p["par_30"]) for p in points],
                ),
                (
                    gettext(N_("PAR 90")),
                    "principal",
                    [p["par_90"] for p in points],
                    [i18n.percent(p["par_90"]) for p in points],
                ),
            ],
            chart_id="chart-par-trend",
        )
    return monthly, by_status, trend


async def _page(
    request: Request,
    session: AsyncSession,
    cache: Any,
    viewer: Viewer,
    *,
    branch_id: uuid.UUID | None,
    branches: list[tuple[str, str]] | None,
    fresh: bool,
) -> Response:
    period = _period(request)
    admin = viewer.role is Role.ADMIN
    scope_branch = branch_id if admin else viewer.principal.branch_id
    with report_reads_shared(session):  # the summary and PAR read the loans' stock once
        d: dict[str, Any] = await dashboard_cached(
            session, cache, viewer.principal, period, branch_id=branch_id, fresh=fresh
        )
        par = await par_cached(session, cache, branch_id=scope_branch, fresh=fresh)
    desk = None
    if not admin and scope_branch is not None:
        desk = await branch_desk_cached(session, cache, branch_id=scope_branch, fresh=fresh)
    monthly, by_status, trend = _charts(d)
    # The page's figures are as old as its oldest part; any kept copy makes it ask again.
    parts = [d, par] + ([desk] if desk is not None else [])
    return render(
        request,
        "office/dashboard.html",
        {
            "d": d,
            "par": par,
            "figures_at": min(part["figures_at"] for part in parts),
            "stale": any(part["stale"] for part in parts),
            "classes": CLASSES,
            "desk": desk,
            "admin": admin,
            "period": period.value,
            "periods": PERIODS,
            "branch_id": str(branch_id) if branch_id else "",
            "branches": branches,
            "links": _links(d, branch_id, admin=admin),
            "monthly_chart": monthly,
            "status_chart": by_status,
            "trend_chart": trend,
        },
    )


@router.get("/admin")
async def admin_dashboard(
    request: Request,
    session: ReadSessionDep,
    cache: ReadCacheDep,
    viewer: AdminViewer,
    wrote_recently: AskedByRecentWriterDep,
) -> Response:
    branch_id, branches = await _branch_choice(request, session)
    return await _page(
        request,
        session,
        cache,
        viewer,
        branch_id=branch_id,
        branches=branches,
        fresh=wrote_recently,
    )


@router.get("/manager")
async def manager_dashboard(
    request: Request,
    session: ReadSessionDep,
    cache: ReadCacheDep,
    viewer: ManagerViewer,
    wrote_recently: AskedByRecentWriterDep,
) -> Response:
    return await _page(
        request, session, cache, viewer, branch_id=None, branches=None, fresh=wrote_recently
    )
