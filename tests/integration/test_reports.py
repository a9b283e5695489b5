"""Reports and dashboards against a generated portfolio, proved against the ledger.

One portfolio is built per module (through the services, as the API would): two branches,
three agents, five products, loans active and paying, overdue (with penalties), closed,
pre-closed, refinanced by a top-up, written off with a recovery, a waiver, a reversed
collection, a cash hand-over with a shortage, owners' capital, a borrowing with a repayment.

Every report's totals are compared with ledger figures computed here by summing
``journal_lines`` directly in SQL (``ledger_sum``) — never through the report code. CSV files
are read back with the ``csv`` module and XLSX files with openpyxl; their totals must equal the
JSON's. Money is compared as exact ``Decimal``.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import httpx
import openpyxl
import pytest
from sqlalchemy import event, select, text, update

from namma.auth.deps import Principal
from namma.auth.permissions import permissions_for
from namma.capital.service import (
    BorrowingTerms,
    borrowing_record,
    borrowing_repay,
    investment_record,
)
from namma.cob.service import cob_loans_refresh, cob_snapshots_store
from namma.collections.penalties import penalties_apply
from namma.collections.service import collection_record, collection_reverse
from namma.collections.waivers import loan_waive
from namma.demo import DEMO_PRODUCTS, _payoff
from namma.finance import add_months
from namma.handover.service import (
    cash_handover_count,
    cash_handover_record,
    handover_expected,
)
from namma.kit.background import background_settle
from namma.kit.cache import COPY_PREFIX
from namma.kit.clock import today_india
from namma.kit.db import transaction
from namma.kit.embedded import create_database
from namma.kit.passwords import password_hash_sync
from namma.ledger.queries import ledger_check
from namma.loans import service as loans
from namma.models import (
    AccountKind,
    AgentAssignment,
    Branch,
    CapitalMethod,
    Customer,
    DisbursementMethod,
    DpdBucket,
    KycStatus,
    Loan,
    LoanInstallment,
    LoanStatus,
    Role,
    User,
)
from namma.models.collection import CollectionMethod
from namma.models.servicing import WaiverComponent
from namma.products.schemas import ProductTerms
from namma.products.service import product_create
from namma.reports import queries
from namma.reports.base import ReportFilters
from namma.reports.dashboard import DashboardPeriod, dashboard_key, period_dates
from tests.conftest import drop_at_session_end
from tests.integration.conftest import bearer_for

D = Decimal
ZERO = D("0.00")
TODAY = today_india()
START = TODAY - dt.timedelta(days=40)
PERIOD = {"from": START.isoformat(), "to": TODAY.isoformat()}
CASH = ("branch_cash", "agent_cash", "bank")
INCOME = ("interest_income", "fee_income", "penalty_income", "recovery_income")
EXPENSE = ("write_off_expense", "waiver_expense", "cash_shortage", "interest_expense")
REPORTS = (
    "portfolio-summary",
    "par",
    "demand-collection",
    "collections",
    "disbursements",
    "agent-performance",
    "overdue",
    "loan-aging",
    "income",
    "trial-balance",
    "income-statement",
    "capital-utilisation",
)
PASSWORD_HASH = password_hash_sync("correct horse battery staple")


# --- the portfolio ---------------------------------------------------------------------------


@dataclass
class Portfolio:
    app: Any
    client: httpx.AsyncClient
    users: dict[str, User]
    branches: dict[str, Branch]
    customers: dict[str, Customer]
    products: dict[str, uuid.UUID]
    loans: dict[str, uuid.UUID] = field(default_factory=dict)

    async def headers(self, who: str) -> dict[str, str]:
        return await bearer_for(self.app, self.users[who])

    async def get(self, who: str, url: str, **params: Any) -> httpx.Response:
        return await self.client.get(url, params=params, headers=await self.headers(who))

    async def report(self, name: str, who: str = "admin", **params: Any) -> dict[str, Any]:
        params = {**PERIOD, **params} if name != "overdue" else params
        response = await self.get(who, f"/api/reports/{name}", **params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body


def acting(user: User) -> Principal:
    return Principal(
        user_id=user.id,
        role=user.role,
        branch_id=user.branch_id,
        permissions=permissions_for(user.role),
        session_id=uuid.uuid4(),
        via_cookie=False,
        must_change_password=False,
        ip="127.0.0.1",
        user_agent="test",
        request_id=None,
    )


@pytest.fixture(scope="module")
def reports_database(postgres_server_url: str) -> Any:
    from sqlalchemy.engine import make_url

    from namma.kit.migrations import migrate_upgrade

    name = f"namma_test_reports_{uuid.uuid4().hex[:8]}"
    create_database(postgres_server_url, name)
    url = make_url(postgres_server_url).set(database=name).render_as_string(hide_password=False)
    migrate_upgrade(url)
    yield url
    drop_at_session_end(name)


@pytest.fixture(scope="module")
async def portfolio(
    reports_database: str, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Portfolio]:
    from asgi_lifespan import LifespanManager

    from namma.app import create_app
    from namma.config import Settings

    settings = Settings(
        env="test",
        database_url=reports_database,
        data_dir=tmp_path_factory.mktemp("reports") / "var",
        inprocess_worker=False,
        migrate_on_start=False,
        job_poll_interval=0.2,
        login_rate_limit="200/minute",
        insecure_fast_password_hashing=True,
        rate_limit_reads="10000/minute",
        rate_limit_money="10000/minute",
        rate_limit_writes="10000/minute",
    )
    app = create_app(settings)
    async with LifespanManager(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            yield await _build(app, client)


async def _build(app: Any, client: httpx.AsyncClient) -> Portfolio:
    db = app.state.db
    async with transaction(db) as session:
        branches = {
            "HO": Branch(code="HO", name="Head Office", is_head_office=True),
            "A": Branch(code="BLR01", name="Bengaluru East"),
            "B": Branch(code="MYS01", name="Mysuru"),
        }
        session.add_all(branches.values())
        await session.flush()
        people = [
            ("admin", "Asha Admin", Role.ADMIN, "HO"),
            ("manager_a", "Manoj Manager", Role.MANAGER, "A"),
            ("manager_b", "Meena Manager", Role.MANAGER, "B"),
            ("agent_a1", "Arun Agent", Role.AGENT, "A"),
            ("agent_a2", "Anita Agent", Role.AGENT, "A"),
            ("agent_b", "Bala Agent", Role.AGENT, "B"),
            ("customer_user", "Kamala Customer", Role.CUSTOMER, None),
        ]
        users: dict[str, User] = {}
        for n, (key, name, role, branch) in enumerate(people):
            users[key] = User(
                name=name,
                role=role,
                branch_id=branches[branch].id if branch else None,
                email=f"{key}@example.com",
                phone=f"90000000{n:02d}",
                password_hash=PASSWORD_HASH,
            )
        session.add_all(users.values())
        await session.flush()
        # customer key → (branch, agent)
        plan = {
            "c1": ("A", "agent_a1"),
            "c2": ("A", "agent_a1"),
            "c3": ("A", "agent_a2"),
            "c4": ("A", "agent_a2"),
            "c5": ("A", "agent_a2"),
            "c6": ("B", "agent_b"),
            "c7": ("B", "agent_b"),
            "c8": ("B", "agent_b"),
        }
        customers: dict[str, Customer] = {}
        for n, (key, (branch, _)) in enumerate(plan.items()):
            customers[key] = Customer(
                branch_id=branches[branch].id,
                user_id=users["customer_user"].id if key == "c1" else None,
                name=f"Customer {key.upper()}",
                phone=f"91000000{n:02d}",
                village="Hosur" if branch == "A" else "Nanjangud",
                kyc_status=KycStatus.VERIFIED,
                household_monthly_income=D("200000.00"),
            )
        session.add_all(customers.values())
        await session.flush()
        session.add_all(
            AgentAssignment(customer_id=customers[c].id, agent_id=users[agent].id)
            for c, (_, agent) in plan.items()
        )
        await session.flush()
        products: dict[str, uuid.UUID] = {}
        for code, name, terms, limits in DEMO_PRODUCTS:
            product, _ = await product_create(
                session,
                actor=acting(users["admin"]).audit_actor,
                created_by_id=users["admin"].id,
                code=code,
                name=name,
                description=None,
                terms=ProductTerms.model_validate(terms),
                limits=limits,
            )
            products[code] = product.id
        admin = acting(users["admin"])
        await investment_record(
            session, principal=admin, amount=D("1000000.00"), source="Founders",
            invested_on=TODAY - dt.timedelta(days=35), method=CapitalMethod.BANK,
            reference=None, description=None,
        )  # fmt: skip
        borrowing, _ = await borrowing_record(
            session, principal=admin, lender_name="Capital Finance Ltd", lender_contact=None,
            amount=D("500000.00"), annual_rate=D("12"), installments=12, terms=BorrowingTerms(),
            received_on=TODAY - dt.timedelta(days=35), first_due_on=None,
            method=CapitalMethod.BANK, reference=None, remarks=None,
        )  # fmt: skip
    p = Portfolio(app, client, users, branches, customers, products)
    agent_of = {c: users[agent] for c, (_, agent) in plan.items()}
    manager_of = {"A": acting(users["manager_a"]), "B": acting(users["manager_b"])}

    async def loan(
        key: str, customer: str, product: str, amount: str, count: int, days_ago: int,
        method: DisbursementMethod = DisbursementMethod.CASH, refinances: str | None = None,
    ) -> None:  # fmt: skip
        branch = plan[customer][0]
        async with transaction(db) as session:
            row = await loans.loan_apply(
                session,
                principal=acting(agent_of[customer]),
                customer_id=customers[customer].id,
                product_id=products[product],
                amount=D(amount),
                annual_rate=None,
                installments=count,
                first_due_on=None,
                purpose="Dairy cattle",
                refinances_id=p.loans[refinances] if refinances else None,
            )
            await loans.loan_approve(session, principal=manager_of[branch], loan_id=row.id)
            await loans.loan_disburse(
                session,
                principal=manager_of[branch],
                loan_id=row.id,
                disbursed_on=TODAY - dt.timedelta(days=days_ago),
                method=method,
                reference=None if method is DisbursementMethod.CASH else f"UTR{key}",
            )
            p.loans[key] = row.id

    async def due(key: str, number: int) -> Decimal:
        async with transaction(db) as session:
            row = await session.scalar(
                select(LoanInstallment)
                .where(LoanInstallment.loan_id == p.loans[key])
                .where(LoanInstallment.number == number)
            )
            assert row is not None
            return row.principal_due + row.interest_due + row.fee_due + row.penalty_due

    async def collect(
        key: str, customer: str, amount: Decimal, days_ago: int, *, by: Principal | None = None,
        method: CollectionMethod = CollectionMethod.CASH,
    ) -> uuid.UUID:  # fmt: skip
        async with transaction(db) as session:
            result = await collection_record(
                session,
                principal=by or acting(agent_of[customer]),
                loan_id=p.loans[key],
                amount=amount,
                collected_on=TODAY - dt.timedelta(days=days_ago),
                method=method,
                reference=None if method is CollectionMethod.CASH else f"UPI{key}{days_ago}",
                remarks=None,
                client_id=None,
                backdate_days=60,
            )
            return result.collection.id

    # Branch A ------------------------------------------------------------------------------
    # L1: weekly with a processing fee and a penalty rule; two installments paid, then missed.
    await loan("L1", "c1", "JLG-52W", "30000", 52, 28)
    await collect("L1", "c1", await due("L1", 1), 21)
    await collect("L1", "c1", await due("L1", 2), 14)
    # L2: monthly by bank transfer; a payment in advance after a mistaken one, reversed below
    # (nothing is due yet: both are held as an advance, and the later one stays so).
    await loan("L2", "c2", "MON-12", "50000", 12, 25, DisbursementMethod.BANK_TRANSFER)
    wrong = await collect("L2", "c2", D("500.00"), 4)
    await collect("L2", "c2", D("1000.00"), 2)
    # L3: daily, repaid in full (closed).
    await loan("L3", "c3", "DAILY-100", "5000", 25, 28)
    total = sum([await due("L3", n) for n in range(1, 26)], ZERO)
    await collect("L3", "c3", total, 3)
    # L4: weekly, pre-closed today with the payoff quote.
    await loan("L4", "c4", "JLG-52W", "10000", 26, 14)
    async with transaction(db) as session:
        row = await session.get(Loan, p.loans["L4"])
        assert row is not None
        payoff = await _payoff(session, row, TODAY)
    await collect("L4", "c4", payoff, 0)
    # L5: flat weekly; one installment, half of the next, a waiver, and a mistaken collection
    # on the next one's due date that is reversed (the later half is re-allocated: more
    # interest, less principal).
    await loan("L5", "c5", "FLAT-W", "15000", 26, 21)
    await collect("L5", "c5", await due("L5", 1), 14)
    mistaken = await collect("L5", "c5", D("500.00"), 7)
    half = (await due("L5", 2) / 2).quantize(D("0.01"))
    await collect("L5", "c5", half, 7)
    async with transaction(db) as session:
        await collection_reverse(
            session, principal=manager_of["A"], collection_id=mistaken, reason="Wrong loan"
        )
        await collection_reverse(
            session, principal=admin, collection_id=wrong, reason="Customer's neighbour paid"
        )
        await loan_waive(
            session,
            principal=manager_of["A"],
            loan_id=p.loans["L5"],
            component=WaiverComponent.INTEREST,
            amount=D("10.00"),
            reason="Goodwill",
        )
    # Branch B ------------------------------------------------------------------------------
    # L6: bullet, written off today, 2000 recovered.
    await loan("L6", "c6", "BULLET-6M", "10000", 6, 25)
    async with transaction(db) as session:
        await loans.loan_write_off(
            session, principal=admin, loan_id=p.loans["L6"], reason="Migrated", on=TODAY
        )
    await collect("L6", "c6", D("2000.00"), 0)
    # L7: fortnightly by UPI, one installment at the branch counter; refinanced today by L8.
    await loan("L7", "c7", "FN-26", "40000", 26, 20, DisbursementMethod.UPI)
    await collect("L7", "c7", await due("L7", 1), 6, by=manager_of["B"])
    await loan("L8", "c7", "FN-26", "70000", 26, 0, DisbursementMethod.UPI, refinances="L7")
    # L9: monthly, no payment yet.
    await loan("L9", "c8", "MON-12", "20000", 6, 29)
    # An application waiting for a decision: in no money report.
    async with transaction(db) as session:
        await loans.loan_apply(
            session, principal=acting(users["agent_a1"]), customer_id=customers["c2"].id,
            product_id=products["FLAT-W"], amount=D("8000"), annual_rate=None, installments=12,
            first_due_on=None, purpose=None,
        )  # fmt: skip
    # Tonight's penalties (L1's missed installment is past its grace), partly collected at once;
    # the borrowing's first repayment; agent A1's hand-over 100 short.
    async with transaction(db) as session:
        await penalties_apply(session, as_of=TODAY)
    await collect("L1", "c1", D("300.00"), 0)
    async with transaction(db) as session:
        await borrowing_repay(
            session, principal=admin, borrowing_id=borrowing.id, amount=D("10000.00"),
            paid_on=TODAY - dt.timedelta(days=1), method=CapitalMethod.BANK, reference=None,
        )  # fmt: skip
        handover_day = TODAY - dt.timedelta(days=14)
        expected, _ = await handover_expected(
            session, agent_id=users["agent_a1"].id, business_date=handover_day
        )
        declared, _ = await cash_handover_record(
            session, principal=manager_of["A"], agent_id=users["agent_a1"].id,
            business_date=handover_day, amount_deposited=expected - D("100.00"), remarks="short",
        )  # fmt: skip
        await cash_handover_count(
            session, principal=admin, handover_id=declared.id,
            amount_counted=expected - D("100.00"), remarks=None,
        )  # fmt: skip
    # Tonight's close of business refreshes the loans; L9 is then shown as it would be after
    # months without payment: 95 days past due (the delinquency fields only; no money moves);
    # then the day's portfolio snapshot, which the dashboards' trend reads.
    async with transaction(db) as session:
        await cob_loans_refresh(session, business_date=TODAY)
    async with transaction(db) as session:
        await session.execute(
            update(Loan)
            .where(Loan.id == p.loans["L9"])
            .values(days_past_due=95, dpd_bucket=DpdBucket.D90_PLUS)
        )
    async with transaction(db) as session:
        await cob_snapshots_store(session, business_date=TODAY)
    async with transaction(db) as session:
        check = await ledger_check(session)
        assert check.ok, check.problems()
    return p


# --- the ledger, summed directly ---------------------------------------------------------------


async def ledger_sum(
    p: Portfolio,
    kinds: tuple[str, ...],
    *,
    normal: str = "debit",
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    entry_kinds: tuple[str, ...] | None = None,
    entry_branch: uuid.UUID | None = None,
    loan_where: str | None = None,
    agent_id: uuid.UUID | None = None,
    params: dict[str, Any] | None = None,
    side: str = "net",
) -> Decimal:
    """Σ(debit − credit) (``normal="credit"``: credit − debit) of the journal lines on accounts
    of ``kinds``, with optional filters: entry dates, entry kinds (prefixes: ``collection``
    matches ``collection.reversal``), the entry's branch, the line's loan (an SQL condition on
    ``loans AS ln``), the account's agent. ``side="debit"`` / ``"credit"``: that side's total
    only."""
    where = ["a.kind::text = ANY(:kinds)"]
    bind: dict[str, Any] = {"kinds": list(kinds), **(params or {})}
    joins = ""
    if date_from is not None:
        where.append("e.entry_date >= :date_from")
        bind["date_from"] = date_from
    if date_to is not None:
        where.append("e.entry_date <= :date_to")
        bind["date_to"] = date_to
    if entry_kinds is not None:
        where.append(
            "("
            + " OR ".join(
                f"e.kind = :ek{i} OR e.kind LIKE :ekp{i}" for i in range(len(entry_kinds))
            )
            + ")"
        )
        for i, k in enumerate(entry_kinds):
            bind[f"ek{i}"] = k
            bind[f"ekp{i}"] = k + ".%"
    if entry_branch is not None:
        where.append("e.branch_id = :entry_branch")
        bind["entry_branch"] = entry_branch
    if loan_where is not None:
        joins = "JOIN loans ln ON ln.id = l.loan_id"
        where.append(loan_where)
    if agent_id is not None:
        where.append("a.agent_id = :agent_id")
        bind["agent_id"] = agent_id
    amount = {
        "net": "COALESCE(SUM(l.debit), 0) - COALESCE(SUM(l.credit), 0)",
        "debit": "COALESCE(SUM(l.debit), 0)",
        "credit": "-COALESCE(SUM(l.credit), 0)",
    }[side]
    sql = (
        f"SELECT {amount} "
        "FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id "
        f"JOIN ledger_accounts a ON a.id = l.account_id {joins} WHERE " + " AND ".join(where)
    )
    async with transaction(p.app.state.db) as session:
        value = D(await session.scalar(text(sql), bind))
    return (value if normal == "debit" else -value).quantize(D("0.01"))


def m(value: Any) -> Decimal:
    """A JSON money string as Decimal (``None`` → 0)."""
    return ZERO if value is None else D(value)


def in_period(**kw: Any) -> dict[str, Any]:
    return {"date_from": START, "date_to": TODAY, **kw}


# --- every report, proved against the ledger --------------------------------------------------


async def test_every_report_reconciles_by_its_own_account(portfolio: Portfolio) -> None:
    """The reports' own reconciliation lines (shown in the JSON and the XLSX) all agree."""
    for name in REPORTS:
        body = await portfolio.report(name)
        assert body["report"] == name
        for r in body["reconciliation"]:
            assert r["ok"], (name, r)
        assert '"-0.00"' not in json.dumps(body), name


