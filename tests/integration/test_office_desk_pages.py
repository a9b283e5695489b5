"""The back office's dashboards and desk pages through HTTP against real PostgreSQL (issue 18
items 1, 2 and part of 3): ``/admin`` and ``/manager`` show the reports' figures for the same
period and branch (over a portfolio made by ``tests.factories``), a Manager never sees another
branch's numbers, and the reports, close-of-business, audit and failed-jobs pages answer with
their content, downloads and actions, scoped as the API."""

from __future__ import annotations

import datetime as dt
import html
import io
import re
import uuid
from decimal import Decimal
from typing import Any

import openpyxl  # type: ignore[import-untyped]
import pytest
from sqlalchemy import select, text

from namma.kit.clock import today_india
from namma.kit.db import transaction
from namma.models import (
    CobRun,
    CobRunStatus,
    Customer,
    DpdBucket,
    KycStatus,
    Loan,
    LoanInstallment,
)
from namma.web import i18n
from tests.factories import loan_active
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    collect,
    customer,
    product,
    settings,
)
from tests.integration.test_pages import is_html, sign_in

FIGURE = re.compile(r'id="fig-([a-z0-9_]+)">([^<]*)<')


def figures(html: str) -> dict[str, str]:
    return dict(FIGURE.findall(html))


def money(value: Any) -> str:
    return i18n.money(Decimal(value), "en")


def pct(value: Any) -> str:
    return i18n.percent(value, "en")


async def _due_today(app: Any, loan_id: str) -> Decimal:
    async with transaction(app.state.db) as session:
        row = await session.scalar(
            select(LoanInstallment)
            .where(LoanInstallment.loan_id == uuid.UUID(loan_id))
            .where(LoanInstallment.number == 1)
        )
        assert row is not None
        return row.principal_due + row.interest_due + row.fee_due + row.penalty_due


