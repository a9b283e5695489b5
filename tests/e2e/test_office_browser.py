"""The back office in a real browser (Debian's Chromium driven by Playwright) against a real
`namma serve --demo` on PostgreSQL: the Manager approves one application and rejects another
from the checker inbox (in place), disburses the approved loan (with its confirmation), walks
every tab of the loan page, reverses a collection (with its confirmation) and records the count
of an agent's cash hand-over with a shortage. axe and the CSP check on every page and tab; a
screenshot of each (desktop, and the main pages in Kannada) under ``var/screenshots/``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from namma.demo import DEMO_PASSWORD
from namma.kit.clock import today_india
from tests.e2e.support import DESKTOP, Visit, chromium, demo_server, fresh_code

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_server(postgres_server_url, tmp_path_factory) as base:
        yield base


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _bearer(api: httpx.Client, login: str, *, totp: bool = False) -> dict[str, str]:
    signed = api.post(
        "/api/auth/login",
        json={"login": login, "password": DEMO_PASSWORD, "token_delivery": "body"},
    ).json()
    if totp:
        signed = api.post(
            "/api/auth/login/totp",
            json={"challenge": signed["challenge"], "code": fresh_code(), "token_delivery": "body"},
        ).json()
    return {"Authorization": f"Bearer {signed['access_token']}"}


def _prepare(server: str) -> dict[str, Any]:
    """Through the API, as people would: a second application (agent 1, for a customer whose
    KYC is pending), the collection-reversal grant for the Manager, and agent 1's declaration
    of today's cash; and a collection of an earlier day to reverse."""
    with httpx.Client(base_url=server) as api:
        agent = _bearer(api, "agent1@example.com")
        admin = _bearer(api, "admin@example.com", totp=True)
        manager = _bearer(api, "manager@example.com")
        customers = api.get("/api/customers", params={"q": "Gowramma"}, headers=agent).json()
        customer = customers["customers"][0]
        products = api.get("/api/products", headers=agent).json()
        product = next(p for p in products["products"] if p["code"] == "MON-12")
        applied = api.post(
            "/api/loans",
            json={
                "customer_id": customer["id"],
                "product_id": product["id"],
                "amount": "25000.00",
                "installments": 12,
            },
            headers=agent,
        )
        assert applied.status_code == 201, applied.text
        staff = api.get("/api/staff", headers=admin).json()
        manager_id = next(s["id"] for s in staff["staff"] if s["email"] == "manager@example.com")
        granted = api.put(
            f"/api/staff/{manager_id}/permissions",
            json={"permissions": ["collection:reverse"]},
            headers=admin,
        )
        assert granted.status_code == 200, granted.text
        today = today_india().isoformat()
        declared = api.post(
            "/api/cash-handovers",
            json={"business_date": today, "amount_deposited": "2000.00"},
            headers=agent,
        )
        assert declared.status_code == 201, declared.text
        collections = api.get("/api/collections", headers=manager).json()["collections"]
        earlier = next(
            c
            for c in collections
            if c["status"] == "posted" and c["collected_on"] < today and c["recovery"] == "0.00"
        )
    return {
        "rejected_number": applied.json()["loan_number"],
        "handover": declared.json(),
        "collection": earlier,
    }


