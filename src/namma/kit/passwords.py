"""Password hashing with pwdlib and the password policy.

- argon2id for new hashes; bcrypt hashes (as the original app stored, cost 12) still verify and
  are upgraded to argon2id on the next successful login.
- Hashing is deliberately slow, so it runs in a worker thread, never on the event loop.
- Policy (NIST SP 800-63B style): 12 to 128 characters, not one of the 30,000 most common
  passwords, no composition rules.
"""

from __future__ import annotations

from functools import lru_cache

import anyio.to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128

_hasher = PasswordHash((Argon2Hasher(), BcryptHasher()))
# Verified against when the user does not exist, so that both cases take the same time.
_DUMMY_HASH = _hasher.hash("namma-dummy-password-for-timing")


@lru_cache(maxsize=1)
def _common_passwords() -> frozenset[str]:
    from zxcvbn.frequency_lists import FREQUENCY_LISTS

    return frozenset(p.lower() for p in FREQUENCY_LISTS["passwords"])


def common_password_count() -> int:
    return len(_common_passwords())


def password_problem(password: str) -> str | None:
    """Why ``password`` is not acceptable, or None when it is."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Password must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Password must be at most {MAX_PASSWORD_LENGTH} characters"
    if password.lower() in _common_passwords():
        return "This password is too common; choose another"
    return None


def password_hash_sync(password: str) -> str:
    return _hasher.hash(password)


async def password_hash(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password)


async def password_verify(password: str, hashed: str | None) -> tuple[bool, str | None]:
    """(valid, new hash if the stored one should be upgraded to argon2id).

    With ``hashed=None`` (unknown user) a dummy hash is checked so the answer takes as long.
    """
    if hashed is None:
        await anyio.to_thread.run_sync(_hasher.verify, password, _DUMMY_HASH)
        return False, None
    try:
        return await anyio.to_thread.run_sync(_hasher.verify_and_update, password, hashed)
    except Exception:
        return False, None


# The hasher above, kept for ``password_hashing_configure(fast=False)``.
_STANDARD = (_hasher, _DUMMY_HASH)


def password_hashing_configure(*, fast: bool) -> None:
    """Tests only (``NAMMA_INSECURE_FAST_PASSWORD_HASHING``, refused outside ``env=test``):
    argon2id at its minimum cost (1 pass over 8 KiB, ~1 ms) instead of the standard
    parameters (hundreds of ms a hash on a small machine), for new hashes and the dummy one.
    Process-wide, like the hasher itself; ``fast=False`` puts the standard hasher back."""
    global _hasher, _DUMMY_HASH
    if not fast:
        _hasher, _DUMMY_HASH = _STANDARD
        return
    if _hasher is _STANDARD[0]:
        _hasher = PasswordHash(
            (Argon2Hasher(time_cost=1, memory_cost=8, parallelism=1), BcryptHasher())
        )
        _DUMMY_HASH = _hasher.hash("namma-dummy-password-for-timing")