async def test_portfolio_summary_against_the_ledger(portfolio: Portfolio) -> None:
    p = portfolio
    body = await p.report("portfolio-summary")
    totals = body["totals"]
    assert m(totals["outstanding_principal"]) == await ledger_sum(p, ("loan_portfolio",))
    for row in body["rows"]:
        branch = next(b for b in p.branches.values() if b.code == row["branch_code"])
        assert m(row["outstanding_principal"]) == await ledger_sum(
            p, ("loan_portfolio",), loan_where="ln.branch_id = :b", params={"b": branch.id}
        )
    # Disbursed: the portfolio debits of disbursements (a top-up's entry also credits the old
    # loan's principal, which is not a disbursement).
    assert m(totals["disbursed_amount"]) == await ledger_sum(
        p, ("loan_portfolio",), side="debit", entry_kinds=("loan.disbursement",), **in_period()
    )
    # What was received: cash and bank debits of collections, less their reversals.
    assert m(totals["collected_amount"]) == await ledger_sum(
        p, CASH, entry_kinds=("collection",), **in_period()
    )
    assert {r["branch_code"] for r in body["rows"]} == {"BLR01", "MYS01"}
    assert totals["active_loans"] == 5  # L1, L2, L5, L8, L9
    async with transaction(p.app.state.db) as session:
        late = await session.scalar(
            text("SELECT count(*) FROM loans WHERE status = 'active' AND days_past_due >= 1")
        )
    assert totals["overdue_loans"] == late and late >= 1
    assert sum(r["overdue_loans"] for r in body["rows"]) == late
    # PAR from the ledger: the portfolio balance of active loans at least n days past due.
    for n, key in ((1, "par_1"), (31, "par_30"), (91, "par_90")):
        at_risk = await ledger_sum(
            p, ("loan_portfolio",), loan_where="ln.status = 'active' AND ln.days_past_due >= :n",
            params={"n": n},
        )  # fmt: skip
        outstanding = m(totals["outstanding_principal"])
        assert m(totals[key]) == (at_risk * 100 / outstanding).quantize(D("0.01")), key


