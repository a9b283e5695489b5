"""The back office's work pages in a real browser (Debian's Chromium under Playwright) against
a real `namma serve --demo` on PostgreSQL (issue 18, the Admin's and the Manager's story):

- the Admin creates a branch, a manager and an agent of it; the agent's first sign-in is the
  forced password change, done in the browser;
- the Admin creates a product, previews its schedule (htmx) and makes a new version after
  seeing it side by side with the current one;
- the Manager moves a customer to another agent of the branch;
- the capital page and its forms; a few pages in Kannada.

Every page visited: axe-core finds no serious or critical violation, no CSP violation, and a
desktop screenshot goes to ``var/screenshots/`` (git-ignored).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.e2e.support import DESKTOP, Visit, chromium, demo_server

pytestmark = pytest.mark.slow

TEMPORARY = "temporary words for now 42"
CHOSEN = "my own long garden phrase 7"


@pytest.fixture(scope="module")
def server(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_server(postgres_server_url, tmp_path_factory) as base:
        yield base


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _check(visit: Visit, name: str) -> None:
    """``Visit.check``, then the empty ``style=""`` attributes axe leaves behind removed: htmx
    carries an element's old attributes over to its namesake in a swapped-in page (same id), and
    a ``style`` attribute set from script is an inline style the CSP refuses — a report caused
    by the test's own axe run, not by the page (without axe, no report)."""
    visit.check(name)
    visit.page.evaluate(
        "document.querySelectorAll('[style]').forEach(e => e.removeAttribute('style'))"
    )


def _submit(visit: Visit, form: str) -> None:
    visit.page.click(f"{form} button[type=submit]")
    visit.settle()


def test_the_admin_builds_a_branch_its_staff_and_a_product(browser: Any, server: str) -> None:
    visit = Visit(browser, server, DESKTOP, "en-desktop")
    try:
        visit.sign_in("admin@example.com", totp=True)
        # A branch.
        visit.go("/office/branches")
        _check(visit, "office-branches")
        visit.page.click("text=New branch")
        visit.settle()
        _check(visit, "office-branch-new")
        visit.page.fill("#f-code", "x")
        _submit(visit, "#branch-form")
        visit.page.wait_for_selector("#f-code-error")
        _check(visit, "office-branch-new-errors")
        visit.page.fill("#f-code", "TMK01")
        visit.page.fill("#f-name", "Tumakuru")
        _submit(visit, "#branch-form")
        visit.page.wait_for_selector("#branch-facts")
        assert "TMK01 · Tumakuru" in visit.page.inner_text("h1")
        _check(visit, "office-branch")
        visit.page.click("text=Edit the branch")
        visit.page.wait_for_url("**/edit")
        visit.settle()
        _check(visit, "office-branch-edit")
        visit.page.fill("#f-name", "Tumakuru Town")
        _submit(visit, "#branch-form")
        visit.page.wait_for_selector("#branch-facts")
        assert "Tumakuru Town" in visit.page.inner_text("h1")

        # A manager and an agent of it.
        for name, role, email in (
            ("Tara Manager", "manager", "tara@example.com"),
            ("Vijay Agent", "agent", "vijay@example.com"),
        ):
            visit.go("/office/staff/new")
            visit.page.fill("#f-name", name)
            visit.page.select_option("#f-role", role)
            visit.page.select_option("#f-branch_id", label="TMK01 · Tumakuru Town")
            visit.page.fill("#f-email", email)
            visit.page.fill("#f-password", TEMPORARY)
            if role == "manager":
                _check(visit, "office-staff-new")
            _submit(visit, "#staff-form")
            visit.page.wait_for_selector("#staff-facts")
            assert visit.page.inner_text("h1") == name
            assert "must choose their own password" in visit.page.inner_text("main")
        _check(visit, "office-staff-member")
        visit.go("/office/staff?branch_id=" + visit.page.url.split("/")[-1].split("?")[0])
        visit.go("/office/staff?q=Tumakuru")
        visit.go("/office/staff")
        _check(visit, "office-staff")

        # A product, its schedule preview, and a new version seen side by side.
        visit.go("/office/products/new")
        _check(visit, "office-product-new")
        for field, value in {
            "code": "SHG-26W",
            "name": "Joint liability, weekly",
            "processing_fee_percent": "1",
            "min_principal": "5000",
            "max_principal": "50000",
            "min_rate": "18",
            "default_rate": "24",
            "max_rate": "26",
            "min_installments": "26",
            "max_installments": "104",
        }.items():
            visit.page.fill(f"#f-{field}", value)
        visit.page.select_option("#f-frequency", "weekly")
        # Money beyond the dues shortens the loan (the installment stays).
        visit.page.select_option("#f-excess", "reduce-term")
        _submit(visit, "#product-form")
        visit.page.wait_for_selector("#product-terms")
        assert "SHG-26W" in visit.page.inner_text("h1")
        # A product made on the page has our schedule convention (D-180).
        assert visit.page.inner_text("#product-convention") == (
            "Ours: a rate per period, the installment at that rate"
        )
        visit.page.fill("#f-principal", "10000")
        visit.page.click("#preview-form button[type=submit]")
        visit.page.wait_for_selector("#preview-schedule")
        assert visit.page.locator("#preview-schedule tbody tr").count() == 26
        assert "₹9,900.00" in visit.page.inner_text("#preview-totals")
        assert "installments instead of 26" in visit.page.inner_text("#preview-excess")
        _check(visit, "office-product")
        visit.page.click("text=New version")
        visit.page.wait_for_selector("#product-form")
        visit.page.fill("#f-default_rate", "22")
        _submit(visit, "#product-form")
        visit.page.wait_for_selector("#version-diff")
        changed = visit.page.locator("#version-diff tr.changed th").all_inner_texts()
        assert [c.split("\n")[0].replace("Changed", "").strip() for c in changed] == ["Usual rate"]
        _check(visit, "office-product-version-diff")
        visit.page.click("text=Make the new version")
        visit.page.wait_for_selector("#product-terms")
        assert "Version 2 (current)" in visit.page.inner_text("main")
        visit.go("/office/products")
        _check(visit, "office-products")

        # Capital: the summary and its forms.
        visit.go("/office/capital")
        _check(visit, "office-capital")
        visit.page.click("text=Record an investment")
        visit.page.wait_for_selector("#investment-form")
        visit.page.fill("#f-amount", "500000")
        visit.page.fill("#f-source", "Founders")
        _submit(visit, "#investment-form")
        visit.page.wait_for_selector(".confirm")
        assert "₹5,00,000.00" in visit.page.inner_text(".confirm")
        _check(visit, "office-capital-confirm")
        visit.page.click(".confirm button:has-text('Record it')")
        visit.page.wait_for_selector("#investments")
        assert "Founders" in visit.page.inner_text("#investments")
        visit.go("/office/capital/borrowings/new")
        _check(visit, "office-capital-borrowing-new")

        # The same pages in Kannada.
        visit.label = "kn-desktop"
        visit.language("kn")
        for path, name in (
            ("/office/staff", "office-staff"),
            ("/office/products", "office-products"),
            ("/office/customers", "office-customers"),
        ):
            visit.go(path)
            _check(visit, name)
        visit.language("en")
    finally:
        visit.close()

    # The new agent's first sign-in is the password change, in the browser.
    agent = Visit(browser, server, DESKTOP, "en-desktop")
    try:
        agent.sign_in("vijay@example.com", password=TEMPORARY)
        assert agent.page.url == f"{server}/password"
        _check(agent, "office-agent-first-sign-in")
        agent.page.fill("#f-current_password", TEMPORARY)
        agent.page.fill("#f-new_password", CHOSEN)
        agent.page.fill("#f-new_password_again", CHOSEN)
        _submit(agent, "#password-form")
        agent.page.wait_for_url("**/login**")
        agent.sign_in("vijay@example.com", password=CHOSEN)
        assert agent.page.url == f"{server}/agent"
    finally:
        agent.close()


