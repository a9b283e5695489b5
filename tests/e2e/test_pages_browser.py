"""The pages in a real browser (Debian's Chromium driven by Playwright) against a real
`namma serve --demo` on PostgreSQL, one server for the module:

- every demo role signs in and lands on its page; a wrong role gets the 403 page;
- the customer walks dashboard → loan → schedule → payments → receipt PDF → statement PDF →
  Key Facts Statement, in English and in Kannada, on a 360×740 phone and on a desktop;
- another customer's loan by editing the address is the 404 page; form posts without the CSRF
  token are refused; a lapsed session is renewed without losing a half-filled form;
- on every page: axe-core (vendored, run in the page) finds no serious or critical violation,
  and the browser reports no Content-Security-Policy violation.

Screenshots of every page go to ``var/screenshots/`` (or ``NAMMA_SCREENSHOT_DIR``), git-ignored.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from namma.demo import DEMO_PASSWORD
from tests.e2e.support import PHONE, VIEWPORTS, Visit, chromium, demo_server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`namma serve --demo` with its job worker (receipts, statements), on its own database."""
    with demo_server(postgres_server_url, tmp_path_factory) as base:
        yield base


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


# --- every role ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("login", "home", "name"),
    [
        ("admin@example.com", "/admin", "Demo Admin"),
        ("manager@example.com", "/manager", "Demo Manager"),
        ("agent1@example.com", "/agent", "Demo Agent One"),
        ("kamala@example.com", "/customer", "Kamala D."),
    ],
)
def test_each_demo_role_signs_in_to_its_page(
    browser: Any, server: str, login: str, home: str, name: str
) -> None:
    visit = Visit(browser, server, PHONE, "en-phone")
    try:
        visit.go("/")
        assert visit.page.url == f"{server}/login"
        visit.check("login")
        visit.sign_in(login, totp=login.startswith("admin"))
        assert visit.page.url == f"{server}{home}"
        assert visit.page.text_content(".who-name") == name
        cookies = {c["name"]: c for c in visit.context.cookies()}
        assert cookies["access_token"]["httpOnly"] and cookies["access_token"]["sameSite"] == "Lax"
        assert cookies["refresh_token"]["path"] == "/api/auth/refresh"
        assert not cookies["csrf_token"]["httpOnly"]  # read by app.js for X-CSRF-Token
        assert "access_token" not in visit.page.evaluate("document.cookie")
        role = home.strip("/")
        for lang in ("en", "kn"):
            visit.language(lang)
            for size, viewport in VIEWPORTS.items():
                visit.page.set_viewport_size(viewport)
                visit.label = f"{lang}-{size}"
                visit.go(home)
                visit.check(role)
                visit.go("/profile")
                visit.check(f"{role}-profile")
        visit.language("en")
        # Another role's page: the 403 page, never its content.
        other = "/admin" if home != "/admin" else "/customer"
        response = visit.page.goto(server + other)
        assert response is not None and response.status == 403
        assert visit.page.locator("#error-title").is_visible()
        visit.label = "en-desktop"
        visit.check(f"{role}-403")
        # Sign out: back to the sign-in page, the session is over.
        visit.page.click(".who form button[type=submit]")
        visit.settle()
        assert visit.page.url.startswith(f"{server}/login")
        assert visit.page.evaluate("fetch('/api/auth/me').then(r => r.status)") == 401
    finally:
        visit.close()


# --- the customer's walk -------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "kn"])
@pytest.mark.parametrize("size", ["phone", "desktop"])
def test_the_customer_walks_from_dashboard_to_pdfs_and_kfs(
    browser: Any, server: str, lang: str, size: str
) -> None:
    visit = Visit(browser, server, VIEWPORTS[size], f"{lang}-{size}")
    page = visit.page
    try:
        visit.go("/login")
        visit.language(lang)
        visit.check("login")
        visit.sign_in("kamala@example.com")
        assert page.url == f"{server}/customer"
        visit.language(lang)  # a customer's choice is saved with them
        assert page.evaluate("document.documentElement.lang") == lang
        if lang == "kn":
            assert "ನಮಸ್ಕಾರ" in page.text_content("h1")  # type: ignore[operator]
        # The demo customer has an overdue installment: the warning says how much.
        assert page.locator("#overdue-warning").is_visible()
        assert re.search(r"₹[\d,]+\.\d\d", page.text_content("#overdue-warning") or "")
        assert page.locator("#next-due").is_visible()
        visit.check("customer-dashboard")

        # Links are boosted (htmx swaps the page in): wait for the address, not a load.
        page.click("nav.main-nav a[href='/customer/loans']")
        page.wait_for_url(f"{server}/customer/loans")
        page.wait_for_selector("#loans")
        visit.check("customer-loans")
        page.click("#loans tbody a >> nth=0")
        page.wait_for_url(re.compile(r"/customer/loans/[0-9a-f-]+$"))
        page.wait_for_selector("#loan-summary")
        loan_url = page.url
        visit.check("customer-loan")

        # The schedule tab: htmx fetches only the tab's part; the address follows.
        page.click(".tabs a[href$='tab=schedule']")
        page.wait_for_selector("#schedule")
        assert page.url.endswith("?tab=schedule")
        states = page.eval_on_selector_all(
            "#schedule tbody tr", "rows => rows.map(r => r.className)"
        )
        assert "installment-paid" in states and "installment-overdue" in states
        visit.check("customer-loan-schedule")

        page.click(".tabs a[href$='tab=payments']")
        page.wait_for_selector("#loan-payments")
        visit.check("customer-loan-payments")
        page.click(".tabs a[href$='tab=charges']")
        page.wait_for_selector("#tab h2")
        visit.check("customer-loan-charges")

        page.click("nav.main-nav a[href='/customer/payments']")
        page.wait_for_selector("#payments")
        visit.check("customer-payments")
        page.click("#payments tbody a[href$='/receipt'] >> nth=0")
        page.wait_for_selector("#download", timeout=30_000)
        visit.check("customer-receipt")
        with page.expect_download() as download:
            page.click("#download")
        receipt = Path(download.value.path()).read_bytes()
        assert receipt.startswith(b"%PDF")

        page.click("nav.main-nav a[href='/customer/documents']")
        page.wait_for_selector("#statement-form")
        visit.check("customer-documents")
        month = time.strftime("%Y-%m")
        page.fill("#f-month", month)
        page.click("#statement-form button[type=submit]")
        page.wait_for_selector("#download", timeout=60_000)  # the job made it; the page polled
        visit.check("customer-statement")
        with page.expect_download() as download:
            page.click("#download")
        assert Path(download.value.path()).read_bytes().startswith(b"%PDF")
        assert download.value.suggested_filename.startswith(f"statement-{month}")

        visit.go(loan_url.replace(server, "").replace("/customer", "") + "/kfs")
        assert page.locator("#kfs-schedule").is_visible()
        visit.check("customer-kfs")
        visit.go("/customer/profile")
        visit.check("customer-profile")
        visit.language("en")
    finally:
        visit.close()


