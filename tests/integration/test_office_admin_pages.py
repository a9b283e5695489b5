"""The back office's work pages (issue 18): branches, staff and permissions, customers and their
agents, products and their versions, capital. Each through HTTP against real PostgreSQL: the
page answers, shows the services' figures, keeps to the viewer's scope (a Manager never sees
another branch's staff or customers; a foreign id is the 404 page), and a bad form answers its
errors by field and changes nothing."""

from __future__ import annotations

import csv
import io
import re
import uuid
from decimal import Decimal

from sqlalchemy import func, select

from namma.kit.db import transaction
from namma.models import AgentAssignment, Branch, User
from tests.integration.test_pages import csrf_of, is_html, sign_in


async def _count(app, model, *where) -> int:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)))


# --- branches ------------------------------------------------------------------------------------


async def test_the_admin_lists_creates_and_edits_branches(app, client, world) -> None:  # type: ignore[no-untyped-def]
    await sign_in(app, client, world.admin)
    page = await client.get("/office/branches")
    assert page.status_code == 200 and is_html(page)
    for code in ("HO", "BLR01", "MYS01"):
        assert f">{code}</a>" in page.text
    found = await client.get("/office/branches?q=mys")
    assert "MYS01" in found.text and "BLR01" not in found.text
    download = await client.get("/office/branches?format=csv&sort=code&dir=asc")
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert rows[0][:2] == ["code", "name"] and [r[0] for r in rows[1:]] == ["BLR01", "HO", "MYS01"]

    form = await client.get("/office/branches/new")
    token = csrf_of(form.text)
    bad = await client.post(
        "/office/branches/new", data={"csrf_token": token, "code": "x", "name": ""}
    )
    assert bad.status_code == 422
    assert 'id="f-code-error"' in bad.text and 'id="f-name-error"' in bad.text
    assert await _count(app, Branch) == 3
    taken = await client.post(
        "/office/branches/new", data={"csrf_token": token, "code": "blr01", "name": "Again"}
    )
    assert taken.status_code == 422 and "already used" in taken.text
    assert await _count(app, Branch) == 3
    made = await client.post(
        "/office/branches/new", data={"csrf_token": token, "code": "tmk01", "name": "Tumakuru"}
    )
    assert made.status_code == 303
    detail = await client.get(made.headers["location"])
    assert detail.status_code == 200 and "TMK01 · Tumakuru" in detail.text

    edit_url = made.headers["location"] + "/edit"
    edit = await client.get(edit_url)
    assert 'value="Tumakuru"' in edit.text and 'name="is_active" value="yes" checked' in edit.text
    saved = await client.post(
        edit_url, data={"csrf_token": token, "name": "Tumakuru Town", "is_active": "yes"}
    )
    assert saved.status_code == 303
    assert "Tumakuru Town" in (await client.get(saved.headers["location"])).text
    # A branch with active staff cannot be closed: the reason by the field, nothing changed.
    refused = await client.post(
        f"/office/branches/{world.branch_a.id}/edit",
        data={"csrf_token": token, "name": "Renamed"},
    )
    assert refused.status_code == 422 and 'id="f-is_active-error"' in refused.text
    async with transaction(app.state.db) as session:
        branch_a = await session.get(Branch, world.branch_a.id)
        assert branch_a is not None and branch_a.name == "Bengaluru East" and branch_a.is_active


async def test_branches_are_for_the_admin_only(app, client, world) -> None:  # type: ignore[no-untyped-def]
    await sign_in(app, client, world.manager_a)
    assert (await client.get("/office/branches")).status_code == 403
    assert (await client.get(f"/office/branches/{world.branch_a.id}")).status_code == 403


# --- staff ---------------------------------------------------------------------------------------


