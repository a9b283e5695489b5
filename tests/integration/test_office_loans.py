"""The back office's loans and checker inbox through HTTP against real PostgreSQL: the list
(status, overdue, search by loan number, CSV), the loan page and its tabs, each action through
the API's services (maker-checker, confirmation step, idempotency key: a double submit posts
once), errors by field with nothing kept, and the Manager's branch scope (another branch's loan
is a 404 page)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text

from namma.kit.db import transaction
from namma.ledger.queries import ledger_check
from namma.loans.queries import STARTED_ON
from namma.loans.service import today_india
from namma.models import Collection, JournalEntry, Loan, LoanStatus, LoanWaiver
from tests.factories import loan_active
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    collect,
    customer,
    make_loan,
    product,
    settings,
)
from tests.integration.test_pages import csrf_of, sign_in

D = Decimal
HX = {"HX-Request": "true"}
KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


async def apply(client, bearer, who, product, customer_id, amount: str = "20000.00") -> str:  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/loans",
        json={
            "customer_id": str(customer_id),
            "product_id": product["id"],
            "amount": amount,
            "annual_rate": "12",
            "installments": 12,
        },
        headers=await bearer(who),
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def loan_row(app, loan_id: str) -> Loan:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None
        return loan


async def count(app, model, **where: Any) -> int:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        query = select(func.count()).select_from(model)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return int(await session.scalar(query) or 0)


async def ledger_ok(app) -> None:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        check = await ledger_check(session)
        assert check.ok, check.problems()


# --- the list ------------------------------------------------------------------------------------


async def test_the_loans_list_by_status_search_csv_and_scope(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    active = await make_loan(app, client, bearer, world, product)
    applied = await apply(client, bearer, world.agent_a, product, world.customer_a.id)
    number = (await loan_row(app, active)).loan_number
    await sign_in(app, client, world.manager_a)

    page = await client.get("/office/loans")
    assert page.status_code == 200 and 'id="loans"' in page.text
    assert number in page.text and (await loan_row(app, applied)).loan_number in page.text
    only_applied = await client.get("/office/loans", params={"status": "applied"})
    assert number not in only_applied.text
    assert (await loan_row(app, applied)).loan_number in only_applied.text
    overdue = await client.get("/office/loans", params={"overdue": "1"})
    assert overdue.status_code == 200 and 'aria-current="page">Overdue' in overdue.text
    # The loan number as a person types it (any case) finds the loan.
    found = await client.get("/office/loans", params={"q": number.lower()})
    assert number in found.text and (await loan_row(app, applied)).loan_number not in found.text
    none = await client.get("/office/loans", params={"q": "no such loan"})
    assert "No loans match." in none.text

    download = await client.get("/office/loans", params={"format": "csv", "status": "active"})
    assert download.status_code == 200
    assert download.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert rows[0][:4] == ["loan_number", "customer", "status", "principal"]
    assert [r[0] for r in rows[1:]] == [number]
    assert rows[1][3] == "100000.00"

    # The Admin filters by branch (another branch: none of these).
    await sign_in(app, client, world.admin)
    mine = await client.get("/office/loans", params={"branch": str(world.branch_a.id)})
    assert number in mine.text and 'id="f-branch"' in mine.text
    theirs = await client.get("/office/loans", params={"branch": str(world.branch_b.id)})
    assert number not in theirs.text

    # Another branch's manager sees none of it; the loan page is a 404 page.
    await sign_in(app, client, world.manager_b)
    other = await client.get("/office/loans")
    assert number not in other.text
    missing = await client.get(f"/office/loans/{active}")
    assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")
    # Nor can they act on it: every action answers the same 404 page, and nothing changes.
    csrf_b = await sign_in(app, client, world.manager_b)
    for action, data in (
        ("approve", {}),
        ("reject", {"reason": "x"}),
        ("waive", {"component": "interest", "amount": "1.00", "reason": "x"}),
        ("top-up", {"amount": "20000.00", "installments": "12"}),
    ):
        target = applied if action in ("approve", "reject") else active
        refused = await client.post(
            f"/office/loans/{target}/{action}", data={"csrf_token": csrf_b, **data}
        )
        assert refused.status_code == 404, (action, refused.status_code)
    inbox_refused = await client.post(
        f"/office/inbox/{applied}/approve", data={"csrf_token": csrf_b}, headers=HX
    )
    assert inbox_refused.status_code == 404
    assert (await loan_row(app, applied)).status is LoanStatus.APPLIED
    # Agents and customers are not back-office people.
    await sign_in(app, client, world.agent_a)
    assert (await client.get("/office/loans")).status_code == 403


async def test_a_loan_started_on_its_day_in_india_and_the_lists_order_by_the_index(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    """An application made at 01:30 in India (20:00 UTC the day before) started on the Indian
    day; and the lists' default order is read from ``ix_loans_started_on`` (the query's
    expression is the index's, else every page sorts every loan: 330 ms at 100,000 loans)."""
    applied = await apply(client, bearer, world.agent_a, product, world.customer_a.id)
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(applied))
        assert loan is not None
        loan.applied_at = dt.datetime(2026, 12, 7, 20, 0, tzinfo=dt.UTC)
        number = loan.loan_number
    await sign_in(app, client, world.manager_a)
    download = await client.get("/office/loans", params={"format": "csv", "status": "applied"})
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
    assert [(r[0], r[6]) for r in rows[1:]] == [(number, "2026-12-08")]

    newest_first = select(Loan.id).order_by(STARTED_ON.desc(), Loan.id.desc()).limit(21)
    async with transaction(app.state.db) as session:
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            (
                await session.execute(
                    text(
                        "EXPLAIN "
                        + str(newest_first.compile(compile_kwargs={"literal_binds": True}))
                    )
                )
            ).scalars()
        )
    assert "ix_loans_started_on" in plan and "Sort" not in plan, plan


