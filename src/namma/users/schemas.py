"""What `/api/branches` and `/api/staff` answer."""

from __future__ import annotations

import uuid

from pydantic import Field

from namma.auth.schemas import UserOut
from namma.kit.schemas import ApiModel


class BranchOut(ApiModel):
    id: uuid.UUID
    code: str
    name: str
    is_head_office: bool
    is_active: bool


class BranchList(ApiModel):
    branches: list[BranchOut]


class StaffOut(UserOut):
    is_active: bool
    extra_permissions: list[str] = Field(description="Granted beyond the role's own")


class StaffPage(ApiModel):
    staff: list[StaffOut]
    next: str | None = Field(description="Pass as `after` for the next page; null at the end")


class ExtraPermissionsOut(ApiModel):
    extra_permissions: list[str]
