"""Who is calling, and may they: the route and role layers of authorization.

``require(Permission.X, limit="reads")`` is the one dependency every API route uses:
1. authenticated: an access token from the ``Authorization: Bearer`` header or the
   ``access_token`` cookie, signed by us, unexpired, of a user still active, issued after their
   last password/role change, from a session not logged out;
2. CSRF: a cookie-authenticated unsafe request must carry the session's CSRF token in the
   ``X-CSRF-Token`` header, or (a form posted by a page) in its ``csrf_token`` field (Bearer
   requests need none: browsers never add that header);
3. role: the permission is in the user's role (or granted to them);
4. per-user rate limit of the route's class (reads, writes, money).
Scope — which records — is the third layer, in the queries (``namma.auth.scope``).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Literal

import structlog
from fastapi import Depends, Request
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import AuditActor
from namma.auth.permissions import Permission, permissions_for
from namma.auth.tokens import TokenError, access_token_verify, csrf_token_valid
from namma.config import Settings
from namma.kit.client import client_address, user_agent
from namma.kit.db import after_commit, db_session, raw_connection
from namma.kit.errors import AppError, AuthenticationError, PermissionDeniedError
from namma.kit.recent_writes import recent_writers
from namma.models import Role

ACCESS_COOKIE = "access_token"
REFRESH_COOKIE = "refresh_token"
CSRF_COOKIE = "csrf_token"
CSRF_HEADER = "x-csrf-token"
CSRF_FORM_FIELD = "csrf_token"
_FORM_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data")
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

RateClass = Literal["reads", "writes", "money"]


class RateLimitedError(AppError):
    status_code = 429
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message, details={"retry_after_seconds": retry_after})
        self.retry_after = retry_after
        self.headers = {"Retry-After": str(retry_after)}


class PasswordChangeRequiredError(AppError):
    status_code = 403
    code = "password_change_required"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    user_id: uuid.UUID
    role: Role
    branch_id: uuid.UUID | None
    permissions: frozenset[Permission]
    session_id: uuid.UUID
    via_cookie: bool
    must_change_password: bool
    ip: str
    user_agent: str | None
    request_id: str | None

    def can(self, permission: Permission) -> bool:
        return permission in self.permissions

    @property
    def audit_actor(self) -> AuditActor:
        return AuditActor(
            actor_id=self.user_id,
            actor_role=self.role.value,
            ip=self.ip,
            user_agent=self.user_agent,
            request_id=self.request_id,
        )


def request_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def request_audit_actor(request: Request) -> AuditActor:
    """The actor of an unauthenticated request (login attempts, refreshes)."""
    settings = request_settings(request)
    return AuditActor(
        ip=client_address(request, settings.trusted_proxies),
        user_agent=user_agent(request),
        request_id=structlog.contextvars.get_contextvars().get("request_id"),
    )


def _bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


# One round trip for every authenticated request, straight to the driver (`raw_connection`):
# the user's columns a principal needs, whether the session was revoked, and the user's extra
# permissions.
PRINCIPAL_QUERY = (
    "SELECT u.role, u.branch_id, u.is_active, u.token_version, u.must_change_password, "
    "EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.family_id = %s "
    "AND r.revoked_at IS NOT NULL), "
    "ARRAY(SELECT p.permission FROM user_permissions p WHERE p.user_id = u.id) "
    "FROM users u WHERE u.id = %s"
)


# Declared so that the OpenAPI document (and "Authorize" in /api/docs) shows how to authenticate;
# ``principal_authenticate`` reads the same header and cookie.
BEARER_SCHEME = HTTPBearer(
    auto_error=False,
    scheme_name="bearer",
    description='An access token: POST /api/auth/login with "token_delivery": "body" answers '
    "one (with a second step for a TOTP code when the account has one).",
)
COOKIE_SCHEME = APIKeyCookie(
    name=ACCESS_COOKIE,
    auto_error=False,
    scheme_name="session_cookie",
    description="The browser session set by POST /api/auth/login; unsafe requests also need "
    "the csrf_token cookie's value in X-CSRF-Token.",
)


async def principal_authenticate(request: Request, session: AsyncSession) -> Principal:
    settings = request_settings(request)
    bearer = _bearer_token(request)
    token = bearer or request.cookies.get(ACCESS_COOKIE)
    if not token:
        raise AuthenticationError("Log in to continue.")
    try:
        claims = access_token_verify(token, secret_key=settings.secret_key.get_secret_value())
    except TokenError:
        raise AuthenticationError(
            "Your session has expired or is not valid; log in again."
        ) from None

    connection = await raw_connection(session)
    cursor = await connection.execute(PRINCIPAL_QUERY, (claims.session_id, claims.user_id))
    row = await cursor.fetchone()
    if row is None:
        raise AuthenticationError("Your session has expired or is not valid; log in again.")
    role, branch_id, is_active, token_version, must_change_password, revoked, granted = row
    if not is_active or token_version != claims.token_version or revoked:
        raise AuthenticationError("Your session has ended; log in again.")

    via_cookie = bearer is None
    if via_cookie and request.method in UNSAFE_METHODS:
        csrf = request.headers.get(CSRF_HEADER) or await _csrf_form_field(request)
        if not csrf_token_valid(
            csrf, secret_key=settings.secret_key.get_secret_value(), session_id=claims.session_id
        ):
            raise PermissionDeniedError(
                "Missing or wrong CSRF token: send the csrf_token cookie's value in X-CSRF-Token."
            )

    return Principal(
        user_id=claims.user_id,
        role=Role(role),
        branch_id=branch_id,
        permissions=permissions_for(Role(role), set(granted)),
        session_id=claims.session_id,
        via_cookie=via_cookie,
        must_change_password=must_change_password,
        ip=client_address(request, settings.trusted_proxies),
        user_agent=user_agent(request),
        request_id=structlog.contextvars.get_contextvars().get("request_id"),
    )


def token_subject(request: Request) -> str | None:
    """The user the request's access token names, if it is ours and unexpired — read from the
    token alone, without the database (whether the session still stands is for
    `principal_authenticate`). The key of a person's read-your-writes mark (D-219)."""
    token = _bearer_token(request) or request.cookies.get(ACCESS_COOKIE)
    if not token:
        return None
    try:
        claims = access_token_verify(
            token, secret_key=request_settings(request).secret_key.get_secret_value()
        )
    except TokenError:
        return None
    return str(claims.user_id)