async def test_the_staff_list_is_scoped_and_filtered(app, client, world) -> None:  # type: ignore[no-untyped-def]
    await sign_in(app, client, world.manager_a)
    page = await client.get("/office/staff")
    assert page.status_code == 200
    assert "Arun Agent" in page.text and "Anita Agent" in page.text
    assert "Bala Agent" not in page.text and "Meena Manager" not in page.text
    assert "Kamala Customer" not in page.text  # customers are not staff
    # Another branch's staff member is the 404 page.
    foreign = await client.get(f"/office/staff/{world.agent_b.id}")
    assert foreign.status_code == 404 and is_html(foreign)
    await sign_in(app, client, world.admin)
    everyone = await client.get("/office/staff?role=agent&sort=name&dir=asc")
    names = re.findall(r'href="/office/staff/[0-9a-f-]+">([^<]+)</a>', everyone.text)
    assert names == ["Anita Agent", "Arun Agent", "Bala Agent"]
    branch_b = await client.get(f"/office/staff?branch_id={world.branch_b.id}")
    assert "Bala Agent" in branch_b.text and "Arun Agent" not in branch_b.text
    download = await client.get("/office/staff?format=csv&role=manager")
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert sorted(r[0] for r in rows[1:]) == ["Manoj Manager", "Meena Manager"]


async def test_a_new_agent_must_change_the_password_at_first_sign_in(app, client, world) -> None:  # type: ignore[no-untyped-def]
    await sign_in(app, client, world.admin)
    form = await client.get("/office/staff/new")
    token = csrf_of(form.text)
    bad = await client.post(
        "/office/staff/new",
        data={"csrf_token": token, "name": "", "role": "agent", "password": "x"},
    )
    assert bad.status_code == 422 and 'id="f-name-error"' in bad.text
    before = await _count(app, User)
    no_branch = await client.post(
        "/office/staff/new",
        data={
            "csrf_token": token,
            "name": "Ravi Agent",
            "role": "agent",
            "email": "ravi@example.com",
            "password": "a long temporary secret 42",
        },
    )
    assert no_branch.status_code == 422 and 'id="f-branch_id-error"' in no_branch.text
    assert await _count(app, User) == before
    made = await client.post(
        "/office/staff/new",
        data={
            "csrf_token": token,
            "name": "Ravi Agent",
            "role": "agent",
            "branch_id": str(world.branch_a.id),
            "email": "ravi@example.com",
            "password": "a long temporary secret 42",
        },
    )
    assert made.status_code == 303
    detail = await client.get(made.headers["location"])
    assert "Ravi Agent" in detail.text and "must choose their own password" in detail.text
    async with transaction(app.state.db) as session:
        ravi = await session.scalar(select(User).where(User.email == "ravi@example.com"))
        assert ravi is not None and ravi.must_change_password and ravi.role.value == "agent"


async def test_a_manager_creates_agents_of_the_branch_only(app, client, world) -> None:  # type: ignore[no-untyped-def]
    await sign_in(app, client, world.manager_a)
    form = await client.get("/office/staff/new")
    assert 'name="role"' not in form.text  # a manager creates agents only
    made = await client.post(
        "/office/staff/new",
        data={
            "csrf_token": csrf_of(form.text),
            "name": "Suma Agent",
            "role": "admin",  # ignored: the page makes it an agent of the manager's branch
            "branch_id": str(world.branch_b.id),
            "phone": "9876543210",
            "password": "a long temporary secret 42",
        },
    )
    assert made.status_code == 303
    async with transaction(app.state.db) as session:
        suma = await session.scalar(select(User).where(User.phone == "9876543210"))
        assert suma is not None and suma.role.value == "agent"
        assert suma.branch_id == world.branch_a.id


