"""Generated documents: collection receipts and monthly customer statements, as PDF.

A document row exists from the moment it is asked for (``pending``); a job renders it and stores
the bytes (``ready``), or records why it could not (``failed``, after the last retry). One row
per receipt (``kind, collection_id``) and per statement month (``kind, customer_id,
period_start``): generating again replaces the content of the same row, so a job that runs twice
still leaves one document.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from namma.kit.db import Base, value_enum


class DocumentKind(enum.StrEnum):
    STATEMENT = "statement"
    RECEIPT = "receipt"


class DocumentStatus(enum.StrEnum):
    PENDING = "pending"  # asked for; a job will render it
    READY = "ready"
    FAILED = "failed"  # the last attempt failed (see ``error``); asking again retries


class Document(Base):
    __tablename__ = "documents"
    __table_args__ = (
        # A receipt per collection, a statement per customer and month (nulls never collide,
        # so each constraint binds only its own kind).
        UniqueConstraint("kind", "collection_id"),
        UniqueConstraint("kind", "customer_id", "period_start"),
        CheckConstraint(
            "(kind = 'receipt' AND collection_id IS NOT NULL AND period_start IS NULL "
            "AND period_end IS NULL) OR (kind = 'statement' AND collection_id IS NULL "
            "AND period_start IS NOT NULL AND period_end >= period_start)",
            name="kind_fields",
        ),
        CheckConstraint(
            "status <> 'ready' OR (content IS NOT NULL AND sha256 IS NOT NULL "
            "AND size IS NOT NULL AND generated_at IS NOT NULL)",
            name="ready_has_content",
        ),
        Index("ix_documents_customer_id_created_at", "customer_id", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[DocumentKind] = mapped_column(value_enum(DocumentKind, "document_kind"))
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="RESTRICT"))
    loan_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("loans.id", ondelete="RESTRICT"), index=True
    )
    collection_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("collections.id", ondelete="RESTRICT")
    )
    # Statements: the calendar month covered (first and last day).
    period_start: Mapped[dt.date | None] = mapped_column(Date)
    period_end: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[DocumentStatus] = mapped_column(
        value_enum(DocumentStatus, "document_status"),
        default=DocumentStatus.PENDING,
        server_default="pending",
    )
    # The PDF. Deferred and raising: listing documents never drags the bytes along by accident.
    content: Mapped[bytes | None] = mapped_column(
        LargeBinary, deferred=True, deferred_raiseload=True
    )
    sha256: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None] = mapped_column(Text)
    # Who asked (an on-demand statement); NULL for documents made by the system.
    requested_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    generated_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
