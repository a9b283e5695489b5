"""Notifications to customers: record each message, enqueue its delivery, deliver it.

**Recording.** A message is rendered when it is recorded (the row keeps exactly what was sent)
in the customer's ``preferred_language``, once per channel: SMS to the phone always, e-mail
when the customer has an address and SMTP is configured. Rows are inserted with
``ON CONFLICT (dedupe_key) DO NOTHING`` and a delivery job is deferred, in the same
transaction, for each row actually inserted: an event that commits gets its messages, one that
rolls back gets none, and the same message (template, installment / loan / collection, stage,
channel) is never recorded twice.

**Events** (called by the endpoints, before their commit): ``notify_loan_approved``,
``notify_loan_disbursed``, ``notify_receipts``, ``notify_collection_reversed`` (the receipt
message already went: the customer is told it no longer counts).

**Daily** (``notifications_daily``, a periodic job): one set-based query picks the unpaid
installments of active loans due within ``reminder_days_before`` days (repayment reminder) or
1, 7 or 30 days overdue (overdue notice; up to ``CATCH_UP_DAYS`` late if a day was missed),
skipping those already notified; one insert records them; their jobs are deferred in batches.

**Delivery** (``notification_deliver``, the ``notifications:deliver`` job): send, then mark the
row ``sent``; on failure count the attempt, keep the error, and leave it ``queued`` for the
job's next retry or, after the last retry, ``failed`` (the job is then in
``namma jobs failed``; ``namma jobs retry`` runs it again). A message the mail server refused
for good (an unknown mailbox) is ``failed`` at once, and its job is not retried.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from namma.config import Settings, get_settings
from namma.finance import Schedule
from namma.finance.owed import owed
from namma.jobs import job_app
from namma.kit.db import raw_connection
from namma.kit.jobs import REQUEST_ID_KWARG, job_defer
from namma.kit.sqltext import sql_of
from namma.models import (
    Collection,
    Customer,
    Loan,
    Notification,
    NotificationChannel,
    NotificationStatus,
)
from namma.notifications.providers import (
    ChannelNotConfiguredError,
    SmtpMailer,
    delivery_refused,
    sms_provider,
)
from namma.notifications.rendering import (
    COLLECTION_REVERSED,
    DUE_DATE_MOVED,
    LOAN_APPROVED,
    LOAN_DISBURSED,
    LOAN_RESTRUCTURED,
    OVERDUE,
    RECEIPT,
    REMINDER,
    message_render,
)

log = structlog.get_logger(__name__)

DELIVER = "notifications:deliver"
# Overdue notices go this many days after the due date.
OVERDUE_STAGES = (1, 7, 30)
# A notice (or reminder) missed because the daily job did not run is still sent this many days
# late, no later: the windows of the stages never overlap.
CATCH_UP_DAYS = 2
INSERT_CHUNK = 1000
ZERO = Decimal("0.00")


@dataclass(frozen=True)
class Contact:
    customer_id: uuid.UUID
    name: str
    phone: str
    email: str | None
    language: str


@dataclass
class Draft:
    """One message before it is split into channels."""

    contact: Contact
    template: str
    key: str  # the dedupe key without the channel
    context: dict[str, Any]
    loan_id: uuid.UUID | None = None
    installment_id: uuid.UUID | None = None
    collection_id: uuid.UUID | None = None


def _contact(customer: Customer) -> Contact:
    return Contact(
        customer_id=customer.id,
        name=customer.name,
        phone=customer.phone,
        email=customer.email,
        language=customer.preferred_language,
    )


def _rows(drafts: Sequence[Draft], settings: Settings) -> list[dict[str, Any]]:
    """The notification rows of ``drafts``, rendered, one per channel."""
    email_on = bool(settings.smtp_host)
    common = {"lender_name": settings.lender_name, "grievance_contact": settings.grievance_contact}
    rows: list[dict[str, Any]] = []
    for draft in drafts:
        contact = draft.contact
        rendered = message_render(
            draft.template,
            contact.language,
            {**common, "customer_name": contact.name, **draft.context},
        )
        channels: list[tuple[NotificationChannel, str, str | None, str]] = [
            (NotificationChannel.SMS, contact.phone, None, rendered.sms)
        ]
        if email_on and contact.email:
            channels.append(
                (NotificationChannel.EMAIL, contact.email, rendered.subject, rendered.email)
            )
        for channel, recipient, subject, body in channels:
            rows.append(
                {
                    "id": uuid.uuid4(),
                    "customer_id": contact.customer_id,
                    "loan_id": draft.loan_id,
                    "installment_id": draft.installment_id,
                    "collection_id": draft.collection_id,
                    "channel": channel,
                    "recipient": recipient,
                    "template": draft.template,
                    "language": contact.language,
                    "subject": subject,
                    "body": body,
                    "status": NotificationStatus.QUEUED,
                    "attempts": 0,
                    "dedupe_key": f"{draft.key}:{channel.value}",
                }
            )
    return rows


async def _jobs_defer(session: AsyncSession, ids: Sequence[uuid.UUID]) -> None:
    """Defer a delivery job per notification, in the session's transaction, and note each
    job's id on its row. A few: ``job_defer`` each; many: one batch per call."""
    if not ids:
        return
    if len(ids) <= 4:
        job_ids = [
            await job_defer(session, job_app, DELIVER, notification_id=str(notification_id))
            for notification_id in ids
        ]
    else:
        request_id = structlog.contextvars.get_contextvars().get("request_id")
        deferrer = job_app.configure_task(name=DELIVER, connection=await raw_connection(session))
        job_ids = await deferrer.batch_defer_async(
            *({"notification_id": str(i), REQUEST_ID_KWARG: request_id} for i in ids)
        )
    await session.execute(
        text(
            "UPDATE notifications SET job_id = j.job_id "
            "FROM unnest(CAST(:ids AS uuid[]), CAST(:job_ids AS bigint[])) AS j(id, job_id) "
            "WHERE notifications.id = j.id"
        ),
        {"ids": list(ids), "job_ids": list(job_ids)},
    )


