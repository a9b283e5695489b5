"""The back office's dashboards and desk pages in a real browser (Debian's Chromium, Playwright)
against `namma serve --demo` on PostgreSQL: the Admin's dashboard (with a branch), every report
page, the PAR report downloaded as XLSX and read back, close of business, the audit log and its
chain verified, a failed job inspected and retried; the Manager's dashboard and reports. Every
page: axe (no serious or critical violation), no CSP violation, a screenshot.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import openpyxl  # type: ignore[import-untyped]
import psycopg
import pytest
from playwright.sync_api import expect

from namma.demo import DEMO_PASSWORD
from namma.kit.db import libpq_url
from namma.reports.endpoints import REPORTS
from tests.e2e.support import (
    DATABASE_OF,
    DESKTOP,
    PHONE,
    Visit,
    chromium,
    demo_server,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_server(postgres_server_url, tmp_path_factory) as base:
        yield base


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _failed_job(server: str) -> int:
    """A job that really fails (a malformed notification id), run by the server's worker until
    it has used up its retries (1 run + 3 retries at +2, +4, +8 s)."""
    with psycopg.connect(libpq_url(DATABASE_OF[server]), autocommit=True) as conn:
        row = conn.execute(
            "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status)"
            " VALUES ('default', 'notifications:deliver',"
            " '{\"notification_id\": \"not-a-uuid\"}', 'todo') RETURNING id"
        ).fetchone()
        assert row is not None
        job_id = int(row[0])
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            status = conn.execute(
                "SELECT status::text FROM procrastinate_jobs WHERE id = %s", (job_id,)
            ).fetchone()
            if status and status[0] == "failed":
                return job_id
            time.sleep(1)
    raise AssertionError("the job did not fail in 90 s")


def test_the_admin_walks_the_dashboard_reports_cob_audit_and_jobs(
    browser: Any, server: str, tmp_path: Any
) -> None:
    visit = Visit(browser, server, DESKTOP, "en-desktop")
    page = visit.page
    try:
        visit.sign_in("admin@example.com", totp=True)
        assert page.url == f"{server}/admin"
        assert page.locator("#fig-outstanding_principal").is_visible()
        assert re.fullmatch(r"₹[\d,]+\.\d\d", page.text_content("#fig-disbursed_amount") or "")
        visit.check("office-admin-dashboard")
        # One branch: the filter form (a GET, boosted).
        page.select_option("#f-branch", index=1)
        page.click("form.filters button[type=submit]")
        page.wait_for_url(re.compile(r"branch_id="))
        visit.settle()
        assert page.locator("#by-agent").is_visible()  # a branch's view: its agents
        visit.check("office-admin-dashboard-branch")
        visit.page.set_viewport_size(PHONE)
        visit.label = "en-phone"
        visit.go("/admin")
        visit.check("office-admin-dashboard")
        visit.page.set_viewport_size(DESKTOP)
        visit.label = "en-desktop"

        # Every report page.
        page.click("nav.main-nav a[href='/office/reports']")
        page.wait_for_url(f"{server}/office/reports")
        visit.check("office-reports")
        for name in [*REPORTS, "overdue"]:
            visit.go(f"/office/reports/{name}")
            assert page.locator("#report-filters").is_visible(), name
            visit.check(f"office-report-{name}")

        # The PAR report as XLSX, read back: the totals row is the API's total.
        visit.go("/office/reports/par")
        with page.expect_download() as download_info:
            page.click("#downloads a[href*='format=xlsx']")
        download = download_info.value
        assert re.fullmatch(r"par_all_\d{4}-\d\d-\d\d\.xlsx", download.suggested_filename)
        path = tmp_path / download.suggested_filename
        download.save_as(path)
        api = page.evaluate("fetch('/api/reports/par').then(r => r.json())")
        rows = list(openpyxl.load_workbook(path)["Report"].iter_rows(values_only=True))
        assert rows[0][:3] == ("Days past due", "Loans", "Outstanding principal")
        assert rows[-1][0] == "Total"
        assert Decimal(str(rows[-1][2])) == Decimal(api["totals"]["outstanding_principal"])
        assert rows[-1][1] == api["totals"]["loans"]
        shown = page.text_content("#report-table tfoot") or ""
        assert api["totals"]["loans"] and str(api["totals"]["loans"]) in shown

        # Close of business: the runs, and a run queued for a date.
        visit.go("/office/cob")
        visit.check("office-cob")
        page.check("#f-force")
        page.click("#cob-form button[type=submit]")
        page.wait_for_selector("#cob-queued")
        visit.check("office-cob-queued")

        # Provisioning: the rates by class, one changed (applies at the next close).
        visit.go("/office/provisioning")
        assert "Sub-standard" in (page.text_content("#rate-sub_standard") or "")
        visit.check("office-provisioning")
        page.select_option("#f-asset_class", "sub_standard")
        page.fill("#f-rate", "12.5")
        page.click("#rate-form button[type=submit]")
        page.wait_for_selector("#rate-saved")
        assert "12.5 %" in (page.text_content("#rate-sub_standard") or "")
        visit.check("office-provisioning-saved")

        # The audit log: a filter, then the chain verified in place (htmx).
        visit.go("/office/audit")
        visit.check("office-audit")
        page.fill("#f-action", "loan.disbursed")
        page.click("#audit-filters button[type=submit]")
        page.wait_for_url(re.compile(r"action=loan.disbursed"))
        visit.settle()
        actions = page.locator("#audit-table tbody tr td:nth-child(4)").all_text_contents()
        assert actions and set(actions) == {"loan.disbursed"}
        page.click("#verify-form button[type=submit]")
        page.wait_for_selector("#verify-result .alert-ok")
        assert "The chain is intact" in (page.text_content("#verify-result") or "")
        assert "action=loan.disbursed" in page.url  # the page stayed
        visit.check("office-audit-verified")

        # A failed job: inspected, then retried.
        job_id = _failed_job(server)
        visit.go("/office/jobs")
        visit.check("office-jobs")
        page.click(f"#jobs-table a[href='/office/jobs/{job_id}']")
        page.wait_for_url(f"{server}/office/jobs/{job_id}")
        visit.settle()
        assert "notifications:deliver" in (page.text_content("main") or "")
        events = page.locator("#job-history tbody td:nth-child(2)").all_text_contents()
        assert events[-1] == "failed" and events.count("deferred_for_retry") == 3, events
        visit.check("office-job")
        page.click("form.actions button[type=submit]")
        page.wait_for_selector("#job-retried")
        assert f"Job {job_id} is queued again." in (page.text_content("#job-retried") or "")
        visit.check("office-jobs-retried")

        # The dashboard in Kannada.
        visit.language("kn")
        visit.label = "kn-desktop"
        visit.go("/admin")
        assert "ಮುಖ್ಯ ಕಚೇರಿಯ ಡ್ಯಾಶ್‌ಬೋರ್ಡ್" in (page.text_content("h1") or "")
        visit.check("office-admin-dashboard")
        visit.go("/office/reports/portfolio-summary")
        visit.check("office-report-portfolio-summary")
        visit.go("/office/provisioning")
        visit.check("office-provisioning")
        visit.go("/office/reports/provisioning")
        visit.check("office-report-provisioning")
        visit.language("en")
    finally:
        visit.close()


def test_the_manager_walks_the_branch_dashboard_and_reports(browser: Any, server: str) -> None:
    visit = Visit(browser, server, DESKTOP, "en-desktop")
    page = visit.page
    try:
        visit.sign_in("manager@example.com")
        assert page.url == f"{server}/manager"
        assert page.locator("#agents-today").is_visible()
        assert page.locator("#to-visit").is_visible()
        assert page.locator("#f-branch").count() == 0  # the branch is fixed by scope
        visit.check("office-manager-dashboard")
        page.select_option("#f-period", "year")
        page.click("form.filters button[type=submit]")
        page.wait_for_url(re.compile(r"period=year"))
        visit.check("office-manager-dashboard-year")
        visit.go("/office/reports")
        assert page.locator("a[href='/office/reports/capital-utilisation']").count() == 0
        visit.check("office-reports-manager")
        for name in ("par", "agent-performance", "overdue", "collections"):
            visit.go(f"/office/reports/{name}")
            assert page.locator("#f-branch_id").count() == 0
            visit.check(f"office-report-{name}-manager")
        for path in ("/office/cob", "/office/jobs"):
            response = page.goto(server + path)
            assert response is not None and response.status == 403
        visit.page.set_viewport_size(PHONE)
        visit.label = "en-phone"
        visit.go("/manager")
        visit.check("office-manager-dashboard")
        visit.language("kn")
        visit.label = "kn-phone"
        visit.go("/manager")
        visit.check("office-manager-dashboard")
        visit.language("en")
    finally:
        visit.close()


def _rupees(shown: str | None) -> Decimal:
    return Decimal((shown or "").replace("₹", "").replace(",", ""))


def test_the_managers_dashboard_shows_a_kept_copy_then_updates_itself(
    browser: Any, server: str
) -> None:
    """D-221: after an agent's collection, the Manager's dashboard answers at once with the
    figures it had, says they are being updated, and replaces itself with the new ones."""
    agent = httpx.Client(base_url=server, timeout=30)
    signed = agent.post(
        "/api/auth/login",
        json={"login": "agent1@example.com", "password": DEMO_PASSWORD, "token_delivery": "body"},
    )
    assert signed.status_code == 200, signed.text
    agent.headers["Authorization"] = f"Bearer {signed.json()['access_token']}"
    visit = Visit(browser, server, DESKTOP, "en-desktop")
    page = visit.page
    try:
        visit.sign_in("manager@example.com")
        assert page.url == f"{server}/manager"
        assert page.locator("#figures-updating").count() == 0
        assert re.fullmatch(r"Figures at \d\d:\d\d", page.text_content("#figures-at") or "")
        before = _rupees(page.text_content("#fig-collected_amount"))

        [loan] = agent.get("/api/loans", params={"status": "active", "limit": 1}).json()["loans"]
        paid = agent.post(
            "/api/collections",
            json={"loan_id": loan["id"], "amount": "100.00"},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert paid.status_code == 201, paid.text

        visit.go("/manager")
        # The figures from before the collection, at once, said to be updating.
        assert page.locator("#figures-updating").is_visible()
        assert _rupees(page.text_content("#fig-collected_amount")) == before
        visit.check("office-manager-dashboard-updating")
        # Three seconds later the page asks again and shows the new figures.
        expect(page.locator("#figures-updating")).to_have_count(0, timeout=15_000)
        assert _rupees(page.text_content("#fig-collected_amount")) == before + Decimal("100.00")
        visit.check("office-manager-dashboard-updated")
    finally:
        visit.close()
        agent.close()
