"""The pages through HTTP against real PostgreSQL: sign-in as a form (same services and cookies
as the API), each role sent home and refused elsewhere (403 page), CSRF on every form, HTML
error pages (JSON stays JSON under /api), the customer's portal showing the service's own
figures in English and Kannada, forms that keep what was typed, and pages whose statement count
does not grow with their rows."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal
from typing import Annotated, Any

import pyotp
import pytest
from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel
from sqlalchemy import event, select, text

from namma.audit.service import AuditActor
from namma.auth.permissions import Permission
from namma.auth.service import session_issue
from namma.kit.db import transaction
from namma.kit.money import Money
from namma.models import Customer, Loan, LoanInstallment, User
from namma.web.forms import form_parse
from namma.web.templating import environment
from namma.web.viewer import Viewer, viewer_of
from tests.integration.conftest import PASSWORD
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    collect,
    customer,
    make_loan,
    product,
    settings,
)

CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    found = CSRF_FIELD.search(html)
    assert found, "the page has no CSRF field"
    return found.group(1)


async def sign_in(app, client, user: User) -> str:  # type: ignore[no-untyped-def]
    """A real session for ``user`` in the client's cookies (as /login sets them); its CSRF."""
    async with transaction(app.state.db) as session:
        fresh = await session.get(User, user.id)
        assert fresh is not None
        issued = await session_issue(
            session,
            user=fresh,
            secret_key=app.state.settings.secret_key.get_secret_value(),
            actor=AuditActor(ip="127.0.0.1"),
            method="test",
        )
    client.cookies.set("access_token", issued.access_token)
    client.cookies.set("csrf_token", issued.csrf_token)
    return issued.csrf_token


async def login_form(client, login: str, password: str = PASSWORD, **extra: str):  # type: ignore[no-untyped-def]
    page = await client.get("/login")
    assert page.status_code == 200
    return await client.post(
        "/login",
        data={"csrf_token": csrf_of(page.text), "login": login, "password": password, **extra},
    )


def is_html(response) -> bool:  # type: ignore[no-untyped-def]
    return response.headers["content-type"].startswith("text/html")


# --- sign-in -------------------------------------------------------------------------------------


async def test_the_root_sends_to_sign_in_and_the_sign_in_page_is_a_form(client) -> None:  # type: ignore[no-untyped-def]
    root = await client.get("/")
    assert root.status_code == 303 and root.headers["location"] == "/login"
    page = await client.get("/login")
    assert page.status_code == 200 and is_html(page)
    assert '<html lang="en">' in page.text
    assert 'id="login-form"' in page.text and 'for="f-login"' in page.text
    assert "form_csrf" in page.cookies
    assert csrf_of(page.text) == page.cookies["form_csrf"]
    # The policy the security middleware also sends: no inline script or style is needed.
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert "<script>" not in page.text and "style=" not in page.text
    assert "https-needed" not in page.text  # plain HTTP on localhost keeps the cookies


async def test_the_sign_in_page_speaks_the_browsers_language(client) -> None:  # type: ignore[no-untyped-def]
    page = await client.get("/login", headers={"Accept-Language": "kn-IN,kn;q=0.9,en;q=0.5"})
    assert '<html lang="kn">' in page.text
    assert "ಸೈನ್ ಇನ್" in page.text and "ಇಮೇಲ್ ಅಥವಾ ಮೊಬೈಲ್ ಸಂಖ್ಯೆ" in page.text


async def test_sign_in_off_localhost_over_plain_http_explains_why_it_cannot_work(app) -> None:  # type: ignore[no-untyped-def]
    import httpx

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://10.1.2.3") as remote:
        page = await remote.get("/login")
    assert 'id="https-needed"' in page.text and "https://" in page.text