async def test_par_report_against_the_ledger(portfolio: Portfolio) -> None:
    p = portfolio
    body = await p.report("par")
    assert [r["bucket"] for r in body["rows"]] == ["current", "1-30", "31-60", "61-90", "90+"]
    portfolio_balance = await ledger_sum(p, ("loan_portfolio",))
    assert m(body["totals"]["outstanding_principal"]) == portfolio_balance
    assert sum(m(r["outstanding_principal"]) for r in body["rows"]) == portfolio_balance
    ranges = {
        "current": (0, 0),
        "1-30": (1, 30),
        "31-60": (31, 60),
        "61-90": (61, 90),
        "90+": (91, 100000),
    }
    for row in body["rows"]:
        low, high = ranges[row["bucket"]]
        assert m(row["outstanding_principal"]) == await ledger_sum(
            p, ("loan_portfolio",),
            loan_where="ln.status = 'active' AND ln.days_past_due BETWEEN :lo AND :hi",
            params={"lo": low, "hi": high},
        ), row  # fmt: skip
    s = body["summary"]
    rows = {r["bucket"]: m(r["outstanding_principal"]) for r in body["rows"]}
    # PAR n counts the buckets beyond n days: the summary adds up from the rows.
    assert m(s["at_risk_1"]) == rows["1-30"] + rows["31-60"] + rows["61-90"] + rows["90+"]
    assert m(s["at_risk_30"]) == rows["31-60"] + rows["61-90"] + rows["90+"]
    assert m(s["at_risk_90"]) == rows["90+"] > 0
    assert rows["1-30"] > 0 and rows["current"] > 0


async def _overdue_by_installments(
    p: Portfolio, before: dt.date = TODAY
) -> dict[uuid.UUID, Decimal]:
    """Per active loan, what its installments due before ``before`` still owe, summed here."""
    async with transaction(p.app.state.db) as session:
        rows = (
            await session.execute(
                select(LoanInstallment)
                .join(Loan, Loan.id == LoanInstallment.loan_id)
                .where(Loan.status == LoanStatus.ACTIVE)
            )
        ).scalars()
        owed: dict[uuid.UUID, Decimal] = {}
        for r in rows:
            owed.setdefault(r.loan_id, ZERO)
            if r.due_date < before:
                owed[r.loan_id] += (
                    (r.principal_due - r.principal_paid)
                    + (r.interest_due - r.interest_paid - r.interest_waived)
                    + (r.fee_due - r.fee_paid - r.fee_waived)
                    + (r.penalty_due - r.penalty_paid - r.penalty_waived)
                )
        return owed


async def test_the_overdue_amount_is_the_installments_whatever_the_loans_kept(
    portfolio: Portfolio,
) -> None:
    """The reports read a loan's overdue amount from what its balances keep (D-179, D-205):
    kept for today; for tomorrow (this evening's close has run) less what falls due today; for
    yesterday (last night's close has not run) plus what fell due yesterday; or, kept for
    another day or not at all, from its installments. In each case the portfolio summary's and
    the PAR report's overdue amount is what the installments due before today still owe."""
    p = portfolio
    db = p.app.state.db
    yesterday, tomorrow = TODAY - dt.timedelta(days=1), TODAY + dt.timedelta(days=1)

    async def reported() -> tuple[Decimal, Decimal]:
        summary = await p.report("portfolio-summary")
        par = await p.report("par")
        return m(summary["totals"]["overdue_amount"]), m(par["totals"]["overdue_amount"])

    async def kept(as_of: dt.date) -> dict[uuid.UUID, Decimal]:
        """The kept amounts of the active loans kept for ``as_of`` (a close for yesterday
        leaves out the loans disbursed today: they are kept for the day of their writes)."""
        async with transaction(db) as session:
            rows = (
                await session.execute(
                    select(Loan.id, Loan.overdue_amount, Loan.balances_as_of).where(
                        Loan.status == LoanStatus.ACTIVE
                    )
                )
            ).all()
        assert {r[2] for r in rows} <= {as_of, tomorrow}, rows
        return {r[0]: r[1] for r in rows if r[2] == as_of}

    # The portfolio's close of business ran this evening: kept for tomorrow, today's dues in.
    truth = await _overdue_by_installments(p)
    amounts = await kept(tomorrow)
    assert amounts == await _overdue_by_installments(p, tomorrow) != truth
    assert sum(truth.values(), ZERO) > 0
    assert await reported() == (sum(truth.values(), ZERO),) * 2

    # An installment of an active loan that falls due later is moved to yesterday. The close
    # for yesterday keeps the balances for this morning, that installment in; the close for
    # the day before keeps them for yesterday (as before last night's close): the kept amounts
    # leave it out, and the reports add it as fallen due since.
    async with transaction(db) as session:
        moved = (
            await session.execute(
                select(LoanInstallment)
                .join(Loan, Loan.id == LoanInstallment.loan_id)
                .where(Loan.status == LoanStatus.ACTIVE)
                .where(Loan.disbursed_on <= yesterday)
                .where(LoanInstallment.due_date > TODAY)
                .order_by(LoanInstallment.due_date, LoanInstallment.loan_id)
                .limit(1)
            )
        ).scalar_one()
        moved_id, moved_on = moved.id, moved.due_date
    try:
        async with transaction(db) as session:
            await session.execute(
                update(LoanInstallment)
                .where(LoanInstallment.id == moved_id)
                .values(due_date=yesterday)
            )
        async with transaction(db) as session:
            await cob_loans_refresh(session, business_date=yesterday)
        truth = await _overdue_by_installments(p)
        amounts = await kept(TODAY)
        assert len(amounts) > len(truth) / 2
        assert amounts == {loan: truth[loan] for loan in amounts}
        assert await reported() == (sum(truth.values(), ZERO),) * 2

        async with transaction(db) as session:
            await cob_loans_refresh(session, business_date=yesterday - dt.timedelta(days=1))
        amounts = await kept(yesterday)
        assert len(amounts) > len(truth) / 2
        # yesterday's due is left out
        assert sum(amounts.values(), ZERO) < sum(truth[loan] for loan in amounts)
        assert await reported() == (sum(truth.values(), ZERO),) * 2

        # Kept for an older day, or not at all: from the installments.
        for kept_on in (TODAY - dt.timedelta(days=5), None):
            async with transaction(db) as session:
                await session.execute(
                    update(Loan)
                    .where(Loan.status == LoanStatus.ACTIVE)
                    .values(balances_as_of=kept_on, overdue_amount=D("1.00"))
                )
            assert await reported() == (sum(truth.values(), ZERO),) * 2, kept_on
    finally:
        async with transaction(db) as session:
            await session.execute(
                update(LoanInstallment)
                .where(LoanInstallment.id == moved_id)
                .values(due_date=moved_on)
            )
        async with transaction(db) as session:
            await cob_loans_refresh(session, business_date=TODAY)
        async with transaction(db) as session:
            await session.execute(
                update(Loan)
                .where(Loan.id == p.loans["L9"])
                .values(days_past_due=95, dpd_bucket=DpdBucket.D90_PLUS)
            )


async def test_par_counts_more_than_30_and_90_days_as_the_buckets_do(portfolio: Portfolio) -> None:
    """PAR30 is DPD > 30 and PAR90 DPD > 90: a loan exactly 30 (or 90) days past due is in the
    bucket 1-30 (61-90) and outside PAR30 (PAR90), in every report."""
    p = portfolio
    db = p.app.state.db
    try:
        cases = (
            (30, "1-30", "at_risk_1", "at_risk_30"),
            (90, "61-90", "at_risk_30", "at_risk_90"),
        )
        for days, bucket, inside, outside in cases:
            async with transaction(db) as session:
                await session.execute(
                    update(Loan).where(Loan.id == p.loans["L9"]).values(days_past_due=days)
                )
            body = await p.report("par")
            rows = {r["bucket"]: m(r["outstanding_principal"]) for r in body["rows"]}
            l9 = await ledger_sum(
                p, ("loan_portfolio",), loan_where="ln.id = :l", params={"l": p.loans["L9"]}
            )
            s = body["summary"]
            assert rows[bucket] >= l9 > 0
            at_risk = {
                "at_risk_1": sum(v for k, v in rows.items() if k != "current"),
                "at_risk_30": rows["31-60"] + rows["61-90"] + rows["90+"],
                "at_risk_90": rows["90+"],
            }
            assert m(s[inside]) == at_risk[inside]
            assert m(s[outside]) == at_risk[outside]
            summary = await p.report("portfolio-summary")
            branch_b = next(r for r in summary["rows"] if r["branch_code"] == "MYS01")
            outstanding = m(branch_b["outstanding_principal"])
            counted = await ledger_sum(
                p, ("loan_portfolio",),
                loan_where="ln.status = 'active' AND ln.branch_id = :b AND ln.days_past_due > 30",
                params={"b": p.branches["B"].id},
            )  # fmt: skip
            assert m(branch_b["par_30"]) == (counted * 100 / outstanding).quantize(D("0.01"))
    finally:
        async with transaction(db) as session:
            await session.execute(
                update(Loan).where(Loan.id == p.loans["L9"]).values(days_past_due=95)
            )


