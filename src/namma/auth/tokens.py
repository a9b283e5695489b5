"""Access tokens (JWT), refresh tokens (opaque), CSRF and second-factor challenge tokens.

Pure functions of a secret and the clock, so they can be tested without a database.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

import jwt

ISSUER = "namma-finance"
AUDIENCE = "namma-finance-api"
ALGORITHM = "HS256"
ACCESS_TOKEN_LIFETIME = dt.timedelta(minutes=15)
REFRESH_TOKEN_LIFETIME = dt.timedelta(days=7)
CHALLENGE_TOKEN_LIFETIME = dt.timedelta(minutes=5)


class TokenError(Exception):
    """The token is not one we issued, or it expired; the message is safe to log, not to show."""


@dataclass(frozen=True)
class AccessClaims:
    user_id: uuid.UUID
    role: str
    token_version: int
    session_id: uuid.UUID  # the refresh-token family: logout revokes the access token too


def _signing_key(secret_key: str, purpose: str) -> bytes:
    # Separate keys per purpose: a challenge token can never be replayed as an access token.
    return hmac.new(secret_key.encode(), f"namma:{purpose}".encode(), hashlib.sha256).digest()


def access_token_issue(
    *, secret_key: str, claims: AccessClaims, now: dt.datetime | None = None
) -> str:
    issued = now or dt.datetime.now(dt.UTC)
    payload = {
        "sub": str(claims.user_id),
        "role": claims.role,
        "typ": "access",
        "ver": claims.token_version,
        "sid": str(claims.session_id),
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(issued.timestamp()),
        "exp": int((issued + ACCESS_TOKEN_LIFETIME).timestamp()),
    }
    return jwt.encode(payload, _signing_key(secret_key, "access"), algorithm=ALGORITHM)


def access_token_verify(token: str, *, secret_key: str) -> AccessClaims:
    try:
        payload = jwt.decode(
            token,
            _signing_key(secret_key, "access"),
            algorithms=[ALGORITHM],  # an allow-list: "none" and every other algorithm refused
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["sub", "typ", "iat", "exp", "iss", "aud", "ver", "sid"]},
        )
        if payload["typ"] != "access":
            raise TokenError("not an access token")
        return AccessClaims(
            user_id=uuid.UUID(payload["sub"]),
            role=str(payload["role"]),
            token_version=int(payload["ver"]),
            session_id=uuid.UUID(payload["sid"]),
        )
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid access token: {type(exc).__name__}") from None
    except (KeyError, ValueError, TypeError) as exc:
        raise TokenError(f"malformed access token: {exc}") from None


def challenge_token_issue(
    *, secret_key: str, user_id: uuid.UUID, purpose: str, token_version: int
) -> str:
    """A short-lived token proving the password step passed (for TOTP login or enrolment)."""
    now = dt.datetime.now(dt.UTC)
    payload: dict[str, Any] = {
        "sub": str(user_id),
        "typ": purpose,
        "ver": token_version,
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": int(now.timestamp()),
        "exp": int((now + CHALLENGE_TOKEN_LIFETIME).timestamp()),
    }
    return jwt.encode(payload, _signing_key(secret_key, purpose), algorithm=ALGORITHM)


def challenge_token_verify(token: str, *, secret_key: str, purpose: str) -> tuple[uuid.UUID, int]:
    try:
        payload = jwt.decode(
            token,
            _signing_key(secret_key, purpose),
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            options={"require": ["sub", "typ", "exp", "ver"]},
        )
        if payload["typ"] != purpose:
            raise TokenError("wrong challenge token")
        return uuid.UUID(payload["sub"]), int(payload["ver"])
    except jwt.PyJWTError as exc:
        raise TokenError(f"invalid challenge token: {type(exc).__name__}") from None
    except (KeyError, ValueError, TypeError) as exc:
        raise TokenError(f"malformed challenge token: {exc}") from None


def refresh_token_new() -> str:
    return secrets.token_urlsafe(32)


def refresh_token_successor(token: str, *, secret_key: str) -> str:
    """The refresh token that follows ``token`` in its family: derived (HMAC under a key of its
    own), so a retried refresh can be answered with the same token without storing it."""
    digest = hmac.new(_signing_key(secret_key, "refresh-successor"), token.encode(), "sha256")
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    """What we store for refresh tokens and recovery codes: SHA-256 (they are long and random)."""
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token_for(*, secret_key: str, session_id: uuid.UUID) -> str:
    """The CSRF token of one login session: derived, so nothing needs to be stored."""
    return hmac.new(
        _signing_key(secret_key, "csrf"), str(session_id).encode(), hashlib.sha256
    ).hexdigest()


def csrf_token_valid(token: str | None, *, secret_key: str, session_id: uuid.UUID) -> bool:
    if not token:
        return False
    return hmac.compare_digest(token, csrf_token_for(secret_key=secret_key, session_id=session_id))
