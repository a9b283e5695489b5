"""Restructuring in a real browser (Debian's Chromium driven by Playwright) against a real
`namma serve --demo` on PostgreSQL: the Manager asks for a three-month moratorium from the loan
page, sees the new schedule beside the current one and cannot approve it; the Admin opens it
from the checker inbox and approves it; the loan page shows the flag. axe and the CSP check on
every page; screenshots (desktop, the request's page in Kannada and on a phone) under
``var/screenshots/``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from namma.demo import DEMO_PASSWORD
from tests.e2e.support import DESKTOP, PHONE, Visit, chromium, demo_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_server(postgres_server_url, tmp_path_factory) as base:
        yield base


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _monthly_loan(server: str) -> dict[str, Any]:
    """The demo's active monthly loan (50,000 over 12, paid out ten days ago)."""
    with httpx.Client(base_url=server) as api:
        signed = api.post(
            "/api/auth/login",
            json={"login": "manager@example.com", "password": DEMO_PASSWORD,
                  "token_delivery": "body"},
        ).json()  # fmt: skip
        headers = {"Authorization": f"Bearer {signed['access_token']}"}
        loans = api.get("/api/loans", params={"status": "active"}, headers=headers).json()
    return next(
        loan
        for loan in loans["loans"]
        if loan["frequency"] == "monthly" and loan["principal"] == "50000.00"
    )


def test_a_moratorium_asked_previewed_and_approved_in_the_browser(
    browser: Any, server: str
) -> None:
    loan = _monthly_loan(server)
    maker = Visit(browser, server, DESKTOP, "en-desktop")
    page = maker.page
    try:
        maker.sign_in("manager@example.com")
        maker.go(f"/office/loans/{loan['id']}")
        page.click("#action-restructure summary")
        page.select_option("#action-restructure select[name=kind]", "moratorium")
        page.fill("#action-restructure input[name=periods]", "3")
        page.fill("#action-restructure input[name=reason]", "Flood in the village")
        page.click("#action-restructure button[type=submit]")
        page.wait_for_url(f"{server}/office/restructurings/*")
        maker.settle()
        request_url = page.url
        assert (
            page.locator("#restructuring-status").inner_text().strip() == "Waiting for a decision"
        )
        now_rows = page.locator("table.schedule-now tbody tr")
        new_rows = page.locator("table.schedule-new tbody tr")
        assert now_rows.count() == 12 and new_rows.count() == 15
        # The moratorium's three installments ask nothing.
        for n in range(3):
            assert new_rows.nth(n).locator("td").last.inner_text().strip() == "₹0.00"
        assert page.locator("#decision button[disabled]").count() == 1
        assert page.locator("#approve").count() == 0
        maker.check("office-restructuring-request")
        phone = Visit(browser, server, PHONE, "en-phone")
        try:
            phone.sign_in("manager@example.com")
            phone.go(request_url.removeprefix(server))
            phone.check("office-restructuring-request")
        finally:
            phone.close()
        maker.language("kn")
        maker.check("office-restructuring-request-kn")
        maker.language("en")
    finally:
        maker.close()

    checker = Visit(browser, server, DESKTOP, "en-desktop")
    page = checker.page
    try:
        checker.sign_in("admin@example.com", totp=True)
        checker.go("/office/inbox")
        checker.check("office-inbox-restructuring")
        page.click("#inbox-restructurings a")
        page.wait_for_url(request_url)
        with page.expect_navigation():
            page.click("#approve")
        checker.settle()
        assert page.url == request_url, page.locator("#decision").inner_text()
        assert page.locator("#restructuring-status").inner_text().strip() == "Approved"
        assert page.locator("table.schedule-now tbody tr").count() == 12
        checker.check("office-restructuring-approved")
        checker.go(f"/office/loans/{loan['id']}")
        assert "Restructured on" in page.locator("#loan-summary").inner_text()
        checker.check("office-loan-restructured")
    finally:
        checker.close()