async def test_demand_vs_collection_against_the_ledger(portfolio: Portfolio) -> None:
    p = portfolio
    body = await p.report("demand-collection")
    totals = body["totals"]
    assert m(totals["collected_amount"]) == await ledger_sum(
        p, CASH, entry_kinds=("collection",), **in_period()
    )
    assert sum(m(r["due_amount"]) for r in body["rows"]) == m(totals["due_amount"])
    # One definition of dues and of the collection rate in every report.
    summary = (await p.report("portfolio-summary"))["totals"]
    agents = (await p.report("agent-performance"))["totals"]
    assert m(totals["due_amount"]) == m(summary["due_amount"]) == m(agents["due_amount"]) > 0
    assert (
        m(totals["collected_against_due"])
        == m(summary["collected_against_due"])
        == m(agents["collected_against_due"])
    )
    assert (
        totals["collection_rate"] == summary["collection_rate"] == agents["collection_efficiency"]
    )
    rate = (m(totals["collected_against_due"]) * 100 / m(totals["due_amount"])).quantize(D("0.01"))
    assert m(totals["collection_rate"]) == rate
    # Dues from the schedules themselves: what fell due in the period (principal, interest,
    # fees, less waivers) on loans still in the portfolio that day, and the principal,
    # interest and fees standing collections allocated to those installments.
    async with transaction(p.app.state.db) as session:
        due, against = (
            await session.execute(
                text(
                    "SELECT COALESCE(sum(i.principal_due + i.interest_due + i.fee_due"
                    "  - i.interest_waived - i.fee_waived), 0),"
                    " COALESCE(sum((SELECT COALESCE(sum(a.principal + a.interest + a.fee), 0)"
                    "  FROM collection_allocations a JOIN collections c ON c.id = a.collection_id"
                    "  WHERE a.installment_id = i.id AND c.status = 'posted'"
                    "  AND c.collected_on <= :to)), 0)"
                    " FROM loan_installments i JOIN loans l ON l.id = i.loan_id"
                    " WHERE i.due_date BETWEEN :from AND :to"
                    " AND l.status IN ('active', 'closed', 'preclosed', 'refinanced',"
                    " 'written_off')"
                    # Every loan that left the portfolio early in this one did so today.
                    " AND (l.status IN ('active', 'closed') OR i.due_date <= :to)"
                ),
                {"from": START, "to": TODAY},
            )
        ).one()
    assert m(totals["due_amount"]) == D(due)
    assert m(totals["collected_against_due"]) == D(against)
    # Per agent, the daily rows add up to the agent's row in agent performance.
    per_agent: dict[str, Decimal] = {}
    for row in body["rows"]:
        per_agent[row["agent_name"]] = per_agent.get(row["agent_name"], ZERO) + m(row["due_amount"])
    for row in (await p.report("agent-performance"))["rows"]:
        assert per_agent.get(row["agent_name"], ZERO) == m(row["due_amount"]), row["agent_name"]
    # Per day, branch and agent; every row's date in the period.
    for row in body["rows"]:
        assert START.isoformat() <= row["date"] <= TODAY.isoformat()
        assert m(row["shortfall"]) == m(row["due_amount"]) - m(row["collected_against_due"])


async def test_collection_register_against_the_ledger(portfolio: Portfolio) -> None:
    p = portfolio
    body = await p.report("collections")
    totals = body["totals"]
    assert m(totals["amount"]) == await ledger_sum(
        p, CASH, entry_kinds=("collection",), **in_period()
    )
    parts = {
        "principal": ("loan_portfolio", "credit"),
        "interest": ("interest_income", "credit"),
        "fee": ("fee_income", "credit"),
        "penalty": ("penalty_income", "credit"),
        "recovery": ("recovery_income", "credit"),
    }
    for key, (kind, normal) in parts.items():
        assert m(totals[key]) == await ledger_sum(
            p, (kind,), normal=normal, entry_kinds=("collection",), **in_period()
        ), key
    entries = [r["entry"] for r in body["rows"]]
    assert entries.count("reversal") == 2
    # The reversal re-allocated the later receipt on the same loan: a row of its own, today.
    [moved] = [r for r in body["rows"] if r["entry"] == "re-allocation"]
    assert moved["date"] == TODAY.isoformat() and moved["amount"] == "0.00"
    assert moved["collected_by"] == "Anita Agent" and moved["receipt_number"]
    # More interest (the mistaken one had paid it), less held as an advance.
    assert m(moved["interest"]) > 0 and m(moved["advance"]) < 0
    assert m(moved["principal"]) + m(moved["interest"]) + m(moved["advance"]) == 0
    later = next(
        r
        for r in body["rows"]
        if r["receipt_number"] == moved["receipt_number"] and r["entry"] == "collection"
    )
    assert later["date"] < moved["date"]
    assert m(body["summary"]["net"]) == m(totals["amount"])
    assert m(totals["recovery"]) == D("2000.00")
    # The collector filter: agent A1's own collections are their cash account's debits.
    a1 = p.users["agent_a1"]
    mine = await p.report("collections", agent_id=str(a1.id))
    assert {r["collected_by"] for r in mine["rows"]} == {a1.name}
    assert m(mine["totals"]["amount"]) == await ledger_sum(
        p, ("agent_cash",), agent_id=a1.id, entry_kinds=("collection",), **in_period()
    )


@pytest.mark.parametrize(
    ("first", "last"),
    [(40, 1), (12, 8), (10, 10), (0, 0), (7, 0)],
    ids=["before-the-reversal", "around-the-mistake", "the-mistake-only", "today", "last-week"],
)
async def test_any_period_reconciles_with_the_ledger(
    portfolio: Portfolio, first: int, last: int
) -> None:
    """Money received, disbursed and earned in any period equals the ledger's movement in that
    period — also when the period holds a collection but not its reversal (made today)."""
    p = portfolio
    period = {
        "date_from": TODAY - dt.timedelta(days=first),
        "date_to": TODAY - dt.timedelta(days=last),
    }
    params = {"from": period["date_from"].isoformat(), "to": period["date_to"].isoformat()}
    received = await ledger_sum(p, CASH, entry_kinds=("collection",), **period)
    summary = await p.report("portfolio-summary", **params)
    demand = await p.report("demand-collection", **params)
    register = await p.report("collections", **params)
    agents = await p.report("agent-performance", **params)
    assert m(summary["totals"]["collected_amount"]) == received
    assert m(demand["totals"]["collected_amount"]) == received
    assert m(register["totals"]["amount"]) == received
    # Its split too, for any period: rows as posted, reversals and re-allocations on their day.
    for key, kind in (
        ("principal", "loan_portfolio"),
        ("interest", "interest_income"),
        ("penalty", "penalty_income"),
        ("recovery", "recovery_income"),
    ):
        assert m(register["totals"][key]) == await ledger_sum(
            p, (kind,), normal="credit", entry_kinds=("collection",), **period
        ), key
    assert all(r["ok"] for r in register["reconciliation"])
    # In person: every agent's cash account took what their row says.
    for row in agents["rows"]:
        agent = next(u for u in p.users.values() if u.name == row["agent_name"])
        assert m(row["collected_amount"]) == await ledger_sum(
            p, ("agent_cash",), agent_id=agent.id, entry_kinds=("collection",), **period
        ), row["agent_name"]
    disbursed = await ledger_sum(
        p, ("loan_portfolio",), side="debit", entry_kinds=("loan.disbursement",), **period
    )
    assert m(summary["totals"]["disbursed_amount"]) == disbursed
    assert m((await p.report("disbursements", **params))["totals"]["principal"]) == disbursed
    income = await p.report("income", **params)
    assert m(income["totals"]["total"]) == await ledger_sum(p, INCOME, normal="credit", **period)
    statement = await p.report("income-statement", **params)
    assert m(statement["summary"]["profit"]) == await ledger_sum(
        p, INCOME, normal="credit", **period
    ) - await ledger_sum(p, EXPENSE, **period)


async def test_disbursement_register_against_the_ledger(portfolio: Portfolio) -> None:
    p = portfolio
    body = await p.report("disbursements")
    totals = body["totals"]
    kinds = {"entry_kinds": ("loan.disbursement",), **in_period()}
    assert m(totals["principal"]) == await ledger_sum(p, ("loan_portfolio",), side="debit", **kinds)
    # Fees deducted from the new loan (a top-up's entry also takes the old loan's fees as income).
    assert m(totals["deducted_fees"]) == await ledger_sum(
        p, ("fee_income",), normal="credit", loan_where="ln.id = e.loan_id", **kinds
    )
    assert m(totals["deducted_fees"]) > 0
    assert m(totals["paid_out"]) == await ledger_sum(p, CASH, normal="credit", **kinds)
    # The top-up paid the old loan off out of its principal.
    top_up = next(r for r in body["rows"] if r["refinanced_payoff"] != "0.00")
    assert m(top_up["net_disbursed"]) - m(top_up["refinanced_payoff"]) == m(top_up["paid_out"])
    assert len(body["rows"]) == 9 == body["summary"]["loans"]


async def test_agent_performance_against_the_ledger(portfolio: Portfolio) -> None:
    p = portfolio
    body = await p.report("agent-performance")
    assert m(body["totals"]["outstanding_principal"]) == await ledger_sum(p, ("loan_portfolio",))
    rows = {r["agent_name"]: r for r in body["rows"]}
    for key in ("agent_a1", "agent_a2", "agent_b"):
        agent = p.users[key]
        row = rows[agent.name]
        assert m(row["outstanding_principal"]) == await ledger_sum(
            p, ("loan_portfolio",),
            loan_where="ln.customer_id IN (SELECT customer_id FROM agent_assignments "
            "WHERE agent_id = :agent AND ended_at IS NULL)",
            params={"agent": agent.id},
        ), key  # fmt: skip
        # Collected in person: the agent's cash account took every one of them.
        assert m(row["collected_amount"]) == await ledger_sum(
            p, ("agent_cash",), agent_id=agent.id, entry_kinds=("collection",), **in_period()
        ), key
    assert rows["Arun Agent"]["customers"] == 2
    assert rows["Anita Agent"]["customers"] == 3
    assert rows["Bala Agent"]["customers"] == 3
    assert m(rows["Bala Agent"]["par_90"]) > 0


async def test_overdue_list_against_the_ledger(portfolio: Portfolio) -> None:
    p = portfolio
    body = await p.report("overdue")
    assert m(body["totals"]["outstanding_principal"]) == await ledger_sum(
        p, ("loan_portfolio",), loan_where="ln.status = 'active' AND ln.days_past_due >= 1"
    )
    dpd = [r["days_past_due"] for r in body["rows"]]
    assert dpd == sorted(dpd, reverse=True) and dpd[0] == 95
    assert body["rows"][0]["bucket"] == "90+" and body["rows"][-1]["bucket"] == "1-30"
    l1 = next(r for r in body["rows"] if r["customer_name"] == "Customer C1")
    assert l1["last_payment_on"] == TODAY.isoformat() and l1["village"] == "Hosur"
    assert all(r["restructured_on"] is None for r in body["rows"])  # none restructured here
    assert all(d >= 1 for d in dpd)
    long_overdue = await p.report("overdue", min_dpd=31)
    assert [r["days_past_due"] for r in long_overdue["rows"]] == [95]
    assert m(long_overdue["totals"]["outstanding_principal"]) == await ledger_sum(
        p, ("loan_portfolio",), loan_where="ln.status = 'active' AND ln.days_past_due >= 31"
    )