async def test_deactivating_an_agent_moves_their_customers_in_the_same_step(
    app, client, world
) -> None:  # type: ignore[no-untyped-def]
    await sign_in(app, client, world.manager_a)
    page = await client.get(f"/office/staff/{world.agent_a.id}")
    assert page.status_code == 200 and "Who takes over their 1 customer" in page.text
    token = csrf_of(page.text)
    # Without a successor: refused by the field, the agent still active and still serving.
    refused = await client.post(
        f"/office/staff/{world.agent_a.id}/deactivate", data={"csrf_token": token}
    )
    assert refused.status_code == 422 and 'id="f-to_agent_id-error"' in refused.text
    # A successor of another branch: refused, nothing changed.
    other = await client.post(
        f"/office/staff/{world.agent_a.id}/deactivate",
        data={"csrf_token": token, "to_agent_id": str(world.agent_b.id)},
    )
    assert other.status_code == 422
    async with transaction(app.state.db) as session:
        arun = await session.get(User, world.agent_a.id)
        assert arun is not None and arun.is_active
    assert (
        await _count(
            app,
            AgentAssignment,
            AgentAssignment.agent_id == world.agent_a.id,
            AgentAssignment.ended_at.is_(None),
        )
        == 1
    )
    done = await client.post(
        f"/office/staff/{world.agent_a.id}/deactivate",
        data={"csrf_token": token, "to_agent_id": str(world.agent_a2.id), "reason": "Left"},
    )
    assert done.status_code == 303
    async with transaction(app.state.db) as session:
        arun = await session.get(User, world.agent_a.id)
        assert arun is not None and not arun.is_active
        current = await session.scalar(
            select(AgentAssignment.agent_id)
            .where(AgentAssignment.customer_id == world.customer_a.id)
            .where(AgentAssignment.ended_at.is_(None))
        )
        assert current == world.agent_a2.id
    after = await client.get(f"/office/staff/{world.agent_a.id}")
    assert 'action="/office/staff/' in after.text and "/reactivate" in after.text
    # A manager cannot act on another manager: the page says why, and offers no button.
    await sign_in(app, client, world.admin)
    admin_view = await client.get(f"/office/staff/{world.manager_a.id}")
    assert "/deactivate" in admin_view.text
    await sign_in(app, client, world.manager_a)
    own = await client.get(f"/office/staff/{world.manager_a.id}")
    assert "/deactivate" not in own.text and "This is you" in own.text


async def test_the_admin_grants_permissions_and_resets_two_factor(app, client, world) -> None:  # type: ignore[no-untyped-def]
    await sign_in(app, client, world.admin)
    page = await client.get(f"/office/staff/{world.manager_a.id}")
    assert 'value="collection:reverse"' in page.text
    # No authenticator: the reset button is there, disabled, with the reason.
    assert "Nothing to reset" in page.text and "disabled" in page.text
    token = csrf_of(page.text)
    bad = await client.post(
        f"/office/staff/{world.manager_a.id}/permissions",
        data={"csrf_token": token, "permissions": ["staff:grant"]},
    )
    assert bad.status_code == 422 and "Not grantable" in bad.text
    ok = await client.post(
        f"/office/staff/{world.manager_a.id}/permissions",
        data={"csrf_token": token, "permissions": ["collection:reverse", "audit:read"]},
    )
    assert ok.status_code == 303
    shown = await client.get(f"/office/staff/{world.manager_a.id}")
    assert "Reverse collections" in shown.text and "Read the audit log" in shown.text
    # An agent: nothing grantable, said so.
    agent = await client.get(f"/office/staff/{world.agent_a.id}")
    assert "Nothing can be granted to this role" in agent.text

    async with transaction(app.state.db) as session:
        manoj = await session.get(User, world.manager_a.id)
        assert manoj is not None
        manoj.totp_secret_encrypted = "x"
        manoj.totp_enabled_at = func.now()
    reset = await client.post(
        f"/office/staff/{world.manager_a.id}/totp-reset", data={"csrf_token": token}
    )
    assert reset.status_code == 303
    async with transaction(app.state.db) as session:
        manoj = await session.get(User, world.manager_a.id)
        assert manoj is not None and manoj.totp_secret_encrypted is None
        assert manoj.totp_enabled_at is None
    # A manager has no grants form and cannot post one.
    await sign_in(app, client, world.manager_a)
    agent = await client.get(f"/office/staff/{world.agent_a.id}")
    assert "/permissions" not in agent.text and "/totp-reset" not in agent.text
    refused = await client.post(
        f"/office/staff/{world.agent_a.id}/permissions", data={"csrf_token": csrf_of(agent.text)}
    )
    assert refused.status_code == 403


# --- customers -----------------------------------------------------------------------------------