async def notifications_record(
    session: AsyncSession, drafts: Sequence[Draft], *, settings: Settings | None = None
) -> list[uuid.UUID]:
    """Record ``drafts`` (each on every channel the customer has) and defer their delivery;
    returns the ids of the rows inserted (a message already recorded is skipped)."""
    settings = settings or get_settings()
    rows = _rows(drafts, settings)
    inserted: list[uuid.UUID] = []
    for start in range(0, len(rows), INSERT_CHUNK):
        chunk = rows[start : start + INSERT_CHUNK]
        statement = (
            insert(Notification)
            .values(chunk)
            .on_conflict_do_nothing(index_elements=[Notification.dedupe_key])
            .returning(Notification.id)
        )
        ids = list((await session.scalars(statement)).all())
        await _jobs_defer(session, ids)
        inserted += ids
    return inserted


# --- events ---------------------------------------------------------------------------------


async def _customer(session: AsyncSession, customer_id: uuid.UUID) -> Customer:
    customer = await session.get(Customer, customer_id)
    assert customer is not None
    return customer


async def notify_loan_approved(session: AsyncSession, *, loan: Loan) -> list[uuid.UUID]:
    """The approval notice of ``loan`` (once per loan and channel)."""
    customer = await _customer(session, loan.customer_id)
    draft = Draft(
        contact=_contact(customer),
        template=LOAN_APPROVED,
        key=f"{LOAN_APPROVED}:{loan.id}",
        loan_id=loan.id,
        context={
            "loan_number": loan.loan_number,
            "principal": loan.principal,
            "installments": loan.installments,
        },
    )
    return await notifications_record(session, [draft])


