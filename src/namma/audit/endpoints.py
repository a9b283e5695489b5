"""`GET /api/audit`: the audit log for Admins, and for Managers granted `audit:read` the
entries of their own branch's people."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from namma.audit.queries import AUDIT_LIST_MAX_LIMIT, audit_list
from namma.audit.schemas import AuditEntryOut, AuditPage
from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.kit.apitypes import MAX_BIGINT, Moment, QueryText
from namma.kit.deps import SessionDep
from namma.models import Role

router = APIRouter(prefix="/api", tags=["audit"])


@router.get("/audit")
async def audit_entries(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.AUDIT_READ))],
    actor_id: uuid.UUID | None = None,
    action: Annotated[QueryText | None, Query(max_length=100)] = None,
    entity_type: Annotated[QueryText | None, Query(max_length=100)] = None,
    entity_id: Annotated[QueryText | None, Query(max_length=100)] = None,
    since: Moment | None = None,
    until: Moment | None = None,
    before_id: Annotated[
        int | None,
        Query(ge=1, le=MAX_BIGINT, description="Cursor: `next` of the previous page"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=AUDIT_LIST_MAX_LIMIT)] = 50,
) -> AuditPage:
    """Newest first. Pass the response's `next` as `before_id` for the following page.
    A Manager (granted `audit:read`) sees the entries whose actor is of their branch."""
    if principal.role is not Role.ADMIN and principal.branch_id is None:
        return AuditPage(entries=[], next=None)  # no branch, nothing in scope
    entries = await audit_list(
        session,
        branch_id=None if principal.role is Role.ADMIN else principal.branch_id,
        actor_id=actor_id,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        since=since,
        until=until,
        before_id=before_id,
        limit=limit,
    )
    return AuditPage(
        entries=[AuditEntryOut.model_validate(e) for e in entries],
        next=entries[-1].id if len(entries) == limit else None,
    )