@pytest.fixture
async def book(app, client, world, bearer, product, customer) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Loans in both branches (``tests.factories.loan_active``): branch A two, one repaid in
    part today; branch B one larger, unpaid (a different total, so a leak would show)."""
    async with transaction(app.state.db) as session:
        other = await session.get(Customer, world.customer_b.id)
        assert other is not None
        other.household_monthly_income = Decimal("90000.00")
        other.kyc_status = KycStatus.VERIFIED
    a1 = await loan_active(
        app, client, bearer, product, customer_id=world.customer_a.id, agent=world.agent_a,
        manager=world.manager_a, amount="60000.00", installments=12,
    )  # fmt: skip
    a2 = await loan_active(
        app, client, bearer, product, customer_id=world.customer_a.id, agent=world.agent_a,
        manager=world.manager_a, amount="24000.00", installments=6,
    )  # fmt: skip
    b1 = await loan_active(
        app, client, bearer, product, customer_id=world.customer_b.id, agent=world.agent_b,
        manager=world.manager_b, amount="150000.00", installments=12,
    )  # fmt: skip
    paid = await collect(client, await bearer(world.agent_a), a1, str(await _due_today(app, a1)))
    assert paid.status_code == 201, paid.text
    part = await collect(client, await bearer(world.agent_b), b1, "777.00")
    assert part.status_code == 201, part.text
    # a2 as it would be after two months unpaid: 65 days past due (the delinquency fields only,
    # as the close of business keeps them), so that PAR 1/30/60 and SMA-2 are not all zero.
    async with transaction(app.state.db) as session:
        late = await session.get(Loan, uuid.UUID(a2))
        assert late is not None
        late.days_past_due = 65
        late.dpd_bucket = DpdBucket.D61_90
    await app.state.cache.delete_pattern("dashboard:*")
    return {"a1": a1, "a2": a2, "b1": b1}


async def _report(client, bearer, user, name: str, **params: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    response = await client.get(f"/api/reports/{name}", params=params, headers=await bearer(user))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _expected(
    summary: dict[str, Any], par: dict[str, Any], statement: dict[str, Any]
) -> dict[str, str]:
    t = summary["totals"]
    return {
        "disbursed_amount": money(t["disbursed_amount"]),
        "collected_amount": money(t["collected_amount"]),
        "due_amount": money(t["due_amount"]),
        "collection_rate": pct(t["collection_rate"]),
        "active_loans": i18n.number(t["active_loans"], "en"),
        "outstanding_principal": money(t["outstanding_principal"]),
        "outstanding_interest": money(t["outstanding_interest"]),
        "outstanding_fees": money(t["outstanding_fees"]),
        "outstanding_penalties": money(t["outstanding_penalties"]),
        "overdue_amount": money(t["overdue_amount"]),
        "par_1": pct(par["summary"]["par_1"]),
        "par_30": pct(par["summary"]["par_30"]),
        "par_60": pct(par["summary"]["par_60"]),
        "par_90": pct(par["summary"]["par_90"]),
        "profit": money(statement["summary"]["profit"]),
    }


@pytest.mark.parametrize("period", ["month", "today", "year"])
async def test_the_dashboards_show_the_reports_figures_for_the_same_period_and_branch(  # type: ignore[no-untyped-def]
    app, client, world, bearer, book, period: str
) -> None:
    today = today_india()
    start = {"month": today.replace(day=1), "today": today}.get(period)
    if start is None:  # the financial year: from 1 April
        start = dt.date(today.year if today.month >= 4 else today.year - 1, 4, 1)
    span = {"from": start.isoformat(), "to": today.isoformat()}
    for who, branch, url in (
        (world.admin, None, f"/admin?period={period}"),
        (world.admin, world.branch_a, f"/admin?period={period}&branch_id={world.branch_a.id}"),
        (world.admin, world.branch_b, f"/admin?period={period}&branch_id={world.branch_b.id}"),
        (world.manager_a, world.branch_a, f"/manager?period={period}"),
        (world.manager_b, world.branch_b, f"/manager?period={period}"),
    ):
        scope = {"branch_id": str(branch.id)} if branch else {}
        summary = await _report(client, bearer, world.admin, "portfolio-summary", **span, **scope)
        par = await _report(client, bearer, world.admin, "par", **scope)
        # PAR60 (the report's): DPD > 60, exactly the buckets 61-90 and 90+.
        buckets = {r["bucket"]: Decimal(r["outstanding_principal"]) for r in par["rows"]}
        assert Decimal(par["summary"]["at_risk_60"]) == buckets["61-90"] + buckets["90+"]
        if branch is None or branch == world.branch_a:
            assert buckets["61-90"] == Decimal("24000.00")  # a2, nothing repaid
        statement = await _report(client, bearer, world.admin, "income-statement", **span, **scope)
        client.cookies.clear()
        await sign_in(app, client, who)
        page = await client.get(url)
        assert page.status_code == 200 and is_html(page), page.text
        shown = figures(page.text)
        expected = _expected(summary, par, statement)
        assert {k: shown[k] for k in expected} == expected, (who.name, branch)
    # The figures moved: branch B's larger loan is in the institution's total, not branch A's.
    assert Decimal(summary["totals"]["outstanding_principal"]) > Decimal("140000")


async def test_a_manager_sees_only_their_branch(app, client, world, bearer, book) -> None:  # type: ignore[no-untyped-def]
    await sign_in(app, client, world.manager_a)
    page = await client.get("/manager")
    assert page.status_code == 200
    b_summary = await _report(client, bearer, world.manager_b, "portfolio-summary")
    a_summary = await _report(client, bearer, world.manager_a, "portfolio-summary")
    b_out = money(b_summary["totals"]["outstanding_principal"])
    assert figures(page.text)["outstanding_principal"] == money(
        a_summary["totals"]["outstanding_principal"]
    )
    assert b_out not in page.text
    assert world.agent_b.name not in page.text and world.customer_b.name not in page.text
    assert world.agent_a.name in page.text  # today, per agent
    assert 'name="branch_id"' not in page.text  # no branch filter for a Manager
    # Another branch asked for: ignored on the dashboard, a 404 on a report page.
    other = await client.get(f"/manager?branch_id={world.branch_b.id}")
    assert (
        figures(other.text)["outstanding_principal"] == figures(page.text)["outstanding_principal"]
    )
    refused = await client.get(f"/office/reports/portfolio-summary?branch_id={world.branch_b.id}")
    assert refused.status_code == 404 and is_html(refused)
    foreign_agent = await client.get(f"/office/reports/collections?agent_id={world.agent_b.id}")
    assert foreign_agent.status_code == 404
    report = await client.get("/office/reports/overdue?min_dpd=1")
    assert report.status_code == 200 and world.customer_b.name not in report.text
    # The Admin's pages are not a Manager's.
    for path in ("/admin", "/office/cob", "/office/jobs", "/office/reports/capital-utilisation"):
        assert (await client.get(path)).status_code == 403, path


async def test_the_manager_desk_today_per_agent_cash_and_overdue(  # type: ignore[no-untyped-def]
    app, client, world, bearer, book
) -> None:
    await sign_in(app, client, world.manager_a)
    page = await client.get("/manager")
    today = await _report(
        client, bearer, world.manager_a, "agent-performance",
        **{"from": today_india().isoformat(), "to": today_india().isoformat()},
    )  # fmt: skip
    assert f'id="desk-due">{money(today["totals"]["due_amount"])}<' in page.text
    shown = figures(page.text)
    # Agent A collected installment 1 of a1 in cash today: it is in hand until handed over.
    paid = await _due_today(app, book["a1"])
    assert shown["cash_in_hand"] == money(paid) and shown["handed_over"] == money("0")
    assert shown["applications"] == "0"
    assert 'href="/office/inbox"' in page.text
    assert 'href="/office/loans?status=active&amp;overdue=1"' in page.text
    assert "Overdue customers to visit" in page.text


async def test_every_figure_links_to_its_list_with_the_filters(  # type: ignore[no-untyped-def]
    app, client, world, book
) -> None:
    await sign_in(app, client, world.admin)
    page = await client.get(f"/admin?period=month&branch_id={world.branch_a.id}")
    first = today_india().replace(day=1).isoformat()
    branch = f"branch_id={world.branch_a.id}"
    for href in (
        f"/office/loans?status=active&amp;branch={world.branch_a.id}",
        f"/office/reports/disbursements?from={first}&amp;to={today_india().isoformat()}&amp;{branch}",
        f"/office/collections?from={first}&amp;to={today_india().isoformat()}&amp;{branch}",
        f"/office/customers?status=active&amp;{branch}",
        f"/office/reports/overdue?min_dpd=31&amp;{branch}",
    ):
        assert f'href="{href}"' in page.text, href
    # Each stat is a link, and every link leads to a page that answers.
    assert page.text.count('class="stat-link"') == len(figures(page.text))
    for href in sorted(set(re.findall(r'href="(/office/[^"]+)"', page.text))):
        target = html.unescape(href)
        answer = await client.get(target)
        assert answer.status_code == 200, (target, answer.status_code)
    assert (await client.get("/admin?branch_id=not-a-branch")).status_code == 404
    assert (await client.get(f"/admin?branch_id={uuid.uuid4()}")).status_code == 404
    # The charts, each with its numbers as a table.
    assert 'id="chart-monthly-title"' in page.text and 'id="chart-status-title"' in page.text


async def test_the_par_trend_comes_from_the_daily_snapshots(app, client, world, book) -> None:  # type: ignore[no-untyped-def]
    from namma.cob.service import cob_snapshots_store

    async with transaction(app.state.db) as session:
        await cob_snapshots_store(session, business_date=today_india())
    await app.state.cache.delete_pattern("dashboard:*")
    await sign_in(app, client, world.admin)
    page = await client.get("/admin")
    assert 'id="chart-par-trend-title"' in page.text and "<polyline" in page.text
    assert i18n.date(today_india(), "en") in page.text


# --- reports -----------------------------------------------------------------------------


async def test_the_reports_index_and_every_report_page(app, client, world, book) -> None:  # type: ignore[no-untyped-def]
    from namma.reports.endpoints import REPORTS

    await sign_in(app, client, world.admin)
    index = await client.get("/office/reports")
    assert index.status_code == 200
    for name in [*REPORTS, "overdue"]:
        assert f'href="/office/reports/{name}"' in index.text
        page = await client.get(f"/office/reports/{name}")
        assert page.status_code == 200, (name, page.text[:500])
        assert 'id="report-filters"' in page.text and 'id="downloads"' in page.text
    await sign_in(app, client, world.manager_a)
    index = await client.get("/office/reports")
    assert "capital-utilisation" not in index.text and "/office/reports/par" in index.text
    assert (await client.get("/office/reports/no-such-report")).status_code == 404


async def test_a_report_page_shows_the_apis_rows_and_downloads_its_files(  # type: ignore[no-untyped-def]
    app, client, world, bearer, book
) -> None:
    await sign_in(app, client, world.admin)
    api = await _report(client, bearer, world.admin, "par", branch_id=str(world.branch_a.id))
    page = await client.get(f"/office/reports/par?branch_id={world.branch_a.id}")
    assert page.status_code == 200
    table = page.text[page.text.index('id="report-table"') :]
    assert money(api["totals"]["outstanding_principal"]) in table
    assert 'id="chart-report-title"' in page.text
    xlsx = await client.get(f"/office/reports/par?branch_id={world.branch_a.id}&format=xlsx")
    assert xlsx.status_code == 200
    assert xlsx.headers["content-disposition"].startswith('attachment; filename="par_BLR01_')
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx.content))["Report"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][0] == "Days past due"
    assert Decimal(str(rows[-1][2])) == Decimal(api["totals"]["outstanding_principal"])
    csv = await client.get(f"/office/reports/collections?branch_id={world.branch_a.id}&format=csv")
    assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
    assert world.customer_b.name not in csv.content.decode("utf-8-sig")


async def test_bad_report_filters_are_named_by_field(app, client, world) -> None:  # type: ignore[no-untyped-def]
    await sign_in(app, client, world.admin)
    bad = await client.get("/office/reports/collections?from=2026-13-01")
    assert bad.status_code == 422 and 'id="f-from-error"' in bad.text
    later = await client.get("/office/reports/collections?from=2026-11-20&to=2026-11-01")
    assert later.status_code == 422 and 'id="f-from-error"' in later.text
    dpd = await client.get("/office/reports/overdue?min_dpd=0")
    assert dpd.status_code == 422 and 'id="f-min_dpd-error"' in dpd.text


# --- close of business, audit, jobs -----------------------------------------------------------


async def test_the_cob_page_lists_runs_with_errors_and_queues_a_run(app, client, world) -> None:  # type: ignore[no-untyped-def]
    yesterday = today_india() - dt.timedelta(days=1)
    async with transaction(app.state.db) as session:
        session.add(
            CobRun(
                business_date=yesterday - dt.timedelta(days=1),
                status=CobRunStatus.FAILED,
                steps_done=2,
                attempts=1,
                counts={},
                error="ZeroDivisionError: the step broke",
            )
        )
    csrf = await sign_in(app, client, world.admin)
    page = await client.get("/office/cob")
    assert page.status_code == 200 and "ZeroDivisionError: the step broke" in page.text
    assert 'id="cob-form"' in page.text
    queued = await client.post(
        "/office/cob", data={"csrf_token": csrf, "business_date": yesterday.isoformat()}
    )
    assert queued.status_code == 303, queued.text
    assert queued.headers["location"] == f"/office/cob?queued={yesterday.isoformat()}"
    async with transaction(app.state.db) as session:
        jobs = (
            (
                await session.execute(
                    text(
                        "SELECT args->>'business_date' FROM procrastinate_jobs"
                        " WHERE task_name = 'cob:run'"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert jobs == [yesterday.isoformat()]
    again = await client.post(
        "/office/cob", data={"csrf_token": csrf, "business_date": yesterday.isoformat()}
    )
    assert again.status_code == 422 and "already queued" in again.text
    future = await client.post(
        "/office/cob",
        data={
            "csrf_token": csrf,
            "business_date": (today_india() + dt.timedelta(days=3)).isoformat(),
        },
    )
    assert future.status_code == 422 and 'id="f-business_date-error"' in future.text
    no_token = await client.post("/office/cob", data={"business_date": yesterday.isoformat()})
    assert no_token.status_code == 403


async def test_the_audit_page_filters_pages_and_verifies_the_chain(  # type: ignore[no-untyped-def]
    app, client, world, book, monkeypatch
) -> None:
    from namma.web.pages import office_desk

    monkeypatch.setattr(office_desk, "AUDIT_PAGE", 10)
    csrf = await sign_in(app, client, world.admin)
    page = await client.get("/office/audit")
    assert page.status_code == 200 and 'id="audit-table"' in page.text
    assert "loan.approved" in page.text
    only = await client.get("/office/audit?action=loan.approved")
    rows = only.text[only.text.index('id="audit-table"') :]
    assert "loan.disbursed" not in rows and rows.count("loan.approved") >= 3
    by_manager = await client.get(f"/office/audit?actor_id={world.manager_b.id}")
    assert world.manager_b.name in by_manager.text
    first = re.findall(r'<td class="num">(\d+)</td>', page.text)
    assert len(first) == 10 and 'href="/office/audit?before_id=' in page.text
    second = await client.get(f"/office/audit?before_id={first[-1]}")
    later = re.findall(r'<td class="num">(\d+)</td>', second.text)
    assert later and max(map(int, later)) < min(map(int, first))
    verified = await client.post(
        "/office/audit/verify", data={"csrf_token": csrf}, headers={"HX-Request": "true"}
    )
    assert verified.status_code == 200 and "The chain is intact" in verified.text
    assert "<html" not in verified.text  # only the result, for htmx
    # A changed entry breaks the chain, and the page says where.
    async with transaction(app.state.db) as session:
        await session.execute(text("ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only"))
        await session.execute(
            text("UPDATE audit_log SET action = 'loan.tampered' WHERE id = :id"),
            {"id": int(first[-1])},
        )
        await session.execute(text("ALTER TABLE audit_log ENABLE TRIGGER audit_log_append_only"))
    broken = await client.post("/office/audit/verify", data={"csrf_token": csrf})
    assert broken.status_code == 200 and f"broken at entry {first[-1]}" in broken.text
    # A Manager sees their branch's people only, and cannot verify.
    await sign_in(app, client, world.manager_a)
    mine = await client.get("/office/audit")
    if mine.status_code == 200:
        assert world.manager_b.name not in mine.text and 'id="verify-form"' not in mine.text
    else:
        assert mine.status_code == 403


async def test_the_jobs_page_shows_a_failed_job_and_retries_it(app, client, world) -> None:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        job_id = (
            await session.execute(
                text(
                    "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, queueing_lock,"
                    " args, status, attempts) VALUES ('default', 'notifications:send', NULL, NULL,"
                    " '{\"notification_id\": \"x\"}', 'failed', 4) RETURNING id"
                )
            )
        ).scalar_one()
    csrf = await sign_in(app, client, world.admin)
    listed = await client.get("/office/jobs")
    assert listed.status_code == 200 and f'href="/office/jobs/{job_id}"' in listed.text
    detail = await client.get(f"/office/jobs/{job_id}")
    assert detail.status_code == 200 and "notifications:send" in detail.text
    assert "notification_id" in detail.text
    retried = await client.post(f"/office/jobs/{job_id}/retry", data={"csrf_token": csrf})
    assert (
        retried.status_code == 303
        and retried.headers["location"] == f"/office/jobs?retried={job_id}"
    )
    async with transaction(app.state.db) as session:
        status = await session.scalar(
            text("SELECT status::text FROM procrastinate_jobs WHERE id = :id"), {"id": job_id}
        )
    assert status == "todo"
    again = await client.post(f"/office/jobs/{job_id}/retry", data={"csrf_token": csrf})
    assert again.status_code == 404
    assert (await client.get(f"/office/jobs/{job_id}")).status_code == 404
    after = await client.get("/office/jobs")
    assert "is queued again" in after.text or 'id="no-failed-jobs"' in after.text


async def test_no_dashboard_or_desk_page_sends_more_statements_as_loans_grow(  # type: ignore[no-untyped-def]
    app, client, world, bearer, book
) -> None:
    from tests.integration.test_pages import clone_loans, statements_of

    pages = {
        world.admin: [
            "/admin",
            f"/admin?branch_id={world.branch_a.id}",
            "/office/reports/par",
            "/office/reports/overdue",
            "/office/reports/portfolio-summary",
            "/office/reports/collections",
            "/office/audit",
            "/office/cob",
        ],
        world.manager_a: ["/manager", "/office/reports/agent-performance"],
    }

    async def counts() -> dict[str, int]:
        found = {}
        for who, paths in pages.items():
            client.cookies.clear()
            await sign_in(app, client, who)
            for path in paths:
                found[path] = await statements_of(app, client, path)
        return found

    await counts()  # warm up (templates compiled)
    few = await counts()
    await clone_loans(app, book["a2"], 40)
    agent = await bearer(world.agent_a)
    for _ in range(5):
        assert (await collect(client, agent, book["a1"], "100.00")).status_code == 201
    many = await counts()
    assert many == few


async def test_a_long_report_shows_its_first_rows_and_says_so(  # type: ignore[no-untyped-def]
    app, client, world, book, monkeypatch
) -> None:
    from namma.web.pages import office_desk

    monkeypatch.setattr(office_desk, "REPORT_ROWS_SHOWN", 1)
    await sign_in(app, client, world.admin)
    page = await client.get("/office/reports/par")  # five buckets
    assert page.status_code == 200 and 'id="rows-cut"' in page.text
    assert "The first 1 of 5 rows are shown" in page.text
    table = page.text[page.text.index('id="report-table"') :]
    body = table[table.index("<tbody>") : table.index("</tbody>")]
    assert body.count("<tr>") == 1
    csv = await client.get("/office/reports/par?format=csv")
    assert len(csv.content.decode("utf-8-sig").strip().splitlines()) == 6  # header + 5
