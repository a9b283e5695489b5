"""Authentication commands: login (password, then TOTP when enabled), refresh, logout,
TOTP enrolment, password change. Services take a session and never commit.

Failures that must leave a trace (a failed login, a reused refresh token) *return* an outcome
instead of raising, so that the request still commits the counter update and the audit entry.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Literal

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import AuditActor, audit_record
from namma.auth.deps import RateLimitedError
from namma.auth.throttle import KNOWN_ADDRESS_DAYS, LoginThrottle, Refusal, account_key
from namma.auth.tokens import (
    REFRESH_TOKEN_LIFETIME,
    AccessClaims,
    TokenError,
    access_token_issue,
    challenge_token_issue,
    challenge_token_verify,
    csrf_token_for,
    refresh_token_new,
    refresh_token_successor,
    token_hash,
)
from namma.auth.totp import (
    recovery_code_normalise,
    recovery_codes_new,
    totp_code_step,
    totp_provisioning_uri,
    totp_qr_svg,
    totp_secret_decrypt,
    totp_secret_encrypt,
    totp_secret_new,
)
from namma.kit.errors import ConflictError, InvalidInputError
from namma.kit.passwords import password_check, password_hash, password_verify
from namma.models import RecoveryCode, RefreshToken, Role, User

CHALLENGE_TOTP_LOGIN = "totp-login"
CHALLENGE_TOTP_ENROL = "totp-enrol"

LoginStatus = Literal["ok", "invalid", "throttled", "totp_required", "totp_enrolment_required"]


@dataclass(frozen=True)
class IssuedSession:
    user: User
    access_token: str
    refresh_token: str
    session_id: uuid.UUID
    csrf_token: str


@dataclass(frozen=True)
class LoginOutcome:
    status: LoginStatus
    session: IssuedSession | None = None
    challenge: str | None = None
    refusal: Refusal | None = None  # status "throttled": why, and how long to wait


@dataclass(frozen=True)
class TotpEnrolment:
    secret: str
    otpauth_uri: str
    qr_svg: str


def actor_as(actor: AuditActor, user: User) -> AuditActor:
    """The request's actor (address, agent, request id), speaking for ``user``."""
    return dataclasses.replace(actor, actor_id=user.id, actor_role=user.role.value)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def login_normalise(login: str) -> tuple[str, str | None]:
    """('email', value) or ('phone', 10 digits) for what a user typed in the login box."""
    value = login.strip()
    if "@" in value:
        return "email", value.lower()
    digits = re.sub(r"[\s\-()]", "", value)
    digits = re.sub(r"^(\+91|0091|0)", "", digits)
    return ("phone", digits) if re.fullmatch(r"[6-9]\d{9}", digits) else ("phone", None)


async def _user_by_login(session: AsyncSession, login: str) -> User | None:
    kind, value = login_normalise(login)
    if value is None:
        return None
    column = User.email if kind == "email" else User.phone
    return await session.scalar(select(User).where(column == value).with_for_update())


async def _address_known(session: AsyncSession, user: User | None, address: str | None) -> bool:
    """Did this account sign in (or refresh its session) from ``address`` lately? The query
    runs for unknown logins too, so both take as long."""
    since = _now() - dt.timedelta(days=KNOWN_ADDRESS_DAYS)
    found = await session.scalar(
        select(RefreshToken.id)
        .where(RefreshToken.user_id == (user.id if user else uuid.UUID(int=0)))
        .where(RefreshToken.ip == (address or ""))
        .where(RefreshToken.created_at >= since)
        .limit(1)
    )
    return found is not None


async def _login_failed(
    session: AsyncSession,
    user: User | None,
    actor: AuditActor,
    *,
    login: str,
    reason: str,
    throttle: LoginThrottle,
    key: str,
) -> None:
    await throttle.failure(key)
    if user is not None:
        # Shown to administrators; the throttle's own counts live in the rate limiter's store.
        user.failed_logins += 1
        user.last_failed_login_at = _now()
    await audit_record(
        session,
        actor=actor_as(actor, user) if user else actor,
        action="auth.login_failed",
        entity_type="user",
        entity_id=str(user.id) if user else None,
        after={"login": login[:254], "reason": reason},
    )