@pytest.mark.parametrize(
    ("who", "home"),
    [("customer_user_a", "/customer"), ("manager_a", "/manager"), ("agent_a", "/agent")],
)
async def test_the_sign_in_form_sends_each_role_home_with_the_apis_cookies(  # type: ignore[no-untyped-def]
    client, world, who: str, home: str
) -> None:
    user = getattr(world, who)
    response = await login_form(client, user.email)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == home
    cookies = response.headers.get_list("set-cookie")
    assert any(c.startswith("access_token=") and "HttpOnly" in c for c in cookies)
    assert any(c.startswith("refresh_token=") and "Path=/api/auth/refresh" in c for c in cookies)
    assert any(c.startswith("csrf_token=") and "HttpOnly" not in c for c in cookies)
    landed = await client.get(home)
    assert landed.status_code == 200 and user.name in landed.text
    # A phone number works as the login too, and `/` goes home.
    assert (await client.get("/")).headers["location"] == home


async def test_next_is_followed_only_on_this_site_and_in_the_persons_area(client, world) -> None:  # type: ignore[no-untyped-def]
    page = await client.get("/login?next=/customer/payments")
    assert 'name="next" value="/customer/payments"' in page.text
    ok = await login_form(client, world.customer_user_a.email, next="/customer/payments")
    assert ok.headers["location"] == "/customer/payments"
    client.cookies.clear()
    away = await login_form(client, world.customer_user_a.email, next="https://evil.example/")
    assert away.headers["location"] == "/customer"
    client.cookies.clear()
    other_role = await login_form(client, world.agent_a.email, next="/customer/loans")
    assert other_role.headers["location"] == "/agent"


async def test_a_wrong_password_keeps_the_login_and_says_why(client, world) -> None:  # type: ignore[no-untyped-def]
    response = await login_form(client, "kamala@example.com", "not the password")
    assert response.status_code == 401 and is_html(response)
    assert "Wrong login or password." in response.text
    assert 'value="kamala@example.com"' in response.text
    assert "not the password" not in response.text
    assert "access_token" not in response.cookies


async def test_empty_fields_are_named_next_to_their_inputs(client, world) -> None:  # type: ignore[no-untyped-def]
    response = await login_form(client, "", "")
    assert response.status_code == 422
    assert 'id="f-login-error"' in response.text and 'id="f-password-error"' in response.text
    assert 'aria-invalid="true"' in response.text and "Please fill this in." in response.text


async def test_a_throttled_account_shows_how_long_to_wait(client, world) -> None:  # type: ignore[no-untyped-def]
    for _ in range(5):
        assert (await login_form(client, "kamala@example.com", "wrong")).status_code == 401
    response = await login_form(client, "kamala@example.com", "wrong")
    assert response.status_code == 429 and is_html(response)
    wait = int(response.headers["retry-after"])
    assert wait >= 1
    assert 'id="retry-after"' in response.text
    assert re.search(rf"Please wait {wait} seconds?", response.text)


async def test_a_sign_in_post_without_its_token_is_refused(client, world) -> None:  # type: ignore[no-untyped-def]
    await client.get("/login")
    response = await client.post(
        "/login", data={"login": "kamala@example.com", "password": PASSWORD}
    )
    assert response.status_code == 403 and is_html(response)
    assert "access_token" not in response.cookies
    forged = await client.post(
        "/login",
        data={"csrf_token": "forged", "login": "kamala@example.com", "password": PASSWORD},
    )
    assert forged.status_code == 403


