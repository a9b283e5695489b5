"""Messages sent to customers (reminders, overdue notices, receipts, loan notices), one row
per message and channel, with its delivery state.

A row is written, rendered, in the transaction of the event that causes it (or by the daily
task), together with the job that delivers it. ``dedupe_key`` is unique: the same message for
the same installment (or loan, or collection) and channel is recorded, and so sent, once.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    String,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from namma.kit.db import Base, value_enum


class NotificationChannel(enum.StrEnum):
    EMAIL = "email"
    SMS = "sms"


class NotificationStatus(enum.StrEnum):
    QUEUED = "queued"  # waiting for (another) delivery attempt
    SENT = "sent"  # handed to the SMTP server or SMS provider
    FAILED = "failed"  # every attempt failed; its job is in the failed-jobs list


class Language(enum.StrEnum):
    """Languages the message templates exist in (a customer's ``preferred_language``)."""

    EN = "en"
    KN = "kn"


class Notification(Base):
    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        CheckConstraint("language IN ('en', 'kn')", name="language_known"),
        Index("ix_notifications_customer_id_created_at", "customer_id", "created_at"),
        Index("ix_notifications_status_created_at", "status", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="RESTRICT"))
    loan_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("loans.id", ondelete="RESTRICT"), index=True
    )
    installment_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("loan_installments.id", ondelete="RESTRICT"), index=True
    )
    collection_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("collections.id", ondelete="RESTRICT"), index=True
    )
    channel: Mapped[NotificationChannel] = mapped_column(
        value_enum(NotificationChannel, "notification_channel")
    )
    # The address: an e-mail address, or a phone number for SMS.
    recipient: Mapped[str] = mapped_column(String(254))
    # repayment_reminder, overdue_notice, receipt, loan_approved, loan_disbursed
    template: Mapped[str] = mapped_column(String(40))
    language: Mapped[str] = mapped_column(String(5))
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[NotificationStatus] = mapped_column(
        value_enum(NotificationStatus, "notification_status"),
        default=NotificationStatus.QUEUED,
        server_default="queued",
    )
    attempts: Mapped[int] = mapped_column(default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(Text)
    # The delivering job (procrastinate's id; it keeps it through retries).
    job_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
