"""Notifications through HTTP, the real job engine and a real SMTP server (aiosmtpd on
127.0.0.1): a receipt after a collection and the daily repayment reminder are delivered with the
exact amounts, in Kannada for a customer who prefers it; SMS through the logging provider; every
message recorded (to, channel, template, status, attempts); an SMTP outage retried, then failed
and listed by `namma jobs failed`, then delivered by `namma jobs retry`; loan notices; the daily
job idempotent; the list scoped like the customers it is about."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import socket
import uuid
from collections.abc import Iterator
from decimal import Decimal
from email.message import EmailMessage
from typing import Any

import pytest
import structlog
from aiosmtpd.controller import Controller
from jinja2.exceptions import UndefinedError
from sqlalchemy import select

from namma.config import get_settings
from namma.jobs import job_app
from namma.kit.clock import INDIA
from namma.kit.db import transaction
from namma.kit.jobs import job_defer, jobs_failed
from namma.loans.service import today_india
from namma.models import (
    Customer,
    LoanInstallment,
    Notification,
    NotificationChannel,
    NotificationStatus,
)
from namma.notifications import providers
from namma.notifications.rendering import (
    COLLECTION_REVERSED,
    DUE_DATE_MOVED,
    OVERDUE,
    RECEIPT,
    REMINDER,
    TEMPLATES,
    message_render,
)
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    MONTHLY_PRODUCT,
    collect,
    customer,
    make_loan,
    product,
    settings,
)
from tests.integration.test_jobs import _wait_for, namma_command, running_worker

D = Decimal
REMINDER_DAYS = 3
KAMALA_EMAIL = "kamala@example.com"
KAMALA_PHONE = "9100000001"


# --- a real SMTP server --------------------------------------------------------------------


class Inbox:
    """What the SMTP server received, parsed."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.unknown_mailboxes: set[str] = set()

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if address in self.unknown_mailboxes:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append(message)
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def with_subject(self, part: str) -> list[EmailMessage]:
        return [m for m in self.messages if part in str(m["Subject"])]