async def test_an_admin_enrols_an_authenticator_at_first_sign_in_then_uses_it(  # type: ignore[no-untyped-def]
    client, world
) -> None:
    first = await login_form(client, world.admin.email)
    assert first.status_code == 200 and 'id="enrol-form"' in first.text
    assert "<svg" in first.text  # the QR code
    secret = re.search(r'id="totp-secret">([A-Z2-7]+)<', first.text)
    assert secret
    challenge = re.search(r'name="challenge" value="([^"]+)"', first.text)
    assert challenge
    wrong = await client.post(
        "/login/enrol",
        data={"csrf_token": csrf_of(first.text), "challenge": challenge.group(1), "code": "000000"},
    )
    assert wrong.status_code == 422 and secret.group(1) in wrong.text  # the same key again
    done = await client.post(
        "/login/enrol",
        data={
            "csrf_token": csrf_of(first.text),
            "challenge": challenge.group(1),
            "code": pyotp.TOTP(secret.group(1)).now(),
        },
    )
    assert done.status_code == 200 and 'id="recovery-codes"' in done.text
    assert len(re.findall(r"<li>[a-z2-9]{5}-[a-z2-9]{5}</li>", done.text)) == 10
    assert (await client.get("/admin")).status_code == 200
    # Next time: the code step.
    client.cookies.clear()
    again = await login_form(client, world.admin.email)
    assert 'id="totp-form"' in again.text


async def test_sign_out_needs_the_token_and_ends_the_session(app, client, world) -> None:  # type: ignore[no-untyped-def]
    csrf = await sign_in(app, client, world.customer_user_a)
    refused = await client.post("/logout", data={})
    assert refused.status_code == 403 and is_html(refused)
    assert (await client.get("/customer")).status_code == 200
    out = await client.post("/logout", data={"csrf_token": csrf})
    assert out.status_code == 303 and out.headers["location"] == "/login?done=signed_out"
    # The old access token is dead even if kept.
    assert (await client.get("/customer", headers={"Accept": "text/html"})).status_code in (
        303,
        401,
    )


# --- roles, sessions and errors ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("who", "refused"),
    [
        ("customer_user_a", ["/admin", "/manager", "/agent"]),
        ("agent_a", ["/customer", "/customer/loans", "/admin", "/manager"]),
        ("manager_a", ["/admin", "/customer", "/agent"]),
    ],
)
async def test_a_wrong_role_gets_the_403_page(
    app, client, world, who: str, refused: list[str]
) -> None:  # type: ignore[no-untyped-def]
    await sign_in(app, client, getattr(world, who))
    for path in refused:
        response = await client.get(path)
        assert response.status_code == 403, path
        assert is_html(response) and "You cannot open this page" in response.text


async def test_a_lapsed_session_renews_itself_or_goes_to_sign_in(client) -> None:  # type: ignore[no-untyped-def]
    never = await client.get("/customer/loans?sort=principal")
    assert never.status_code == 303
    assert never.headers["location"] == "/login?next=/customer/loans%3Fsort%3Dprincipal"
    # A session cookie's CSRF twin is still there: the page renews the session and reloads.
    client.cookies.set("csrf_token", "from-an-expired-session")
    lapsed = await client.get("/customer")
    assert lapsed.status_code == 401 and "data-session-refresh" in lapsed.text
    # htmx asks: a bare 401 that app.js answers by renewing and sending the request again.
    partial = await client.get("/customer", headers={"HX-Request": "true"})
    assert partial.status_code == 401 and partial.text == ""


async def test_errors_are_pages_on_pages_and_json_under_the_api(app, client, world) -> None:  # type: ignore[no-untyped-def]
    await sign_in(app, client, world.customer_user_a)
    missing = await client.get(f"/customer/loans/{uuid.uuid4()}")
    assert missing.status_code == 404 and is_html(missing) and "Page not found" in missing.text
    bad = await client.get("/customer/loans/not-an-id")
    assert bad.status_code == 422 and is_html(bad)
    browser = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
    nowhere = await client.get("/no/such/page", headers=browser)
    assert nowhere.status_code == 404 and is_html(nowhere)
    # An API client's unknown address stays JSON, even outside /api.
    assert (await client.get("/no/such/page")).json()["error"]["code"] == "not_found"
    api = await client.get(f"/api/loans/{uuid.uuid4()}")
    assert api.status_code == 404 and api.json()["error"]["code"] == "not_found"
    api_unknown = await client.get("/api/nothing-here", headers=browser)
    assert api_unknown.headers["content-type"] == "application/json"


