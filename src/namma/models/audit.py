"""The audit log: one append-only, hash-chained row per state change or security event.

Rows are written only by ``namma.audit.service.audit_record`` (in the caller's transaction); the
database refuses UPDATE, DELETE and TRUNCATE on the table (trigger ``audit_log_append_only``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import CHAR, BigInteger, DateTime, ForeignKey, Identity, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from namma.kit.db import Base


class AuditEntry(Base):
    __tablename__ = "audit_log"
    __table_args__ = (
        # Filters of the Admin listing, each ending in id so "newest first" pages by keyset.
        Index(None, "entity_type", "entity_id", "id"),
        Index(None, "actor_id", "id"),
        Index(None, "action", "id"),
        Index(None, "at"),
    )

    # The chain order: entries are appended under a lock, so ids grow in chain order.
    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # NULL: the system (jobs, CLI) or an anonymous caller (e.g. a failed login).
    actor_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    actor_role: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(100))
    entity_type: Mapped[str] = mapped_column(String(50))
    entity_id: Mapped[str | None] = mapped_column(String(100))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    ip: Mapped[str | None] = mapped_column(String(45))
    user_agent: Mapped[str | None] = mapped_column(String(512))
    request_id: Mapped[str | None] = mapped_column(String(64))
    # 64 zeros for the first entry; otherwise the previous entry's hash. Unique: the chain cannot
    # fork even if two writers somehow read the same last entry.
    prev_hash: Mapped[str] = mapped_column(CHAR(64), unique=True)
    hash: Mapped[str] = mapped_column(CHAR(64), unique=True)

    def __repr__(self) -> str:
        return f"<AuditEntry {self.id} {self.action} {self.entity_type}:{self.entity_id}>"
