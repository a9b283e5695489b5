"""``/agent``: the agent's dashboard figures, from the same service as ``GET /api/dashboard``
(the field issue grows it into full pages). ``/admin`` and ``/manager``: ``office_dashboards``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from namma.auth.permissions import Permission
from namma.kit.deps import CacheDep, SessionDep
from namma.models import Role
from namma.reports.dashboard import DashboardPeriod, dashboard_cached
from namma.web import i18n
from namma.web.charts import bar_chart
from namma.web.i18n import N_, gettext
from namma.web.templating import render
from namma.web.viewer import Viewer, viewer_of

router = APIRouter(include_in_schema=False)

PERIODS: tuple[tuple[DashboardPeriod, str], ...] = (
    (DashboardPeriod.TODAY, N_("Today")),
    (DashboardPeriod.WEEK, N_("Last 7 days")),
    (DashboardPeriod.MONTH, N_("This month")),
    (DashboardPeriod.QUARTER, N_("This quarter")),
    (DashboardPeriod.YEAR, N_("This financial year")),
    (DashboardPeriod.ALL, N_("All time")),
)


def _period(request: Request) -> DashboardPeriod:
    try:
        return DashboardPeriod(request.query_params.get("period", DashboardPeriod.MONTH.value))
    except ValueError:
        return DashboardPeriod.MONTH


async def _dashboard(
    request: Request, session: SessionDep, cache: CacheDep, viewer: Viewer
) -> Response:
    period = _period(request)
    data: Any = await dashboard_cached(session, cache, viewer.principal, period)
    chart = None
    monthly = data.get("monthly") if isinstance(data, dict) else getattr(data, "monthly", None)
    if monthly:
        chart = bar_chart(
            gettext(N_("Collected each month")),
            [
                (
                    i18n.month(m["month"]),
                    m["collected_amount"],
                    i18n.money(m["collected_amount"]),
                    "paid",
                )
                for m in monthly
            ],
            chart_id="monthly-collected",
        )
    return render(
        request,
        "staff/dashboard.html",
        {"d": data, "period": period.value, "periods": PERIODS, "chart": chart},
    )


@router.get("/agent")
async def agent_dashboard(
    request: Request,
    session: SessionDep,
    cache: CacheDep,
    viewer: Annotated[Viewer, Depends(viewer_of(Permission.DASHBOARD_READ, roles=(Role.AGENT,)))],
) -> Response:
    return await _dashboard(request, session, cache, viewer)
