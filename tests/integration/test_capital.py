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


# --- reversals ---------------------------------------------------------------------------------


def _reverse(client, headers, path: str, reason: str = "recorded by mistake"):  # type: ignore[no-untyped-def]
    return client.post(f"/api/capital/{path}/reverse", json={"reason": reason}, headers=headers)


async def _audits(app, action: str) -> int:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        return int(
            await session.scalar(
                select(func.count()).select_from(AuditEntry).where(AuditEntry.action == action)
            )
            or 0
        )


async def _kinds(app) -> list[str]:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        return sorted((await session.scalars(select(JournalEntry.kind))).all())


async def test_investment_reversal(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    headers = await bearer(world.admin)
    made = []
    for body in (
        {"amount": "1000000.00", "source": "Founders"},
        {"amount": "2500.50", "source": "Partner", "method": "cash"},
    ):
        response = await client.post("/api/capital/investments", json=body, headers=headers)
        assert response.status_code == 201, response.text
        made.append(response.json())
    wrong, kept = made

    response = await _reverse(client, headers, f"investments/{wrong['id']}", " typed twice ")
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["status"], body["reversal_reason"], body["reversed_by_id"]) == (
        "reversed",
        "typed twice",
        str(world.admin.id),
    )
    assert await _lines(app, body["reversal_entry_id"]) == {
        AccountKind.BANK: (Decimal("0.00"), Decimal("1000000.00")),
        AccountKind.CAPITAL: (Decimal("1000000.00"), Decimal("0.00")),
    }
    listed = (await client.get("/api/capital/investments", headers=headers)).json()
    assert {i["id"]: i["status"] for i in listed["items"]} == {
        wrong["id"]: "reversed",
        kept["id"]: "standing",
    }
    assert (listed["count"], listed["total"]) == (1, "2500.50")
    summary = (await client.get("/api/capital/summary", headers=headers)).json()
    assert summary["own_capital"] == "2500.50"
    assert await _audits(app, "capital.investment_reversed") == 1

    # Once only; unknown ids; a reason; admin only.
    again = await _reverse(client, headers, f"investments/{wrong['id']}")
    assert again.status_code == 409
    assert again.json()["error"]["details"]["reversal_entry_id"] == body["reversal_entry_id"]
    assert (await _reverse(client, headers, f"investments/{uuid.uuid4()}")).status_code == 404
    blank = await _reverse(client, headers, f"investments/{kept['id']}", "  ")
    assert blank.status_code == 422 and blank.json()["error"]["details"][0]["field"] == "reason"
    manager = await bearer(world.manager_a)
    assert (await _reverse(client, manager, f"investments/{kept['id']}")).status_code == 403
    assert await _audits(app, "capital.investment_reversed") == 1
    await _ledger_ok(app)