def test_the_manager_moves_a_customer_to_another_agent(browser: Any, server: str) -> None:
    visit = Visit(browser, server, DESKTOP, "en-desktop")
    try:
        visit.sign_in("manager@example.com")
        visit.go("/office/customers")
        _check(visit, "office-customers")
        visit.page.locator("#customers tbody tr a").first.click()
        visit.page.wait_for_selector("#customer-facts")
        _check(visit, "office-customer")
        before = visit.page.inner_text("#customer-facts")
        options = visit.page.locator("#f-agent_id option").all_inner_texts()
        target = next(o for o in options if o.startswith("Demo Agent"))
        visit.page.select_option("#f-agent_id", label=target)
        visit.page.fill("#f-reason", "Closer to the village")
        _submit(visit, "#reassign-form")
        expect(visit.page.locator("#customer-facts")).to_contain_text(target, timeout=30_000)
        after = visit.page.inner_text("#customer-facts")
        assert target in after and after != before
        history = visit.page.inner_text("#assignment-history")
        assert "Closer to the village" in history
        # Many at once from the list: two of Agent One's customers to Agent Two.
        visit.go("/office/customers")
        visit.page.select_option("#q-agent_id", label="Demo Agent One (BLR01)")
        visit.page.click("form.filters button[type=submit]")
        visit.page.wait_for_url("**agent_id=**")
        visit.settle()
        rows = visit.page.locator("#customers tbody tr")
        assert rows.count() >= 2
        chosen = [rows.nth(i).locator("td a").inner_text() for i in (0, 1)]
        for i in (0, 1):
            rows.nth(i).locator("input[type=checkbox]").check()
        visit.page.select_option("#f-agent_id", label="Demo Agent Two (BLR01)")
        _submit(visit, "#reassign-form")
        visit.page.wait_for_selector(".alert-ok")
        _check(visit, "office-customers-moved")
        assert "Customers moved to their new agent: 2." in visit.page.inner_text("main")
        # Back on the list filtered by Agent One: neither of them is there any more.
        remaining = visit.page.locator("#customers tbody td a").all_inner_texts()
        assert not set(chosen) & set(remaining)
        visit.go("/office/staff")
        _check(visit, "office-staff-manager")
    finally:
        visit.close()
