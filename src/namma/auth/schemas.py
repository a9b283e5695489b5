"""What `/api/auth/*` answers."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field

from namma.kit.schemas import ApiModel
from namma.models import Role


class UserOut(ApiModel):
    id: uuid.UUID
    name: str
    email: str | None
    phone: str | None
    role: Role
    branch_id: uuid.UUID | None
    must_change_password: bool
    totp_enabled: bool


class SessionOut(ApiModel):
    """A session was opened. The tokens are in the body only for ``"token_delivery": "body"``
    (otherwise in HttpOnly cookies, and these fields are absent)."""

    status: Literal["ok"] = "ok"
    user: UserOut
    csrf_token: str = Field(description="Echo it in `X-CSRF-Token` on cookie-authenticated writes")
    recovery_codes: list[str] | None = Field(
        default=None, description="Only when TOTP enrolment was just confirmed: shown once"
    )
    access_token: str | None = None
    refresh_token: str | None = None
    token_type: Literal["bearer"] | None = None
    expires_in: int | None = Field(default=None, description="Seconds the access token lasts")


class ChallengeOut(ApiModel):
    """The password was right; a second step follows with this challenge."""

    status: Literal["totp_required", "totp_enrolment_required"]
    challenge: str


LoginOut = Annotated[SessionOut | ChallengeOut, Field(discriminator="status")]


class TotpEnrolmentOut(ApiModel):
    secret: str
    otpauth_uri: str
    qr_svg: str


class RecoveryCodesOut(ApiModel):
    recovery_codes: list[str] = Field(description="10 one-time codes, shown once")


class MeOut(ApiModel):
    user: UserOut
    permissions: list[str]
    session_id: uuid.UUID