async def test_a_forced_password_change_comes_first(app, client, world) -> None:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        user = await session.get(User, world.customer_user_a.id)
        assert user is not None
        user.must_change_password = True
    csrf = await sign_in(app, client, world.customer_user_a)
    sent = await client.get("/customer")
    assert sent.status_code == 303 and sent.headers["location"] == "/password"
    page = await client.get("/password")
    assert page.status_code == 200 and "Please choose a new password" in page.text
    mismatch = await client.post(
        "/password",
        data={
            "csrf_token": csrf,
            "current_password": PASSWORD,
            "new_password": "a much longer passphrase",
            "new_password_again": "something else entirely",
        },
    )
    assert mismatch.status_code == 422 and 'id="f-new_password_again-error"' in mismatch.text
    wrong = await client.post(
        "/password",
        data={
            "csrf_token": csrf,
            "current_password": "not it at all",
            "new_password": "a much longer passphrase",
            "new_password_again": "a much longer passphrase",
        },
    )
    assert wrong.status_code == 422
    assert 'id="f-current_password-error"' in wrong.text
    assert "The current password is wrong" in wrong.text
    changed = await client.post(
        "/password",
        data={
            "csrf_token": csrf,
            "current_password": PASSWORD,
            "new_password": "a much longer passphrase",
            "new_password_again": "a much longer passphrase",
        },
    )
    assert changed.status_code == 303 and changed.headers["location"] == "/login?done=password"
    client.cookies.clear()
    again = await login_form(client, world.customer_user_a.email, "a much longer passphrase")
    assert again.headers["location"] == "/customer"


async def test_the_language_switch_saves_a_customers_choice(app, client, world) -> None:  # type: ignore[no-untyped-def]
    csrf = await sign_in(app, client, world.customer_user_a)
    switched = await client.post(
        "/language", data={"csrf_token": csrf, "lang": "kn", "next": "/customer/payments"}
    )
    assert switched.status_code == 303 and switched.headers["location"] == "/customer/payments"
    async with transaction(app.state.db) as session:
        saved = await session.scalar(
            select(Customer.preferred_language).where(Customer.id == world.customer_a.id)
        )
    assert saved == "kn"  # the language of their messages too
    client.cookies.delete("lang")
    page = await client.get("/customer/payments", headers={"Accept-Language": "en"})
    assert '<html lang="kn">' in page.text and "ಪಾವತಿಗಳು" in page.text
    assert "Payments" not in page.text
    refused = await client.post("/language", data={"lang": "en", "next": "/customer"})
    assert refused.status_code == 403


# --- the customer's portal -----------------------------------------------------------------------


@pytest.fixture
async def portal_loan(app, client, world, bearer, product, customer) -> str:  # type: ignore[no-untyped-def]
    """Customer A's active loan (100000 at 12 % over 12 months, installment 1 due today) with
    one payment of 5000.00."""
    loan_id = await make_loan(app, client, bearer, world, product)
    paid = await collect(client, await bearer(world.agent_a), loan_id, "5000.00")
    assert paid.status_code == 201, paid.text
    return loan_id


async def test_the_customer_dashboard_shows_the_services_figures_formatted(  # type: ignore[no-untyped-def]
    app, client, world, bearer, portal_loan
) -> None:
    api = (await client.get("/api/dashboard", headers=await bearer(world.customer_user_a))).json()
    totals = api["totals"]
    await sign_in(app, client, world.customer_user_a)
    page = await client.get("/customer")
    assert page.status_code == 200
    html = page.text
    assert "₹1,00,000.00" in html  # total borrowed, lakh grouping
    assert totals["total_paid"] == "5000.00" and "₹5,000.00" in html
    # 100000 + 6618.53 interest - 5000 paid (1000.00 interest first, then 4000.00 principal)
    assert totals["outstanding"] == "101618.53" and "₹1,01,618.53" in html
    assert totals["outstanding_principal"] == "96000.00" and "₹96,000.00" in html
    assert api["next_due"] is not None and 'id="next-due"' in html
    assert len(api["upcoming_installments"]) == 6
    assert html.count("/customer/loans/" + portal_loan + "?tab=schedule") == 6
    # The chart and its table of the same numbers.
    assert 'role="img"' in html and 'class="grid chart-table"' in html