async def session_issue(
    session: AsyncSession,
    *,
    user: User,
    secret_key: str,
    actor: AuditActor,
    method: str,
) -> IssuedSession:
    """Start a login session: a new refresh-token family and an access token bound to it."""
    now = _now()
    family_id = uuid.uuid4()
    refresh = refresh_token_new()
    session.add(
        RefreshToken(
            family_id=family_id,
            user_id=user.id,
            token_hash=token_hash(refresh),
            expires_at=now + REFRESH_TOKEN_LIFETIME,
            ip=actor.ip,
            user_agent=actor.user_agent,
        )
    )
    user.failed_logins = 0
    user.last_failed_login_at = None
    user.last_login_at = now
    await session.flush()
    await audit_record(
        session,
        actor=actor_as(actor, user),
        action="auth.login",
        entity_type="user",
        entity_id=str(user.id),
        after={"session_id": str(family_id), "method": method},
    )
    return _issued(user, refresh, family_id, secret_key, now=now)


def _issued(
    user: User, refresh: str, family_id: uuid.UUID, secret_key: str, *, now: dt.datetime
) -> IssuedSession:
    access = access_token_issue(
        secret_key=secret_key,
        claims=AccessClaims(
            user_id=user.id,
            role=user.role.value,
            token_version=user.token_version,
            session_id=family_id,
        ),
        now=now,
    )
    return IssuedSession(
        user=user,
        access_token=access,
        refresh_token=refresh,
        session_id=family_id,
        csrf_token=csrf_token_for(secret_key=secret_key, session_id=family_id),
    )


async def login_password(
    session: AsyncSession,
    *,
    login: str,
    password: str,
    secret_key: str,
    actor: AuditActor,
    admin_totp_required: bool,
    throttle: LoginThrottle,
) -> LoginOutcome:
    """The password step. Throttled as namma.auth.throttle describes; an unknown login goes
    through the same steps (a dummy hash, the same queries) and gets the same answers."""
    user = await _user_by_login(session, login)
    key = account_key(user_id=user.id if user else None, login=login)
    refusal = await throttle.refusal(key)
    if refusal is not None:
        return LoginOutcome(status="throttled", refusal=refusal)
    guard = await throttle.guard_refusal(key)
    if guard is not None and await _address_known(session, user, actor.ip):
        guard = None  # the person's own device or office: the guard is for strangers
    # Unknown users are checked against a dummy hash: both answers take as long.
    valid, upgraded = await password_verify(password, user.password_hash if user else None)
    usable = user is not None and valid and user.is_active
    if guard is not None and not (usable and user is not None and user.totp_enabled):
        # Under the guard only a right password plus a second factor goes on from a new
        # address; everything else (wrong password, unknown login, no second factor) waits.
        if not usable:
            await _login_failed(
                session, user, actor, login=login, reason="guarded", throttle=throttle, key=key
            )
        return LoginOutcome(status="throttled", refusal=guard)
    if user is None or not valid or not user.is_active:
        reason = "unknown user" if user is None else ("inactive" if valid else "wrong password")
        await _login_failed(
            session, user, actor, login=login, reason=reason, throttle=throttle, key=key
        )
        return LoginOutcome(status="invalid")
    if upgraded:
        user.password_hash = upgraded  # bcrypt from the original app → argon2id
    if user.totp_enabled:
        return LoginOutcome(
            status="totp_required",
            challenge=challenge_token_issue(
                secret_key=secret_key,
                user_id=user.id,
                purpose=CHALLENGE_TOTP_LOGIN,
                token_version=user.token_version,
            ),
        )
    if user.role is Role.ADMIN and admin_totp_required:
        return LoginOutcome(
            status="totp_enrolment_required",
            challenge=challenge_token_issue(
                secret_key=secret_key,
                user_id=user.id,
                purpose=CHALLENGE_TOTP_ENROL,
                token_version=user.token_version,
            ),
        )
    issued = await session_issue(
        session, user=user, secret_key=secret_key, actor=actor, method="password"
    )
    await throttle.success(key)
    return LoginOutcome(status="ok", session=issued)


async def challenge_user(
    session: AsyncSession, *, challenge: str, purpose: str, secret_key: str
) -> User | None:
    """The user a valid, current challenge token speaks for (None if it is not valid)."""
    try:
        user_id, version = challenge_token_verify(challenge, secret_key=secret_key, purpose=purpose)
    except TokenError:
        return None
    user = await session.scalar(select(User).where(User.id == user_id).with_for_update())
    if user is None or not user.is_active or user.token_version != version:
        return None
    return user