async def test_loan_aging_against_the_ledger(portfolio: Portfolio) -> None:
    p = portfolio
    body = await p.report("loan-aging")
    totals = body["totals"]
    assert m(totals["principal"]) == await ledger_sum(p, ("loan_portfolio",))
    for row in body["rows"]:
        assert m(row["total"]) == sum(
            m(row[k]) for k in ("principal", "interest", "fees", "penalties")
        )
    overdue = sum(m(r["total"]) for r in body["rows"] if r["age"] != "not overdue")
    assert m(body["summary"]["overdue_total"]) == overdue > 0
    # The same overdue amount in every report that shows one.
    summary = await p.report("portfolio-summary")
    par = await p.report("par")
    listed = await p.report("overdue")
    assert m(summary["totals"]["overdue_amount"]) == overdue
    assert m(par["totals"]["overdue_amount"]) == overdue
    assert m(listed["totals"]["overdue_amount"]) <= overdue


async def test_income_report_against_the_ledger(portfolio: Portfolio) -> None:
    p = portfolio
    body = await p.report("income")
    keys = {
        "interest": "interest_income",
        "fees": "fee_income",
        "penalties": "penalty_income",
        "recoveries": "recovery_income",
    }
    for key, kind in keys.items():
        assert m(body["totals"][key]) == await ledger_sum(
            p, (kind,), normal="credit", **in_period()
        ), key
    assert m(body["totals"]["total"]) == await ledger_sum(p, INCOME, normal="credit", **in_period())
    for row in body["rows"]:
        branch = next(b for b in p.branches.values() if b.code == row["branch_code"])
        assert m(row["total"]) == await ledger_sum(
            p, INCOME, normal="credit", entry_branch=branch.id, **in_period()
        )
    assert m(body["totals"]["penalties"]) > 0 and m(body["totals"]["recoveries"]) > 0


async def test_trial_balance_against_the_ledger(portfolio: Portfolio) -> None:
    p = portfolio
    body = await p.report("trial-balance")
    assert body["totals"]["debit"] == body["totals"]["credit"]
    async with transaction(p.app.state.db) as session:
        rows = (
            await session.execute(
                text(
                    "SELECT a.code, sum(l.debit), sum(l.credit) FROM journal_lines l "
                    "JOIN ledger_accounts a ON a.id = l.account_id "
                    "JOIN journal_entries e ON e.id = l.entry_id WHERE e.entry_date <= :to "
                    "GROUP BY a.code"
                ),
                {"to": TODAY},
            )
        ).all()
    expected = {code: (D(d), D(c)) for code, d, c in rows}
    assert {r["code"]: (m(r["debit"]), m(r["credit"])) for r in body["rows"]} == expected
    assert m(body["totals"]["debit"]) == sum(d for d, _ in expected.values())
    assert body["as_of"] == TODAY.isoformat() and body["filters"]["from"] is None
    # As of an earlier day: only what was posted by then (the capital, 35 days ago).
    early = await p.report("trial-balance", to=(TODAY - dt.timedelta(days=30)).isoformat())
    assert {r["kind"] for r in early["rows"]} == {"bank", "capital", "borrowings"}
    assert m(early["totals"]["debit"]) == await ledger_sum(
        p, tuple(k.value for k in AccountKind), side="debit",
        date_to=TODAY - dt.timedelta(days=30),
    ) == D("1500000.00")  # fmt: skip
    # A branch's trial balance keeps that branch's entries, and still balances.
    branch = p.branches["B"]
    mine = await p.report("trial-balance", branch_id=str(branch.id))
    assert mine["totals"]["debit"] == mine["totals"]["credit"]
    every_kind = tuple(k.value for k in AccountKind)
    assert m(mine["totals"]["debit"]) == await ledger_sum(
        p, every_kind, side="debit", entry_branch=branch.id, date_to=TODAY
    )
    assert {r["code"] for r in mine["rows"]} < set(expected)


async def test_income_statement_against_the_ledger(portfolio: Portfolio) -> None:
    p = portfolio
    body = await p.report("income-statement")
    income = await ledger_sum(p, INCOME, normal="credit", **in_period())
    expenses = await ledger_sum(p, EXPENSE, **in_period())
    s = body["summary"]
    assert m(s["total_income"]) == income
    assert m(s["total_expenses"]) == expenses
    assert m(s["profit"]) == income - expenses
    assert sum(m(r["amount"]) for r in body["rows"] if r["section"] == "income") == income
    assert sum(m(r["amount"]) for r in body["rows"] if r["section"] == "expense") == expenses
    shown = {r["account"] for r in body["rows"]}
    assert {"write off expense", "cash shortage", "interest expense"} <= shown


async def test_capital_utilisation_against_the_ledger(portfolio: Portfolio) -> None:
    p = portfolio
    body = await p.report("capital-utilisation")
    rows = {r["key"]: m(r["amount"]) for r in body["rows"]}
    own = await ledger_sum(p, ("capital",), normal="credit")
    borrowed = await ledger_sum(p, ("borrowings",), normal="credit")
    lent = await ledger_sum(p, ("loan_portfolio",))
    assert rows["own_capital"] == own == D("1000000.00")
    assert rows["borrowings_outstanding"] == borrowed < D("500000.00")
    assert rows["total_capital"] == own + borrowed
    assert rows["disbursed_outstanding"] == lent
    assert rows["surplus"] == own + borrowed - lent
    assert m(body["summary"]["utilisation_percent"]) == (lent * 100 / (own + borrowed)).quantize(
        D("0.01")
    )


# --- files ---------------------------------------------------------------------------------------


async def _download(p: Portfolio, name: str, fmt: str) -> httpx.Response:
    params = {"format": fmt} | ({} if name == "overdue" else PERIOD)
    response = await p.get("admin", f"/api/reports/{name}", **params)
    assert response.status_code == 200, response.text
    return response


async def test_csv_and_xlsx_files_read_back_to_the_json_totals(portfolio: Portfolio) -> None:
    p = portfolio
    for name in REPORTS:
        body = await p.report(name)
        columns = body["columns"]
        money_keys = [c["key"] for c in columns if c["type"] == "money"]

        response = await _download(p, name, "csv")
        assert response.headers["content-type"].startswith("text/csv")
        assert f'filename="{name}_all_' in response.headers["content-disposition"]
        content = response.content.decode("utf-8-sig")
        rows = list(csv.DictReader(io.StringIO(content)))
        assert len(rows) == len(body["rows"]), name
        assert list(rows[0].keys()) if rows else True
        for key in money_keys:
            total = sum((m(r[key] or None) for r in rows), ZERO)
            assert total == sum((m(r[key]) for r in body["rows"]), ZERO), (name, key)
            if key in body["totals"]:
                assert total == m(body["totals"][key]), (name, key)

        response = await _download(p, name, "xlsx")
        book = openpyxl.load_workbook(io.BytesIO(response.content))
        assert book.sheetnames == ["Report", "About"]
        sheet = list(book["Report"].iter_rows(values_only=True))
        assert list(sheet[0]) == [c["label"] for c in columns], name
        data = sheet[1 : 1 + len(body["rows"])]
        for i, c in enumerate(columns):
            if c["type"] != "money":
                continue
            cells = [D(str(r[i])) if r[i] is not None else ZERO for r in data]
            assert sum(cells, ZERO) == sum((m(r[c["key"]]) for r in body["rows"]), ZERO)
            if c["key"] in body["totals"]:
                total_row = sheet[1 + len(body["rows"])]
                assert total_row[0] == "Total"
                assert D(str(total_row[i])) == m(body["totals"][c["key"]]), (name, c["key"])
        about = {r[0]: r[1] for r in book["About"].iter_rows(values_only=True)}
        assert about["Report"] == body["title"]


async def test_cells_never_start_a_formula(portfolio: Portfolio) -> None:
    """A name typed as a formula stays text in both files (CSV injection)."""
    p = portfolio
    async with transaction(p.app.state.db) as session:
        await session.execute(
            update(Customer).where(Customer.id == p.customers["c1"].id).values(name="=HYPERLINK(1)")
        )
    try:
        response = await _download(p, "overdue", "csv")
        names = [
            r["customer_name"]
            for r in csv.DictReader(io.StringIO(response.content.decode("utf-8-sig")))
        ]
        assert "'=HYPERLINK(1)" in names
        response = await _download(p, "overdue", "xlsx")
        sheet = openpyxl.load_workbook(io.BytesIO(response.content))["Report"]
        cells = [c for row in sheet.iter_rows() for c in row if c.value == "'=HYPERLINK(1)"]
        assert cells and all(c.data_type == "s" for c in cells)
    finally:
        async with transaction(p.app.state.db) as session:
            await session.execute(
                update(Customer)
                .where(Customer.id == p.customers["c1"].id)
                .values(name="Customer C1")
            )


async def test_an_empty_selection_still_makes_valid_files(portfolio: Portfolio) -> None:
    """The head office has no loans: empty rows, zero totals, a header-only CSV, an XLSX."""
    p = portfolio
    ho = str(p.branches["HO"].id)
    body = await p.report("portfolio-summary", branch_id=ho)
    assert body["rows"] == []
    assert body["totals"]["outstanding_principal"] == "0.00"
    assert body["totals"]["collection_rate"] is None  # nothing fell due: undefined, not 0
    response = await p.get("admin", "/api/reports/portfolio-summary", branch_id=ho, format="csv")
    lines = response.content.decode("utf-8-sig").splitlines()
    assert lines == [",".join(c["key"] for c in body["columns"])]
    response = await p.get("admin", "/api/reports/portfolio-summary", branch_id=ho, format="xlsx")
    sheet = list(openpyxl.load_workbook(io.BytesIO(response.content))["Report"].values)
    assert sheet[0] == tuple(c["label"] for c in body["columns"])
    assert sheet[1][0] == "Total" and len(sheet) == 2


# --- filters and scope -----------------------------------------------------------------------


