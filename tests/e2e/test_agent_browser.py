"""The field agent's phone app in a real browser (Debian's Chromium under Playwright, 360×740)
against a real `namma serve --demo` on PostgreSQL (issue 19's acceptance):

- the agent opens the sheet online; the browser goes offline; the sheet reloads from the service
  worker; three payments (one partial, by UPI) and a fourth are recorded and shown as saved on
  the phone; meanwhile the fourth payment's loan is paid off from elsewhere;
- back online the queue syncs, and the first attempt fails after it reached the server (the
  route answers the page with a network error): the retry sends the same client ids and the
  office records each payment exactly once; the fourth line shows rejected with the reason (the
  loan is closed), as does a fifth beyond what its loan owes;
- a second agent signing in on the same browser sees none of the first agent's data (pages,
  IndexedDB, caches); signing out with unsynced payments warns first; a payment for a customer
  moved to another agent meanwhile is rejected, saying so;
- every agent page passes axe (no serious or critical violation) with no CSP violation, in
  English and in Kannada; screenshots under var/screenshots/.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from playwright.sync_api import expect

from namma.demo import DEMO_PASSWORD
from tests.e2e.support import PHONE, Visit, chromium, demo_server

pytestmark = pytest.mark.slow

DAILY = "DAILY-100"


@pytest.fixture(scope="module")
def server(postgres_server_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with demo_server(postgres_server_url, tmp_path_factory) as base:
        yield base


@pytest.fixture(scope="module")
def browser(server: str) -> Iterator[Any]:
    with chromium() as launched:
        yield launched


def api_as(server: str, login: str) -> httpx.Client:
    api = httpx.Client(base_url=server, timeout=30)
    signed = api.post(
        "/api/auth/login",
        json={"login": login, "password": DEMO_PASSWORD, "token_delivery": "body"},
    )
    assert signed.status_code == 200, signed.text
    api.headers["Authorization"] = f"Bearer {signed.json()['access_token']}"
    return api


def customer_id(api: httpx.Client, name: str) -> str:
    found = api.get("/api/customers", params={"q": name}).json()["customers"]
    assert found, name
    return str(found[0]["id"])


@pytest.fixture(scope="module")
def daily_loans(server: str) -> dict[str, str]:
    """Daily loans disbursed 3 days ago (3 installments owed by today) of two of agent one's
    customers and one of agent two's: {customer name: loan id}."""
    agent = api_as(server, "agent1@example.com")
    agents = {"Renuka S.": api_as(server, "agent2@example.com")}
    manager = api_as(server, "manager@example.com")
    products = agent.get("/api/products").json()["products"]
    [daily] = [p for p in products if p["code"] == DAILY]
    today = dt.date.fromisoformat(agent.get("/api/dashboard").json()["as_of"])
    loans = {}
    for name in ("Kamala D.", "Parvathi K.", "Renuka S."):
        applicant = agents.get(name, agent)
        applied = applicant.post(
            "/api/loans",
            json={
                "customer_id": customer_id(applicant, name),
                "product_id": daily["id"],
                "amount": "5000.00",
                "installments": 25,
            },
        )
        assert applied.status_code == 201, applied.text
        loan_id = applied.json()["id"]
        assert manager.post(f"/api/loans/{loan_id}/approve").status_code == 200
        paid_out = manager.post(
            f"/api/loans/{loan_id}/disburse",
            json={"disbursed_on": (today - dt.timedelta(days=3)).isoformat(), "method": "cash"},
        )
        assert paid_out.status_code == 201, paid_out.text
        loans[name] = loan_id
    return loans


def line(visit: Visit, loan_id: str) -> Any:
    return visit.page.locator(f"#line-{loan_id}")


def states(visit: Visit) -> dict[str, str]:
    found: dict[str, str] = visit.page.evaluate(
        "Object.fromEntries([...document.querySelectorAll('#queue-list [data-client-id]')]"
        ".map(li => [li.dataset.clientId, li.dataset.state]))"
    )
    return found