class SmtpServer:
    def __init__(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.inbox = Inbox()
        self._controller: Controller | None = None

    def start(self) -> None:
        self._controller = Controller(self.inbox, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[SmtpServer]:
    """A running SMTP server, and the process's settings (read by the endpoints and the jobs,
    as in production, from NAMMA_* variables) pointing at it."""
    server = SmtpServer()
    server.start()
    monkeypatch.setenv("NAMMA_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("NAMMA_SMTP_PORT", str(server.port))
    monkeypatch.setenv("NAMMA_SMTP_STARTTLS", "false")
    monkeypatch.setenv("NAMMA_SMTP_FROM", "Namma Finance <no-reply@namma.example>")
    monkeypatch.setenv("NAMMA_REMINDER_DAYS_BEFORE", str(REMINDER_DAYS))
    monkeypatch.setenv("NAMMA_SMS_PROVIDER", "log")
    get_settings.cache_clear()
    yield server
    server.stop()
    get_settings.cache_clear()  # before monkeypatch restores the environment: nothing reads it


@pytest.fixture
async def kamala(app, customer):  # type: ignore[no-untyped-def]
    """Customer A, with an e-mail address."""
    async with transaction(app.state.db) as session:
        row = await session.get(Customer, customer.id)
        assert row is not None
        row.email = KAMALA_EMAIL
    return customer


async def set_language(app, customer_id: uuid.UUID, language: str) -> None:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        row = await session.get(Customer, customer_id)
        assert row is not None
        row.preferred_language = language


# --- helpers -------------------------------------------------------------------------------

# Loans here are disbursed today unless a test says otherwise: nothing of theirs falls due
# within days of today, so the worker's own periodic run of the daily job (if a test happens
# to run just after 09:00 in India) can never add a message to what a test counts.


async def run_jobs() -> None:
    """Run every job waiting in the queue now (the real worker, in this process)."""
    await job_app.run_worker_async(wait=False, install_signal_handlers=False)


async def notifications(app, **where: Any) -> list[Notification]:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        query = select(Notification)
        for name, value in where.items():
            query = query.where(getattr(Notification, name) == value)
        query = query.order_by(Notification.created_at, Notification.template, Notification.channel)
        return list((await session.scalars(query)).all())


def by_channel(rows: list[Notification]) -> dict[NotificationChannel, Notification]:
    result = {row.channel: row for row in rows}
    assert len(result) == len(rows), f"two rows on one channel: {rows}"
    return result


def text_of(message: EmailMessage) -> str:
    """The decoded text of a received message, with the wire's CRLF line ends as LF."""
    content = message.get_content()
    assert isinstance(content, str)
    return content.replace("\r\n", "\n")


def inr_day(value: dt.date) -> str:
    return value.strftime("%d-%m-%Y")


async def first_installment(app, loan_id: str) -> LoanInstallment:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        row = await session.scalar(
            select(LoanInstallment)
            .where(LoanInstallment.loan_id == uuid.UUID(loan_id))
            .where(LoanInstallment.number == 1)
        )
        assert row is not None
        return row


async def loan_with_notices_delivered(app, client, bearer, world, product, smtp) -> str:  # type: ignore[no-untyped-def]
    """A loan disbursed today, its approval and disbursement messages sent and cleared from the
    inbox: what a test then sends is all the inbox holds."""
    loan_id: str = await make_loan(app, client, bearer, world, product, disbursed_on=today_india())
    await run_jobs()
    smtp.inbox.messages.clear()
    return loan_id


async def daily_job(app, on: dt.date) -> int:  # type: ignore[no-untyped-def]
    """Run the periodic job as the scheduler would on ``on`` (09:00 in India); returns the
    number of messages it recorded."""
    at = dt.datetime.combine(on, dt.time(9, 0), tzinfo=INDIA)
    async with transaction(app.state.db) as session:
        await job_defer(session, job_app, "notifications:daily", timestamp=int(at.timestamp()))
    before = len(await notifications(app))
    await run_jobs()
    return len(await notifications(app)) - before


# --- receipts, loan notices, SMS -----------------------------------------------------------


async def test_receipt_and_loan_notices_are_delivered_and_recorded(
    app, client, world, bearer, product, kamala, smtp, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product, disbursed_on=today_india())

    # Approval and disbursement notices: recorded (queued) in the requests' transactions.
    approved = by_channel(
        await notifications(app, loan_id=uuid.UUID(loan_id), template="loan_approved")
    )
    disbursed = by_channel(
        await notifications(app, loan_id=uuid.UUID(loan_id), template="loan_disbursed")
    )
    assert set(approved) == set(disbursed) == {NotificationChannel.SMS, NotificationChannel.EMAIL}
    assert {(n.status, n.attempts) for n in [*approved.values(), *disbursed.values()]} == {
        (NotificationStatus.QUEUED, 0)
    }
    loan_number = (
        await client.get(f"/api/loans/{loan_id}", headers=await bearer(world.admin))
    ).json()["loan_number"]

    posted = await collect(client, await bearer(world.agent_a), loan_id, "8884.88")
    assert posted.status_code == 201, posted.text
    receipt_number = posted.json()["receipt_number"]
    collection_id = uuid.UUID(posted.json()["collection"]["id"])
    # The receipt is recorded by the job the collection enqueued (with the balance as of
    # the payment), not in the posting request itself.
    assert await notifications(app, collection_id=collection_id) == []

    with structlog.testing.capture_logs() as logs:
        # A logger bound now: loggers are cached on first use, and an earlier test may have
        # bound the provider's before the capture was set up.
        monkeypatch.setattr(providers, "log", structlog.get_logger(providers.__name__))
        await run_jobs()
    receipts = by_channel(await notifications(app, collection_id=collection_id))
    assert {n.template for n in receipts.values()} == {"receipt"}

    # The receipt, by e-mail, with the exact amounts: 8884.88 paid; 92115.12 principal and
    # 5618.53 scheduled interest (6618.53 − 1000.00) still owed.
    [mail] = smtp.inbox.with_subject("Receipt ")
    assert mail["To"] == KAMALA_EMAIL
    assert mail["From"] == "Namma Finance <no-reply@namma.example>"
    assert mail["Subject"] == f"Receipt {receipt_number}: ₹8,884.88 received"
    body = text_of(mail)
    assert "Dear Kamala Customer," in body
    assert (
        f"We have received ₹8,884.88 on {inr_day(today_india())} towards your loan {loan_number}."
        in body
    )
    assert f"Receipt number: {receipt_number}\n" in body
    assert "Amount: ₹8,884.88\n" in body
    assert "Remaining outstanding: ₹97,733.65\n" in body
    assert ("no-reply@namma.example", [KAMALA_EMAIL]) in smtp.inbox.envelopes

    # Approval and disbursement e-mails: 1,00,000.00 at 12 % over 12 months, no charges.
    [approval] = smtp.inbox.with_subject(" is approved")
    assert approval["Subject"] == f"Your loan {loan_number} of ₹1,00,000.00 is approved"
    [payout] = smtp.inbox.with_subject(f"Your loan {loan_number} is disbursed")
    assert payout["Subject"] == f"Your loan {loan_number} is disbursed: ₹1,00,000.00"
    assert "You repay 12 installments of ₹8,884.88" in text_of(payout)
    assert len(smtp.inbox.messages) == 3

    # Every message recorded: to, channel, template, status, attempts.
    rows = await notifications(app, customer_id=kamala.id)
    assert sorted(
        (n.template, n.channel.value, n.recipient, n.status.value, n.attempts) for n in rows
    ) == [
        ("loan_approved", "email", KAMALA_EMAIL, "sent", 1),
        ("loan_approved", "sms", KAMALA_PHONE, "sent", 1),
        ("loan_disbursed", "email", KAMALA_EMAIL, "sent", 1),
        ("loan_disbursed", "sms", KAMALA_PHONE, "sent", 1),
        ("receipt", "email", KAMALA_EMAIL, "sent", 1),
        ("receipt", "sms", KAMALA_PHONE, "sent", 1),
    ]
    assert all(n.sent_at is not None and n.last_error is None and n.job_id for n in rows)
    assert all(n.language == "en" for n in rows)

    # The SMS went through the logging provider, which wrote it (phone masked) to the log.
    sms = receipts[NotificationChannel.SMS]
    assert sms.body == (
        f"{app.state.settings.lender_name}: Received ₹8,884.88 for loan {loan_number}, "
        f"receipt {receipt_number}. Remaining outstanding ₹97,733.65. Thank you."
    )
    sent_sms = [entry for entry in logs if entry.get("event") == "sms.sent"]
    assert {(e["provider"], e["to"]) for e in sent_sms} == {("log", "XXXXXX0001")}
    assert sms.body in [e["body"] for e in sent_sms]
    assert len(sent_sms) == 3

    # A replayed collection request (same Idempotency-Key) records no second receipt.
    key = str(uuid.uuid4())
    agent = await bearer(world.agent_a)
    first = await collect(client, agent, loan_id, "100.00", key=key)
    again = await collect(client, agent, loan_id, "100.00", key=key)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true"
    await run_jobs()
    assert len(await notifications(app, template="receipt")) == 4


async def test_loan_notices_are_recorded_without_email(
    app, client, world, bearer, product, customer
):  # type: ignore[no-untyped-def]
    """No SMTP configured and no address: SMS only; the notices carry the loan's numbers."""
    loan_id = await make_loan(
        app, client, bearer, world, product, amount="12000.00", rate="0", disbursed_on=today_india()
    )
    rows = await notifications(app, loan_id=uuid.UUID(loan_id))
    assert [(n.template, n.channel) for n in rows] == [
        ("loan_approved", NotificationChannel.SMS),
        ("loan_disbursed", NotificationChannel.SMS),
    ]
    assert all(n.recipient == KAMALA_PHONE and n.status is NotificationStatus.QUEUED for n in rows)
    assert "₹12,000.00 is approved" in rows[0].body
    assert "Installment ₹1,000.00, first due on" in rows[1].body
    await run_jobs()
    rows = await notifications(app, loan_id=uuid.UUID(loan_id))
    assert {(n.status, n.attempts) for n in rows} == {(NotificationStatus.SENT, 1)}


async def test_disbursement_notice_shows_the_amount_paid_out_after_deducted_fees(
    app, client, world, bearer, customer
) -> None:  # type: ignore[no-untyped-def]
    """A 1 % processing fee deducted at disbursement: 40,000.00 lent, 39,600.00 paid out."""
    with_fee = {
        **MONTHLY_PRODUCT,
        "code": "IGL-M-FEE",
        "terms": {
            "frequency": "monthly",
            "fees": [
                {"name": "processing", "timing": "disbursement", "basis": "percent", "value": "1"}
            ],
        },
    }
    created = await client.post("/api/products", json=with_fee, headers=await bearer(world.admin))
    assert created.status_code == 201, created.text
    loan_id = await make_loan(
        app, client, bearer, world, created.json(), amount="40000.00", disbursed_on=today_india()
    )
    [sms] = await notifications(app, loan_id=uuid.UUID(loan_id), template="loan_disbursed")
    assert "disbursed, ₹39,600.00 paid out." in sms.body
    [approved] = await notifications(app, loan_id=uuid.UUID(loan_id), template="loan_approved")
    assert "of ₹40,000.00 is approved" in approved.body


async def test_a_sheet_gives_each_posted_line_its_receipt_with_its_own_balance(
    app, client, world, bearer, product, customer
) -> None:  # type: ignore[no-untyped-def]
    """Two lines on one loan (and a refused one between them): each receipt shows what was
    owed after its own payment; the refused line gets none. Owed before: 100,000.00 principal
    + 6,618.53 scheduled interest = 1,06,618.53."""
    loan_id = await make_loan(app, client, bearer, world, product, disbursed_on=today_india())

    def line(amount: str, client_id: str) -> dict[str, Any]:
        return {
            "loan_id": loan_id,
            "amount": amount,
            "collected_on": today_india().isoformat(),
            "method": "cash",
            "client_id": client_id,
        }

    response = await client.post(
        "/api/collection-sheet/post",
        json={"lines": [line("1000.00", "s-1"), line("999999.00", "s-2"), line("2000.00", "s-3")]},
        headers=await bearer(world.agent_a),
    )
    assert response.status_code == 200, response.text
    lines = response.json()["lines"]
    assert [entry["status"] for entry in lines] == [201, 422, 201], lines
    await run_jobs()
    rows = [n for n in await notifications(app, template="receipt")]
    assert len(rows) == 2 and {n.channel for n in rows} == {NotificationChannel.SMS}
    remaining = {n.body.split(", receipt ")[1].split(".")[0]: n.body for n in rows}
    assert set(remaining) == {lines[0]["receipt_number"], lines[2]["receipt_number"]}
    assert "Received ₹1,000.00" in remaining[lines[0]["receipt_number"]]
    assert "Remaining outstanding ₹1,05,618.53." in remaining[lines[0]["receipt_number"]]
    assert "Received ₹2,000.00" in remaining[lines[2]["receipt_number"]]
    assert "Remaining outstanding ₹1,03,618.53." in remaining[lines[2]["receipt_number"]]


# --- the daily reminders and overdue notices -----------------------------------------------


async def test_daily_reminder_in_kannada_is_delivered_once(
    app, client, world, bearer, product, kamala, smtp
) -> None:  # type: ignore[no-untyped-def]
    await set_language(app, kamala.id, "kn")
    loan_id = await make_loan(app, client, bearer, world, product, disbursed_on=today_india())
    loan_number = (
        await client.get(f"/api/loans/{loan_id}", headers=await bearer(world.admin))
    ).json()["loan_number"]
    await run_jobs()  # the loan notices (in Kannada too)
    assert {n.language for n in await notifications(app)} == {"kn"}
    assert any(str(m["Subject"]).startswith(f"ನಿಮ್ಮ ಸಾಲ {loan_number}") for m in smtp.inbox.messages)
    smtp.inbox.messages.clear()
    due = (await first_installment(app, loan_id)).due_date
    days = dt.timedelta

    # NAMMA_REMINDER_DAYS_BEFORE=3: nothing four days before the due date ...
    assert await daily_job(app, due - days(REMINDER_DAYS + 1)) == 0
    # ... the reminder three days before, on both channels, delivered.
    assert await daily_job(app, due - days(REMINDER_DAYS)) == 2
    rows = by_channel(await notifications(app, template="repayment_reminder"))
    assert {(c, n.recipient, n.status, n.attempts, n.language) for c, n in rows.items()} == {
        (NotificationChannel.EMAIL, KAMALA_EMAIL, NotificationStatus.SENT, 1, "kn"),
        (NotificationChannel.SMS, KAMALA_PHONE, NotificationStatus.SENT, 1, "kn"),
    }
    assert {n.installment_id for n in rows.values()} == {(await first_installment(app, loan_id)).id}
    [mail] = smtp.inbox.messages
    assert mail["To"] == KAMALA_EMAIL
    assert mail["Subject"] == f"ಜ್ಞಾಪನೆ: ₹8,884.88 ಕಂತು {inr_day(due)} ರಂದು ಪಾವತಿಸಬೇಕಾಗಿದೆ"
    body = text_of(mail)
    assert body.startswith("ಆತ್ಮೀಯ Kamala Customer ಅವರೇ,\n")
    assert f"ನಿಮ್ಮ ಸಾಲ {loan_number} ರ 1ನೇ ಕಂತು ₹8,884.88 {inr_day(due)} ರಂದು ಬಾಕಿ ಇದೆ." in body
    assert rows[NotificationChannel.SMS].body == (
        f"{app.state.settings.lender_name}: ನಿಮ್ಮ ಕಂತು ₹8,884.88 {inr_day(due)} ರಂದು ಬಾಕಿ ಇದೆ "
        f"(ಸಾಲ {loan_number})."
    )

    # The same day again, and the next days up to the due date: never a second reminder.
    assert await daily_job(app, due - days(REMINDER_DAYS)) == 0
    assert await daily_job(app, due - days(REMINDER_DAYS - 1)) == 0
    assert await daily_job(app, due) == 0
    assert len(smtp.inbox.messages) == 1
    assert len(await notifications(app, template="repayment_reminder")) == 2


async def test_overdue_notices_go_by_stage_and_stop_when_paid(
    app, client, world, bearer, product, kamala, smtp
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product, disbursed_on=today_india())
    await run_jobs()
    smtp.inbox.messages.clear()
    due = (await first_installment(app, loan_id)).due_date
    days = dt.timedelta

    # One day late: the first overdue notice, with the unpaid amount and the days.
    assert await daily_job(app, due + days(1)) == 2
    [mail] = smtp.inbox.messages
    assert mail["Subject"] == f"Overdue: installment of ₹8,884.88 due since {inr_day(due)}"
    assert f"due on {inr_day(due)}, is 1 day overdue. ₹8,884.88 of it is still unpaid." in (
        text_of(mail)
    )
    # Nothing more until the 7-day stage; a missed day is caught up (the 8th day).
    assert await daily_job(app, due + days(2)) == 0
    assert await daily_job(app, due + days(8)) == 2
    assert "is 8 days overdue" in text_of(smtp.inbox.messages[-1])
    assert await daily_job(app, due + days(9)) == 0

    # Part paid (held as an advance for it): the 30-day notice asks only for what is still
    # unpaid.
    posted = await collect(client, await bearer(world.agent_a), loan_id, "884.88")
    assert posted.status_code == 201, posted.text
    # (The same run may also remind of, or notice, installment 2, depending on the months.)
    await daily_job(app, due + days(30))
    first = (await first_installment(app, loan_id)).id
    overdue = await notifications(app, template="overdue_notice", installment_id=first)
    assert len(overdue) == 6 and {n.status for n in overdue} == {NotificationStatus.SENT}
    assert [m["Subject"] for m in smtp.inbox.with_subject(f"due since {inr_day(due)}")] == [
        f"Overdue: installment of ₹{amount} due since {inr_day(due)}"
        for amount in ("8,884.88", "8,884.88", "8,000.00")
    ]


async def test_paid_installments_get_no_reminder(
    app, client, world, bearer, product, kamala, smtp
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await make_loan(app, client, bearer, world, product, disbursed_on=today_india())
    due = (await first_installment(app, loan_id)).due_date
    posted = await collect(client, await bearer(world.agent_a), loan_id, "8884.88")
    assert posted.status_code == 201, posted.text
    await run_jobs()  # the receipt's messages, so that the daily job's count is its own
    # Paid before it falls due: held as an advance, which covers it (no reminder, no notice).
    assert posted.json()["loan"]["advance_balance"] == "8884.88"
    assert await daily_job(app, due - dt.timedelta(days=REMINDER_DAYS)) == 0
    assert await daily_job(app, due + dt.timedelta(days=1)) == 0
    assert await notifications(app, template="repayment_reminder") == []


async def test_many_reminders_in_one_run_each_get_a_job_and_are_delivered(
    app, client, world, bearer, product, kamala, smtp
) -> None:  # type: ignore[no-untyped-def]
    """Three loans due the same day: six messages, deferred as one batch of jobs."""
    loans = [
        await make_loan(
            app,
            client,
            bearer,
            world,
            product,
            amount="12000.00",
            rate="0",
            disbursed_on=today_india(),
        )
        for _ in range(3)
    ]
    await run_jobs()
    smtp.inbox.messages.clear()
    due = (await first_installment(app, loans[0])).due_date
    assert await daily_job(app, due - dt.timedelta(days=REMINDER_DAYS)) == 6
    rows = await notifications(app, template="repayment_reminder")
    assert {n.loan_id for n in rows} == {uuid.UUID(loan) for loan in loans}
    assert len({n.job_id for n in rows}) == 6 and None not in {n.job_id for n in rows}
    assert {(n.status, n.attempts) for n in rows} == {(NotificationStatus.SENT, 1)}
    subjects = [str(m["Subject"]) for m in smtp.inbox.messages]
    assert subjects == [f"Reminder: installment of ₹1,000.00 due on {inr_day(due)}"] * 3


def test_the_daily_job_is_scheduled_every_morning_in_india() -> None:
    periodic = {p.task.name: p.cron for p in job_app.periodic_registry.periodic_tasks.values()}
    assert periodic.get("notifications:daily") == "30 3 * * *"  # 03:30 UTC = 09:00 IST


# --- an SMTP outage: retries, the failed list, `namma jobs retry` --------------------------


@pytest.mark.slow
async def test_smtp_outage_is_retried_then_failed_then_retried_by_hand(
    app, client, world, bearer, product, kamala, smtp, clean_database
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await loan_with_notices_delivered(app, client, bearer, world, product, smtp)
    smtp.stop()  # the port is closed: every connection is refused
    posted = await collect(client, await bearer(world.agent_a), loan_id, "8884.88")
    assert posted.status_code == 201, posted.text
    receipt_number = posted.json()["receipt_number"]
    collection_id = uuid.UUID(posted.json()["collection"]["id"])
    # The receipts job records the messages; the e-mail's first attempt fails at once.
    await run_jobs()

    async def receipt(channel: NotificationChannel) -> Notification:
        return by_channel(await notifications(app, collection_id=collection_id))[channel]

    mail_job = (await receipt(NotificationChannel.EMAIL)).job_id
    assert mail_job is not None

    def job_status() -> str:
        import psycopg

        from namma.kit.db import libpq_url

        with psycopg.connect(libpq_url(clean_database)) as conn:
            row = conn.execute(
                "SELECT status FROM procrastinate_jobs WHERE id = %s", (mail_job,)
            ).fetchone()
        return "deleted" if row is None else str(row[0])

    async with running_worker(poll=0.2):
        # 1 run + 3 retries (2, 4, 8 s apart), then the job is kept as failed.
        await _wait_for(lambda: job_status() == "failed", 40, "the e-mail job to fail")
        await asyncio.sleep(0.5)
        mail = await receipt(NotificationChannel.EMAIL)
        assert (mail.status, mail.attempts, mail.sent_at) == (NotificationStatus.FAILED, 4, None)
        assert mail.last_error is not None and "127.0.0.1" in mail.last_error
        # The SMS of the same receipt did not wait for the e-mail.
        sms = await receipt(NotificationChannel.SMS)
        assert (sms.status, sms.attempts) == (NotificationStatus.SENT, 1)

        failed = await jobs_failed(job_app)
        assert [(f.id, f.task_name) for f in failed] == [(mail_job, "notifications:deliver")]
        assert failed[0].task_kwargs["notification_id"] == str(mail.id)
        listed = await namma_command(clean_database, "jobs", "failed")
        assert listed.returncode == 0, listed.stderr
        assert str(mail_job) in listed.stdout and "notifications:deliver" in listed.stdout

        # The API shows it failed, to staff in scope.
        shown = await client.get(
            "/api/notifications",
            params={"status": "failed"},
            headers=await bearer(world.manager_a),
        )
        assert shown.status_code == 200, shown.text
        assert [(n["id"], n["attempts"]) for n in shown.json()["notifications"]] == [
            (str(mail.id), 4)
        ]
        assert smtp.inbox.messages == []

        # The server is back: the operator retries the job and the receipt is delivered.
        smtp.start()
        retried = await namma_command(clean_database, "jobs", "retry", str(mail_job))
        assert retried.returncode == 0, retried.stderr
        assert f"Job {mail_job} queued again." in retried.stdout
        await _wait_for(lambda: job_status() == "deleted", 10, "the retried job to succeed")

    mail = await receipt(NotificationChannel.EMAIL)
    assert (mail.status, mail.attempts) == (NotificationStatus.SENT, 5)
    assert mail.sent_at is not None
    [delivered] = smtp.inbox.messages
    assert delivered["To"] == KAMALA_EMAIL
    assert delivered["Subject"] == f"Receipt {receipt_number}: ₹8,884.88 received"
    assert "Remaining outstanding: ₹97,733.65\n" in text_of(delivered)
    assert await jobs_failed(job_app) == []


async def test_a_mailbox_the_server_refuses_fails_at_once_without_retries(
    app, client, world, bearer, product, kamala, smtp, clean_database
) -> None:  # type: ignore[no-untyped-def]
    loan_id = await loan_with_notices_delivered(app, client, bearer, world, product, smtp)
    smtp.inbox.unknown_mailboxes.add(KAMALA_EMAIL)

    posted = await collect(client, await bearer(world.agent_a), loan_id, "100.00")
    assert posted.status_code == 201, posted.text
    collection_id = uuid.UUID(posted.json()["collection"]["id"])
    await run_jobs()  # the receipts job, then each message's first (and, here, only) attempt
    await run_jobs()

    rows = by_channel(await notifications(app, collection_id=collection_id))
    mail = rows[NotificationChannel.EMAIL]
    assert (mail.status, mail.attempts, mail.sent_at) == (NotificationStatus.FAILED, 1, None)
    assert mail.last_error is not None and "No such mailbox" in mail.last_error
    assert rows[NotificationChannel.SMS].status is NotificationStatus.SENT
    # Not scheduled for a retry: the job is already in the failed list, after one run.
    failed = await jobs_failed(job_app)
    assert [(f.id, f.task_name, f.attempts) for f in failed] == [
        (mail.job_id, "notifications:deliver", 1)
    ]
    assert smtp.inbox.messages == []


def test_only_a_refusal_for_the_message_itself_is_final() -> None:
    import aiosmtplib

    gone = aiosmtplib.SMTPRecipientRefused(550, "No such mailbox", "a@example.com")
    busy = aiosmtplib.SMTPRecipientRefused(450, "Mailbox busy", "a@example.com")
    assert providers.delivery_refused(gone)
    assert not providers.delivery_refused(busy)
    assert providers.delivery_refused(aiosmtplib.SMTPRecipientsRefused([gone]))
    assert not providers.delivery_refused(aiosmtplib.SMTPRecipientsRefused([gone, busy]))
    assert providers.delivery_refused(aiosmtplib.SMTPDataError(554, "Rejected as spam"))
    assert not providers.delivery_refused(aiosmtplib.SMTPDataError(451, "Try again later"))
    # Our own configuration (sender, login) and the network are retried: an operator fixes them.
    assert not providers.delivery_refused(
        aiosmtplib.SMTPSenderRefused(553, "Sender not allowed", "no-reply@example.com")
    )
    assert not providers.delivery_refused(aiosmtplib.SMTPAuthenticationError(535, "Bad login"))
    assert not providers.delivery_refused(aiosmtplib.SMTPConnectError("refused"))


# --- who sees which messages ---------------------------------------------------------------


async def test_notifications_are_scoped_like_their_customers(app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        rows = {
            name: Notification(
                customer_id=customer.id,
                channel=NotificationChannel.SMS,
                recipient=customer.phone,
                template="loan_approved",
                language="en",
                body=f"a message to {name}",
                dedupe_key=f"test:{name}:sms",
            )
            for name, customer in (("a", world.customer_a), ("b", world.customer_b))
        }
        session.add_all(rows.values())
    ids = {name: str(row.id) for name, row in rows.items()}

    async def listed(user, **params: str) -> Any:  # type: ignore[no-untyped-def]
        response = await client.get("/api/notifications", params=params, headers=await bearer(user))
        if response.status_code != 200:
            return response.status_code
        return sorted(n["id"] for n in response.json()["notifications"])

    both = sorted(ids.values())
    assert await listed(world.admin) == both
    assert await listed(world.manager_a) == [ids["a"]]
    assert await listed(world.manager_b) == [ids["b"]]
    assert await listed(world.agent_a) == [ids["a"]]
    assert await listed(world.agent_a2) == []  # same branch, not their customer
    assert await listed(world.agent_b) == [ids["b"]]
    assert await listed(world.customer_user_a) == [ids["a"]]
    assert await listed(world.customer_user_b) == [ids["b"]]

    # Asking for someone out of scope by id: 404, as for an unknown customer or loan.
    customer_b = str(world.customer_b.id)
    assert await listed(world.customer_user_a, customer_id=customer_b) == 404
    assert await listed(world.agent_a, customer_id=customer_b) == 404
    assert await listed(world.agent_a, customer_id=str(uuid.uuid4())) == 404
    assert await listed(world.agent_a, loan_id=str(uuid.uuid4())) == 404
    assert await listed(world.agent_b, customer_id=customer_b) == [ids["b"]]

    async def one(user, name: str) -> int:  # type: ignore[no-untyped-def]
        response = await client.get(f"/api/notifications/{ids[name]}", headers=await bearer(user))
        if response.status_code == 200:
            assert response.json()["notification"]["id"] == ids[name]
            assert response.json()["notification"]["to"] == rows[name].recipient
        return response.status_code

    assert await one(world.customer_user_a, "a") == 200
    own = (
        await client.get("/api/notifications", headers=await bearer(world.customer_user_a))
    ).json()
    assert "last_error" not in own["notifications"][0] and "job_id" not in own["notifications"][0]
    staff = (await client.get("/api/notifications", headers=await bearer(world.agent_a))).json()
    assert {"last_error", "job_id", "status", "attempts", "to", "channel", "template"} <= set(
        staff["notifications"][0]
    )
    assert await one(world.customer_user_a, "b") == 404
    assert await one(world.agent_a, "b") == 404
    assert await one(world.manager_a, "b") == 404
    assert await one(world.admin, "b") == 200
    assert (await client.get("/api/notifications")).status_code == 401


# --- the templates -------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "kn"])
@pytest.mark.parametrize("template", TEMPLATES)
def test_every_template_renders_in_english_and_kannada(template: str, language: str) -> None:
    context = {
        "lender_name": "Namma Finance",
        "grievance_contact": "grievance@example.com",
        "customer_name": "Kamala",
        "loan_number": "BLR01-2026-000001",
        "principal": D("100000.00"),
        "installments": 12,
        "net_disbursed": D("98230.00"),
        "installment_amount": D("8884.88"),
        "disbursed_on": dt.date(2026, 1, 5),
        "first_due_on": dt.date(2026, 2, 5),
        "receipt_number": "BLR01-R-2026-000001",
        "amount": D("1234567.5"),
        "collected_on": dt.date(2026, 2, 5),
        "reversed_on": dt.date(2026, 2, 6),
        "remaining": D("97733.65"),
        "installment_number": 3,
        "due_date": dt.date(2026, 4, 5),
        "days_overdue": 7,
        "holiday": "Ugadi",
        "moves": [
            {"number": 3, "old": dt.date(2026, 4, 5), "new": dt.date(2026, 4, 6)},
            {"number": 4, "old": dt.date(2026, 5, 5), "new": dt.date(2026, 5, 6)},
        ],
        "installments_left": 9,
        "next_due_on": dt.date(2026, 11, 5),
        "next_due_amount": D("10429.64"),
        "last_due_on": dt.date(2027, 4, 5),
    }
    rendered = message_render(template, language, context)
    assert rendered.subject and rendered.sms and rendered.email.endswith("\n")
    assert "\n" not in rendered.subject and "\n" not in rendered.sms
    assert "{{" not in rendered.email + rendered.sms + rendered.subject
    if language == "kn":  # Kannada script, not the English text
        assert any("\u0c80" <= ch <= "\u0cff" for ch in rendered.subject + rendered.sms)
    if template in (RECEIPT, REMINDER, OVERDUE, COLLECTION_REVERSED):
        assert "₹12,34,567.50" in rendered.subject and "₹12,34,567.50" in rendered.sms
    if template == COLLECTION_REVERSED:
        assert "06-02-2026" in rendered.sms and "BLR01-R-2026-000001" in rendered.sms
    if template == DUE_DATE_MOVED:
        assert "05-04-2026" in rendered.sms and "06-04-2026" in rendered.sms
        assert "Ugadi" in rendered.sms and "06-05-2026" in rendered.email
    if template == "loan_restructured":
        assert "₹10,429.64" in rendered.sms and "05-11-2026" in rendered.sms


def test_a_missing_value_is_an_error_not_a_gap() -> None:
    with pytest.raises(UndefinedError):
        message_render(RECEIPT, "en", {"amount": D("1.00")})
    with pytest.raises(ValueError, match="unknown message template 'nope'"):
        message_render("nope", "en", {})