async def test_filters_select_branch_agent_product_and_dates(portfolio: Portfolio) -> None:
    p = portfolio
    b = p.branches["B"]
    only_b = await p.report("portfolio-summary", branch_id=str(b.id))
    assert [r["branch_code"] for r in only_b["rows"]] == ["MYS01"]
    assert m(only_b["totals"]["outstanding_principal"]) == await ledger_sum(
        p, ("loan_portfolio",), loan_where="ln.branch_id = :b", params={"b": b.id}
    )
    # Agent: only the loans of their customers.
    a2 = p.users["agent_a2"]
    agent_rows = await p.report("disbursements", agent_id=str(a2.id))
    assert {r["agent_name"] for r in agent_rows["rows"]} == {a2.name}
    assert len(agent_rows["rows"]) == 3
    perf = await p.report("agent-performance", agent_id=str(a2.id))
    assert [r["agent_name"] for r in perf["rows"]] == [a2.name]
    # Product: only its loans, and the ledger of those loans.
    weekly = p.products["JLG-52W"]
    by_product = await p.report("disbursements", product_id=str(weekly))
    assert {r["product_code"] for r in by_product["rows"]} == {"JLG-52W"}
    assert m(by_product["totals"]["principal"]) == await ledger_sum(
        p, ("loan_portfolio",), entry_kinds=("loan.disbursement",), side="debit",
        loan_where="ln.product_version_id IN (SELECT id FROM loan_product_versions "
        "WHERE product_id = :pr)", params={"pr": weekly}, **in_period(),
    )  # fmt: skip
    income = await p.report("income", product_id=str(weekly))
    assert m(income["totals"]["total"]) == await ledger_sum(
        p, INCOME, normal="credit",
        loan_where="ln.product_version_id IN (SELECT id FROM loan_product_versions "
        "WHERE product_id = :pr)", params={"pr": weekly}, **in_period(),
    )  # fmt: skip
    # Dates: the last 10 days hold today's top-up only among the disbursements.
    recent = await p.report(
        "disbursements", **{"from": (TODAY - dt.timedelta(days=10)).isoformat()}
    )
    assert [r["loan_number"] for r in recent["rows"]] and all(
        r["date"] >= (TODAY - dt.timedelta(days=10)).isoformat() for r in recent["rows"]
    )
    assert len(recent["rows"]) == 1
    week = {"date_from": TODAY - dt.timedelta(days=7), "date_to": TODAY}
    got = await p.report("collections", **{"from": week["date_from"].isoformat()})
    assert m(got["totals"]["amount"]) == await ledger_sum(
        p, CASH, entry_kinds=("collection",), **week
    )
    statement = await p.report("income-statement", **{"from": week["date_from"].isoformat()})
    assert m(statement["summary"]["total_income"]) == await ledger_sum(
        p, INCOME, normal="credit", **week
    )


async def test_a_manager_sees_only_their_branch(portfolio: Portfolio) -> None:
    p = portfolio
    a, b = p.branches["A"], p.branches["B"]
    for name in (
        "portfolio-summary",
        "disbursements",
        "collections",
        "agent-performance",
        "income",
    ):
        body = await p.report(name, who="manager_a")
        assert body["filters"]["branch_id"] == str(a.id), name
        codes = {r.get("branch_code") for r in body["rows"]}
        assert codes <= {"BLR01"}, (name, codes)
    mine = await p.report("portfolio-summary", who="manager_a")
    assert m(mine["totals"]["outstanding_principal"]) == await ledger_sum(
        p, ("loan_portfolio",), loan_where="ln.branch_id = :b", params={"b": a.id}
    )
    # Another branch, or an agent of another branch, answers as an unknown one: 404.
    for params in ({"branch_id": str(b.id)}, {"branch_id": str(uuid.uuid4())},
                   {"agent_id": str(p.users["agent_b"].id)}):  # fmt: skip
        other = await p.get("manager_a", "/api/reports/portfolio-summary", **params)
        assert other.status_code == 404, (params, other.text)
    unknown = await p.get("manager_a", "/api/reports/par", branch_id=str(uuid.uuid4()))
    other = await p.get("manager_a", "/api/reports/par", branch_id=str(b.id))
    assert unknown.json() == other.json()
    # Files carry the branch in their name; the default period is the month to date.
    csv_file = await p.get("manager_a", "/api/reports/portfolio-summary", format="csv")
    first = TODAY.replace(day=1).isoformat()
    assert (
        f'portfolio-summary_BLR01_{first}_{TODAY.isoformat()}.csv"'
        in (csv_file.headers["content-disposition"])
    )
    assert mine["filters"]["from"] == PERIOD["from"]
    default = await p.get("manager_a", "/api/reports/portfolio-summary")
    assert default.json()["filters"]["from"] == first
    # Capital is a head-office report.
    assert (await p.get("manager_a", "/api/reports/capital-utilisation")).status_code == 403
    index = (await p.get("manager_a", "/api/reports")).json()["reports"]
    assert "capital-utilisation" not in {r["name"] for r in index}


async def test_agents_and_customers_may_not_read_reports(portfolio: Portfolio) -> None:
    p = portfolio
    for who in ("agent_a1", "customer_user"):
        for name in (*REPORTS, ""):
            url = f"/api/reports/{name}".rstrip("/")
            response = await p.get(who, url)
            assert response.status_code == 403, (who, name, response.text)
    assert (await p.client.get("/api/reports/par")).status_code == 401


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "2026-02-30"}, "from"),
        ({"to": "yesterday"}, "to"),
        ({"from": "2026-03-02", "to": "2026-03-01"}, "from"),
        ({"branch_id": "not-a-uuid"}, "branch_id"),
        ({"branch_id": "00000000-0000-0000-0000-000000000001"}, "branch_id"),
        ({"agent_id": "00000000-0000-0000-0000-000000000001"}, "agent_id"),
        ({"product_id": "00000000-0000-0000-0000-000000000001"}, "product_id"),
        ({"format": "pdf"}, "format"),
    ],
)
async def test_bad_input_is_a_422_naming_the_field(
    portfolio: Portfolio, params: dict[str, str], field: str
) -> None:
    response = await portfolio.get("admin", "/api/reports/portfolio-summary", **params)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_input"
    assert field in {d["field"] for d in error["details"]}, error
    assert all(d["message"] for d in error["details"])