async def notify_loan_disbursed(
    session: AsyncSession, *, loan: Loan, schedule: Schedule
) -> list[uuid.UUID]:
    """The disbursement notice of ``loan`` (with the schedule its disbursement wrote): amount
    paid out, installment, first due date."""
    customer = await _customer(session, loan.customer_id)
    assert loan.disbursed_on is not None
    draft = Draft(
        contact=_contact(customer),
        template=LOAN_DISBURSED,
        key=f"{LOAN_DISBURSED}:{loan.id}",
        loan_id=loan.id,
        context={
            "loan_number": loan.loan_number,
            "principal": loan.principal,
            "net_disbursed": schedule.net_disbursement,
            "installment_amount": schedule.installment_amount,
            "installments": len(schedule.rows),
            "disbursed_on": loan.disbursed_on,
            "first_due_on": schedule.first_due_on,
        },
    )
    return await notifications_record(session, [draft])


async def notify_receipts(
    session: AsyncSession, *, remaining: Mapping[uuid.UUID, Decimal]
) -> list[uuid.UUID]:
    """A receipt message for each collection (id → what its loan still owed right after it,
    at its posting): amount, receipt number, loan number and that balance."""
    if not remaining:
        return []
    rows = (
        await session.execute(
            select(Collection, Loan.loan_number, Loan.customer_id)
            .join(Loan, Loan.id == Collection.loan_id)
            .where(Collection.id.in_(list(remaining)))
            .order_by(Collection.seq)
        )
    ).all()
    contacts: dict[uuid.UUID, Contact] = {}
    drafts: list[Draft] = []
    for collection, loan_number, customer_id in rows:
        if customer_id not in contacts:
            contacts[customer_id] = _contact(await _customer(session, customer_id))
        drafts.append(
            Draft(
                contact=contacts[customer_id],
                template=RECEIPT,
                key=f"{RECEIPT}:{collection.id}",
                loan_id=collection.loan_id,
                collection_id=collection.id,
                context={
                    "loan_number": loan_number,
                    "receipt_number": collection.receipt_number,
                    "amount": collection.amount,
                    "collected_on": collection.collected_on,
                    "remaining": remaining[collection.id],
                },
            )
        )
    return await notifications_record(session, drafts)


async def notify_collection_reversed(
    session: AsyncSession,
    *,
    collection: Collection,
    loan: Loan,
    remaining: Decimal,
    reversed_on: dt.date,
) -> list[uuid.UUID]:
    """The reversal notice of ``collection`` (once per collection and channel): its receipt,
    amount and loan, the day of the reversal and what the loan owes now."""
    customer = await _customer(session, loan.customer_id)
    draft = Draft(
        contact=_contact(customer),
        template=COLLECTION_REVERSED,
        key=f"{COLLECTION_REVERSED}:{collection.id}",
        loan_id=loan.id,
        collection_id=collection.id,
        context={
            "loan_number": loan.loan_number,
            "receipt_number": collection.receipt_number,
            "amount": collection.amount,
            "collected_on": collection.collected_on,
            "reversed_on": reversed_on,
            "remaining": remaining,
        },
    )
    return await notifications_record(session, [draft])


@dataclass(frozen=True)
class DueDateMove:
    """One installment whose due date a calendar moved."""

    number: int
    old: dt.date
    new: dt.date


async def notify_due_dates_moved(
    session: AsyncSession, *, loan: Loan, moves: Sequence[DueDateMove], holiday: str | None
) -> list[uuid.UUID]:
    """The notice that ``loan``'s due dates moved — by the holiday named ``holiday``, or (None)
    a change of the branch's working days: each installment's old and new date, amounts
    unchanged. Once per loan, moves and channel."""
    if not moves:
        return []
    customer = await _customer(session, loan.customer_id)
    signature = ",".join(f"{m.number}:{m.old.isoformat()}:{m.new.isoformat()}" for m in moves)
    draft = Draft(
        contact=_contact(customer),
        template=DUE_DATE_MOVED,
        key=f"{DUE_DATE_MOVED}:{loan.id}:{hashlib.sha256(signature.encode()).hexdigest()[:32]}",
        loan_id=loan.id,
        context={
            "loan_number": loan.loan_number,
            "holiday": holiday or "",
            "moves": [{"number": m.number, "old": m.old, "new": m.new} for m in moves],
        },
    )
    return await notifications_record(session, [draft])


