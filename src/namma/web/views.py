"""The pages: every page router, the HTML error pages and the static files, installed on the
app by ``pages_install``. How to add a page, a form, a partial or a translation: docs/pages.md.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.staticfiles import StaticFiles

from namma.web.errors import page_errors_install
from namma.web.pages import (
    agent,
    auth,
    customer,
    kfs,
    office_branches,
    office_calendar,
    office_capital,
    office_cash,
    office_customers,
    office_dashboards,
    office_desk,
    office_loans,
    office_products,
    office_provisioning,
    office_restructure,
    office_staff,
)
from namma.web.templating import STATIC_DIR

router = APIRouter(include_in_schema=False)
for module in (
    auth,
    office_dashboards,
    office_desk,
    agent,
    customer,
    kfs,
    office_branches,
    office_staff,
    office_customers,
    office_products,
    office_capital,
    office_provisioning,
    office_loans,
    office_restructure,
    office_cash,
    office_calendar,
):
    router.include_router(module.router)


def pages_install(app: FastAPI) -> None:
    """After the API's routers and error handlers: the pages, their errors, static files."""
    app.include_router(router)
    page_errors_install(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
