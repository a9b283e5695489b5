"""KYC document numbers: validation per document type, masking and a keyed hash. Pure functions.

We never store a document number. A customer row keeps ``kyc_mask(number)`` (last 4 visible) to
show, and ``kyc_hash(...)`` — an HMAC under a key derived from ``NAMMA_SECRET_KEY`` — to find
the same document registered twice. Without the secret key the hash cannot be brute-forced from
the (small) space of Aadhaar numbers; rotating the secret key means re-hashing (the numbers are
gone, so in practice: duplicate detection starts afresh for documents hashed before).

Formats accepted (after removing spaces, hyphens, dots and slashes, and upper-casing):

- Aadhaar: 12 digits, first digit 2–9, last digit the Verhoeff check digit of the first 11
  (UIDAI never issues numbers starting with 0 or 1).
- PAN: ``AAAAA9999A``; the 4th letter is the holder type, one of ``ABCFGHJLPT``
  (P individual, C company, H HUF, F firm, A AOP, B BOI, G government, J artificial juridical
  person, L local authority, T trust).
- Voter ID (EPIC): ``AAA9999999`` (3 letters, 7 digits).
- Passport (Indian): one letter and 7 digits (``A1234567``).
- Driving licence: the national (Sarathi) format, 2-letter state code + 2-digit RTO code +
  4-digit year of issue (19xx/20xx) + 7 digits, e.g. ``KA01 2011 0012345``. Older state formats
  are not accepted: they are being replaced, and a number we cannot check is worth little.
- Ration card: formats differ from state to state, so only a shape check: 6–20 letters and
  digits with at least 4 digits.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from namma.models.customer import KycDocumentType

# --- Verhoeff check digit -----------------------------------------------------------------------
# Multiplication table of the dihedral group D5, the permutation table (position i applies
# (1 5 7 6 2 8 3 0 9 4) i times), and the group inverses. The unit tests rebuild all three from
# those definitions.
_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)
_INV = (0, 4, 3, 2, 1, 5, 6, 7, 8, 9)


def _verhoeff_fold(digits: str, offset: int) -> int:
    check = 0
    for i, ch in enumerate(reversed(digits)):
        check = _D[check][_P[(i + offset) % 8][int(ch)]]
    return check


def verhoeff_check_digit(digits: str) -> str:
    """The Verhoeff check digit to append to ``digits`` (a non-empty string of ASCII digits)."""
    if not digits or not digits.isascii() or not digits.isdigit():
        raise ValueError("digits only")
    return str(_INV[_verhoeff_fold(digits, 1)])


def verhoeff_valid(digits: str) -> bool:
    """Whether ``digits`` ends in its correct Verhoeff check digit."""
    if not digits or not digits.isascii() or not digits.isdigit():
        return False
    return _verhoeff_fold(digits, 0) == 0


# --- normalisation and validation ---------------------------------------------------------------


class KycNumberError(ValueError):
    """The number is not a valid number of its document type; the message says why."""


_SEPARATORS = re.compile(r"[\s\-./]+")

_PAN = re.compile(r"[A-Z]{3}[ABCFGHJLPT][A-Z][0-9]{4}[A-Z]")
_VOTER_ID = re.compile(r"[A-Z]{3}[0-9]{7}")
_PASSPORT = re.compile(r"[A-Z][0-9]{7}")
_DRIVING_LICENCE = re.compile(r"[A-Z]{2}[0-9]{2}(19|20)[0-9]{2}[0-9]{7}")
_RATION_CARD = re.compile(r"[A-Z0-9]{6,20}")
MAX_INPUT_LENGTH = 40


def kyc_canonical(number: str) -> str:
    """Separators removed, upper-cased: the form that is validated, masked and hashed."""
    return _SEPARATORS.sub("", number).upper()


def kyc_normalise(doc_type: KycDocumentType, number: str) -> str:
    """The canonical number, or ``KycNumberError`` if it is not valid for ``doc_type``."""
    if len(number) > MAX_INPUT_LENGTH * 2:
        raise KycNumberError("Too long for a document number")
    value = kyc_canonical(number)
    if not value:
        raise KycNumberError("Enter the document number")
    if not value.isascii():
        raise KycNumberError("Use only English letters and digits")
    if doc_type is KycDocumentType.AADHAAR:
        if not re.fullmatch(r"[0-9]{12}", value):
            raise KycNumberError("An Aadhaar number has 12 digits")
        if value[0] in "01":
            raise KycNumberError("An Aadhaar number does not start with 0 or 1")
        if not verhoeff_valid(value):
            raise KycNumberError("This is not a valid Aadhaar number (check digit mismatch)")
    elif doc_type is KycDocumentType.PAN:
        if not _PAN.fullmatch(value):
            raise KycNumberError("A PAN is 5 letters, 4 digits and a letter, e.g. ABCPE1234F")
    elif doc_type is KycDocumentType.VOTER_ID:
        if not _VOTER_ID.fullmatch(value):
            raise KycNumberError("A voter ID (EPIC) is 3 letters and 7 digits, e.g. ABC1234567")
    elif doc_type is KycDocumentType.PASSPORT:
        if not _PASSPORT.fullmatch(value):
            raise KycNumberError(
                "An Indian passport number is a letter and 7 digits, e.g. A1234567"
            )
    elif doc_type is KycDocumentType.DRIVING_LICENCE:
        if not _DRIVING_LICENCE.fullmatch(value):
            raise KycNumberError(
                "A driving licence number is a state code, RTO code, year and 7 digits, "
                "e.g. KA01 2011 0012345"
            )
    elif doc_type is KycDocumentType.RATION_CARD:
        if not _RATION_CARD.fullmatch(value) or sum(c.isdigit() for c in value) < 4:
            raise KycNumberError("A ration card number is 6 to 20 letters and digits")
    else:  # pragma: no cover - every member is handled above
        raise KycNumberError("Unknown document type")
    return value


def kyc_mask(number: str) -> str:
    """Only the last 4 characters visible: ``"2341 2341 2346"`` → ``"XXXXXXXX2346"``."""
    value = kyc_canonical(number)
    if len(value) <= 4:
        return "X" * len(value)
    return "X" * (len(value) - 4) + value[-4:]


def _hash_key(secret_key: str) -> bytes:
    # A key of its own, so this hash is unrelated to every other use of the secret key.
    return hmac.new(secret_key.encode(), b"namma:kyc-number-hash:v1", hashlib.sha256).digest()


def kyc_hash(doc_type: KycDocumentType | str, number: str, *, secret_key: str) -> str:
    """HMAC-SHA256 (hex) of the document type and canonical number, under a derived key.

    Same document, however spaced or cased → same hash; the number cannot be recovered from it
    without the secret key.
    """
    kind = doc_type.value if isinstance(doc_type, KycDocumentType) else str(doc_type)
    message = f"{kind}:{kyc_canonical(number)}".encode()
    return hmac.new(_hash_key(secret_key), message, hashlib.sha256).hexdigest()
