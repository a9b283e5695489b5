"""Throttling of failed sign-ins that cannot lock a person out (docs/decisions.md, "Login
throttling").

Only failures count (a wrong password, a wrong TOTP or recovery code, a wrong current password
on a password change); a success is never counted and clears its own back-off. Three limits:

1. **Per client address** (``NAMMA_LOGIN_RATE_LIMIT``, a moving window): failures of any login
   from one address. Over it, every attempt from that address waits — so colleagues behind one
   office address are refused only after that many *failures*, never for signing in.
2. **Per account and address**: after 5 consecutive failures of one account from one address,
   1 s, 2 s, 4 s … (at most 15 minutes) between attempts from there. An attacker elsewhere
   does not slow the account's owner down.
3. **Per account, from anywhere** (the guard against guessing from many addresses): after 10
   consecutive failures from any addresses, the same back-off applies to attempts from an
   address the account has not used in the last 30 days — unless the account has a second
   factor and the password is right, in which case the TOTP step decides. From an address the
   person used before, the guard does not apply.

The account is named by its user id when it exists and by a hash of the normalised login
otherwise, and every rule applies to unknown logins exactly as to real ones, so no answer (nor
its timing) tells whether a login exists. State lives in the rate limiter's store (Redis when
configured, in-process otherwise), never in the request's transaction.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass

from namma.kit.ratelimit import RateLimiter

FAILURES_BEFORE_DELAY = 5
FAILURES_BEFORE_GUARD = 10
MAX_DELAY_SECONDS = 15 * 60
# An address the account signed in or refreshed from this recently is "known" to the guard.
KNOWN_ADDRESS_DAYS = 30

MESSAGE_ADDRESS = "Too many failed sign-ins from your network. Wait {wait} before trying again."
MESSAGE_ACCOUNT = "Too many failed attempts. Wait {wait} before trying again."
MESSAGE_GUARD = (
    "There have been many failed sign-ins to this login from elsewhere, so sign-ins from new "
    "places wait {wait}. Sign in from a device or network you used before, or try again then."
)


def account_key(*, user_id: uuid.UUID | None, login: str | None = None) -> str:
    """The throttle's name for an account: its user id, or (unknown login) a hash of what was
    typed — logins are not kept in the store in clear."""
    if user_id is not None:
        return f"user:{user_id}"
    digest = hashlib.sha256((login or "").strip().lower().encode()).hexdigest()[:32]
    return f"login:{digest}"


def wait_words(seconds: int) -> str:
    if seconds < 60:
        return f"{seconds} second{'s' if seconds != 1 else ''}"
    minutes = -(-seconds // 60)
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


@dataclass(frozen=True)
class Refusal:
    """A refused attempt: the message and the seconds to wait (``Retry-After``)."""

    message: str
    retry_after_seconds: int


@dataclass(frozen=True)
class LoginThrottle:
    """The throttle as one request from ``address`` sees it."""

    limiter: RateLimiter
    address_rule: str
    address: str

    async def refusal(self, key: str) -> Refusal | None:
        """Whether this address, or this account from this address, must wait now."""
        refusal = await self.address_refusal()
        if refusal is not None:
            return refusal
        wait = await self.limiter.backoff_wait("login-pair", key, self.address)
        if wait:
            return Refusal(MESSAGE_ACCOUNT.format(wait=wait_words(wait)), wait)
        return None

    async def address_refusal(self) -> Refusal | None:
        result = await self.limiter.peek(self.address_rule, "login-failures", self.address)
        if result.allowed:
            return None
        wait = result.retry_after_seconds
        return Refusal(MESSAGE_ADDRESS.format(wait=wait_words(wait)), wait)

    async def guard_refusal(self, key: str) -> Refusal | None:
        """The account-wide guard's wait (only for addresses the account has not used)."""
        wait = await self.limiter.backoff_wait("login-account", key)
        if not wait:
            return None
        return Refusal(MESSAGE_GUARD.format(wait=wait_words(wait)), wait)

    async def failure(self, key: str) -> None:
        await self.limiter.hit(
            self.address_rule, "login-failures", self.address, with_remaining=False
        )
        await self.limiter.backoff_failure(
            "login-pair",
            key,
            self.address,
            free=FAILURES_BEFORE_DELAY,
            max_delay=MAX_DELAY_SECONDS,
        )
        await self.limiter.backoff_failure(
            "login-account", key, free=FAILURES_BEFORE_GUARD, max_delay=MAX_DELAY_SECONDS
        )

    async def success(self, key: str) -> None:
        await self.limiter.backoff_clear("login-pair", key, self.address)
        await self.limiter.backoff_clear("login-account", key)
