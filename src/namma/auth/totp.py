"""TOTP second factor (RFC 6238, 30-second steps) and one-time recovery codes."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets

import pyotp
import segno
from cryptography.fernet import Fernet, InvalidToken

ISSUER_NAME = "Namma Finance"
RECOVERY_CODE_COUNT = 10


def _fernet(secret_key: str) -> Fernet:
    key = hashlib.sha256(f"namma:totp-secret:{secret_key}".encode()).digest()
    return Fernet(base64.urlsafe_b64encode(key))


def totp_secret_new() -> str:
    return pyotp.random_base32()


def totp_secret_encrypt(secret: str, *, secret_key: str) -> str:
    return _fernet(secret_key).encrypt(secret.encode()).decode()


def totp_secret_decrypt(encrypted: str, *, secret_key: str) -> str:
    try:
        return _fernet(secret_key).decrypt(encrypted.encode()).decode()
    except InvalidToken:
        raise ValueError("the TOTP secret cannot be decrypted with this NAMMA_SECRET_KEY") from None


def totp_code_step(
    secret: str, code: str, *, after_step: int | None = None, now: dt.datetime | None = None
) -> int | None:
    """The 30-second step whose code ``code`` is — the current one or one either side (phones'
    clocks drift) — or None. Steps up to ``after_step`` are refused, so a code works once."""
    code = code.strip().replace(" ", "")
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now or dt.datetime.now(dt.UTC))
    for step in (current - 1, current, current + 1):
        if after_step is not None and step <= after_step:
            continue
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def totp_provisioning_uri(secret: str, *, account: str) -> str:
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=ISSUER_NAME)


def totp_qr_svg(uri: str) -> str:
    """The enrolment QR code as an SVG document (scanned by an authenticator app)."""
    return str(segno.make(uri, error="m").svg_inline(scale=4))


def recovery_codes_new() -> list[str]:
    # 10 characters from an unambiguous alphabet, shown as xxxxx-xxxxx.
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    codes = []
    for _ in range(RECOVERY_CODE_COUNT):
        raw = "".join(secrets.choice(alphabet) for _ in range(10))
        codes.append(f"{raw[:5]}-{raw[5:]}")
    return codes


def recovery_code_normalise(code: str) -> str:
    raw = code.strip().lower().replace("-", "").replace(" ", "")
    return f"{raw[:5]}-{raw[5:]}"