async def login_totp(
    session: AsyncSession,
    *,
    challenge: str,
    code: str | None,
    recovery_code: str | None,
    secret_key: str,
    actor: AuditActor,
    throttle: LoginThrottle,
) -> LoginOutcome:
    """The second step. Not under the account-wide guard (the challenge proves the password);
    wrong codes count as failed sign-ins of the account from this address."""
    refusal = await throttle.address_refusal()
    if refusal is not None:
        return LoginOutcome(status="throttled", refusal=refusal)
    user = await challenge_user(
        session, challenge=challenge, purpose=CHALLENGE_TOTP_LOGIN, secret_key=secret_key
    )
    if user is None or user.totp_secret_encrypted is None:
        return LoginOutcome(status="invalid")
    key = account_key(user_id=user.id)
    refusal = await throttle.refusal(key)
    if refusal is not None:
        return LoginOutcome(status="throttled", refusal=refusal)
    if code:
        secret = totp_secret_decrypt(user.totp_secret_encrypted, secret_key=secret_key)
        step = totp_code_step(secret, code, after_step=user.totp_last_step)
        ok = step is not None
        if step is not None:
            user.totp_last_step = step
        method = "totp"
    elif recovery_code:
        ok = await _recovery_code_use(session, user, recovery_code)
        method = "recovery_code"
    else:
        ok, method = False, "none"
    if not ok:
        await _login_failed(
            session,
            user,
            actor,
            login=user.email or user.phone or "",
            reason=f"bad {method}",
            throttle=throttle,
            key=key,
        )
        return LoginOutcome(status="invalid")
    issued = await session_issue(
        session, user=user, secret_key=secret_key, actor=actor, method=method
    )
    await throttle.success(key)
    return LoginOutcome(status="ok", session=issued)


async def _recovery_code_use(session: AsyncSession, user: User, code: str) -> bool:
    hashed = token_hash(recovery_code_normalise(code))
    row = await session.scalar(
        select(RecoveryCode)
        .where(RecoveryCode.user_id == user.id)
        .where(RecoveryCode.code_hash == hashed)
        .where(RecoveryCode.used_at.is_(None))
        .with_for_update()
    )
    if row is None:
        return False
    row.used_at = _now()
    return True


async def totp_enrol_start(session: AsyncSession, *, user: User, secret_key: str) -> TotpEnrolment:
    """Create a pending TOTP secret (active only after ``totp_enrol_confirm``)."""
    if user.totp_enabled:
        raise ConflictError("Two-factor authentication is already enabled for this account.")
    secret = totp_secret_new()
    user.totp_secret_encrypted = totp_secret_encrypt(secret, secret_key=secret_key)
    uri = totp_provisioning_uri(secret, account=user.email or user.phone or str(user.id))
    return TotpEnrolment(secret=secret, otpauth_uri=uri, qr_svg=totp_qr_svg(uri))


async def totp_enrol_confirm(
    session: AsyncSession, *, user: User, code: str, secret_key: str, actor: AuditActor
) -> list[str]:
    """Turn TOTP on after the user proved their app shows the right code; returns the
    recovery codes (shown once, stored hashed)."""
    if user.totp_enabled:
        raise ConflictError("Two-factor authentication is already enabled for this account.")
    if user.totp_secret_encrypted is None:
        raise ConflictError("Start the enrolment first (POST /api/auth/totp/enrol).")
    secret = totp_secret_decrypt(user.totp_secret_encrypted, secret_key=secret_key)
    step = totp_code_step(secret, code)
    if step is None:
        raise InvalidInputError(
            "code", "The code does not match; check the app and the phone's clock"
        )
    user.totp_enabled_at = _now()
    user.totp_last_step = step
    codes = recovery_codes_new()
    await session.execute(
        update(RecoveryCode).where(RecoveryCode.user_id == user.id).values(used_at=_now())
    )
    session.add_all(RecoveryCode(user_id=user.id, code_hash=token_hash(c)) for c in codes)
    await session.flush()
    await audit_record(
        session,
        actor=actor,
        action="auth.totp_enabled",
        entity_type="user",
        entity_id=str(user.id),
    )
    return codes


