"""Customers (borrowers), their KYC, and which agent serves each."""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Numeric,
    String,
    Text,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from namma.kit.db import Base, value_enum


class KycDocumentType(enum.StrEnum):
    AADHAAR = "aadhaar"
    PAN = "pan"
    VOTER_ID = "voter_id"
    PASSPORT = "passport"
    DRIVING_LICENCE = "driving_licence"
    RATION_CARD = "ration_card"


class KycStatus(enum.StrEnum):
    PENDING = "pending"
    VERIFIED = "verified"
    REJECTED = "rejected"


class CustomerStatus(enum.StrEnum):
    ACTIVE = "active"
    CLOSED = "closed"  # replaces deletion; history is kept


class Customer(Base):
    __tablename__ = "customers"
    __table_args__ = (
        # One customer per identity document (the keyed hash; the number itself is not stored).
        Index(
            "uq_customers_kyc_document",
            "kyc_document_type",
            "kyc_number_hash",
            unique=True,
            postgresql_where=text("kyc_number_hash IS NOT NULL"),
        ),
        Index("ix_customers_name_id", "name", "id"),
        CheckConstraint("preferred_language IN ('en', 'kn')", name="preferred_language_known"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    branch_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("branches.id", ondelete="RESTRICT"), index=True
    )
    # The customer's portal login, if they have one.
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), unique=True
    )
    name: Mapped[str] = mapped_column(String(120))
    phone: Mapped[str] = mapped_column(String(15), unique=True)
    village: Mapped[str | None] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254))
    # Language of the messages sent to them (namma.notifications): "en" or "kn" (Kannada).
    preferred_language: Mapped[str] = mapped_column(String(5), default="en", server_default="en")
    date_of_birth: Mapped[dt.date | None] = mapped_column(Date)
    address: Mapped[str | None] = mapped_column(Text)
    household_monthly_income: Mapped[Decimal | None] = mapped_column(Numeric(20, 2))
    kyc_document_type: Mapped[KycDocumentType | None] = mapped_column(
        value_enum(KycDocumentType, "kyc_document_type")
    )
    # Only the last 4 characters are kept readable ("XXXXXXXX1234").
    kyc_number_masked: Mapped[str | None] = mapped_column(String(40))
    # HMAC-SHA256 of the normalised number under a key derived from NAMMA_SECRET_KEY.
    kyc_number_hash: Mapped[str | None] = mapped_column(String(64))
    kyc_status: Mapped[KycStatus] = mapped_column(
        value_enum(KycStatus, "kyc_status"), default=KycStatus.PENDING, server_default="pending"
    )
    kyc_decided_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    kyc_decided_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    kyc_rejection_reason: Mapped[str | None] = mapped_column(Text)
    status: Mapped[CustomerStatus] = mapped_column(
        value_enum(CustomerStatus, "customer_status"),
        default=CustomerStatus.ACTIVE,
        server_default="active",
    )
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    closed_reason: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class AgentAssignment(Base):
    """An agent serving a customer from ``assigned_at`` until ``ended_at`` (history is kept)."""

    __tablename__ = "agent_assignments"
    __table_args__ = (
        # At most one current agent per customer.
        Index(
            "uq_agent_assignments_current_customer",
            "customer_id",
            unique=True,
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index("ix_agent_assignments_agent_id_current", "agent_id", "ended_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    customer_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("customers.id", ondelete="CASCADE"), index=True
    )
    agent_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    assigned_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    ended_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))
    assigned_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    reason: Mapped[str | None] = mapped_column(Text)