async def test_an_agent_of_another_branch_is_bad_input_for_an_admin(portfolio: Portfolio) -> None:
    p = portfolio
    response = await p.get(
        "admin",
        "/api/reports/agent-performance",
        branch_id=str(p.branches["A"].id),
        agent_id=str(p.users["agent_b"].id),
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "agent_id"
    # A Manager (an agent id is not staff of theirs; not even a user): 404, the same body.
    other = await p.get("manager_a", "/api/reports/par", agent_id=str(p.users["agent_b"].id))
    unknown = await p.get("manager_a", "/api/reports/par", agent_id=str(uuid.uuid4()))
    assert other.status_code == unknown.status_code == 404
    assert other.json() == unknown.json()


async def test_a_daily_report_over_more_than_a_year_is_refused(portfolio: Portfolio) -> None:
    response = await portfolio.get(
        "admin", "/api/reports/demand-collection", **{"from": "2024-01-01", "to": "2025-12-31"}
    )
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "from"


# --- dashboards ----------------------------------------------------------------------------------


async def _dashboard(p: Portfolio, who: str) -> dict[str, Any]:
    response = await p.get(who, "/api/dashboard")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _figures(dashboard: dict[str, Any]) -> dict[str, Any]:
    """A dashboard's figures, without when they were read and whether they are a kept copy (as
    the cache stores them)."""
    return {k: v for k, v in dashboard.items() if k not in ("figures_at", "stale")}


async def test_admin_and_manager_dashboards_use_the_one_definitions(portfolio: Portfolio) -> None:
    p = portfolio
    await p.app.state.cache.delete_pattern("dashboard:*")
    admin = await _dashboard(p, "admin")
    month = {"from": TODAY.replace(day=1).isoformat(), "to": TODAY.isoformat()}
    summary = await p.report("portfolio-summary", **month)
    statement = await p.report("income-statement", **month)
    assert admin["portfolio"]["outstanding_principal"] == summary["totals"]["outstanding_principal"]
    assert m(admin["portfolio"]["outstanding_principal"]) == await ledger_sum(
        p, ("loan_portfolio",)
    )
    assert admin["flows"]["collection_rate"] == summary["totals"]["collection_rate"]
    assert admin["flows"]["profit"] == statement["summary"]["profit"]
    first = TODAY.replace(day=1)
    income = await ledger_sum(p, INCOME, normal="credit", date_from=first, date_to=TODAY)
    expenses = await ledger_sum(p, EXPENSE, date_from=first, date_to=TODAY)
    assert m(admin["flows"]["profit"]) == income - expenses
    assert m(admin["flows"]["penalties_collected"]) == await ledger_sum(
        p, ("penalty_income",), normal="credit", date_from=first, date_to=TODAY
    )
    capital = (await p.report("capital-utilisation"))["rows"]
    assert admin["capital"]["own_capital"] == next(
        r["amount"] for r in capital if r["key"] == "own_capital"
    )
    assert admin["loan_counts"]["active"] == 5
    assert admin["loan_counts"]["written_off"] == 1
    # Today's flows come from the month's statements: they are the report's for today alone.
    day = await p.report(
        "portfolio-summary", **{"from": TODAY.isoformat(), "to": TODAY.isoformat()}
    )
    for key in ("due_amount", "collected_against_due", "collection_rate", "collected_amount"):
        assert admin["today"][key] == day["totals"][key], key
    async with transaction(p.app.state.db) as session:
        made_today = await session.scalar(
            text(
                "SELECT (SELECT count(*) FROM collections WHERE collected_on = :d)"
                " - (SELECT count(*) FROM collections c JOIN journal_entries e"
                " ON e.id = c.reversal_entry_id WHERE e.entry_date = :d)"
            ),
            {"d": TODAY},
        )
    assert admin["today"]["collections"] == made_today
    assert m(admin["today"]["collected_amount"]) > 0 and m(admin["today"]["due_amount"]) > 0
    assert {b["branch_code"] for b in admin["branches"]} == {"BLR01", "MYS01"}
    # The trend comes from the close of business's snapshots (tonight's was taken when the
    # portfolio was built, and nothing has moved since).
    last = admin["trend"][-1]
    assert last["date"] == TODAY.isoformat()
    assert last["outstanding_principal"] == summary["totals"]["outstanding_principal"]
    assert last["par_1"] == summary["totals"]["par_1"]
    assert last["par_30"] == summary["totals"]["par_30"]
    assert last["par_90"] == summary["totals"]["par_90"]
    assert last["active_loans"] == summary["totals"]["active_loans"]
    assert sum(m(b["profit"]) for b in admin["branches"]) + m(admin["head_office"]["profit"]) == m(
        admin["flows"]["profit"]
    )

    manager = await _dashboard(p, "manager_a")
    a = p.branches["A"]
    mine = await p.report("portfolio-summary", who="manager_a", **month)
    assert manager["scope"] == str(a.id)
    assert manager["portfolio"]["outstanding_principal"] == mine["totals"]["outstanding_principal"]
    assert manager["flows"]["collection_rate"] == mine["totals"]["collection_rate"]
    mine_today = await p.report(
        "portfolio-summary", who="manager_a", **{"from": TODAY.isoformat(), "to": TODAY.isoformat()}
    )
    for key in ("due_amount", "collected_against_due", "collected_amount"):
        assert manager["today"][key] == mine_today["totals"][key], key
    income_a = await ledger_sum(
        p, INCOME, normal="credit", date_from=first, date_to=TODAY, entry_branch=a.id
    )
    expenses_a = await ledger_sum(p, EXPENSE, date_from=first, date_to=TODAY, entry_branch=a.id)
    assert m(manager["flows"]["profit"]) == income_a - expenses_a
    assert {r["agent_name"] for r in manager["agents"]} == {"Arun Agent", "Anita Agent"}
    assert "capital" not in manager and "branches" not in manager


async def test_the_dashboards_reports_leave_out_the_ledger_reconciliation_only_when_asked(
    portfolio: Portfolio,
) -> None:
    """The dashboards call the reports with ``reconcile=False`` (D-177): the same figures, without
    the statements that read the scope's journal lines; the reports keep their check."""
    month = ReportFilters(TODAY.replace(day=1), TODAY)
    async with transaction(portfolio.app.state.db) as session:
        for report in (
            queries.portfolio_summary,
            queries.agent_performance,
            queries.par_report,
            queries.overdue_list,  # the Manager's desk and the agent's dashboard
        ):
            checked = await report(session, month)
            figures = await report(session, month, reconcile=False)
            assert checked.reconciliation and all(r.ok for r in checked.reconciliation)
            assert figures.reconciliation == []
            assert figures.rows == checked.rows and figures.totals == checked.totals
            assert figures.rows or report is not queries.overdue_list


async def test_a_page_of_summary_and_par_reads_the_loans_stock_once(
    portfolio: Portfolio,
) -> None:
    """The portfolio summary and the PAR report take their stock from one statement over the
    loans (``loan_stock``: grouping sets per branch and per bucket); inside
    ``report_reads_shared`` (the dashboards' page) the second report reuses the first's read,
    outside it each reads afresh. Same figures either way."""
    month = ReportFilters(TODAY.replace(day=1), TODAY)
    engine = portfolio.app.state.db.engine.sync_engine
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        async with transaction(portfolio.app.state.db) as session:
            alone = (
                await queries.portfolio_summary(session, month, reconcile=False),
                await queries.par_report(session, month, reconcile=False),
            )
            reads_alone = sum(STOCK_READ in s for s in seen)
            seen.clear()
            with queries.report_reads_shared(session):
                shared = (
                    await queries.portfolio_summary(session, month, reconcile=False),
                    await queries.par_report(session, month, reconcile=False),
                )
            reads_shared = sum(STOCK_READ in s for s in seen)
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert (reads_alone, reads_shared) == (2, 1)
    for one, other in zip(alone, shared, strict=True):
        assert one.rows == other.rows and one.totals == other.totals
    summary, par = shared
    # The two groupings of the one read agree with each other.
    assert summary.totals["active_loans"] == par.totals["loans"] == 5
    assert summary.totals["outstanding_principal"] == par.totals["outstanding_principal"]
    assert summary.totals["overdue_amount"] == par.totals["overdue_amount"]
    assert summary.totals["overdue_loans"] == sum(
        r["loans"] for r in par.rows if r["bucket"] != "current"
    )


STOCK_READ = "grouping(loans.branch_id)"  # loan_stock's statement
DUES_READ = "grouping(demand.branch_id)"  # period_dues'
RECEIVED_READ = "grouping(received.branch_id)"  # period_received'


@pytest.mark.parametrize("branch", [True, False], ids=["branch", "institution"])
async def test_a_dashboard_reads_stock_dues_and_receipts_once_per_branch_and_agent(
    portfolio: Portfolio, branch: bool
) -> None:
    """A branch's dashboard shows the portfolio summary and agent performance: inside
    ``report_reads_shared(by_agent=True)`` the loans' stock, the period's dues and its receipts
    are each read once, grouped per branch and per agent in the same statement (D-220), and
    both reports' figures equal what each reads alone."""
    branch_id = portfolio.branches["B"].id if branch else None
    month = ReportFilters(TODAY.replace(day=1), TODAY, branch_id)
    engine = portfolio.app.state.db.engine.sync_engine
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        async with transaction(portfolio.app.state.db) as session:
            alone = (
                await queries.portfolio_summary(session, month, reconcile=False, last_day=True),
                await queries.agent_performance(session, month, reconcile=False),
            )
            reads_alone = [
                sum(r in s for s in seen) for r in (STOCK_READ, DUES_READ, RECEIVED_READ)
            ]
            seen.clear()
            with queries.report_reads_shared(session, by_agent=True):
                shared = (
                    await queries.portfolio_summary(session, month, reconcile=False, last_day=True),
                    await queries.agent_performance(session, month, reconcile=False),
                )
            reads_shared = [
                sum(r in s for s in seen) for r in (STOCK_READ, DUES_READ, RECEIVED_READ)
            ]
    finally:
        event.remove(engine, "before_cursor_execute", record)
    assert reads_alone == [2, 2, 2]
    assert reads_shared == [1, 1, 1]
    for one, other in zip(alone, shared, strict=True):
        assert one.rows == other.rows and one.totals == other.totals
        assert one.summary == other.summary
    summary, agents = shared
    # The branch and agent groupings of each read agree with each other.
    for key in ("outstanding_principal", "due_amount", "collected_against_due", "active_loans"):
        assert summary.totals[key] == agents.totals[key], key
    assert summary.totals["due_amount"] > 0 and summary.totals["outstanding_principal"] > 0


async def test_the_desks_agent_flows_leave_out_the_portfolios_and_nothing_else(
    portfolio: Portfolio,
) -> None:
    """The Manager's desk asks agent performance without the agents' portfolios
    (``stock=False``): the same dues, collections and rates per agent, and no loans counted."""
    month = ReportFilters(TODAY.replace(day=1), TODAY)
    flows = ("due_amount", "collected_against_due", "collection_efficiency", "collections")
    async with transaction(portfolio.app.state.db) as session:
        whole = await queries.agent_performance(session, month, reconcile=False)
        desk = await queries.agent_performance(session, month, reconcile=False, stock=False)
    assert [r["agent_name"] for r in desk.rows] == [r["agent_name"] for r in whole.rows]
    for row, full in zip(desk.rows, whole.rows, strict=True):
        assert {k: row[k] for k in (*flows, "collected_amount")} == {
            k: full[k] for k in (*flows, "collected_amount")
        }
        assert (row["active_loans"], row["customers"]) == (0, 0)
    assert any(r["active_loans"] for r in whole.rows)
    assert any(r["due_amount"] for r in desk.rows)


async def test_a_dashboard_period_and_the_monthly_trend_come_from_the_ledger(
    portfolio: Portfolio,
) -> None:
    p = portfolio
    for period in ("week", "year", "all"):
        response = await p.get("admin", "/api/dashboard", period=period)
        assert response.status_code == 200, response.text
        body = response.json()
        start = dt.date.fromisoformat(body["period"]["from"])
        assert body["period"]["name"] == period and body["period"]["to"] == TODAY.isoformat()
        window = {"date_from": start, "date_to": TODAY}
        income = await ledger_sum(p, INCOME, normal="credit", **window)
        expenses = await ledger_sum(p, EXPENSE, **window)
        assert m(body["flows"]["profit"]) == income - expenses, period
        assert m(body["flows"]["collected_amount"]) == await ledger_sum(
            p, CASH, entry_kinds=("collection",), **window
        ), period
        assert m(body["flows"]["disbursed_amount"]) == await ledger_sum(
            p, ("loan_portfolio",), side="debit", entry_kinds=("loan.disbursement",), **window
        ), period
    everything = (await p.get("admin", "/api/dashboard", period="all")).json()
    assert everything["period"]["from"] == (TODAY - dt.timedelta(days=35)).isoformat()
    assert (await p.get("admin", "/api/dashboard", period="decade")).status_code == 422
    # Twelve months, this one last; each month's figures are the ledger's.
    monthly = everything["monthly"]
    assert len(monthly) == 12 and monthly[-1]["month"] == TODAY.strftime("%Y-%m")
    for row in monthly[-2:]:
        first = dt.date.fromisoformat(row["month"] + "-01")
        last = min(add_months(first, 1) - dt.timedelta(days=1), TODAY)
        window = {"date_from": first, "date_to": last}
        income = await ledger_sum(p, INCOME, normal="credit", **window)
        expenses = await ledger_sum(p, EXPENSE, **window)
        assert m(row["profit"]) == income - expenses
        assert m(row["collected_amount"]) == await ledger_sum(
            p, CASH, entry_kinds=("collection",), **window
        )
        assert m(row["disbursed_amount"]) == await ledger_sum(
            p, ("loan_portfolio",), side="debit", entry_kinds=("loan.disbursement",), **window
        )
    assert sum(r["loans_disbursed"] for r in monthly) == 9
    assert all(r["profit"] == "0.00" for r in monthly[:-2])
    # A Manager's months are their branch's entries.
    manager = (await p.get("manager_b", "/api/dashboard")).json()
    assert sum(r["loans_disbursed"] for r in manager["monthly"]) == 4
    assert m(manager["monthly"][-1]["income"]) == await ledger_sum(
        p, INCOME, normal="credit", entry_branch=p.branches["B"].id,
        date_from=TODAY.replace(day=1), date_to=TODAY,
    )  # fmt: skip


def test_dashboard_periods_end_today() -> None:
    day = dt.date(2026, 2, 14)
    expected = {
        "today": dt.date(2026, 2, 14),
        "week": dt.date(2026, 2, 8),
        "month": dt.date(2026, 2, 1),
        "quarter": dt.date(2026, 1, 1),
        "half-year": dt.date(2025, 10, 1),
        "year": dt.date(2025, 4, 1),
        "all": dt.date(2024, 6, 1),
    }
    for name, start in expected.items():
        assert period_dates(DashboardPeriod(name), day, first_day=dt.date(2024, 6, 1)) == (
            start,
            day,
        ), name
    assert period_dates(DashboardPeriod.HALF_YEAR, dt.date(2026, 9, 30))[0] == dt.date(2026, 4, 1)
    assert period_dates(DashboardPeriod.YEAR, dt.date(2026, 4, 1))[0] == dt.date(2026, 4, 1)
    assert period_dates(DashboardPeriod.ALL, day)[0] == day  # an empty ledger


async def test_agent_and_customer_dashboards(portfolio: Portfolio) -> None:
    p = portfolio
    a1 = p.users["agent_a1"]
    agent = await _dashboard(p, "agent_a1")
    assert agent["customers"] == 2
    assert m(agent["portfolio"]["outstanding_principal"]) == await ledger_sum(
        p, ("loan_portfolio",),
        loan_where="ln.customer_id IN (SELECT customer_id FROM agent_assignments "
        "WHERE agent_id = :agent AND ended_at IS NULL)",
        params={"agent": a1.id},
    )  # fmt: skip
    assert m(agent["cash_in_hand"]) == await ledger_sum(p, ("agent_cash",), agent_id=a1.id)
    assert agent["overdue"]["loans"] == 1  # L1
    assert [r["id"] for r in agent["recent_loans"]] == [str(p.loans["L2"]), str(p.loans["L1"])]
    assert {r["loan_number"] for r in agent["overdue"]["list"]} <= {
        r["loan_number"] for r in (await p.report("overdue"))["rows"]
    }

    customer = await _dashboard(p, "customer_user")
    [loan] = customer["loans"]
    async with transaction(p.app.state.db) as session:
        row = await session.get(Loan, p.loans["L1"])
        assert row is not None
        assert loan["outstanding_principal"] == str(row.outstanding_principal)
    assert m(loan["outstanding_principal"]) == await ledger_sum(
        p, ("loan_portfolio",), loan_where="ln.id = :l", params={"l": p.loans["L1"]}
    )
    # Paid: what the collections on the customer's loan credited (principal and income).
    assert m(customer["totals"]["total_paid"]) == await ledger_sum(
        p, ("loan_portfolio", *INCOME), normal="credit", entry_kinds=("collection",),
        loan_where="ln.customer_id = :c", params={"c": p.customers["c1"].id},
    )  # fmt: skip
    assert customer["next_due"] is not None
    totals = customer["totals"]
    assert m(totals["overdue_amount"]) > 0
    assert totals["overdue_installments"] == 1  # installment 3, partly paid; 4 is due today
    assert totals["closed_loans"] == 0 and totals["loans"] == 1
    assert m(totals["outstanding_principal"]) == m(loan["outstanding_principal"])
    assert m(totals["outstanding"]) == m(loan["outstanding_total"])
    assert totals["installments_next_7_days"] == 2  # today's and next week's


async def test_every_dashboard_key_is_declared_in_its_response_model(portfolio: Portfolio) -> None:
    """The dashboards' models let an undeclared key through (the answer is the cached JSON):
    this keeps the OpenAPI document complete — every key of every role's dashboard, at every
    level, is a declared field."""
    from pydantic import BaseModel, TypeAdapter

    from namma.reports.schemas import Dashboard

    def undeclared(value: object, where: str) -> list[str]:
        if isinstance(value, BaseModel):
            found = [f"{where}.{k}" for k in value.model_extra or {}]
            for name in type(value).model_fields:
                found += undeclared(getattr(value, name), f"{where}.{name}")
            return found
        if isinstance(value, list):
            return [x for i, item in enumerate(value) for x in undeclared(item, f"{where}[{i}]")]
        return []

    for who in ("admin", "manager_a", "agent_a1", "customer_user"):
        for period in ("today", "all"):
            response = await portfolio.get(who, "/api/dashboard", period=period)
            assert response.status_code == 200, response.text
            parsed = TypeAdapter(Dashboard).validate_python(response.json())
            assert undeclared(parsed, who) == []


@pytest.mark.redis
async def test_dashboards_are_cached_in_redis_too(portfolio: Portfolio, redis_url: str) -> None:
    """With Redis configured (production, CI) the same cache-aside: the entry, its 30 s expiry,
    a hit, and the loans' invalidation. A database of its own (13) so that other tests'
    invalidations on the shared Redis cannot race this one."""
    from sqlalchemy.engine import make_url as url_of

    from namma.kit.cache import KEY_PREFIX, RedisCache
    from namma.loans.cache import loan_cache_invalidate
    from namma.reports.dashboard import dashboard_cached

    p = portfolio
    cache = RedisCache.from_url(url_of(redis_url).set(database="13").render_as_string())
    principal = acting(p.users["manager_a"])
    key = dashboard_key(Role.MANAGER, str(p.branches["A"].id))
    try:
        await cache.delete(key)
        async with transaction(p.app.state.db) as session:
            first = await dashboard_cached(session, cache, principal)
        stored = await cache.get(key)
        assert stored == {
            "shape": stored["shape"],
            "value": _figures(first),
            "built_at": stored["built_at"],
        }
        assert 0 < await cache._redis.ttl(KEY_PREFIX + key) <= 30
        await cache.set(key, {**stored, "value": {**stored["value"], "served_from": "redis"}}, 30)
        async with transaction(p.app.state.db) as session:
            assert (await dashboard_cached(session, cache, principal))["served_from"] == "redis"
        await loan_cache_invalidate(cache, loan_id=p.loans["L1"], customer_id=p.customers["c1"].id)
        assert await cache.get(key) is None
    finally:
        await cache.delete_pattern("dashboard:*")
        await cache.close()


async def test_a_loan_cached_by_code_of_another_answer_shape_is_read_afresh(
    portfolio: Portfolio,
) -> None:
    """After an upgrade that adds a field to the loan's answer, an entry the old code cached
    (without the field, in the old unwrapped form) is loaded afresh instead of failing the
    answer's model with a 500 until it expires."""
    from namma.loans.cache import loan_key

    p = portfolio
    loan_id = p.loans["L1"]
    path = f"/api/loans/{loan_id}"
    fresh = await p.get("manager_a", path)
    assert fresh.status_code == 200
    old = {k: v for k, v in fresh.json().items() if k != "interest_suspense"}
    await p.app.state.cache.set(loan_key(loan_id), old, 60)
    again = await p.get("manager_a", path)
    assert again.status_code == 200, again.text
    assert again.json() == fresh.json()


async def test_dashboard_is_cached_and_a_collection_invalidates_it(portfolio: Portfolio) -> None:
    """Runs last: it posts a collection through the API."""
    p = portfolio
    cache = p.app.state.cache
    manager = p.users["manager_a"]
    key = dashboard_key(Role.MANAGER, str(p.branches["A"].id))
    await cache.delete_pattern("dashboard:*")
    await cache.delete_pattern(COPY_PREFIX + "dashboard:*")
    assert await cache.get(key) is None
    first = await _dashboard(p, "manager_a")
    # Each period has its own entry.
    await p.get("manager_a", "/api/dashboard", period="year")
    year_key = dashboard_key(Role.MANAGER, str(p.branches["A"].id), DashboardPeriod.YEAR)
    assert (await cache.get(year_key))["value"]["period"]["name"] == "year"
    stored = await cache.get(key)
    assert stored["value"] == _figures(first) and first["stale"] is False
    if cache.backend == "memory":  # the entry lives 30 s (Redis: SET … EX 30, same call)
        expires_at, _ = cache._entries[key]
        assert 0 < expires_at - time.monotonic() <= 30
    # A second call is served from the cache: a marker planted in the cached value comes back.
    await cache.set(key, {**stored, "value": {**stored["value"], "served_from": "cache"}}, 30)
    assert (await _dashboard(p, "manager_a"))["served_from"] == "cache"
    # An entry written by code of another answer shape (before an upgrade) is built afresh,
    # not served (it would fail the answer's model): here, the old unwrapped form with a field
    # the model does not have.
    # (Without the copy kept to answer while a new one is built, D-221: see below.)
    await cache.set(key, {**_figures(first), "served_from": "old code"}, 30)
    await cache.delete(COPY_PREFIX + key)
    rebuilt = await _dashboard(p, "manager_a")
    assert "served_from" not in rebuilt and _figures(rebuilt) == _figures(first)
    assert rebuilt["stale"] is False and rebuilt["figures_at"] >= first["figures_at"]
    assert (await cache.get(key))["value"] == _figures(first)
    # A collection through the API invalidates, after its commit, the dashboards showing its
    # branch's figures: the branch's and the institution's — not the other branch's.
    admin_key = dashboard_key(Role.ADMIN, "all")
    await _dashboard(p, "admin")
    assert await cache.get(admin_key) is not None
    other_key = dashboard_key(Role.MANAGER, str(p.branches["B"].id))
    await _dashboard(p, "manager_b")
    other = await cache.get(other_key)
    assert other is not None
    response = await p.client.post(
        "/api/collections",
        json={
            "loan_id": str(p.loans["L2"]),
            "amount": "700.00",
            "collected_on": TODAY.isoformat(),
            "method": "cash",
        },
        headers={**await p.headers("agent_a1"), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 201, response.text
    assert await cache.get(key) is None and await cache.get(admin_key) is None
    assert await cache.get(year_key) is None
    assert await cache.get(other_key) == other
    # The Manager did not write: the last dashboard built is answered at once, marked stale
    # with the time of its figures, and a new one is built in the background (D-221).
    kept = await _dashboard(p, "manager_a")
    assert kept["stale"] is True and _figures(kept) == _figures(rebuilt)
    assert kept["figures_at"] == rebuilt["figures_at"]
    assert await background_settle() == 1
    after = await _dashboard(p, "manager_a")
    assert after["stale"] is False and after["figures_at"] >= kept["figures_at"]
    assert "served_from" not in after
    assert m(after["today"]["collected_amount"]) == m(first["today"]["collected_amount"]) + D(
        "700.00"
    )
    assert m(after["portfolio"]["outstanding_principal"]) == m(
        first["portfolio"]["outstanding_principal"]
    ) - m(response.json()["collection"]["principal"])
    assert manager.branch_id == p.branches["A"].id
    # Capital moves the Admin's capital panel: an investment invalidates the dashboards too.
    assert (await _dashboard(p, "admin"))["stale"] is True  # the collection moved it too
    await background_settle()
    before = await _dashboard(p, "admin")
    assert before["stale"] is False and await cache.get(admin_key) is not None
    invested = await p.client.post(
        "/api/capital/investments",
        json={"amount": "25000.00", "source": "Founders"},
        headers=await p.headers("admin"),
    )
    assert invested.status_code == 201, invested.text
    assert await cache.get(admin_key) is None
    after = await _dashboard(p, "admin")
    assert m(after["capital"]["own_capital"]) == m(before["capital"]["own_capital"]) + D("25000.00")
    # A refused write changes nothing and leaves the cache alone.
    refused = await p.client.post(
        "/api/capital/investments",
        json={"amount": "-1.00", "source": "Founders"},
        headers=await p.headers("admin"),
    )
    assert refused.status_code == 422
    assert (await cache.get(admin_key))["value"] == _figures(after)
    # Staff: deactivating an agent changes the agent count at once.
    agent = p.users["agent_a2"]
    done = await p.client.post(
        f"/api/staff/{agent.id}/deactivate", headers=await p.headers("admin")
    )
    assert done.status_code == 200, done.text
    assert await cache.get(admin_key) is None
    assert (await _dashboard(p, "admin"))["people"]["agents"] == after["people"]["agents"] - 1
    done = await p.client.post(
        f"/api/staff/{agent.id}/reactivate", headers=await p.headers("admin")
    )
    assert done.status_code == 200, done.text