async def test_the_loan_page_tabs_show_schedule_states_payments_and_charges(  # type: ignore[no-untyped-def]
    app, client, world, portal_loan
) -> None:
    await sign_in(app, client, world.customer_user_a)
    summary = await client.get(f"/customer/loans/{portal_loan}")
    assert summary.status_code == 200 and 'id="loan-summary"' in summary.text
    schedule = await client.get(f"/customer/loans/{portal_loan}?tab=schedule")
    rows = re.findall(r'<tr class="installment-(\w+)">', schedule.text)
    assert len(rows) == 12
    assert rows[0] == "partly_paid" and set(rows[1:]) == {"due"}  # 5000 of 8884.88 paid
    assert "₹8,884.88" in schedule.text
    payments = await client.get(f"/customer/loans/{portal_loan}?tab=payments")
    assert "₹5,000.00" in payments.text and "/receipt" in payments.text
    charges = await client.get(f"/customer/loans/{portal_loan}?tab=charges")
    assert 'id="tab"' in charges.text
    # htmx asks for one tab: only that part of the page comes back.
    part = await client.get(
        f"/customer/loans/{portal_loan}?tab=schedule", headers={"HX-Request": "true"}
    )
    assert part.status_code == 200
    assert part.text.lstrip().startswith('<div id="tab">') and "<html" not in part.text
    payments_part = await client.get(
        f"/customer/loans/{portal_loan}?tab=payments", headers={"HX-Request": "true"}
    )
    assert payments_part.status_code == 200 and 'id="loan-payments"' in payments_part.text
    kfs = await client.get(f"/loans/{portal_loan}/kfs")
    assert kfs.status_code == 200 and 'id="kfs-schedule"' in kfs.text
    assert "₹1,06,618.53" in kfs.text  # total to repay: 100000 + 6618.53 interest


async def test_another_customers_loan_is_a_404_page(app, client, world, portal_loan) -> None:  # type: ignore[no-untyped-def]
    await sign_in(app, client, world.customer_user_b)
    for path in (
        f"/customer/loans/{portal_loan}",
        f"/customer/loans/{portal_loan}?tab=schedule",
        f"/loans/{portal_loan}/kfs",
    ):
        response = await client.get(path)
        assert response.status_code == 404 and is_html(response), path
    mine = await client.get("/customer/loans")
    assert portal_loan not in mine.text


async def test_the_portal_in_kannada(app, client, world, portal_loan) -> None:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        row = await session.get(Customer, world.customer_a.id)
        assert row is not None
        row.preferred_language = "kn"
    await sign_in(app, client, world.customer_user_a)
    for path in ("/customer", "/customer/loans", f"/customer/loans/{portal_loan}?tab=schedule"):
        page = await client.get(path)
        assert '<html lang="kn">' in page.text, path
        assert "₹1,00,000.00" in page.text or "₹8,884.88" in page.text
    schedule = await client.get(f"/customer/loans/{portal_loan}?tab=schedule")
    assert "ಭಾಗಶಃ ಪಾವತಿಯಾಗಿದೆ" in schedule.text  # partly paid


