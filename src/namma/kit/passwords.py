"""Password hashing with pwdlib: argon2id for new hashes; bcrypt hashes still verify.

Hashing is deliberately slow, so it runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import anyio.to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128

_hasher = PasswordHash((Argon2Hasher(), BcryptHasher()))


def password_problem(password: str) -> str | None:
    """Why ``password`` is not acceptable, or None when it is."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Password must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Password must be at most {MAX_PASSWORD_LENGTH} characters"
    return None


def password_hash_sync(password: str) -> str:
    return _hasher.hash(password)


async def password_hash(password: str) -> str:
    return await anyio.to_thread.run_sync(_hasher.hash, password)


async def password_verify(password: str, hashed: str) -> tuple[bool, str | None]:
    """(valid, new hash if the stored one should be upgraded to argon2id)."""
    return await anyio.to_thread.run_sync(_hasher.verify_and_update, password, hashed)
