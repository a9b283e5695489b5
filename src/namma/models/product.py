"""Loan products and their versions. Editing a product creates a new version; a loan keeps the
version it was sanctioned with."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from namma.kit.db import Base

RATE = Numeric(7, 4)  # up to 999.9999 %: 100 % fits (the origin's NUMERIC(5,3) overflowed)


class LoanProduct(Base):
    __tablename__ = "loan_products"
    __table_args__ = (CheckConstraint("code ~ '^[A-Z0-9-]{2,20}$'", name="code_format"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    code: Mapped[str] = mapped_column(String(20), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str | None] = mapped_column(Text)
    is_active: Mapped[bool] = mapped_column(default=True)
    latest_version: Mapped[int] = mapped_column(default=1)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class LoanProductVersion(Base):
    __tablename__ = "loan_product_versions"
    __table_args__ = (
        UniqueConstraint("product_id", "version"),
        CheckConstraint(
            "min_principal > 0 AND min_principal <= max_principal", name="principal_range"
        ),
        CheckConstraint(
            "min_rate >= 0 AND min_rate <= max_rate AND max_rate <= 100", name="rate_range"
        ),
        CheckConstraint(
            "min_installments >= 1 AND min_installments <= max_installments",
            name="installments_range",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("loan_products.id", ondelete="RESTRICT"), index=True
    )
    version: Mapped[int]
    # The money-core terms except principal, rate and installments (chosen per loan), as data:
    # see namma.products.codec.
    terms: Mapped[dict[str, Any]] = mapped_column(JSONB)
    min_principal: Mapped[Decimal] = mapped_column(Numeric(20, 2))
    max_principal: Mapped[Decimal] = mapped_column(Numeric(20, 2))
    min_rate: Mapped[Decimal] = mapped_column(RATE)
    max_rate: Mapped[Decimal] = mapped_column(RATE)
    default_rate: Mapped[Decimal] = mapped_column(RATE)
    min_installments: Mapped[int]
    max_installments: Mapped[int]
    # Microfinance (RBI): no prepayment penalty; repayment obligations at most this share of
    # household monthly income.
    microfinance: Mapped[bool] = mapped_column(default=True)
    max_obligation_ratio: Mapped[Decimal] = mapped_column(Numeric(5, 4), default=Decimal("0.5"))
    created_by_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL")
    )
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
