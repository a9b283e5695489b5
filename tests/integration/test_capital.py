"""Capital through HTTP: investments and borrowings posted to the ledger, a borrowing's schedule
from the money core, repayments (split, idempotent, over-payment refused, closing), and the
capital utilisation figure."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import func, select

from namma.finance import LoanTerms, generate_schedule
from namma.kit.db import transaction
from namma.ledger.queries import ledger_check
from namma.loans.service import today_india
from namma.models import (
    AccountKind,
    AuditEntry,
    BorrowingRepayment,
    JournalEntry,
    JournalLine,
    LedgerAccount,
    Loan,
    LoanStatus,
)

BORROWING = {
    "lender_name": "Capital Finance Ltd",
    "principal": "500000.00",
    "annual_rate": "8",
    "installments": 12,
    "frequency": "monthly",
    "method": "bank",
    "reference": "NEFT-CFL-001",
}


async def _lines(app, entry_id: int) -> dict[AccountKind, tuple[Decimal, Decimal]]:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        rows = (
            await session.execute(
                select(LedgerAccount.kind, JournalLine.debit, JournalLine.credit)
                .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
                .where(JournalLine.entry_id == entry_id)
            )
        ).all()
    return {kind: (debit, credit) for kind, debit, credit in rows}


async def _ledger_ok(app) -> None:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        result = await ledger_check(session)
    assert result.ok, result


async def _borrow(client, headers, **overrides):  # type: ignore[no-untyped-def]
    response = await client.post(
        "/api/capital/borrowings", json={**BORROWING, **overrides}, headers=headers
    )
    assert response.status_code == 201, response.text
    return response.json()


def _repay(client, headers, borrowing_id, body, key=None):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/capital/borrowings/{borrowing_id}/repayments",
        json=body,
        headers={**headers, "Idempotency-Key": key or str(uuid.uuid4())},
    )


async def test_investment_posts_capital_journal(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    headers = await bearer(world.admin)
    response = await client.post(
        "/api/capital/investments",
        json={"amount": "1000000.00", "source": "Founders", "method": "bank", "reference": "X1"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["amount"] == "1000000.00" and body["invested_on"] == today_india().isoformat()
    lines = await _lines(app, body["journal_entry_id"])
    assert lines == {
        AccountKind.BANK: (Decimal("1000000.00"), Decimal("0.00")),
        AccountKind.CAPITAL: (Decimal("0.00"), Decimal("1000000.00")),
    }
    # Cash goes to the head office's cash.
    response = await client.post(
        "/api/capital/investments",
        json={"amount": "2500.50", "source": "Partner", "method": "cash"},
        headers=headers,
    )
    assert response.status_code == 201, response.text
    lines = await _lines(app, response.json()["journal_entry_id"])
    assert set(lines) == {AccountKind.BRANCH_CASH, AccountKind.CAPITAL}

    listed = (await client.get("/api/capital/investments", headers=headers)).json()
    assert listed["count"] == 2 and listed["total"] == "1002500.50"
    async with transaction(app.state.db) as session:
        audited = await session.scalar(
            select(func.count())
            .select_from(AuditEntry)
            .where(AuditEntry.action == "capital.investment_recorded")
        )
    assert audited == 2
    # Bad input: 422 with the field.
    bad = await client.post(
        "/api/capital/investments",
        json={"amount": "0", "source": "Nobody"},
        headers=headers,
    )
    assert bad.status_code == 422
    future = (today_india() + dt.timedelta(days=1)).isoformat()
    bad = await client.post(
        "/api/capital/investments",
        json={"amount": "10.00", "source": "Later", "invested_on": future},
        headers=headers,
    )
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "invested_on"
    await _ledger_ok(app)


async def test_borrowing_stores_the_money_core_schedule(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    headers = await bearer(world.admin)
    received = today_india() - dt.timedelta(days=40)
    body = await _borrow(client, headers, received_on=received.isoformat())
    expected = generate_schedule(
        LoanTerms(
            principal=Decimal("500000.00"),
            annual_rate=Decimal("8"),
            installments=12,
            microfinance=False,
        ),
        disbursed_on=received,
    )
    assert body["status"] == "active"
    assert body["installment_amount"] == str(expected.installment_amount)
    assert body["total_interest"] == str(expected.total_interest)
    assert body["outstanding_principal"] == "500000.00"
    assert [
        (r["number"], r["due_date"], r["principal_due"], r["interest_due"], r["balance_after"])
        for r in body["schedule"]
    ] == [
        (r.number, r.due_date.isoformat(), str(r.principal), str(r.interest), str(r.balance))
        for r in expected.rows
    ]
    # 500000 at 8 % over 12 months: EMI 43494.21 (the origin's formula), first interest 3333.33.
    assert body["installment_amount"] == "43494.21"
    assert body["schedule"][0]["interest_due"] == "3333.33"
    lines = await _lines(app, body["journal_entry_id"])
    assert lines == {
        AccountKind.BANK: (Decimal("500000.00"), Decimal("0.00")),
        AccountKind.BORROWINGS: (Decimal("0.00"), Decimal("500000.00")),
    }
    listed = (await client.get("/api/capital/borrowings", headers=headers)).json()
    assert [b["id"] for b in listed["items"]] == [body["id"]]
    assert listed["outstanding_principal"] == "500000.00"
    # Terms the money core refuses: 422 naming the field.
    bad = await client.post(
        "/api/capital/borrowings",
        json={**BORROWING, "annual_rate": "150"},
        headers=headers,
    )
    assert bad.status_code == 422 and bad.json()["error"]["details"][0]["field"] == "annual_rate"
    unknown = await client.get(f"/api/capital/borrowings/{uuid.uuid4()}", headers=headers)
    assert unknown.status_code == 404
    await _ledger_ok(app)


async def test_repayment_splits_is_idempotent_refuses_excess_and_closes(  # type: ignore[no-untyped-def]
    app, client, world, bearer
) -> None:
    headers = await bearer(world.admin)
    received = today_india() - dt.timedelta(days=40)
    b = await _borrow(client, headers, received_on=received.isoformat())
    first = b["schedule"][0]
    assert dt.date.fromisoformat(first["due_date"]) <= today_india()

    # One installment: its interest and principal exactly.
    key = str(uuid.uuid4())
    pay = {"amount": b["installment_amount"], "reference": "NEFT-R1"}
    response = await _repay(client, headers, b["id"], pay, key)
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["repayment"]["interest_paid"] == first["interest_due"] == "3333.33"
    assert body["repayment"]["principal_paid"] == first["principal_due"]
    assert Decimal(first["interest_due"]) + Decimal(first["principal_due"]) == Decimal(
        b["installment_amount"]
    )
    assert body["allocation"] == [
        {
            "installment_number": 1,
            "principal": first["principal_due"],
            "interest": first["interest_due"],
            "interest_waived": "0.00",
        }
    ]
    assert body["borrowing"]["outstanding_principal"] == first["balance_after"]
    lines = await _lines(app, body["repayment"]["journal_entry_id"])
    assert lines == {
        AccountKind.BORROWINGS: (Decimal(first["principal_due"]), Decimal("0.00")),
        AccountKind.INTEREST_EXPENSE: (Decimal("3333.33"), Decimal("0.00")),
        AccountKind.BANK: (Decimal("0.00"), Decimal(b["installment_amount"])),
    }

    # The same key again: the same answer, nothing twice.
    again = await _repay(client, headers, b["id"], pay, key)
    assert again.status_code == 201 and again.json() == body
    assert again.headers.get("Idempotent-Replayed") == "true"
    # The same key with another body: 422.
    other = await _repay(client, headers, b["id"], {"amount": "1.00"}, key)
    assert other.status_code == 422
    # No key: 422.
    missing = await client.post(
        f"/api/capital/borrowings/{b['id']}/repayments", json=pay, headers=headers
    )
    assert missing.status_code == 422
    async with transaction(app.state.db) as session:
        count = await session.scalar(select(func.count()).select_from(BorrowingRepayment))
    assert count == 1

    # Above the payoff: 422 naming it. Today the payoff is the principal left plus the
    # interest accrued since installment 1's due date (pro rata), from the money core.
    detail = (await client.get(f"/api/capital/borrowings/{b['id']}", headers=headers)).json()
    too_much = await _repay(client, headers, b["id"], {"amount": "500000.00"})
    assert too_much.status_code == 422
    error = too_much.json()["error"]
    assert error["details"][0]["field"] == "amount" and "payoff" in error["message"]
    payoff = Decimal(error["message"].split("payoff of ")[1].split(" ")[0])
    assert payoff > Decimal(detail["outstanding_principal"])
    assert payoff < Decimal(detail["outstanding_principal"]) + Decimal(
        detail["schedule"][1]["interest_due"]
    )

    # Exactly the payoff closes the borrowing; future interest is waived.
    response = await _repay(client, headers, b["id"], {"amount": str(payoff)})
    assert response.status_code == 201, response.text
    closed = response.json()
    assert closed["repayment"]["payoff"] is True
    assert closed["borrowing"]["status"] == "closed"
    assert closed["borrowing"]["outstanding_principal"] == "0.00"
    assert closed["borrowing"]["outstanding_interest"] == "0.00"
    assert Decimal(closed["repayment"]["principal_paid"]) == Decimal(
        detail["outstanding_principal"]
    )
    detail = (await client.get(f"/api/capital/borrowings/{b['id']}", headers=headers)).json()
    assert len(detail["repayments"]) == 2
    assert all(r["owed"] == "0.00" for r in detail["schedule"])
    # A closed borrowing takes no more money.
    response = await _repay(client, headers, b["id"], {"amount": "1.00"})
    assert response.status_code == 409
    await _ledger_ok(app)
    async with transaction(app.state.db) as session:
        kinds = (
            await session.scalars(
                select(JournalEntry.kind).where(JournalEntry.kind.like("capital.%"))
            )
        ).all()
    assert sorted(kinds) == [
        "capital.borrowing",
        "capital.borrowing_repayment",
        "capital.borrowing_repayment",
    ]


async def test_paying_every_installment_closes_the_borrowing(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    """Paid on schedule (each on its due date), the borrowing closes with the last one."""
    headers = await bearer(world.admin)
    received = today_india() - dt.timedelta(days=400)
    b = await _borrow(
        client, headers, received_on=received.isoformat(), installments=3, frequency="quarterly"
    )
    for row in b["schedule"]:
        total = Decimal(row["principal_due"]) + Decimal(row["interest_due"])
        response = await _repay(
            client, headers, b["id"], {"amount": str(total), "paid_on": row["due_date"]}
        )
        assert response.status_code == 201, response.text
        assert response.json()["repayment"]["payoff"] is False
    assert response.json()["borrowing"]["status"] == "closed"
    assert response.json()["borrowing"]["total_repaid"] == str(
        Decimal(b["principal"]) + Decimal(b["total_interest"])
    )
    await _ledger_ok(app)


async def test_summary_utilisation_with_an_active_loan(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    from tests.integration.test_authorization_matrix import Ctx, _loan_id

    headers = await bearer(world.admin)
    empty = (await client.get("/api/capital/summary", headers=headers)).json()
    assert empty["total_capital"] == "0.00" and empty["utilisation_percent"] is None

    ctx = Ctx(app=app, client=client, world=world, caller="admin", scope="own", headers=headers)
    loan_id = await _loan_id(ctx, "active")
    await client.post(
        "/api/capital/investments",
        json={"amount": "300000.00", "source": "Founders"},
        headers=headers,
    )
    await _borrow(client, headers)
    async with transaction(app.state.db) as session:
        loan = await session.get(Loan, uuid.UUID(loan_id))
        assert loan is not None and loan.status is LoanStatus.ACTIVE
        disbursed = loan.outstanding_principal
    assert disbursed == Decimal("10000.00")

    summary = (await client.get("/api/capital/summary", headers=headers)).json()
    total = Decimal("300000.00") + Decimal("500000.00")
    assert summary == {
        "own_capital": "300000.00",
        "borrowings_outstanding": "500000.00",
        "total_capital": "800000.00",
        "disbursed_outstanding": "10000.00",
        "utilisation_percent": str(
            (disbursed * 100 / total).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
        ),
        "surplus": "790000.00",
        "position": "surplus",
    }
    assert summary["utilisation_percent"] == "1.25"
    await _ledger_ok(app)


async def test_capital_is_admin_only(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    for user in (world.manager_a, world.agent_a, world.customer_user_a):
        headers = await bearer(user)
        assert (await client.get("/api/capital/summary", headers=headers)).status_code == 403
        response = await client.post(
            "/api/capital/investments",
            json={"amount": "10.00", "source": "X"},
            headers=headers,
        )
        assert response.status_code == 403
    assert (await client.get("/api/capital/summary")).status_code == 401
