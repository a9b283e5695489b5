"""What `/api/notifications` answers."""

from __future__ import annotations

import uuid

from pydantic import Field

from namma.kit.schemas import ApiModel, Timestamp
from namma.models import Notification, NotificationChannel, NotificationStatus


class NotificationOut(ApiModel):
    """A message to a customer. ``last_error`` and ``job_id`` are operators' details: absent
    when the customer it was sent to asks (the routes answer with ``exclude_unset``)."""

    id: uuid.UUID
    customer_id: uuid.UUID
    loan_id: uuid.UUID | None
    installment_id: uuid.UUID | None
    collection_id: uuid.UUID | None
    channel: NotificationChannel
    to: str = Field(description="The recipient: a phone number or an address")
    template: str
    language: str
    subject: str | None
    body: str = Field(description="The text sent")
    status: NotificationStatus
    attempts: int
    last_error: str | None = Field(default=None, description="Staff only")
    job_id: int | None = Field(default=None, description="Staff only")
    created_at: Timestamp
    sent_at: Timestamp | None

    @classmethod
    def of(cls, n: Notification, *, internal: bool = True) -> NotificationOut:
        """``internal=False`` (for the customer it was sent to) leaves out the delivery error
        and the job id."""
        staff_only = {"last_error": n.last_error, "job_id": n.job_id} if internal else {}
        return cls(
            id=n.id,
            customer_id=n.customer_id,
            loan_id=n.loan_id,
            installment_id=n.installment_id,
            collection_id=n.collection_id,
            channel=n.channel,
            to=n.recipient,
            template=n.template,
            language=n.language,
            subject=n.subject,
            body=n.body,
            status=n.status,
            attempts=n.attempts,
            created_at=n.created_at,
            sent_at=n.sent_at,
            **staff_only,
        )


class NotificationList(ApiModel):
    notifications: list[NotificationOut] = Field(description="Newest first")


class NotificationOne(ApiModel):
    notification: NotificationOut