async def notify_loan_restructured(
    session: AsyncSession,
    *,
    loan: Loan,
    request_id: uuid.UUID,
    schedule: Schedule,
    from_number: int,
) -> list[uuid.UUID]:
    """The notice of an approved restructuring of ``loan`` (once per request, loan and
    channel): the new installment, the next due date, the installments left and the last
    due date."""
    customer = await _customer(session, loan.customer_id)
    rows = schedule.rows[from_number - 1 :]
    payable = [r for r in rows if r.total > 0]
    draft = Draft(
        contact=_contact(customer),
        template=LOAN_RESTRUCTURED,
        key=f"{LOAN_RESTRUCTURED}:{request_id}:{loan.id}",
        loan_id=loan.id,
        context={
            "loan_number": loan.loan_number,
            "installment_amount": schedule.installment_amount,
            "installments_left": len(payable),
            "next_due_on": payable[0].due_date if payable else rows[-1].due_date,
            "next_due_amount": payable[0].total if payable else ZERO,
            "last_due_on": rows[-1].due_date,
        },
    )
    return await notifications_record(session, [draft])


# --- the daily reminders and overdue notices ------------------------------------------------

# What an installment still owes: the money core's rule (`namma.finance.owed`), as SQL.
_OWED = sql_of(owed, "i")
_OWED_EARLIER = sql_of(owed, "j")
# What the customer still has to pay on it: less the part of an advance held that the earlier
# installments do not take (the close of business applies it oldest first as they fall due).
_UNPAID = f"""
CASE WHEN l.advance_balance > 0 THEN
     {_OWED} - LEAST({_OWED}, GREATEST(0, l.advance_balance - COALESCE(
         (SELECT sum({_OWED_EARLIER}) FROM loan_installments j
           WHERE j.loan_id = l.id AND j.number < i.number), 0)))
ELSE {_OWED} END
"""  # noqa: S608 (constant fragments)
_DUE_SQL = text(
    f"""
    SELECT s.template, s.stage, i.id AS installment_id, i.number, i.due_date,
           l.id AS loan_id, l.loan_number,
           c.id AS customer_id, c.name, c.phone, c.email, c.preferred_language,
           u.unpaid AS owed
      FROM unnest(CAST(:templates AS text[]), CAST(:stages AS int[]),
                  CAST(:froms AS date[]), CAST(:tos AS date[]))
           AS s(template, stage, from_date, to_date)
      JOIN loan_installments i ON i.due_date BETWEEN s.from_date AND s.to_date
      JOIN loans l ON l.id = i.loan_id
      JOIN customers c ON c.id = l.customer_id
      CROSS JOIN LATERAL (SELECT {_UNPAID} AS unpaid) u
     WHERE l.status = 'active'
       AND i.status <> 'paid'
       AND u.unpaid > 0
       AND NOT EXISTS (
             SELECT 1 FROM notifications n
              WHERE n.dedupe_key IN (
                      s.template || ':' || s.stage || ':' || i.id || ':' || 'sms',
                      s.template || ':' || s.stage || ':' || i.id || ':' || 'email'))
     ORDER BY i.due_date, l.loan_number, i.number
    """  # noqa: S608 (constant fragments; values are bound parameters)
)


@dataclass
class DailyResult:
    on: dt.date
    reminders: int = 0
    overdue_notices: int = 0
    recorded: list[uuid.UUID] = field(default_factory=list)


def _windows(on: dt.date, reminder_days_before: int) -> list[tuple[str, int, dt.date, dt.date]]:
    """(template, stage, first due date, last due date) of each kind of message sent on ``on``.
    Stage 0 is the reminder; an overdue notice's stage is its days past due."""
    windows = [(REMINDER, 0, on, on + dt.timedelta(days=reminder_days_before))]
    for stage in OVERDUE_STAGES:
        windows.append(
            (
                OVERDUE,
                stage,
                on - dt.timedelta(days=stage + CATCH_UP_DAYS),
                on - dt.timedelta(days=stage),
            )
        )
    return windows


