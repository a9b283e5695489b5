"""Password hashing with pwdlib and the password policy.

- argon2id for new hashes at OWASP's recommended parameters (19 MiB, 2 passes, 1 lane: about
  30 ms of one core, where argon2-cffi's defaults of 64 MiB × 3 passes × 4 lanes held both cores
  of a small server for over 100 ms and queued a morning's sign-ins); bcrypt hashes (as the
  original app stored, cost 12) and argon2id hashes at other parameters still verify and are
  rehashed at these parameters on the next successful login.
- Hashing is deliberately slow, so it runs in a worker thread, never on the event loop.
- Policy (NIST SP 800-63B style, no composition rules): 12 to 128 characters and hard to guess:
  zxcvbn's estimate must score at least 3 of 4 (about 10^8 guesses or more), with the person's
  own name, e-mail and phone and this product's words (and its published demo password) as
  context, so "Kamala Customer 99", "aaaaaaaaaaaa" and the demo password are refused while a
  phrase of unrelated words passes. A password containing those details must be strong
  without them too ("Arun Agent 9000000004" is three known words to whoever knows Arun).
  The estimate takes up to ~0.2 s for long passwords, so the services call
  ``password_check`` (a worker thread), not ``password_problem``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import anyio.to_thread
from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from pwdlib.hashers.bcrypt import BcryptHasher
from zxcvbn import zxcvbn

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 128
MIN_STRENGTH_SCORE = 3
# Words an attacker tries first against this product. The last is the demo password printed in
# the README (namma.demo.DEMO_PASSWORD; a test keeps the two equal): the demo creates its users
# with it directly, the policy refuses it for every password a person chooses.
PRODUCT_WORDS = ("namma", "finance", "namma finance", "microfinance", "demo", "namma-demo-2026")

# OWASP Password Storage Cheat Sheet, argon2id: m=19 MiB, t=2, p=1.
ARGON2_MEMORY_KIB = 19 * 1024
ARGON2_TIME_COST = 2
ARGON2_PARALLELISM = 1

_hasher = PasswordHash(
    (
        Argon2Hasher(
            time_cost=ARGON2_TIME_COST,
            memory_cost=ARGON2_MEMORY_KIB,
            parallelism=ARGON2_PARALLELISM,
        ),
        BcryptHasher(),
    )
)
# Verified against when the user does not exist, so that both cases take the same time.
_DUMMY_HASH = _hasher.hash("namma-dummy-password-for-timing")


def _context_words(context: Iterable[str | None]) -> list[str]:
    """The person's details as zxcvbn "user inputs": each value whole and in its parts
    (name words, the e-mail's local part and its pieces, the phone's digits), then the
    product's words. Without repeats: zxcvbn ranks them by position, fewer guesses first."""
    words: list[str] = []
    for value in context:
        if not value:
            continue
        text = value.strip().lower()
        words.append(text)
        words.append(text.split("@", 1)[0])
        words.extend(part for part in re.split(r"[\s._+@-]+", text) if len(part) >= 3)
        digits = re.sub(r"\D", "", text)
        if len(digits) >= 6:
            words.append(digits[-10:])
    words.extend(PRODUCT_WORDS)
    return list(dict.fromkeys(words))


def password_problem(password: str, *, context: Iterable[str | None] = ()) -> str | None:
    """Why ``password`` is not acceptable, or None when it is. ``context``: the person's name,
    e-mail and phone (a password built from them is easy to guess for anyone who knows them)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Password must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"Password must be at most {MAX_PASSWORD_LENGTH} characters"
    words = _context_words(context)
    estimate = zxcvbn(password, user_inputs=words, max_length=MAX_PASSWORD_LENGTH)
    if estimate["score"] >= MIN_STRENGTH_SCORE:
        # The person's own details (and the product's words) add nothing an attacker who knows
        # them would not try first: what is left without them must be strong on its own.
        rest = password.lower()
        for word in sorted((w for w in words if len(w) >= 3), key=len, reverse=True):
            rest = rest.replace(word, " ")
        if rest == password.lower():
            return None
        if zxcvbn(rest, user_inputs=words)["score"] >= MIN_STRENGTH_SCORE:
            return None
        return (
            "This password is too easy to guess: it is mostly your name, e-mail or phone (or "
            "this product's name); add a phrase of unrelated words"
        )
    warning = str(estimate["feedback"].get("warning") or "").rstrip(".")
    reason = f" ({warning[:1].lower()}{warning[1:]})" if warning else ""
    return (
        f"This password is too easy to guess{reason}; use a longer phrase of unrelated words, "
        "not your name, e-mail, phone or this product's name"
    )


async def password_check(password: str, *, context: Iterable[str | None] = ()) -> str | None:
    """``password_problem`` in a worker thread (the estimate is CPU work)."""
    words = list(context)
    return await anyio.to_thread.run_sync(lambda: password_problem(password, context=words))


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