def _loan_of_another_customer(server: str) -> dict[str, Any]:
    """A loan of a demo customer other than Kamala (asked of the API as the manager)."""
    with httpx.Client(base_url=server) as api:
        signed = api.post(
            "/api/auth/login",
            json={
                "login": "manager@example.com",
                "password": DEMO_PASSWORD,
                "token_delivery": "body",
            },
        ).json()
        headers = {"Authorization": f"Bearer {signed['access_token']}"}
        loans = api.get("/api/loans", params={"status": "active"}, headers=headers).json()
    others = [x for x in loans["loans"] if x["customer"]["name"] != "Kamala D."]
    assert others
    found: dict[str, Any] = others[0]
    return found


def test_another_customers_loan_by_address_is_the_404_page(browser: Any, server: str) -> None:
    loan = _loan_of_another_customer(server)
    foreign = loan["id"]
    visit = Visit(browser, server, PHONE, "en-phone")
    try:
        visit.sign_in("kamala@example.com")
        for path in (f"/customer/loans/{foreign}", f"/loans/{foreign}/kfs"):
            response = visit.page.goto(server + path)
            assert response is not None and response.status == 404
            assert visit.page.locator("#error-title").is_visible()
            shown = visit.page.content()
            assert loan["loan_number"] not in shown and loan["customer"]["name"] not in shown
        visit.check("customer-404")
    finally:
        visit.close()


def test_form_posts_without_the_csrf_token_are_refused(browser: Any, server: str) -> None:
    visit = Visit(browser, server, PHONE, "en-phone")
    try:
        visit.sign_in("kamala@example.com")
        statuses = visit.page.evaluate(
            """async () => {
                const post = (url, body) => fetch(url, {method: 'POST',
                    body: new URLSearchParams(body), credentials: 'same-origin',
                    redirect: 'manual'}).then(r => r.status);
                return [
                    await post('/customer/statements', {month: '2026-10'}),
                    await post('/logout', {}),
                    await post('/language', {lang: 'kn', next: '/customer'}),
                    await post('/customer/statements', {month: '2026-10', csrf_token: 'forged'}),
                ];
            }"""
        )
        assert statuses == [403, 403, 403, 403]
        # The session is still there and the language unchanged.
        visit.go("/customer")
        assert visit.page.url == f"{server}/customer"
        assert visit.page.evaluate("document.documentElement.lang") == "en"
    finally:
        visit.close()


def test_a_lapsed_session_is_renewed_without_losing_the_form(browser: Any, server: str) -> None:
    visit = Visit(browser, server, PHONE, "en-phone")
    page = visit.page
    try:
        visit.sign_in("kamala@example.com")
        # A full page: the renewing page renews the session and opens the page again.
        visit.context.clear_cookies(name="access_token")
        visit.go("/customer/payments")
        page.wait_for_selector("#payments")
        assert page.url == f"{server}/customer/payments"
        # A half-filled form sent after the access token lapsed: renewed, then sent again.
        visit.go("/customer/documents")
        page.fill("#f-month", time.strftime("%Y-%m"))
        visit.context.clear_cookies(name="access_token")
        page.click("#statement-form button[type=submit]")
        page.wait_for_selector("#doc-status", timeout=30_000)
        assert re.search(r"/customer/documents/[0-9a-f-]+$", page.url)
        # Without a session at all: to sign in, with the way back.
        visit.context.clear_cookies()
        visit.go("/customer/loans")
        assert page.url == f"{server}/login?next=/customer/loans"
    finally:
        visit.close()
