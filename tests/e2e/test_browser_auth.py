"""Login, refresh, `me` and logout from a real browser (Chromium driven by Playwright) against
`namma serve`: the cookies carry the right flags and the page works with them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pyotp
import pytest

from namma.demo import DEMO_ADMIN_TOTP_SECRET, DEMO_PASSWORD

CHROMIUM = Path("/usr/bin/chromium")
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

pytestmark = pytest.mark.slow


@pytest.fixture
def server(empty_database_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail("CI must have Debian's chromium at /usr/bin/chromium")
        pytest.skip("no /usr/bin/chromium (apt-get install chromium)")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("NAMMA_")}
    env["NAMMA_DATABASE_URL"] = empty_database_url
    process = subprocess.Popen(
        [sys.executable, "-m", "namma", "serve", "--demo", "--port", str(port), "--no-job-worker"],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stdout.read() if process.stdout else "server exited")
        try:
            if httpx.get(f"{base}/ready", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    yield base
    process.send_signal(signal.SIGTERM)
    process.wait(30)


def _launch(playwright):  # type: ignore[no-untyped-def]
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)


def test_manager_logs_in_refreshes_and_logs_out_in_chromium(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = _launch(p)
        context = browser.new_context()
        page = context.new_page()
        page.goto(f"{server}/login")
        page.fill("#login", "manager@example.com")
        page.fill("#password", DEMO_PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_url(f"{server}/account")
        # Locator waits, not wait_for_function: the page's CSP forbids eval, which it uses.
        expect(page.locator("#me-role")).to_have_text("manager")
        assert page.text_content("#me-name") == "Demo Manager"

        cookies = {c["name"]: c for c in context.cookies()}
        access, refresh, csrf = (
            cookies["access_token"],
            cookies["refresh_token"],
            cookies["csrf_token"],
        )
        assert access["httpOnly"] and access["sameSite"] == "Lax" and access["path"] == "/"
        assert refresh["httpOnly"] and refresh["sameSite"] == "Lax"
        assert refresh["path"] == "/api/auth/refresh"
        assert not csrf["httpOnly"]  # the page reads it to send X-CSRF-Token
        assert not access["secure"]  # plain http on 127.0.0.1; Secure everywhere else
        # The page's script cannot read the tokens.
        assert "access_token" not in page.evaluate("document.cookie")

        page.click("#refresh-button")
        expect(page.locator("#message")).to_have_text("Session refreshed.")
        rotated = {c["name"]: c["value"] for c in context.cookies()}
        assert rotated["refresh_token"] != refresh["value"]

        # `me` straight from the browser's cookies.
        me = page.evaluate("fetch('/api/auth/me').then(r => r.json())")
        assert me["user"]["email"] == "manager@example.com"

        page.click("#logout-button")
        page.wait_for_url(f"{server}/login")
        status = page.evaluate("fetch('/api/auth/me').then(r => r.status)")
        assert status == 401
        # The old access token (kept by an attacker, say) is dead too.
        replay = httpx.get(
            f"{server}/api/auth/me", headers={"Authorization": f"Bearer {access['value']}"}
        )
        assert replay.status_code == 401
        browser.close()


def test_admin_logs_in_with_a_second_factor_in_chromium(server: str) -> None:
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = _launch(p)
        page = browser.new_page()
        page.goto(f"{server}/login")
        page.fill("#login", "admin@example.com")
        page.fill("#password", DEMO_PASSWORD)
        page.click("#login-form button[type=submit]")
        page.wait_for_selector("#totp-form:not([hidden])")
        page.fill("#code", pyotp.TOTP(DEMO_ADMIN_TOTP_SECRET).now())
        page.click("#totp-form button[type=submit]")
        page.wait_for_url(f"{server}/account")
        expect(page.locator("#me-role")).to_have_text("admin")
        page.screenshot(
            path=str(Path(os.environ.get("NAMMA_SCREENSHOT_DIR", "/tmp")) / "namma-account.png")
        )
        browser.close()