async def test_the_loans_table_sorts_and_pages_on_the_server(  # type: ignore[no-untyped-def]
    app, client, world, portal_loan
) -> None:
    await clone_loans(app, portal_loan, 24)
    await sign_in(app, client, world.customer_user_a)
    first = await client.get("/customer/loans?sort=number&dir=asc")
    numbers = re.findall(r'<a href="/customer/loans/[0-9a-f-]+">([^<]+)</a>', first.text)
    assert len(numbers) == 20 and numbers == sorted(numbers)
    assert 'aria-sort="ascending"' in first.text
    following = re.search(r'href="(/customer/loans\?[^"]*after=[^"]+)"', first.text)
    assert following
    second = await client.get(following.group(1).replace("&amp;", "&"))
    rest = re.findall(r'<a href="/customer/loans/[0-9a-f-]+">([^<]+)</a>', second.text)
    assert (
        len(rest) == 5 and rest[0] > numbers[-1] and "after=" not in second.text.split("pager")[-1]
    )
    bad = await client.get("/customer/loans?sort=number&after=not-a-cursor")
    assert bad.status_code == 422 and is_html(bad)


async def test_a_statement_is_asked_for_with_the_form_and_the_month_checked(  # type: ignore[no-untyped-def]
    app, client, world, portal_loan
) -> None:
    csrf = await sign_in(app, client, world.customer_user_a)
    future = await client.post(
        "/customer/statements", data={"csrf_token": csrf, "month": "2999-01"}
    )
    assert future.status_code == 422 and 'value="2999-01"' in future.text
    assert 'id="f-month-error"' in future.text
    malformed = await client.post(
        "/customer/statements", data={"csrf_token": csrf, "month": "January"}
    )
    assert malformed.status_code == 422 and 'id="f-month-error"' in malformed.text
    from namma.kit.clock import today_india

    month = today_india().strftime("%Y-%m")
    asked = await client.post("/customer/statements", data={"csrf_token": csrf, "month": month})
    assert asked.status_code == 303
    document = await client.get(asked.headers["location"])
    assert document.status_code == 200 and 'hx-trigger="every 2s"' in document.text
    no_token = await client.post("/customer/statements", data={"month": month})
    assert no_token.status_code == 403


# --- statements per page -------------------------------------------------------------------------


async def clone_loans(app, loan_id: str, copies: int) -> None:  # type: ignore[no-untyped-def]
    """``copies`` more loans of the same customer like ``loan_id``, with their terms and
    installments."""
    loan_columns = [c.name for c in Loan.__table__.columns]
    installment_columns = [c.name for c in LoanInstallment.__table__.columns]
    async with transaction(app.state.db) as session:
        for k in range(copies):
            new_id = uuid.uuid4()

            def pick(column: str, new: uuid.UUID = new_id, n: int = k) -> str:
                if column == "id":
                    return f"'{new}'::uuid"
                if column == "loan_number":
                    return f"loan_number || '-C{n:03d}'"
                return column

            await session.execute(
                text(
                    f"INSERT INTO loans ({', '.join(loan_columns)}) "
                    f"SELECT {', '.join(pick(c) for c in loan_columns)} FROM loans WHERE id = :id"
                ),
                {"id": loan_id},
            )
            await session.execute(
                text(
                    "INSERT INTO loan_terms (loan_id, terms) "
                    "SELECT CAST(:new AS uuid), terms FROM loan_terms WHERE loan_id = :id"
                ),
                {"id": loan_id, "new": str(new_id)},
            )

            def pick_row(column: str, new: uuid.UUID = new_id) -> str:
                if column == "id":
                    return "gen_random_uuid()"
                if column == "loan_id":
                    return f"'{new}'::uuid"
                return column

            await session.execute(
                text(
                    f"INSERT INTO loan_installments ({', '.join(installment_columns)}) "
                    f"SELECT {', '.join(pick_row(c) for c in installment_columns)} "
                    "FROM loan_installments WHERE loan_id = :id"
                ),
                {"id": loan_id},
            )


async def statements_of(app, client, path: str) -> int:  # type: ignore[no-untyped-def]
    """SQL statements (through SQLAlchemy) one request for ``path`` sends, caches emptied."""
    await app.state.cache.delete_pattern("*")
    count = 0

    def counted(*_: Any) -> None:
        nonlocal count
        count += 1

    engine = app.state.db.engine.sync_engine
    event.listen(engine, "before_cursor_execute", counted)
    try:
        response = await client.get(path)
    finally:
        event.remove(engine, "before_cursor_execute", counted)
    assert response.status_code == 200, (path, response.status_code)
    return count