async def test_the_customer_list_is_scoped_searchable_and_downloadable(app, client, world) -> None:  # type: ignore[no-untyped-def]
    await sign_in(app, client, world.manager_a)
    page = await client.get("/office/customers")
    assert page.status_code == 200
    assert "Kamala Customer" in page.text and "Latha Customer" not in page.text
    assert (await client.get(f"/office/customers/{world.customer_b.id}")).status_code == 404
    searched = await client.get("/office/customers?q=9100000001")
    assert "Kamala Customer" in searched.text
    none = await client.get("/office/customers?q=latha")
    assert "No customer matches." in none.text
    download = await client.get("/office/customers?format=csv")
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert [r[0] for r in rows[1:]] == ["Kamala Customer"] and rows[1][3] == "Arun Agent"
    await sign_in(app, client, world.admin)
    both = await client.get("/office/customers?sort=name&dir=asc")
    assert "Kamala Customer" in both.text and "Latha Customer" in both.text
    by_agent = await client.get(f"/office/customers?agent_id={world.agent_b.id}")
    assert "Latha Customer" in by_agent.text and "Kamala Customer" not in by_agent.text


async def test_a_customer_page_shows_kyc_history_loans_and_moves_the_customer(
    app, client, world
) -> None:  # type: ignore[no-untyped-def]
    await sign_in(app, client, world.manager_a)
    page = await client.get(f"/office/customers/{world.customer_a.id}")
    assert page.status_code == 200
    assert "KYC pending" in page.text and "Arun Agent" in page.text
    assert 'id="assignment-history"' in page.text and "No loans yet." in page.text
    token = csrf_of(page.text)
    foreign = await client.post(
        f"/office/customers/{world.customer_a.id}/agent",
        data={"csrf_token": token, "agent_id": str(world.agent_b.id)},
    )
    assert foreign.status_code == 422 and 'id="f-agent_id-error"' in foreign.text
    moved = await client.post(
        f"/office/customers/{world.customer_a.id}/agent",
        data={"csrf_token": token, "agent_id": str(world.agent_a2.id), "reason": "Closer"},
    )
    assert moved.status_code == 303
    after = await client.get(f"/office/customers/{world.customer_a.id}")
    history = after.text.split('id="assignment-history"')[1]
    assert history.index("Anita Agent") < history.index("Arun Agent") and "Closer" in history
    # Another branch's customer cannot be moved by this manager: 404.
    other = await client.post(
        f"/office/customers/{world.customer_b.id}/agent",
        data={"csrf_token": token, "agent_id": str(world.agent_a2.id)},
    )
    assert other.status_code == 404


async def test_many_customers_move_at_once_or_none_does(app, client, world) -> None:  # type: ignore[no-untyped-def]
    await sign_in(app, client, world.admin)
    page = await client.get("/office/customers")
    token = csrf_of(page.text)
    # Kamala (branch A) and Latha (branch B) to an agent of branch A: refused as a whole.
    mixed = await client.post(
        "/office/customers/reassign",
        data={
            "csrf_token": token,
            "customer_ids": [str(world.customer_a.id), str(world.customer_b.id)],
            "agent_id": str(world.agent_a2.id),
        },
    )
    assert mixed.status_code == 422 and 'id="form-errors"' in mixed.text
    assert "/office/customers/reassign?" not in mixed.text  # sort and CSV links go to the list
    assert f'value="{world.customer_a.id}" id="pick-{world.customer_a.id}" ' in mixed.text
    async with transaction(app.state.db) as session:
        current = await session.scalar(
            select(AgentAssignment.agent_id)
            .where(AgentAssignment.customer_id == world.customer_a.id)
            .where(AgentAssignment.ended_at.is_(None))
        )
        assert current == world.agent_a.id
    none = await client.post(
        "/office/customers/reassign",
        data={"csrf_token": token, "agent_id": str(world.agent_a2.id)},
    )
    assert none.status_code == 422
    one = await client.post(
        "/office/customers/reassign",
        data={
            "csrf_token": token,
            "customer_ids": [str(world.customer_a.id)],
            "agent_id": str(world.agent_a2.id),
            "back": "/office/customers",
        },
    )
    assert one.status_code == 303 and one.headers["location"] == "/office/customers?moved=1"
    shown = await client.get(one.headers["location"])
    assert "Customers moved to their new agent: 1." in shown.text


# --- products ------------------------------------------------------------------------------------

PRODUCT_FORM = {
    "code": "jlg-52w",
    "name": "Joint liability, weekly",
    "frequency": "weekly",
    "interest_method": "declining",
    "amortization": "equal-installments",
    "processing_fee_percent": "1",
    "min_principal": "5000.00",
    "max_principal": "50000.00",
    "min_rate": "18",
    "default_rate": "24",
    "max_rate": "26",
    "min_installments": "26",
    "max_installments": "104",
    "microfinance": "yes",
}


