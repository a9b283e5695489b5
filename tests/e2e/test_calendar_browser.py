"""The working calendar in a real browser (Debian's Chromium under Playwright) against a real
`namma serve --demo` on PostgreSQL (issue 22, point 1): the branch Manager closes Sundays and
adds a holiday on next week's date; the page says how many loans move; the same page on a
phone and in Kannada. Every page visited: axe-core finds no serious or critical violation, no
CSP violation, and a screenshot goes to ``var/screenshots/`` (git-ignored)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

from namma.kit.clock import today_india
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


def test_the_manager_keeps_the_branchs_calendar(browser: Any, server: str) -> None:
    visit = Visit(browser, server, DESKTOP, "en-desktop")
    try:
        visit.sign_in("manager@example.com")
        visit.go("/office/calendar")
        assert "Working calendar" in visit.page.inner_text("h1")
        visit.check("office-calendar")
        # Next week's date: the demo's weekly loans fall due then.
        holiday = today_india() + dt.timedelta(days=7)
        visit.page.fill("#f-on_date", holiday.isoformat())
        visit.page.fill("#f-name", "Karaga")
        visit.page.click("#holiday-form button[type=submit]")
        visit.page.wait_for_selector("#calendar-moved")
        assert "Karaga" in visit.page.inner_text("#holidays")
        visit.check("office-calendar-holiday-added")
        # The same day again is refused, and the page says why.
        visit.page.fill("#f-on_date", holiday.isoformat())
        visit.page.fill("#f-name", "Karaga again")
        visit.page.click("#holiday-form button[type=submit]")
        visit.page.wait_for_selector("text=That day is already a holiday")
        visit.check("office-calendar-errors")
        # Sundays closed.
        visit.page.check("#wd-sunday")
        visit.page.uncheck("#wd-follow")
        visit.page.click("#weekdays button[type=submit]")
        visit.page.wait_for_selector("#calendar-moved")
        assert visit.page.is_checked("#wd-sunday")
        visit.check("office-calendar-weekdays")
        visit.label = "kn-desktop"
        visit.language("kn")
        visit.go("/office/calendar")
        assert "ಕೆಲಸದ ಕ್ಯಾಲೆಂಡರ್" in visit.page.inner_text("h1")
        visit.check("office-calendar")
        visit.language("en")
    finally:
        visit.close()
    phone = Visit(browser, server, PHONE, "en-phone")
    try:
        phone.sign_in("manager@example.com")
        phone.go("/office/calendar")
        phone.check("office-calendar")
    finally:
        phone.close()