async def test_repayment_reversal_replays_the_later_repayments(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    headers = await bearer(world.admin)
    b = await _borrow(
        client, headers, received_on=(today_india() - dt.timedelta(days=70)).isoformat()
    )
    row1, row2 = b["schedule"][0], b["schedule"][1]
    assert dt.date.fromisoformat(row2["due_date"]) <= today_india()
    emi = b["installment_amount"]
    paid = []
    for row in (row1, row2):
        response = await _repay(
            client, headers, b["id"], {"amount": emi, "paid_on": row["due_date"]}
        )
        assert response.status_code == 201, response.text
        paid.append(response.json()["repayment"])
    r1, r2 = paid
    assert (r2["principal_paid"], r2["interest_paid"]) == (
        row2["principal_due"],
        row2["interest_due"],
    )

    # A borrowing with standing repayments cannot be reversed.
    refused = await _reverse(client, headers, f"borrowings/{b['id']}")
    assert refused.status_code == 409
    assert set(refused.json()["error"]["details"]["repayment_ids"]) == {r1["id"], r2["id"]}

    # Reverse the first: the second now pays installment 1 (oldest first), with its split.
    response = await _reverse(client, headers, f"borrowings/{b['id']}/repayments/{r1['id']}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["repayment"]["status"] == "reversed"
    assert body["reallocated"] == [r2["id"]]
    detail = body["borrowing"]
    assert [(r["id"], r["status"]) for r in detail["repayments"]] == [
        (r1["id"], "reversed"),
        (r2["id"], "standing"),
    ]
    restated = detail["repayments"][1]
    assert (restated["principal_paid"], restated["interest_paid"]) == (
        row1["principal_due"],
        row1["interest_due"],
    )
    assert [s["owed"] for s in detail["schedule"][:2]] == ["0.00", emi]
    assert detail["schedule"][0]["paid_on"] == row2["due_date"]
    assert detail["outstanding_principal"] == row1["balance_after"]
    assert detail["total_repaid"] == emi
    assert detail["status"] == "active"
    # The ledger follows: the mirror of r1, and interest moved to principal for r2.
    assert await _lines(app, body["repayment"]["reversal_entry_id"]) == {
        AccountKind.BORROWINGS: (Decimal("0.00"), Decimal(row1["principal_due"])),
        AccountKind.INTEREST_EXPENSE: (Decimal("0.00"), Decimal(row1["interest_due"])),
        AccountKind.BANK: (Decimal(emi), Decimal("0.00")),
    }
    shift = Decimal(row1["interest_due"]) - Decimal(row2["interest_due"])
    assert shift > 0
    async with transaction(app.state.db) as session:
        entry = await session.scalar(
            select(JournalEntry.id).where(
                JournalEntry.kind == "capital.borrowing_repayment.reallocation"
            )
        )
    assert entry is not None
    assert await _lines(app, entry) == {
        AccountKind.INTEREST_EXPENSE: (shift, Decimal("0.00")),
        AccountKind.BORROWINGS: (Decimal("0.00"), shift),
    }
    await _ledger_ok(app)

    # Twice: 409. A repayment of another borrowing: 404.
    path = f"borrowings/{b['id']}/repayments/{r1['id']}"
    assert (await _reverse(client, headers, path)).status_code == 409
    other = await _borrow(client, headers, lender_name="Other Lender")
    wrong_pair = f"borrowings/{other['id']}/repayments/{r2['id']}"
    assert (await _reverse(client, headers, wrong_pair)).status_code == 404

    # Reverse the re-allocated second: what its re-allocation moved comes off too.
    response = await _reverse(client, headers, f"borrowings/{b['id']}/repayments/{r2['id']}")
    assert response.status_code == 200, response.text
    detail = response.json()["borrowing"]
    assert (detail["outstanding_principal"], detail["total_repaid"]) == ("500000.00", "0.00")
    assert detail["outstanding_interest"] == b["total_interest"]
    assert all(s["owed"] == s["total_due"] and s["paid_on"] is None for s in detail["schedule"])
    assert "capital.borrowing_repayment.reversal_reallocation" in await _kinds(app)
    await _ledger_ok(app)

    # Now the borrowing itself may go: nothing outstanding, no more repayments, not counted.
    response = await _reverse(client, headers, f"borrowings/{b['id']}", "wrong lender")
    assert response.status_code == 200, response.text
    reversed_ = response.json()
    assert (reversed_["status"], reversed_["outstanding_principal"]) == ("reversed", "0.00")
    assert await _lines(app, reversed_["reversal_entry_id"]) == {
        AccountKind.BANK: (Decimal("0.00"), Decimal("500000.00")),
        AccountKind.BORROWINGS: (Decimal("500000.00"), Decimal("0.00")),
    }
    assert (await _reverse(client, headers, f"borrowings/{b['id']}")).status_code == 409
    assert (await _repay(client, headers, b["id"], {"amount": "1.00"})).status_code == 409
    summary = (await client.get("/api/capital/summary", headers=headers)).json()
    assert summary["borrowings_outstanding"] == "500000.00"  # the other borrowing only
    listed = (await client.get("/api/capital/borrowings", headers=headers)).json()
    assert listed["outstanding_principal"] == "500000.00"
    assert await _audits(app, "capital.borrowing_repayment_reversed") == 2
    assert await _audits(app, "capital.borrowing_reversed") == 1
    await _ledger_ok(app)


async def test_reversing_the_payoff_reopens_the_borrowing(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    headers = await bearer(world.admin)
    b = await _borrow(
        client, headers, received_on=(today_india() - dt.timedelta(days=40)).isoformat()
    )
    first = await _repay(client, headers, b["id"], {"amount": b["installment_amount"]})
    assert first.status_code == 201, first.text
    error = (await _repay(client, headers, b["id"], {"amount": "500000.00"})).json()["error"]
    payoff = error["message"].split("payoff of ")[1].split(" ")[0]
    closing = await _repay(client, headers, b["id"], {"amount": payoff})
    assert closing.status_code == 201, closing.text
    assert closing.json()["borrowing"]["status"] == "closed"
    repayment_id = closing.json()["repayment"]["id"]

    response = await _reverse(client, headers, f"borrowings/{b['id']}/repayments/{repayment_id}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["reallocated"] == []
    detail = body["borrowing"]
    assert (detail["status"], detail["closed_at"]) == ("active", None)
    assert detail["outstanding_principal"] == b["schedule"][0]["balance_after"]
    assert Decimal(detail["outstanding_interest"]) == sum(
        Decimal(r["interest_due"]) for r in b["schedule"][1:]
    )
    assert all(s["interest_waived"] == "0.00" for s in detail["schedule"])
    assert detail["repayments"][0]["payoff"] is False
    await _ledger_ok(app)
    # The payoff can be paid again.
    again = await _repay(client, headers, b["id"], {"amount": payoff})
    assert again.status_code == 201, again.text
    assert again.json()["borrowing"]["status"] == "closed"
    await _ledger_ok(app)


async def test_a_retried_investment_or_borrowing_books_once(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    """The same Idempotency-Key twice (a retry after a lost answer) creates one investment and
    one borrowing, and answers the first response again, byte for byte."""
    from namma.models import Borrowing, Investment

    headers = await bearer(world.admin)
    investment = {"amount": "250000.00", "source": "Founders", "method": "bank", "reference": "I9"}
    key = str(uuid.uuid4())
    first = await client.post(
        "/api/capital/investments", json=investment, headers={**headers, "Idempotency-Key": key}
    )
    again = await client.post(
        "/api/capital/investments", json=investment, headers={**headers, "Idempotency-Key": key}
    )
    assert first.status_code == again.status_code == 201, again.text
    assert again.content == first.content
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = await client.post(
        "/api/capital/investments",
        json={**investment, "amount": "1.00"},
        headers={**headers, "Idempotency-Key": key},
    )
    assert other.status_code == 422  # the same key for another request
    key = str(uuid.uuid4())
    borrowed = [
        await client.post(
            "/api/capital/borrowings", json=BORROWING, headers={**headers, "Idempotency-Key": key}
        )
        for _ in range(2)
    ]
    assert [b.status_code for b in borrowed] == [201, 201]
    assert borrowed[1].content == borrowed[0].content
    async with transaction(app.state.db) as session:
        assert await session.scalar(select(func.count()).select_from(Investment)) == 1
        assert await session.scalar(select(func.count()).select_from(Borrowing)) == 1
    await _ledger_ok(app)


async def test_a_repayment_before_the_due_date_pays_the_next_installment_at_once(  # type: ignore[no-untyped-def]
    app, client, world, bearer
) -> None:
    """A borrowing received today: its first installment falls due next month. Repaid now, the
    money goes onto installment 1 (interest, then principal) — the lender holds no advance."""
    headers = await bearer(world.admin)
    b = await _borrow(client, headers, received_on=today_india().isoformat())
    first = b["schedule"][0]
    assert dt.date.fromisoformat(first["due_date"]) > today_india()
    response = await _repay(client, headers, b["id"], {"amount": b["installment_amount"]})
    assert response.status_code == 201, response.text
    assert response.json()["allocation"][0]["installment_number"] == 1
    assert Decimal(response.json()["repayment"]["interest_paid"]) == Decimal(first["interest_due"])
    assert Decimal(response.json()["repayment"]["principal_paid"]) == Decimal(
        first["principal_due"]
    )
    await _ledger_ok(app)