async def _product_made(client) -> str:  # type: ignore[no-untyped-def]
    form = await client.get("/office/products/new")
    made = await client.post(
        "/office/products/new", data={"csrf_token": csrf_of(form.text), **PRODUCT_FORM}
    )
    assert made.status_code == 303, made.text
    return str(made.headers["location"])


async def test_the_admin_creates_a_product_and_previews_its_schedule(app, client, world) -> None:  # type: ignore[no-untyped-def]
    from namma.models import LoanProduct

    await sign_in(app, client, world.admin)
    form = await client.get("/office/products/new")
    token = csrf_of(form.text)
    bad = await client.post(
        "/office/products/new",
        data={"csrf_token": token, **PRODUCT_FORM, "min_principal": "abc", "max_rate": "10"},
    )
    assert bad.status_code == 422 and 'id="f-min_principal-error"' in bad.text
    assert await _count(app, LoanProduct) == 0
    wrong_rates = await client.post(
        "/office/products/new", data={"csrf_token": token, **PRODUCT_FORM, "max_rate": "10"}
    )
    assert wrong_rates.status_code == 422 and 'id="f-default_rate-error"' in wrong_rates.text
    assert await _count(app, LoanProduct) == 0

    url = await _product_made(client)
    page = await client.get(url)
    assert page.status_code == 200 and "JLG-52W · Joint liability, weekly" in page.text
    assert "₹5,000.00 – ₹50,000.00" in page.text and "Version 1 (current)" in page.text
    listed = await client.get("/office/products")
    assert "JLG-52W" in listed.text
    download = await client.get("/office/products?format=csv")
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert rows[1][:3] == ["JLG-52W", "Joint liability, weekly", "1"]
    assert rows[1][6:8] == ["5000.00", "50000.00"]

    # The preview, as htmx asks for it: only the part, figures from the money core.
    from namma.finance import generate_schedule
    from namma.kit.clock import today_india
    from namma.products.schemas import ProductTerms

    preview = await client.get(
        f"{url}/preview?principal=10000&annual_rate=24&installments=26",
        headers={"HX-Request": "true"},
    )
    assert preview.status_code == 200 and "<html" not in preview.text
    terms = ProductTerms.model_validate(
        {
            "frequency": "weekly",
            "fees": [
                {
                    "name": "Processing fee",
                    "timing": "disbursement",
                    "basis": "percent",
                    "value": "1",
                }
            ],
        }
    ).loan_terms(
        principal=Decimal("10000"), annual_rate=Decimal("24"), installments=26, microfinance=True
    )
    expected = generate_schedule(terms, disbursed_on=today_india())
    from namma.web.i18n import money

    assert money(expected.installment_amount) in preview.text
    assert money(expected.net_disbursement) == "₹9,900.00" and "₹9,900.00" in preview.text
    assert preview.text.count("<tr>") == 26 + 1
    outside = await client.get(
        f"{url}/preview?principal=100&annual_rate=24&installments=x",
        headers={"HX-Request": "true"},
    )
    assert outside.status_code == 422 and 'id="f-installments-error"' in outside.text
    limits = await client.get(
        f"{url}/preview?principal=100&annual_rate=24&installments=26",
        headers={"HX-Request": "true"},
    )
    assert limits.status_code == 422 and 'id="f-principal-error"' in limits.text