async def _csrf_form_field(request: Request) -> str | None:
    """The CSRF token a page's form carries in its hidden ``csrf_token`` field."""
    if not request.headers.get("content-type", "").startswith(_FORM_TYPES):
        return None
    value = (await request.form()).get(CSRF_FORM_FIELD)
    return value if isinstance(value, str) else None


PERMISSION_MISSING = "This needs the permission %(permission)s, which your account does not have."
"""A 403's message names what was missing (``details.permission`` too)."""


def require(
    permission: Permission, *, limit: RateClass = "reads"
) -> Callable[..., Awaitable[Principal]]:
    """A dependency: the caller, authenticated, allowed ``permission``, within their rate."""

    async def dependency(
        request: Request,
        session: Annotated[AsyncSession, Depends(db_session, scope="function")],
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER_SCHEME)],
        _cookie: Annotated[str | None, Depends(COOKIE_SCHEME)],
    ) -> Principal:
        principal = await principal_authenticate(request, session)
        writers = recent_writers(request)
        if writers is not None and request.method in UNSAFE_METHODS:
            # Once this request's writes are committed, the person's reads see them for the
            # next seconds, on every instance: the primary's, not the replica's (D-219), and
            # dashboards built now, not kept copies (D-221). Nothing if it rolls back.
            person = str(principal.user_id)
            after_commit(session, lambda: writers.wrote(person))
        if permission is not Permission.SELF and principal.must_change_password:
            raise PasswordChangeRequiredError(
                "Change your password first (POST /api/auth/password)."
            )
        if not principal.can(permission):
            if limit == "money":
                await _audit_denial(request, principal, permission)
            raise PermissionDeniedError(
                PERMISSION_MISSING % {"permission": permission.value},
                details={"permission": permission.value},
            )
        settings = request_settings(request)
        rule = {
            "reads": settings.rate_limit_reads,
            "writes": settings.rate_limit_writes,
            "money": settings.rate_limit_money,
        }[limit]
        result = await request.app.state.rate_limiter.hit(
            rule, "user", limit, str(principal.user_id), with_remaining=False
        )
        if not result.allowed:
            raise RateLimitedError(
                "Too many requests; slow down and try again shortly.",
                retry_after=result.retry_after_seconds,
            )
        return principal

    dependency.__name__ = f"require_{permission.name.lower()}"
    dependency.required_permission = permission  # type: ignore[attr-defined]
    return dependency


async def _audit_denial(request: Request, principal: Principal, permission: Permission) -> None:
    """A refused attempt at a money route is a security event. The request's own transaction
    rolls back with the refusal, so the entry is written in a transaction of its own."""
    from namma.audit.service import audit_record
    from namma.kit.db import transaction

    async with transaction(request.app.state.db) as audit_session:
        await audit_record(
            audit_session,
            actor=principal.audit_actor,
            action="auth.permission_denied",
            entity_type="route",
            entity_id=f"{request.method} {request.url.path}"[:100],
            after={"permission": permission.value},
        )