def test_offline_payments_sync_exactly_once_and_the_next_agent_sees_none(
    browser: Any, server: str, daily_loans: dict[str, str]
) -> None:
    agent = api_as(server, "agent1@example.com")
    sheet = agent.get("/api/collection-sheet").json()
    by_number = {
        loan["loan_number"]: (c["name"], loan)
        for g in sheet["groups"]
        for c in g["customers"]
        for loan in c["loans"]
    }
    by_id = {loan["loan_id"]: loan for _, loan in by_number.values()}
    kamala_daily, parvathi_daily = daily_loans["Kamala D."], daily_loans["Parvathi K."]
    others = [i for i in by_id if i not in (kamala_daily, parvathi_daily)]
    assert kamala_daily in by_id and parvathi_daily in by_id and len(others) >= 2
    weekly, flat = others[0], others[1]

    visit = Visit(browser, server, PHONE, "en-phone", service_workers="allow")
    seen: list[list[str]] = []
    try:
        visit.sign_in("agent1@example.com")
        visit.go("/agent/sheet")
        visit.page.wait_for_selector("body[data-offline-ready=yes]", timeout=30000)
        for loan_id in (weekly, flat, kamala_daily, parvathi_daily):
            assert line(visit, loan_id).is_visible()
            shown = line(visit, loan_id).locator("input[name=amount]").input_value()
            assert shown == by_id[loan_id]["expected"]  # prefilled with what is expected
        online_ids = visit.page.eval_on_selector_all(
            "input[name=client_id]", "nodes => nodes.map(n => n.value)"
        )
        visit.check("agent-sheet")

        # Offline: the sheet comes from the service worker (the same page, not a new render).
        visit.context.set_offline(True)
        response = visit.page.reload()
        assert response is not None and response.from_service_worker
        assert visit.page.evaluate("navigator.onLine") is False
        offline_ids = visit.page.eval_on_selector_all(
            "input[name=client_id]", "nodes => nodes.map(n => n.value)"
        )
        assert offline_ids == online_ids
        # Three payments, one partial by UPI, and a fourth on a loan about to be paid off.
        line(visit, weekly).locator("button.record").click()
        flat_line = line(visit, flat)
        flat_line.locator("input[name=amount]").fill("100.50")
        flat_line.locator("input[name=method][value=upi]").check()
        flat_line.locator("input[name=reference]").fill("UPI-4711")
        flat_line.locator("button.record").click()
        line(visit, parvathi_daily).locator("button.record").click()
        line(visit, kamala_daily).locator("button.record").click()
        expect(visit.page.locator("#queue-list [data-state=pending]")).to_have_count(4)
        # And a fifth, far beyond what the weekly loan owes in all.
        line(visit, weekly).locator("input[name=amount]").fill("999999.00")
        line(visit, weekly).locator("button.record").click()
        expect(visit.page.locator("#queue-list [data-state=pending]")).to_have_count(5)
        assert visit.page.text_content("#pending-count") == "5"
        assert line(visit, flat).locator("[data-state=pending]").count() == 1
        assert "Saved on phone" in line(visit, flat).inner_text()
        client_ids = set(states(visit))
        assert len(client_ids) == 5
        visit.page.screenshot(path=str(visit_shot("agent-sheet-offline")), full_page=True)

        # Meanwhile Kamala's daily loan is paid off from elsewhere.
        quote = agent.get(f"/api/loans/{kamala_daily}/preclosure").json()
        closed = agent.post(
            "/api/collections",
            json={"loan_id": kamala_daily, "amount": quote["total"]},
            headers={"Idempotency-Key": str(uuid.uuid4())},
        )
        assert closed.status_code == 201, closed.text
        assert closed.json()["loan"]["status"] in ("closed", "preclosed")

        # Back online: the first attempt reaches the server, then the page loses the answer.
        def interrupted(route: Any) -> None:
            seen.append([x["client_id"] for x in route.request.post_data_json["lines"]])
            if len(seen) == 1:
                route.fetch()  # the server posts the sheet...
                route.abort("connectionreset")  # ...and the answer never arrives
            else:
                route.continue_()

        visit.page.route("**/api/collection-sheet/post", interrupted)
        visit.context.set_offline(False)
        visit.page.wait_for_timeout(1000)
        if not seen:
            visit.page.click("#sync-now")
        expect(visit.page.locator("#sync-note")).to_contain_text("Could not reach")
        assert len(seen) == 1
        assert states(visit) == dict.fromkeys(client_ids, "pending")  # nothing dropped
        # The lost attempt did reach the office: the payment is already on the books.
        on_books = agent.get("/api/collections", params={"loan_id": weekly}).json()
        assert any(c["client_id"] in client_ids for c in on_books["collections"])
        visit.page.click("#sync-now")
        expect(visit.page.locator("#queue-list [data-state=synced]")).to_have_count(3)
        expect(visit.page.locator("#queue-list [data-state=pending]")).to_have_count(0)
        assert len(seen) == 2 and set(seen[0]) == set(seen[1]) == client_ids
        final = states(visit)
        assert sorted(final.values()) == ["rejected", "rejected", "synced", "synced", "synced"]
        rejected = visit.page.locator("#queue-list [data-state=rejected]")
        reasons = rejected.all_inner_texts()
        assert any("The loan is closed" in r for r in reasons), reasons
        assert any("more than the customer owes" in r for r in reasons), reasons
        assert line(visit, kamala_daily).locator("[data-state=rejected]").count() == 1
        assert visit.page.locator("#queue-list .queued-receipt").count() == 3
        visit.check("agent-sheet-synced")
        # What the service worker keeps: static files, the manifest and this user's two pages;
        # never the API's JSON (the sheet's data lives in IndexedDB).
        cached = visit.page.evaluate(
            """async () => { const out = []; for (const k of await caches.keys()) {
                const c = await caches.open(k);
                for (const r of await c.keys()) out.push([k, new URL(r.url).pathname]); }
              return out; }"""
        )
        assert not any(path.startswith("/api/") for _, path in cached), cached
        pages = {path for key, path in cached if key.startswith("namma-user-")}
        assert "/agent/sheet" in pages and pages <= {"/agent", "/agent/sheet"}, cached
        assert {path for key, path in cached if key.startswith("namma-shell-")} >= {
            "/agent.webmanifest"
        }
        kept = visit.page.evaluate(
            """() => new Promise((ok, no) => { const r = indexedDB.open(
                'namma-agent-' + document.body.dataset.user);
              r.onsuccess = () => { const t = r.result.transaction('sheet');
                const all = t.objectStore('sheet').getAll();
                all.onsuccess = () => ok(all.result.map(x => x.loan_id)); }; r.onerror = no; })"""
        )
        assert set(kept) >= {weekly, flat}

        # Each payment is on the books exactly once, with its client id.
        for loan_id, amount in (
            (weekly, by_id[weekly]["expected"]),
            (flat, "100.50"),
            (parvathi_daily, by_id[parvathi_daily]["expected"]),
            (kamala_daily, None),
        ):
            rows = agent.get("/api/collections", params={"loan_id": loan_id}).json()
            mine = [c for c in rows["collections"] if c["client_id"] in client_ids]
            if amount is None:
                assert mine == []  # refused: the loan was closed
            else:
                assert len(mine) == 1 and mine[0]["amount"] == amount, mine
        [upi] = [
            c
            for c in agent.get("/api/collections", params={"loan_id": flat}).json()["collections"]
            if c["client_id"] in client_ids
        ]
        assert upi["method"] == "upi" and upi["reference"] == "UPI-4711"

        # Sign out (nothing unsynced: no warning), and the second agent signs in here.
        dialogs: list[str] = []
        visit.page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
        visit.page.click("form[action='/logout'] button")
        visit.page.wait_for_url(f"{server}/login*")
        assert dialogs == []
        visit.sign_in("agent2@example.com")
        visit.go("/agent/sheet")
        visit.page.wait_for_selector("body[data-offline-ready=yes]", timeout=30000)
        html = visit.page.content()
        for name in ("Kamala D.", "Latha R.", "Parvathi K."):
            assert name not in html
        assert visit.page.locator("#queue-list [data-client-id]").count() == 0
        databases = visit.page.evaluate("indexedDB.databases().then(all => all.map(d => d.name))")
        keys = visit.page.evaluate("caches.keys()")
        agent1 = agent.get("/api/auth/me").json()
        agent1_id = agent1.get("id") or agent1.get("user", {}).get("id")
        assert agent1_id and not any(agent1_id in n for n in databases + keys), (databases, keys)
        # Offline, the second agent's phone serves the second agent's sheet only.
        visit.context.set_offline(True)
        visit.page.reload()
        assert "Kamala D." not in visit.page.content()
        # A payment recorded offline, then sign out: the phone warns first (and stays).
        renuka = line(visit, daily_loans["Renuka S."])
        assert renuka.is_visible()
        renuka.locator("button.record").click()
        expect(visit.page.locator("#queue-list [data-state=pending]")).to_have_count(1)
        visit.page.click("form[action='/logout'] button")
        visit.page.wait_for_timeout(500)
        assert dialogs and "not synced" in dialogs[0]
        assert visit.page.url.endswith("/agent/sheet")  # dismissed: still signed in, kept
        expect(visit.page.locator("#queue-list [data-state=pending]")).to_have_count(1)
        # Meanwhile the manager moves that customer to agent one: the line is refused, saying so.
        manager = api_as(server, "manager@example.com")
        moved = manager.put(
            f"/api/customers/{customer_id(manager, 'Renuka S.')}/agent",
            json={"agent_id": agent1_id, "reason": "Route change"},
        )
        assert moved.status_code == 200, moved.text
        visit.context.set_offline(False)
        visit.page.click("#sync-now")
        refused = visit.page.locator("#queue-list [data-state=rejected]")
        expect(refused).to_have_count(1)
        assert "not on your list" in refused.inner_text()
        visit.check("agent-sheet-rejected")
    finally:
        visit.close()