async def test_no_portal_page_sends_more_statements_as_its_rows_grow(  # type: ignore[no-untyped-def]
    app, client, world, bearer, portal_loan
) -> None:
    await sign_in(app, client, world.customer_user_a)
    pages = [
        "/customer",
        "/customer/loans",
        "/customer/loans?sort=outstanding&dir=asc",
        f"/customer/loans/{portal_loan}",
        f"/customer/loans/{portal_loan}?tab=schedule",
        f"/customer/loans/{portal_loan}?tab=payments",
        f"/customer/loans/{portal_loan}?tab=charges",
        "/customer/payments",
        "/customer/documents",
        "/customer/profile",
        f"/loans/{portal_loan}/kfs",
    ]
    for path in pages:  # warm up (the schedule written, templates compiled)
        await statements_of(app, client, path)
    one = {path: await statements_of(app, client, path) for path in pages}
    await clone_loans(app, portal_loan, 49)
    agent = await bearer(world.agent_a)
    for _ in range(24):  # 25 payments
        assert (await collect(client, agent, portal_loan, "100.00")).status_code == 201
    fifty = {path: await statements_of(app, client, path) for path in pages}
    assert fifty == one
    assert (await client.get("/customer/loans")).text.count("/customer/loans/") >= 20


# --- the confirmation step of money actions -------------------------------------------------------


async def test_a_money_form_acts_only_after_its_confirmation_step(app, client, world) -> None:  # type: ignore[no-untyped-def]
    """The mechanism (forms.Form.confirmed and the `confirm` macro) on a route made here."""

    class PaymentIn(BaseModel):
        amount: Money

    acted: list[Any] = []
    router = APIRouter()

    @router.post("/test-only/pay")
    async def pay(
        request: Request,
        viewer: Annotated[Viewer, Depends(viewer_of(Permission.SELF, limit="writes"))],
    ) -> Response:
        form = await form_parse(request, PaymentIn)
        if form.ok and form.data is not None and form.confirmed:
            acted.append(form.data.amount)
            return RedirectResponse("/customer", status_code=303)
        if form.ok and form.data is not None and not form.editing:
            page = environment.from_string(
                '{% from "macros/forms.html" import confirm with context %}'
                '{{ confirm(form, "/test-only/pay", [("Amount", amount | money)], "Pay", "Pay?") }}'
            ).render(form=form, amount=form.data.amount, csrf_token=viewer.csrf_token)
            return HTMLResponse(page)
        return HTMLResponse(str(form.errors), status_code=422)

    app.include_router(router)
    csrf = await sign_in(app, client, world.customer_user_a)
    first = await client.post("/test-only/pay", data={"csrf_token": csrf, "amount": "1500.50"})
    assert first.status_code == 200 and acted == []
    assert "₹1,500.50" in first.text
    assert '<input type="hidden" name="amount" value="1500.50">' in first.text
    assert '<input type="hidden" name="confirmed" value="yes">' in first.text
    assert '<input type="hidden" name="edit" value="yes">' in first.text
    edit = await client.post(
        "/test-only/pay", data={"csrf_token": csrf, "amount": "1500.50", "edit": "yes"}
    )
    assert edit.status_code == 422 and acted == []  # back to the form, nothing done
    bad = await client.post("/test-only/pay", data={"csrf_token": csrf, "amount": "lots"})
    assert bad.status_code == 422 and "amount" in bad.text and acted == []
    done = await client.post(
        "/test-only/pay", data={"csrf_token": csrf, "amount": "1500.50", "confirmed": "yes"}
    )
    assert done.status_code == 303
    assert acted == [Decimal("1500.50")]
    forged = await client.post("/test-only/pay", data={"amount": "1.00", "confirmed": "yes"})
    assert forged.status_code == 403 and acted == [Decimal("1500.50")]