async def refresh_rotate(
    session: AsyncSession,
    *,
    refresh_token: str,
    secret_key: str,
    actor: AuditActor,
    grace: dt.timedelta = dt.timedelta(0),
) -> IssuedSession | None:
    """Exchange a refresh token for a new pair. A token presented twice revokes its family —
    unless it comes again within ``grace`` of its first use while its successor is still
    unused (the first reply was lost): then the same pair is answered again.

    The successor is derived from the presented token (``refresh_token_successor``) and the
    access token is signed again with the first answer's issue time, so nothing but hashes
    needs storing to answer twice."""
    now = _now()
    current = await session.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == token_hash(refresh_token))
        .with_for_update()
    )
    if current is None:
        return None
    successor = refresh_token_successor(refresh_token, secret_key=secret_key)
    if current.used_at is not None and now - current.used_at <= grace:
        again = await _refresh_answer_again(session, current, successor, secret_key)
        if again is not None:
            return again
    if current.used_at is not None:
        # Someone holds an old copy (a stolen token, or the thief already rotated it): end the
        # whole session for everyone holding any token of it.
        await sessions_revoke(session, family_id=current.family_id)
        await audit_record(
            session,
            actor=dataclasses.replace(actor, actor_id=current.user_id),
            action="auth.refresh_reused",
            entity_type="session",
            entity_id=str(current.family_id),
            after={"presented_token_id": str(current.id)},
        )
        return None
    if current.revoked_at is not None or current.expires_at <= now:
        return None
    user = await session.scalar(select(User).where(User.id == current.user_id))
    if user is None or not user.is_active:
        return None
    current.used_at = now
    session.add(
        RefreshToken(
            family_id=current.family_id,
            user_id=user.id,
            token_hash=token_hash(successor),
            expires_at=now + REFRESH_TOKEN_LIFETIME,
            ip=actor.ip,
            user_agent=actor.user_agent,
        )
    )
    await session.flush()
    return _issued(user, successor, current.family_id, secret_key, now=now)


async def _refresh_answer_again(
    session: AsyncSession, current: RefreshToken, successor: str, secret_key: str
) -> IssuedSession | None:
    """The answer the first use of ``current`` gave, if it still stands (None otherwise)."""
    assert current.used_at is not None
    child = await session.scalar(
        select(RefreshToken)
        .where(RefreshToken.token_hash == token_hash(successor))
        .where(RefreshToken.family_id == current.family_id)
        .with_for_update()
    )
    if child is None or child.used_at is not None or child.revoked_at is not None:
        return None
    if current.revoked_at is not None or child.expires_at <= _now():
        return None
    user = await session.scalar(select(User).where(User.id == current.user_id))
    if user is None or not user.is_active:
        return None
    return _issued(user, successor, current.family_id, secret_key, now=current.used_at)


async def sessions_revoke(
    session: AsyncSession, *, family_id: uuid.UUID | None = None, user_id: uuid.UUID | None = None
) -> None:
    """Revoke one login session (a refresh family) or every session of a user."""
    conditions = []
    if family_id is not None:
        conditions.append(RefreshToken.family_id == family_id)
    if user_id is not None:
        conditions.append(RefreshToken.user_id == user_id)
    if not conditions:
        raise ValueError("say which sessions to revoke")
    await session.execute(
        update(RefreshToken)
        .where(or_(*conditions))
        .where(RefreshToken.revoked_at.is_(None))
        .values(revoked_at=_now())
    )


async def logout(
    session: AsyncSession, *, user_id: uuid.UUID, session_id: uuid.UUID, actor: AuditActor
) -> None:
    await sessions_revoke(session, family_id=session_id)
    await audit_record(
        session,
        actor=actor,
        action="auth.logout",
        entity_type="session",
        entity_id=str(session_id),
    )


async def user_sessions_end_all(session: AsyncSession, user: User) -> None:
    """Every session of ``user`` ends now, access tokens included (token version bump)."""
    user.token_version += 1
    await sessions_revoke(session, user_id=user.id)


async def password_change(
    session: AsyncSession,
    *,
    user_id: uuid.UUID,
    current_password: str,
    new_password: str,
    actor: AuditActor,
    throttle: LoginThrottle,
) -> None:
    """Wrong current passwords are throttled like failed sign-ins (same counters)."""
    user = await session.scalar(select(User).where(User.id == user_id).with_for_update())
    if user is None:
        raise InvalidInputError("current_password", "The current password is wrong")
    key = account_key(user_id=user.id)
    refusal = await throttle.refusal(key)
    if refusal is not None:
        raise RateLimitedError(refusal.message, retry_after=refusal.retry_after_seconds)
    valid, _ = await password_verify(current_password, user.password_hash)
    if not valid:
        await throttle.failure(key)
        raise InvalidInputError("current_password", "The current password is wrong")
    await throttle.success(key)
    problem = await password_check(new_password, context=(user.name, user.email, user.phone))
    if problem:
        raise InvalidInputError("new_password", problem)
    if new_password == current_password:
        raise InvalidInputError("new_password", "Choose a password different from the current one")
    user.password_hash = await password_hash(new_password)
    user.must_change_password = False
    await user_sessions_end_all(session, user)
    await audit_record(
        session,
        actor=actor,
        action="auth.password_changed",
        entity_type="user",
        entity_id=str(user.id),
    )