async def test_the_loans_csv_runs_over_every_page(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    """The download reads the list page after page (500 rows each, D-170's flat rows): 501
    loans started the same day (the ties go by id) come out once each."""
    from tests.integration.test_pages import clone_loans

    active = await make_loan(app, client, bearer, world, product)
    await clone_loans(app, active, 500)
    await sign_in(app, client, world.manager_a)
    download = await client.get("/office/loans", params={"format": "csv", "status": "active"})
    assert download.status_code == 200
    rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))[1:]
    numbers = [r[0] for r in rows]
    assert len(numbers) == 501 and len(set(numbers)) == 501
    assert {r[3] for r in rows} == {"100000.00"}


async def test_the_loan_page_and_each_tab(app, client, world, bearer, product, customer) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    assert (await collect(client, agent, loan_id, "8884.88")).status_code == 201
    await sign_in(app, client, world.admin)
    page = await client.get(f"/office/loans/{loan_id}")
    assert page.status_code == 200
    assert "₹1,00,000.00" in page.text and 'id="loan-summary"' in page.text
    expected = {
        "schedule": ['id="schedule"', "₹8,884.88"],
        "collections": ['id="loan-collections"', "₹8,884.88"],
        "charges": ["Penalties owed"],
        "waivers": ["Nothing was waived on this loan."],
        "journal": ['id="journal"', "disbursement"],
        "documents": ["Key Facts Statement"],
        "audit": ['id="audit"', "loan.approved"],
    }
    for tab, needles in expected.items():
        full = await client.get(f"/office/loans/{loan_id}", params={"tab": tab})
        assert full.status_code == 200, (tab, full.text[:500])
        for needle in needles:
            assert needle in full.text, (tab, needle)
        # htmx asks for the tab only.
        part = await client.get(f"/office/loans/{loan_id}", params={"tab": tab}, headers=HX)
        assert part.status_code == 200 and part.text.lstrip().startswith('<div id="tab">')
        assert "<html" not in part.text
    # An active loan's actions: settle, waive, write off, top-up; no approve or disburse.
    assert 'id="action-preclose"' in page.text and 'id="action-approve"' not in page.text


# --- decisions: maker-checker ----------------------------------------------------------------


