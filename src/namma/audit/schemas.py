"""What `GET /api/audit` answers."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import Field

from namma.kit.schemas import ApiModel, Timestamp


class AuditEntryOut(ApiModel):
    id: int
    at: Timestamp
    actor_id: uuid.UUID | None
    actor_role: str | None
    action: str = Field(examples=["collection.recorded"])
    entity_type: str
    entity_id: str | None
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    ip: str | None
    user_agent: str | None
    request_id: str | None
    hash: str = Field(description="This entry's link in the hash chain (hex SHA-256)")


class AuditPage(ApiModel):
    entries: list[AuditEntryOut] = Field(description="Newest first")
    next: int | None = Field(description="Pass as `before_id` for the next page; null at the end")