def test_the_manager_decides_disburses_reverses_and_counts(browser: Any, server: str) -> None:
    prepared = _prepare(server)
    visit = Visit(browser, server, DESKTOP, "en-desktop")
    page = visit.page
    try:
        visit.sign_in("manager@example.com")
        assert page.url == f"{server}/manager"

        # The checker inbox: the oldest application first; approve it in place, reject the
        # new one with a reason.
        page.click("nav.main-nav a[href='/office/inbox']")
        page.wait_for_url(f"{server}/office/inbox")
        page.wait_for_selector("#applications")
        visit.check("office-inbox")
        rows = page.locator("#applications tbody tr")
        assert rows.count() == 2
        first = rows.nth(0)
        first_number = first.locator("td >> nth=1").inner_text().strip()
        assert first_number != prepared["rejected_number"]
        first.locator("button", has_text="Approve").click()
        page.wait_for_selector(f"#applications tr:has-text('{first_number}') .badge-approved")
        second = page.locator(f"#applications tr:has-text('{prepared['rejected_number']}')")
        second.locator("input[name=reason]").fill("Income not verified yet")
        second.locator("button", has_text="Reject").click()
        page.wait_for_selector(
            f"#applications tr:has-text('{prepared['rejected_number']}') .badge-rejected"
        )
        visit.check("office-inbox-decided")

        # The loans: the approved ones; the one just approved, disbursed with its confirmation.
        visit.go("/office/loans?status=approved")
        visit.check("office-loans-approved")
        page.click(f"#loans a:has-text('{first_number}')")
        page.wait_for_selector("#action-disburse")
        visit.check("office-loan-approved")
        page.select_option("#f-method", "cash")
        page.click("#action-disburse button[type=submit]")
        page.wait_for_selector("#confirm-title")
        assert "Disburse this loan?" in (page.text_content("#confirm-title") or "")
        visit.check("office-loan-disburse-confirm")
        page.click(".confirm button:has-text('Disburse')")
        page.wait_for_url(re.compile(r"/office/loans/[0-9a-f-]+\?tab=schedule$"))
        page.wait_for_selector("#schedule")
        assert page.text_content("#loan-status") == "Active"
        loan_url = page.url.split("?")[0]
        visit.check("office-loan-schedule")
        for tab, selector in (
            ("summary", "#loan-summary"),
            ("collections", "#tab h2"),
            ("charges", "#tab h2"),
            ("waivers", "#tab h2"),
            ("journal", "#journal"),
            ("documents", "#tab h2"),
            ("audit", "#tab h2"),
        ):
            page.click(f".tabs a[href$='tab={tab}']")
            page.wait_for_url(f"{loan_url}?tab={tab}")
            page.wait_for_selector(selector)
            visit.check(f"office-loan-{tab}")
        visit.go("/office/loans")
        visit.check("office-loans")

        # A collection reversed, with its confirmation.
        visit.go("/office/collections")
        visit.check("office-collections")
        collection = prepared["collection"]
        visit.go(f"/office/collections/{collection['id']}")
        visit.check("office-collection")
        page.fill("#f-reason", "Recorded against the wrong customer")
        page.click("#reverse button[type=submit]")
        page.wait_for_selector("#confirm-title")
        visit.check("office-collection-reverse-confirm")
        page.click(".confirm button:has-text('Reverse the collection')")
        page.wait_for_selector("#collection-status.badge-reversed")
        assert "Recorded against the wrong customer" in (page.text_content("#receipt") or "")
        visit.check("office-collection-reversed")

        # The agent's cash: declared 2,000.00, counted 1,900.00 — a shortage of 100.00.
        visit.go("/office/handovers")
        visit.check("office-handovers")
        handover = prepared["handover"]
        page.click(f"a[href='/office/handovers/{handover['id']}']")
        page.wait_for_selector("#f-amount_counted")
        visit.check("office-handover")
        page.fill("#f-amount_counted", "1900.00")
        page.click("#count button[type=submit]")
        page.wait_for_selector("#confirm-title")
        visit.check("office-handover-count-confirm")
        page.click(".confirm button:has-text('Record the count')")
        page.wait_for_selector("#handover-difference")
        difference = page.text_content("#handover-difference") or ""
        assert "100.00" in difference and "Short" in difference, difference
        visit.check("office-handover-counted")
        visit.go("/office/handovers?status=received")
        visit.check("office-handovers-received")

        # The same pages in Kannada.
        visit.language("kn")
        visit.label = "kn-desktop"
        for path, name in (
            ("/office/inbox", "office-inbox"),
            ("/office/loans", "office-loans"),
            (loan_url, "office-loan"),
            ("/office/collections", "office-collections"),
            ("/office/handovers", "office-handovers"),
        ):
            visit.go(path.replace(server, ""))
            assert page.evaluate("document.documentElement.lang") == "kn"
            visit.check(name)
        visit.language("en")
    finally:
        visit.close()
