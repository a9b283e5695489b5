"""Issue 16 against a real `namma serve --demo` (one server for the module): bad input over HTTP
is a 4xx, never a 500 (item 6); the demo's books start with capital, no cash below zero
(item 12); the Key Facts Statement in Chromium at 360 px, English and Kannada, with its penal
charges in words, and its way to sign in when the session has ended (item 14)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from namma.kit.clock import today_india
from tests.e2e.support import PHONE, Visit, chromium, demo_server, fresh_code

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_server(postgres_server_url, tmp_path_factory) as base:
        yield base


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def _bearer(base: str, login: str) -> dict[str, str]:
    from namma.demo import DEMO_PASSWORD

    body = httpx.post(
        f"{base}/api/auth/login",
        json={"login": login, "password": DEMO_PASSWORD, "token_delivery": "body"},
        timeout=30,
    ).json()
    if body["status"] == "totp_required":
        body = httpx.post(
            f"{base}/api/auth/login/totp",
            json={"challenge": body["challenge"], "code": fresh_code(), "token_delivery": "body"},
            timeout=30,
        ).json()
    return {"Authorization": f"Bearer {body['access_token']}"}


@pytest.fixture(scope="module")
def admin(server: str) -> dict[str, str]:
    return _bearer(server, "admin@example.com")


@pytest.fixture(scope="module")
def agent(server: str) -> dict[str, str]:
    return _bearer(server, "agent1@example.com")


def _kamala_loan(server: str, admin: dict[str, str]) -> dict[str, Any]:
    loans = httpx.get(f"{server}/api/loans?status=active", headers=admin, timeout=30).json()
    return next(loan for loan in loans["loans"] if loan["customer"]["name"] == "Kamala D.")


# --- item 6: never a 500, over HTTP -----------------------------------------------------------


def test_bad_input_over_http_is_never_a_server_error(
    server: str, admin: dict[str, str], agent: dict[str, str]
) -> None:
    loan = _kamala_loan(server, admin)
    today = today_india().isoformat()

    def post(path: str, body: Any, headers: dict[str, str]) -> httpx.Response:
        # json.dumps writes a lone surrogate as "\ud800", as a client's encoder may.
        return httpx.post(
            f"{server}{path}",
            content=json.dumps(body),
            headers={
                **headers,
                "Content-Type": "application/json",
                "Idempotency-Key": str(uuid.uuid4()),
            },
            timeout=60,
        )

    line = {"loan_id": loan["id"], "amount": "1.00", "collected_on": today}
    checks: list[tuple[str, httpx.Response, str]] = [
        ("NUL", post("/api/collections", {**line, "client_id": "a\x00b"}, agent), "client_id"),
        ("remarks", post("/api/collections", {**line, "remarks": "\ud800"}, agent), "remarks"),
        ("year 9999", post("/api/collections", {**line, "collected_on": "9999-12-31"}, agent),
         "collected_on"),
        ("year 1", post("/api/capital/investments",
                        {"amount": "1.00", "source": "x", "invested_on": "0001-01-01"}, admin),
         "invested_on"),
        ("true", post("/api/loans", {"customer_id": loan["customer"]["id"],
                                     "product_id": str(uuid.uuid4()), "amount": "1000.00",
                                     "installments": True}, agent), "installments"),
        ("digits", post("/api/collections", {**line, "amount": "१.००"}, agent), "amount"),
        ("1 MB", post("/api/customers", {"name": "x" * 1_000_000}, agent), "name"),
    ]  # fmt: skip
    for label, response, field in checks:
        assert response.status_code == 422, (label, response.text[:300])
        fields = [d["field"] for d in response.json()["error"]["details"]]
        assert field in fields, (label, fields)
    for path in (
        "/api/audit?before_id=99999999999999999999",
        "/api/collections?after=99999999999999999999",
        "/api/collection-sheet?date=1700000000",
        "/api/collection-sheet?date=9999-12-31",
        "/api/customers?q=%00",
    ):
        response = httpx.get(f"{server}{path}", headers=admin, timeout=30)
        assert response.status_code == 422, (path, response.text[:300])
    response = httpx.get(
        f"{server}/api/products",
        headers=[*admin.items(), ("X-Request-ID", b"\xff\xfe")],
        timeout=30,
    )
    assert response.status_code == 200 and len(response.headers["x-request-id"]) == 32
    # The sheet: the bad line fails alone, the good one posts.
    sheet = post(
        "/api/collection-sheet/post",
        {"lines": [{**line, "client_id": "nul\x00line"}, {**line, "client_id": str(uuid.uuid4())}]},
        agent,
    )
    assert sheet.status_code == 200, sheet.text
    assert [r["status"] for r in sheet.json()["lines"]] == [422, 201]


# --- item 12: the demo's books ----------------------------------------------------------------


def test_the_demo_trial_balance_has_capital_and_no_negative_cash(
    server: str, admin: dict[str, str]
) -> None:
    balance = httpx.get(f"{server}/api/ledger/trial-balance", headers=admin, timeout=30).json()
    rows = {row["code"]: row for row in balance["accounts"]}
    cash = [r for r in balance["accounts"] if r["kind"] in ("branch_cash", "agent_cash", "bank")]
    assert cash and all(Decimal(r["balance"]) >= 0 for r in cash), cash
    capital = [r for r in rows.values() if r["kind"] == "capital"]
    assert Decimal(capital[0]["balance"]) == Decimal("700000.00")


# --- item 14: the KFS -------------------------------------------------------------------------


@pytest.mark.parametrize("lang", ["en", "kn"])
def test_the_kfs_says_its_penal_charges_in_words_and_fits_a_phone(
    browser: Any, server: str, admin: dict[str, str], lang: str
) -> None:
    loan = _kamala_loan(server, admin)
    visit = Visit(browser, server, PHONE, f"{lang}-phone")
    try:
        visit.sign_in("kamala@example.com")
        visit.language(lang)
        visit.go(f"/loans/{loan['id']}/kfs")
        penal = visit.page.text_content("#kfs-penal") or ""
        if lang == "en":
            assert penal == "₹50.00 once, if unpaid more than 3 days after the due date"
        else:
            assert "₹50.00" in penal and "ಒಮ್ಮೆ" in penal and "3" in penal
        # Nothing wider than the phone: wide tables scroll inside their own region.
        widths = visit.page.evaluate(
            "[document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1] == PHONE["width"], widths
        visit.check("kfs")
    finally:
        visit.close()


def test_the_kfs_links_to_sign_in_when_the_session_has_ended(
    browser: Any, server: str, admin: dict[str, str]
) -> None:
    """The access token lapsed and renewing does not answer (a weak connection): the page says
    so and links to sign-in, which leads back to the KFS."""
    loan = _kamala_loan(server, admin)
    kfs = f"/loans/{loan['id']}/kfs"
    visit = Visit(browser, server, PHONE, "en-phone")
    try:
        visit.sign_in("kamala@example.com")
        visit.context.clear_cookies(name="access_token")
        hung: list[Any] = []
        visit.page.route("**/api/auth/refresh", lambda route: hung.append(route))  # never answered
        visit.page.goto(server + kfs)
        link = visit.page.locator("#session-sign-in")
        link.wait_for(state="visible")
        assert link.get_attribute("href") == f"/login?next={kfs}"
        visit.page.screenshot(path=str(visit_shot("kfs-session-ended")), full_page=True)
        visit.context.clear_cookies()
        link.click()
        visit.page.wait_for_url(f"{server}/login?next={kfs}")
        visit.page.wait_for_load_state("load")
        visit.page.fill("#f-login", "kamala@example.com")
        from namma.demo import DEMO_PASSWORD

        visit.page.fill("#f-password", DEMO_PASSWORD)
        visit.page.click("#login-form button[type=submit]")
        visit.settle()
        assert visit.page.url == f"{server}{kfs}"
        assert visit.page.locator("#kfs-penal").is_visible()
    finally:
        visit.close()


def visit_shot(name: str) -> Any:
    from tests.e2e.support import SHOTS

    return SHOTS / f"{name}.png"
