"""Branches (offices). Staff belong to one; the head office sees all."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, DateTime, String, func
from sqlalchemy.orm import Mapped, mapped_column

from namma.kit.db import Base


class Branch(Base):
    __tablename__ = "branches"
    __table_args__ = (CheckConstraint("code ~ '^[A-Z0-9]{2,10}$'", name="code_format"),)

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # Short and upper-case: it prefixes loan and receipt numbers (BLR01-2026-000123).
    code: Mapped[str] = mapped_column(String(10), unique=True)
    name: Mapped[str] = mapped_column(String(120))
    is_head_office: Mapped[bool] = mapped_column(default=False)
    is_active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[dt.datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
