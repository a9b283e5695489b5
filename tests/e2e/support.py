"""What every browser test needs: a real `namma serve --demo` on its own PostgreSQL database,
Debian's Chromium driven by Playwright (never a downloaded browser), and ``Visit`` — a browser
context whose ``check(name)`` runs axe-core (vendored under ``vendor/``), fails on any
Content-Security-Policy violation and saves a full-page screenshot under ``var/screenshots/``
(or ``NAMMA_SCREENSHOT_DIR``; git-ignored).

Use one server and one browser per test module (module-scoped fixtures), not per test.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pyotp
import pytest
from playwright.sync_api import expect

from namma.demo import DEMO_ADMIN_TOTP_SECRET, DEMO_PASSWORD
from namma.kit.db import libpq_url
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
# A running demo server's database URL, by its base URL (for a test that must set up a state
# no page can make, such as a failed job).
DATABASE_OF: dict[str, str] = {}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chromium_required() -> None:
    """Skip (fail in CI) when Debian's Chromium is missing."""
    if not CHROMIUM.exists():
        if IN_CI:
            pytest.fail("CI must have Debian's chromium at /usr/bin/chromium")
        pytest.skip("no /usr/bin/chromium (apt-get install chromium)")


SERVER_ERROR = re.compile(
    r"\bstatus\"?[=:] ?5\d\d\b|page\.unhandled_error|Exception in ASGI application"
)


@contextlib.contextmanager
def demo_server(
    postgres_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    *,
    env: dict[str, str] | None = None,
) -> Iterator[str]:
    """`namma serve --demo --job-worker` on a new database; yields its base URL. The database
    is dropped afterwards. ``env`` adds NAMMA_ settings."""
    chromium_required()
    from sqlalchemy.engine import make_url

    name = f"namma_test_{uuid.uuid4().hex[:10]}"
    create_database(postgres_server_url, name)
    url = make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    port = free_port()
    environment = {k: v for k, v in os.environ.items() if not k.startswith("NAMMA_")}
    environment["NAMMA_DATABASE_URL"] = url
    environment["NAMMA_LOGIN_RATE_LIMIT"] = "1000/minute"  # many sign-ins from one address here
    environment.update(env or {})
    log = tmp_path_factory.mktemp("serve") / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "namma", "serve", "--demo", "--port", str(port), "--job-worker"],
            env=environment,
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
        DATABASE_OF[base] = url
        yield base
    finally:
        DATABASE_OF.pop(base, None)
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        drop_database(postgres_server_url, name)
    # Any server error during the story fails it, also one answered to an htmx request or a
    # form post that the story did not look at.
    failures = [line for line in log.read_text().splitlines() if SERVER_ERROR.search(line)]
    assert not failures, "the server answered errors:\n" + "\n".join(failures[:10])


@contextlib.contextmanager
def chromium() -> Iterator[Any]:
    """A headless Debian Chromium under Playwright."""
    chromium_required()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        try:
            yield launched
        finally:
            launched.close()


class Visit:
    """A browser context with the checks every page gets: axe, CSP, a screenshot."""

    def __init__(
        self, browser: Any, base: str, viewport: dict[str, int], label: str, **context: Any
    ) -> None:
        self.base = base
        self.label = label
        self.context = browser.new_context(viewport=viewport, accept_downloads=True, **context)
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
        """Open ``path``; a server error fails the story there (its error page would otherwise
        pass the axe check and be screenshotted as if it were the page)."""
        response = self.page.goto(self.base + path)
        assert response is None or response.status < 500, f"{path}: {response.status}"
        self.settle()

    def settle(self) -> None:
        self.page.wait_for_load_state("networkidle")

    def check(self, name: str) -> None:
        """axe on the page as it is; a full-page screenshot."""
        self.settle()
        # caret="initial": Playwright's default caret hiding leaves `style=""` on the inputs it
        # touched, which htmx's settle then copies onto the swapped-in inputs of the same id —
        # a blocked inline style (CSP) that only the test harness causes.
        self.page.screenshot(
            path=str(SHOTS / f"{name}-{self.label}.png"), full_page=True, caret="initial"
        )
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

    def sign_in(self, login: str, *, totp: bool = False, password: str = DEMO_PASSWORD) -> None:
        self.go("/login")
        self.page.fill("#f-login", login)
        self.page.fill("#f-password", password)
        self.page.click("#login-form button[type=submit]")
        self.settle()
        if totp:
            self.page.fill("#f-code", fresh_code())
            self.page.click("#totp-form button[type=submit]")
            self.settle()

    def language(self, lang: str) -> None:
        """Choose ``lang`` with the switch in the top bar (nothing to do if it is current)."""
        if self.page.evaluate("document.documentElement.lang") == lang:
            return
        self.page.click(f".language-switch button[value={lang}]")
        # The switch is a form post and a redirect. Playwright's own assertion waits across
        # the navigation; a wait_for_function predicate is a string the page evaluates, which
        # threw between the two documents (no documentElement) or was refused by the CSP
        # (no 'unsafe-eval') — CI failed on both.
        expect(self.page.locator("html")).to_have_attribute("lang", lang, timeout=30_000)
        self.settle()

    def close(self) -> None:
        self.context.close()


_last_step: list[int] = []


def fresh_code(secret: str = DEMO_ADMIN_TOTP_SECRET) -> str:
    """A TOTP code of a 30-second step not used before (a code is accepted once)."""
    totp = pyotp.TOTP(secret)
    while _last_step and totp.timecode(time.time()) <= _last_step[-1]:  # type: ignore[arg-type]
        time.sleep(1)
    _last_step.append(totp.timecode(time.time()))  # type: ignore[arg-type]
    return totp.now()


@contextlib.contextmanager
def request_held_at_loan_lock(
    database_url: str, loan_id: str, send: Callable[[], None]
) -> Iterator[threading.Thread]:
    """Hold ``loan_id``'s row lock from a connection of our own, start ``send`` (a request that
    posts to that loan) in a thread, and enter the block once the request waits for the lock
    inside its transaction (seen in ``pg_stat_activity``): its idempotency key is claimed and
    nothing is committed — the moment to kill the server. The lock is released at the end."""
    with psycopg.connect(libpq_url(database_url)) as blocker:
        blocker.execute("SELECT id FROM loans WHERE id = %s FOR UPDATE", (loan_id,))
        sender = threading.Thread(target=send)
        sender.start()
        deadline = time.monotonic() + 30
        waiting = 0
        while time.monotonic() < deadline and not waiting:
            with psycopg.connect(libpq_url(database_url), autocommit=True) as probe:
                row = probe.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND pid <> %s",
                    (blocker.info.backend_pid,),
                ).fetchone()
                waiting = row[0] if row else 0
            time.sleep(0.05)
        assert waiting == 1, "the request never reached the loan lock"
        yield sender
        blocker.rollback()