def visit_shot(name: str) -> Any:
    from tests.e2e.support import SHOTS

    return SHOTS / f"{name}-en-phone.png"


def test_every_agent_page_in_english_and_kannada_passes_axe(
    browser: Any, server: str, daily_loans: dict[str, str]
) -> None:
    agent = api_as(server, "agent1@example.com")
    customer = customer_id(agent, "Parvathi K.")
    loan = daily_loans["Parvathi K."]
    visit = Visit(browser, server, PHONE, "en-phone", service_workers="allow")
    try:
        visit.sign_in("agent1@example.com")
        for lang in ("en", "kn"):
            visit.language(lang)
            visit.label = f"{lang}-phone"
            for name, path in (
                ("agent-dashboard", "/agent"),
                ("agent-sheet-page", "/agent/sheet"),
                ("agent-customers", "/agent/customers"),
                ("agent-customer", f"/agent/customers/{customer}"),
                ("agent-loan", f"/agent/loans/{loan}"),
                ("agent-onboard", "/agent/customers/new"),
                ("agent-handover", "/agent/handover"),
            ):
                visit.go(path)
                assert visit.page.evaluate("document.documentElement.lang") == lang
                visit.check(name)
            visit.go(f"/agent/customers/{customer}/apply")
            daily = visit.page.locator("#f-product_id option", has_text=DAILY).get_attribute(
                "value"
            )
            visit.page.select_option("#f-product_id", daily)
            visit.page.fill("#f-amount", "5000")
            visit.page.fill("#f-installments", "25")
            visit.page.wait_for_selector("#preview-apr", timeout=10000)
            visit.check("agent-apply")
            # A receipt: the customers' search, then one payment recorded online.
            visit.go("/agent/customers?q=Parv")
            assert visit.page.locator("#customer-list a").count() >= 1
        visit.language("en")
        visit.label = "en-phone"
        visit.go("/agent/sheet")
        first = visit.page.locator(".sheet-line").first  # whatever is still owed today
        first.locator("input[name=amount]").fill("10.00")
        first.locator("button.record").click()
        receipt = first.locator("a.queued-receipt")
        receipt.wait_for(timeout=15000)
        receipt.click()
        visit.settle()
        assert visit.page.locator("#receipt").is_visible()
        assert "₹10.00" in visit.page.inner_text("#receipt")
        visit.check("agent-receipt")
    finally:
        visit.close()
