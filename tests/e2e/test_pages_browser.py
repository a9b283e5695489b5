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

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyotp
import pytest

from namma.demo import DEMO_ADMIN_TOTP_SECRET, DEMO_PASSWORD
from namma.kit.embedded import create_database, drop_database

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = Path(__file__).resolve().parent / "vendor" / "axe-4.14.1.min.js"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
VIEWPORTS = {"phone": PHONE, "desktop": DESKTOP}
SHOTS = Path(os.environ.get("NAMMA_SCREENSHOT_DIR", ROOT / "var" / "screenshots"))

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`namma serve --demo` with its job worker (receipts, statements), on its own database."""
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail("CI must have Debian's chromium at /usr/bin/chromium")
        pytest.skip("no /usr/bin/chromium (apt-get install chromium)")
    from sqlalchemy.engine import make_url

    name = f"namma_test_{uuid.uuid4().hex[:10]}"
    create_database(postgres_server_url, name)
    url = make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAMMA_")}
    env["NAMMA_DATABASE_URL"] = url
    env["NAMMA_LOGIN_RATE_LIMIT"] = "1000/minute"  # many sign-ins from one address here
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "namma", "serve", "--demo", "--port", str(port), "--job-worker"],
            env=env,
            cwd=tmp_path_factory.mktemp("serve-cwd"),
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise AssertionError(log.read_text()[-5000:])
            try:
                if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.25)
        else:
            raise AssertionError("the server was not ready in 90 s")
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        drop_database(postgres_server_url, name)


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


class Visit:
    """A browser context with the checks every page gets: axe, CSP, a screenshot."""

    def __init__(self, browser: Any, base: str, viewport: dict[str, int], label: str) -> None:
        self.base = base
        self.label = label
        self.context = browser.new_context(viewport=viewport, accept_downloads=True)
        self.page = self.context.new_page()
        self.csp_violations: list[str] = []
        self.page.on(
            "console",
            lambda m: (
                self.csp_violations.append(m.text)
                if "Content Security Policy" in m.text or "Content-Security-Policy" in m.text
                else None
            ),
        )
        self.axe = AXE.read_text()
        SHOTS.mkdir(parents=True, exist_ok=True)

    def go(self, path: str) -> None:
        self.page.goto(self.base + path)
        self.settle()

    def settle(self) -> None:
        self.page.wait_for_load_state("networkidle")

    def check(self, name: str) -> None:
        """axe on the page as it is; a full-page screenshot."""
        self.settle()
        self.page.screenshot(path=str(SHOTS / f"{name}-{self.label}.png"), full_page=True)
        if not self.page.evaluate("typeof window.axe !== 'undefined'"):
            self.page.evaluate(self.axe + "\n;undefined")
        result = self.page.evaluate(
            "axe.run(document, {resultTypes: ['violations'], runOnly: {type: 'tag', values: "
            "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice']}})"
        )
        serious = [
            {"id": v["id"], "impact": v["impact"], "nodes": [n["html"] for n in v["nodes"][:3]]}
            for v in result["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert not serious, f"{name} ({self.label}): {json.dumps(serious, indent=1)}"
        assert not self.csp_violations, f"{name}: {self.csp_violations}"

    def sign_in(self, login: str, *, totp: bool = False) -> None:
        self.go("/login")
        self.page.fill("#f-login", login)
        self.page.fill("#f-password", DEMO_PASSWORD)
        self.page.click("#login-form button[type=submit]")
        self.settle()
        if totp:
            self.page.fill("#f-code", _fresh_code())
            self.page.click("#totp-form button[type=submit]")
            self.settle()

    def language(self, lang: str) -> None:
        """Choose ``lang`` with the switch in the top bar (nothing to do if it is current)."""
        if self.page.evaluate("document.documentElement.lang") == lang:
            return
        self.page.click(f".language-switch button[value={lang}]")
        self.page.wait_for_function(f"document.documentElement.lang === '{lang}'")
        self.settle()

    def close(self) -> None:
        self.context.close()


_last_step: list[int] = []


def _fresh_code() -> str:
    """A TOTP code of a 30-second step not used before (a code is accepted once)."""
    totp = pyotp.TOTP(DEMO_ADMIN_TOTP_SECRET)
    while _last_step and totp.timecode(time.time()) <= _last_step[-1]:  # type: ignore[arg-type]
        time.sleep(1)
    _last_step.append(totp.timecode(time.time()))  # type: ignore[arg-type]
    return totp.now()


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