async def test_a_new_version_is_compared_side_by_side_before_it_is_made(app, client, world) -> None:  # type: ignore[no-untyped-def]
    from namma.models import LoanProductVersion

    await sign_in(app, client, world.admin)
    url = await _product_made(client)
    form = await client.get(f"{url}/versions/new")
    assert 'value="24"' in form.text and 'value="5000.00"' in form.text
    token = csrf_of(form.text)
    values = {k: v for k, v in PRODUCT_FORM.items() if k not in ("code", "name")}
    compare = await client.post(
        f"{url}/versions/new", data={"csrf_token": token, **values, "default_rate": "22"}
    )
    assert compare.status_code == 200 and 'id="version-diff"' in compare.text
    changed = [
        c.strip()
        for c in re.findall(r"<tr class=\"changed\">\s*<th scope=\"row\">([^<]+)", compare.text)
    ]
    assert changed == ["Usual rate"]
    assert await _count(app, LoanProductVersion) == 1  # nothing made yet
    bad = await client.post(
        f"{url}/versions/new",
        data={"csrf_token": token, **values, "min_installments": "0", "confirmed": "yes"},
    )
    assert bad.status_code == 422 and 'id="f-min_installments-error"' in bad.text
    made = await client.post(
        f"{url}/versions/new",
        data={"csrf_token": token, **values, "default_rate": "22", "confirmed": "yes"},
    )
    assert made.status_code == 303
    assert await _count(app, LoanProductVersion) == 2
    page = await client.get(url)
    assert "Version 2 (current)" in page.text and "usually 22 %" in page.text
    stop = await client.post(f"{url}/active", data={"csrf_token": token, "active": "no"})
    assert stop.status_code == 303
    assert "Offer it again" in (await client.get(url)).text
    inactive = await client.get("/office/products?active=no")
    assert "JLG-52W" in inactive.text
    assert "JLG-52W" not in (await client.get("/office/products?active=yes")).text
    await sign_in(app, client, world.manager_a)
    assert (await client.get("/office/products")).status_code == 403


# --- capital -------------------------------------------------------------------------------------


async def test_capital_records_an_investment_once_after_its_confirmation(
    app, client, world
) -> None:  # type: ignore[no-untyped-def]
    from namma.models import Investment

    await sign_in(app, client, world.admin)
    page = await client.get("/office/capital")
    assert page.status_code == 200 and "No investment recorded yet." in page.text
    form = await client.get("/office/capital/investments/new")
    token = csrf_of(form.text)
    bad = await client.post(
        "/office/capital/investments/new",
        data={"csrf_token": token, "amount": "-5", "source": "", "method": "bank"},
    )
    assert bad.status_code == 422
    assert 'id="f-amount-error"' in bad.text and 'id="f-source-error"' in bad.text
    data = {"csrf_token": token, "amount": "1000000", "source": "Founders", "method": "bank"}
    step = await client.post("/office/capital/investments/new", data=data)
    assert step.status_code == 200 and "Record this?" in step.text and "₹10,00,000.00" in step.text
    assert await _count(app, Investment) == 0
    key = re.search(r'name="idempotency_key" value="([^"]+)"', step.text)
    assert key is not None
    confirmed = {**data, "idempotency_key": key.group(1), "confirmed": "yes"}
    first = await client.post("/office/capital/investments/new", data=confirmed)
    again = await client.post("/office/capital/investments/new", data=confirmed)
    assert first.status_code == again.status_code == 303
    assert first.headers["location"] == again.headers["location"]
    assert await _count(app, Investment) == 1  # the repeated confirmation acted once
    page = await client.get("/office/capital")
    assert "₹10,00,000.00" in page.text and "Founders" in page.text
    download = await client.get("/office/capital?format=investments.csv")
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert rows[1][1:3] == ["Founders", "1000000.00"]