async def test_approve_and_reject_with_maker_checker(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    by_agent = await apply(client, bearer, world.agent_a, product, world.customer_a.id)
    by_manager = await apply(
        client, bearer, world.manager_a, product, world.customer_a.id, "15000.00"
    )
    csrf = await sign_in(app, client, world.manager_a)

    # The manager's own application: the button is disabled with the reason, and the service
    # refuses a forged post (nothing changes).
    own = await client.get(f"/office/loans/{by_manager}")
    assert re.search(
        r'<button type="button" class="button" disabled aria-describedby="why-approve">', own.text
    )
    assert "another officer must decide it" in own.text
    forged = await client.post(f"/office/loans/{by_manager}/approve", data={"csrf_token": csrf})
    assert forged.status_code == 422 and "another officer must decide it" in forged.text
    assert (await loan_row(app, by_manager)).status is LoanStatus.APPLIED

    # Reject without a reason: the error by its field, the loan untouched.
    empty = await client.post(
        f"/office/loans/{by_agent}/reject", data={"csrf_token": csrf, "reason": "  "}
    )
    assert empty.status_code == 422
    assert 'id="f-reason-error"' in empty.text and "Please fill this in." in empty.text
    assert (await loan_row(app, by_agent)).status is LoanStatus.APPLIED
    # Without the CSRF token: refused.
    assert (await client.post(f"/office/loans/{by_agent}/approve")).status_code == 403
    approved = await client.post(f"/office/loans/{by_agent}/approve", data={"csrf_token": csrf})
    assert approved.status_code == 303
    assert (await loan_row(app, by_agent)).status is LoanStatus.APPROVED
    # Approved: the page offers the disbursement, no decision.
    page = await client.get(f"/office/loans/{by_agent}")
    assert 'id="action-disburse"' in page.text and 'id="action-approve"' not in page.text
    # The admin decides the manager's application.
    admin_csrf = await sign_in(app, client, world.admin)
    rejected = await client.post(
        f"/office/loans/{by_manager}/reject",
        data={"csrf_token": admin_csrf, "reason": "Income not shown"},
    )
    assert rejected.status_code == 303
    loan = await loan_row(app, by_manager)
    assert loan.status is LoanStatus.REJECTED and loan.rejection_reason == "Income not shown"


# --- money actions: confirmation, idempotency --------------------------------------------------


async def test_disburse_confirms_then_posts_once_on_a_double_submit(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await apply(client, bearer, world.agent_a, product, world.customer_a.id)
    assert (
        await client.post(f"/api/loans/{loan_id}/approve", headers=await bearer(world.manager_a))
    ).status_code == 200
    await sign_in(app, client, world.manager_a)
    page = await client.get(f"/office/loans/{loan_id}")
    key = KEY.search(page.text)
    assert key is not None
    form = {
        "csrf_token": csrf_of(page.text),
        "idempotency_key": key.group(1),
        "disbursed_on": today_india().isoformat(),
        "method": "cash",
    }
    # A bad date: the error by its field, nothing posted.
    bad = await client.post(
        f"/office/loans/{loan_id}/disburse", data={**form, "disbursed_on": "31-31-2026"}
    )
    assert bad.status_code == 422 and 'id="f-disbursed_on-error"' in bad.text
    # The first post asks to confirm; nothing happens yet.
    confirm = await client.post(f"/office/loans/{loan_id}/disburse", data=form)
    assert confirm.status_code == 200 and 'id="confirm-title"' in confirm.text
    assert "Disburse this loan?" in confirm.text and "₹20,000.00" in confirm.text
    assert (await loan_row(app, loan_id)).status is LoanStatus.APPROVED
    # Confirmed twice (a double click): one disbursement, both sent to the schedule.
    first = await client.post(
        f"/office/loans/{loan_id}/disburse", data={**form, "confirmed": "yes"}
    )
    second = await client.post(
        f"/office/loans/{loan_id}/disburse", data={**form, "confirmed": "yes"}
    )
    assert first.status_code == second.status_code == 303, second.text
    assert first.headers["location"] == second.headers["location"]
    assert (await loan_row(app, loan_id)).status is LoanStatus.ACTIVE
    assert await count(app, JournalEntry, loan_id=uuid.UUID(loan_id), kind="loan.disbursement") == 1
    # A form without its key is refused.
    again = await client.post(
        f"/office/loans/{loan_id}/disburse",
        data={**form, "idempotency_key": "", "confirmed": "yes"},
    )
    assert again.status_code == 422
    await ledger_ok(app)


async def test_waive_settle_write_off_and_recover(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    csrf = await sign_in(app, client, world.manager_a)
    page = await client.get(f"/office/loans/{loan_id}")
    # The manager lacks the write-off permission: disabled with the reason.
    assert 'aria-describedby="why-write_off"' in page.text
    assert "Your role does not have this permission." in page.text

    # Waive: more than owed is refused by its field, nothing kept.
    key = str(uuid.uuid4())
    waive = {
        "csrf_token": csrf,
        "idempotency_key": key,
        "component": "interest",
        "reason": "hardship",
    }
    too_much = await client.post(
        f"/office/loans/{loan_id}/waive", data={**waive, "amount": "999999.00", "confirmed": "yes"}
    )
    assert too_much.status_code == 422 and "f-amount-error" in too_much.text
    assert await count(app, LoanWaiver, loan_id=uuid.UUID(loan_id)) == 0
    for _ in range(2):
        done = await client.post(
            f"/office/loans/{loan_id}/waive", data={**waive, "amount": "100.00", "confirmed": "yes"}
        )
        assert done.status_code == 303
    assert await count(app, LoanWaiver, loan_id=uuid.UUID(loan_id)) == 1

    # Pre-closure: the quote, then the settlement (posted once).
    settle = {"csrf_token": csrf, "idempotency_key": str(uuid.uuid4()), "method": "cash"}
    quote = await client.post(f"/office/loans/{loan_id}/preclose", data=settle)
    assert quote.status_code == 200 and "Total to settle today" in quote.text
    for _ in range(2):
        done = await client.post(
            f"/office/loans/{loan_id}/preclose", data={**settle, "confirmed": "yes"}
        )
        assert done.status_code == 303
    assert (await loan_row(app, loan_id)).status is LoanStatus.PRECLOSED
    assert await count(app, Collection, loan_id=uuid.UUID(loan_id)) == 1
    await ledger_ok(app)

    # Write-off and recovery, by the admin, on another active loan.
    other = await loan_active(
        app, client, bearer, product, customer_id=world.customer_a.id, agent=world.agent_a,
        manager=world.manager_a, amount="10000.00",
    )  # fmt: skip
    admin_csrf = await sign_in(app, client, world.admin)
    off = {"csrf_token": admin_csrf, "idempotency_key": str(uuid.uuid4()), "reason": "Moved away"}
    asked = await client.post(f"/office/loans/{other}/write-off", data=off)
    assert asked.status_code == 200 and "Write this loan off?" in asked.text
    done = await client.post(f"/office/loans/{other}/write-off", data={**off, "confirmed": "yes"})
    assert done.status_code == 303, done.text
    assert (await loan_row(app, other)).status is LoanStatus.WRITTEN_OFF
    page = await client.get(f"/office/loans/{other}")
    assert 'id="action-recover"' in page.text
    recover = {
        "csrf_token": admin_csrf, "idempotency_key": str(uuid.uuid4()), "amount": "500.00",
        "method": "cash", "confirmed": "yes",
    }  # fmt: skip
    for _ in range(2):
        done = await client.post(f"/office/loans/{other}/recover", data=recover)
        assert done.status_code == 303
    async with transaction(app.state.db) as session:
        recovered = await session.scalar(
            select(func.sum(Collection.recovery)).where(Collection.loan_id == uuid.UUID(other))
        )
    assert recovered == D("500.00")
    await ledger_ok(app)


async def test_top_up_makes_an_application_that_waits_for_a_checker(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product)
    csrf = await sign_in(app, client, world.manager_a)
    bad = await client.post(
        f"/office/loans/{loan_id}/top-up",
        data={"csrf_token": csrf, "amount": "x", "installments": "12"},
    )
    assert bad.status_code == 422 and "f-amount-error" in bad.text
    made = await client.post(
        f"/office/loans/{loan_id}/top-up",
        data={"csrf_token": csrf, "amount": "100000.00", "installments": "12"},
    )
    assert made.status_code == 303, made.text
    new_id = made.headers["location"].rsplit("/", 1)[1]
    new = await loan_row(app, new_id)
    assert new.status is LoanStatus.APPLIED and str(new.refinances_id) == loan_id
    page = await client.get(f"/office/loans/{new_id}")
    assert "another officer must decide it" in page.text


# --- the checker inbox ---------------------------------------------------------------------------


async def test_the_inbox_approves_and_rejects_in_place_and_in_bulk(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    first = await apply(client, bearer, world.agent_a, product, world.customer_a.id, "11000.00")
    second = await apply(client, bearer, world.agent_a, product, world.customer_a.id, "12000.00")
    third = await apply(client, bearer, world.agent_a, product, world.customer_a.id, "13000.00")
    mine = await apply(client, bearer, world.manager_a, product, world.customer_a.id, "14000.00")
    csrf = await sign_in(app, client, world.manager_a)
    inbox = await client.get("/office/inbox")
    assert inbox.status_code == 200
    numbers = [(await loan_row(app, x)).loan_number for x in (first, second, third, mine)]
    positions = [inbox.text.index(n) for n in numbers]
    assert positions == sorted(positions)  # oldest first
    # The manager's own application cannot be picked or approved here.
    assert f'value="{mine}" form="bulk-approve"' not in inbox.text
    assert f'value="{first}" form="bulk-approve"' in inbox.text

    # Approve in place (htmx): the row comes back saying so.
    row = await client.post(f"/office/inbox/{first}/approve", data={"csrf_token": csrf}, headers=HX)
    assert row.status_code == 200 and row.text.lstrip().startswith(f'<tr id="row-{first}">')
    assert "Approved" in row.text and "<html" not in row.text
    # Approved, it waits for its disbursement in the inbox.
    after = await client.get("/office/inbox")
    assert 'id="to-disburse"' in after.text
    assert numbers[0] in after.text.split('id="to-disburse"')[1]
    # Reject in place needs a reason: the error on the row, nothing changed.
    empty = await client.post(
        f"/office/inbox/{second}/reject", data={"csrf_token": csrf, "reason": ""}, headers=HX
    )
    assert empty.status_code == 422 and "Please fill this in." in empty.text
    assert (await loan_row(app, second)).status is LoanStatus.APPLIED
    rejected = await client.post(
        f"/office/inbox/{second}/reject",
        data={"csrf_token": csrf, "reason": "No income proof"},
        headers=HX,
    )
    assert rejected.status_code == 200 and "Rejected" in rejected.text
    assert (await loan_row(app, second)).status is LoanStatus.REJECTED

    # Bulk: one refused (the manager's own) → none approved, the refusal on its row.
    refused = await client.post(
        "/office/inbox/approve", data={"csrf_token": csrf, "loan_id": [third, mine]}
    )
    assert refused.status_code == 422
    assert (
        "Nothing was approved" in refused.text and "another officer must decide it" in refused.text
    )
    assert (await loan_row(app, third)).status is LoanStatus.APPLIED
    # Bulk of the allowed ones.
    fourth = await apply(client, bearer, world.agent_a, product, world.customer_a.id, "16000.00")
    bulk = await client.post(
        "/office/inbox/approve", data={"csrf_token": csrf, "loan_id": [third, fourth]}
    )
    assert bulk.status_code == 303 and bulk.headers["location"] == "/office/inbox?approved=2"
    for loan_id in (third, fourth):
        assert (await loan_row(app, loan_id)).status is LoanStatus.APPROVED
    # Another branch's manager sees none of these.
    await sign_in(app, client, world.manager_b)
    other = await client.get("/office/inbox")
    assert numbers[3] not in other.text


# --- statements per page ---------------------------------------------------------------------


async def test_no_back_office_page_sends_more_statements_as_its_rows_grow(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import text

    from tests.integration.test_pages import clone_loans, statements_of

    loan_id = await make_loan(app, client, bearer, world, product)
    agent = await bearer(world.agent_a)
    posted = await collect(client, agent, loan_id, "100.00")
    collection_id = posted.json()["collection"]["id"]
    applied = await apply(client, bearer, world.agent_a, product, world.customer_a.id)
    await sign_in(app, client, world.admin)
    pages = [
        "/office/loans",
        "/office/loans?status=active&sort=outstanding&dir=asc",
        "/office/loans?overdue=1",
        "/office/inbox",
        "/office/collections",
        f"/office/collections/{collection_id}",
        "/office/handovers?status=",
        f"/office/loans/{applied}",
        *(f"/office/loans/{loan_id}?tab={tab}" for tab in (
            "summary", "schedule", "collections", "charges", "waivers", "journal", "documents",
            "audit",
        )),
    ]  # fmt: skip
    for path in pages:  # warm up
        await statements_of(app, client, path)
    one = {path: await statements_of(app, client, path) for path in pages}
    await clone_loans(app, loan_id, 30)
    await clone_loans(app, applied, 20)
    for _ in range(20):
        assert (await collect(client, agent, loan_id, "100.00")).status_code == 201
    async with transaction(app.state.db) as session:
        applications = await session.scalar(
            text("SELECT count(*) FROM loans WHERE status = 'applied'")
        )
    assert applications == 21
    many = {path: await statements_of(app, client, path) for path in pages}
    assert many == one
    assert (await client.get("/office/inbox")).text.count('form="bulk-approve"') >= 21