async def notifications_daily(
    session: AsyncSession, *, on: dt.date, settings: Settings | None = None
) -> DailyResult:
    """Record and enqueue the day's repayment reminders and overdue notices (idempotent: a
    second run on the same day finds them recorded and records nothing)."""
    settings = settings or get_settings()
    windows = _windows(on, settings.reminder_days_before)
    rows = (
        await session.execute(
            _DUE_SQL,
            {
                "templates": [w[0] for w in windows],
                "stages": [w[1] for w in windows],
                "froms": [w[2] for w in windows],
                "tos": [w[3] for w in windows],
            },
        )
    ).mappings()
    result = DailyResult(on=on)
    drafts: list[Draft] = []
    for row in rows:
        contact = Contact(
            customer_id=row["customer_id"],
            name=row["name"],
            phone=row["phone"],
            email=row["email"],
            language=row["preferred_language"],
        )
        if row["template"] == REMINDER:
            result.reminders += 1
        else:
            result.overdue_notices += 1
        drafts.append(
            Draft(
                contact=contact,
                template=row["template"],
                key=f"{row['template']}:{row['stage']}:{row['installment_id']}",
                loan_id=row["loan_id"],
                installment_id=row["installment_id"],
                context={
                    "loan_number": row["loan_number"],
                    "installment_number": row["number"],
                    "amount": row["owed"],
                    "due_date": row["due_date"],
                    "days_overdue": (on - row["due_date"]).days,
                },
            )
        )
    result.recorded = await notifications_record(session, drafts, settings=settings)
    log.info(
        "notifications.daily",
        on=on.isoformat(),
        reminders=result.reminders,
        overdue_notices=result.overdue_notices,
        recorded=len(result.recorded),
    )
    return result


# --- delivery -------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeliveryOutcome:
    status: NotificationStatus | None  # None: no such notification
    error: Exception | None = None
    refused: bool = False  # the server refused it for good: no retry can deliver it


async def _send(notification: Notification, settings: Settings) -> None:
    if notification.channel is NotificationChannel.SMS:
        await sms_provider(settings).send(to=notification.recipient, body=notification.body)
        return
    mailer = SmtpMailer.from_settings(settings)
    if mailer is None:
        raise ChannelNotConfiguredError("e-mail is not configured (NAMMA_SMTP_HOST is unset)")
    await mailer.send(
        to=notification.recipient, subject=notification.subject or "", body=notification.body
    )


async def notification_deliver(
    session: AsyncSession,
    *,
    notification_id: uuid.UUID,
    last_attempt: Callable[[Exception], bool],
    settings: Settings | None = None,
) -> DeliveryOutcome:
    """Send one recorded message and record the attempt. Never raises for a failed send: the
    error is returned (after the row is updated) so the caller can commit, then fail the job.

    The row is locked while it is sent, so two runs of the same job (a worker thought dead)
    send it once; a message already sent is not sent again.
    """
    settings = settings or get_settings()
    notification = await session.get(Notification, notification_id, with_for_update=True)
    if notification is None:
        return DeliveryOutcome(status=None)
    if notification.status is NotificationStatus.SENT:
        return DeliveryOutcome(status=NotificationStatus.SENT)
    notification.attempts += 1
    try:
        await _send(notification, settings)
    except Exception as exc:
        notification.last_error = f"{type(exc).__name__}: {exc}"[:2000]
        refused = delivery_refused(exc)
        notification.status = (
            NotificationStatus.FAILED if refused or last_attempt(exc) else NotificationStatus.QUEUED
        )
        log.warning(
            "notification.delivery_failed",
            notification_id=str(notification.id),
            channel=notification.channel.value,
            attempts=notification.attempts,
            final=notification.status is NotificationStatus.FAILED,
            refused=refused,
            error=notification.last_error,
        )
        return DeliveryOutcome(status=notification.status, error=exc, refused=refused)
    notification.status = NotificationStatus.SENT
    notification.sent_at = dt.datetime.now(dt.UTC)
    log.info(
        "notification.sent",
        notification_id=str(notification.id),
        channel=notification.channel.value,
        template=notification.template,
        attempts=notification.attempts,
    )
    return DeliveryOutcome(status=NotificationStatus.SENT)