async def test_a_borrowing_its_schedule_and_a_repayment(app, client, world) -> None:  # type: ignore[no-untyped-def]
    from namma.capital.queries import borrowing_detail
    from namma.models import Borrowing, BorrowingRepayment

    await sign_in(app, client, world.admin)
    form = await client.get("/office/capital/borrowings/new")
    token = csrf_of(form.text)
    data = {
        "csrf_token": token,
        "lender_name": "District bank",
        "principal": "120000",
        "annual_rate": "12",
        "installments": "12",
        "frequency": "monthly",
        "interest_method": "declining",
        "amortization": "equal-installments",
        "method": "bank",
    }
    step = await client.post("/office/capital/borrowings/new", data=data)
    assert step.status_code == 200 and "Record this?" in step.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', step.text)
    assert key is not None
    made = await client.post(
        "/office/capital/borrowings/new",
        data={**data, "idempotency_key": key.group(1), "confirmed": "yes"},
    )
    assert made.status_code == 303
    url = made.headers["location"]
    page = await client.get(url)
    assert page.status_code == 200 and page.text.count("<tr>") >= 12
    async with transaction(app.state.db) as session:
        borrowing = await session.scalar(select(Borrowing))
        assert borrowing is not None
        detail = await borrowing_detail(session, borrowing.id)
    from namma.web.i18n import money

    assert money(detail.installment_amount) in page.text
    # Too much: refused by the field, nothing recorded.
    too_much = await client.post(
        f"{url}/repay",
        data={
            "csrf_token": token,
            "amount": "999999",
            "method": "bank",
            "idempotency_key": str(uuid.uuid4()),
            "confirmed": "yes",
        },
    )
    assert too_much.status_code == 422 and 'id="f-amount-error"' in too_much.text
    assert await _count(app, BorrowingRepayment) == 0
    amount = str(detail.installment_amount)
    step = await client.post(
        f"{url}/repay", data={"csrf_token": token, "amount": amount, "method": "bank"}
    )
    assert "Record this repayment?" in step.text
    key = re.search(r'name="idempotency_key" value="([^"]+)"', step.text)
    assert key is not None
    paid = await client.post(
        f"{url}/repay",
        data={
            "csrf_token": token,
            "amount": amount,
            "method": "bank",
            "idempotency_key": key.group(1),
            "confirmed": "yes",
        },
    )
    assert paid.status_code == 303
    assert await _count(app, BorrowingRepayment) == 1
    assert "No repayment yet." not in (await client.get(url)).text
    assert (await client.get(f"/office/capital/borrowings/{world.admin.id}")).status_code == 404
    await sign_in(app, client, world.manager_a)
    assert (await client.get("/office/capital")).status_code == 403


# --- who may see which page ----------------------------------------------------------------------

PAGES = {  # path: may a Manager see it (an Admin sees every one; agents and customers none)
    "/office/branches": False,
    "/office/branches/new": False,
    "/office/staff": True,
    "/office/staff/new": True,
    "/office/customers": True,
    "/office/products": False,
    "/office/products/new": False,
    "/office/capital": False,
    "/office/capital/investments/new": False,
    "/office/capital/borrowings/new": False,
}


async def test_every_office_page_answers_each_role_as_it_should(app, client, world) -> None:  # type: ignore[no-untyped-def]
    for path in PAGES:
        assert (await client.get(path)).status_code != 200, path  # signed out
    for who in ("admin", "manager_a", "agent_a", "customer_user_a"):
        await sign_in(app, client, getattr(world, who))
        for path, manager in PAGES.items():
            expected = {"admin": 200, "manager_a": 200 if manager else 403}.get(who, 403)
            response = await client.get(path)
            assert response.status_code == expected, (who, path, response.status_code)
            assert is_html(response)


async def test_no_office_list_sends_more_statements_as_its_rows_grow(app, client, world) -> None:  # type: ignore[no-untyped-def]
    from namma.models import Customer

    await sign_in(app, client, world.admin)
    pages = [
        "/office/branches",
        "/office/staff",
        "/office/customers",
        "/office/customers?sort=village&dir=asc",
        f"/office/customers/{world.customer_a.id}",
        f"/office/staff/{world.agent_a.id}",
    ]
    from tests.integration.test_pages import statements_of

    for path in pages:  # warm up
        await statements_of(app, client, path)
    few = {path: await statements_of(app, client, path) for path in pages}
    async with transaction(app.state.db) as session:
        for n in range(30):
            branch = Branch(code=f"X{n:02d}", name=f"Extra {n}")
            session.add(branch)
            await session.flush()
            agent = User(
                name=f"Extra Agent {n}",
                role=world.agent_a.role,
                branch_id=world.branch_a.id,
                email=f"extra{n}@example.com",
                password_hash=world.agent_a.password_hash,
            )
            person = Customer(
                branch_id=world.branch_a.id, name=f"Extra Customer {n}", phone=f"91000010{n:02d}"
            )
            session.add_all([agent, person])
            await session.flush()
            session.add(AgentAssignment(customer_id=person.id, agent_id=world.agent_a.id))
            session.add(
                AgentAssignment(
                    customer_id=world.customer_a.id,
                    agent_id=agent.id,
                    ended_at=func.now(),
                )
            )
    many = {path: await statements_of(app, client, path) for path in pages}
    assert many == few
