"""KYC numbers: Verhoeff check digits, formats per document type, masking, the keyed hash."""

from __future__ import annotations

import random

import pytest

from namma.customers import kyc
from namma.customers.kyc import (
    KycNumberError,
    kyc_hash,
    kyc_mask,
    kyc_normalise,
    verhoeff_check_digit,
    verhoeff_valid,
)
from namma.models import KycDocumentType

SECRET = "unit-test-secret-key-0123456789abcdef"


# --- Verhoeff -----------------------------------------------------------------------------------


def _d5(j: int, k: int) -> int:
    """Multiplication in the dihedral group D5: 0-4 rotations, 5-9 reflections."""
    if j < 5 and k < 5:
        return (j + k) % 5
    if j < 5:
        return 5 + (j + k) % 5
    if k < 5:
        return 5 + (j - k) % 5
    return (j - k) % 5


def test_tables_are_the_published_definitions() -> None:
    # d: the Cayley table of D5; p: powers of the permutation (1 5 7 6 2 8 3 0 9 4);
    # inv: the group inverse. Rebuilt here from those definitions, not copied.
    assert tuple(tuple(_d5(j, k) for k in range(10)) for j in range(10)) == kyc._D
    sigma = (1, 5, 7, 6, 2, 8, 3, 0, 9, 4)
    rows = [tuple(range(10))]
    for _ in range(7):
        rows.append(tuple(sigma[x] for x in rows[-1]))
    assert tuple(rows) == kyc._P
    assert all(kyc._D[j][kyc._INV[j]] == 0 for j in range(10))


@pytest.mark.parametrize(
    ("base", "check"),
    [("236", "3"), ("12345", "1"), ("142857", "0"), ("1456789", "4"), ("1234", "0")],
)
def test_known_check_digits(base: str, check: str) -> None:
    # Published worked examples: Wikipedia "Verhoeff algorithm" (236 → 3, 1428570 valid),
    # Perl Algorithm::CheckDigits (1456789 → 4), and others.
    assert verhoeff_check_digit(base) == check
    assert verhoeff_valid(base + check)
    assert not verhoeff_valid(base + str((int(check) + 1) % 10))


def test_single_digit_errors_and_adjacent_transpositions_are_detected() -> None:
    rng = random.Random(20260101)
    for _ in range(300):
        base = str(rng.randint(2, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(10))
        number = base + verhoeff_check_digit(base)
        assert verhoeff_valid(number)
        for position in range(12):
            for digit in "0123456789":
                if digit != number[position]:
                    wrong = number[:position] + digit + number[position + 1 :]
                    assert not verhoeff_valid(wrong), wrong
        for position in range(11):
            a, b = number[position], number[position + 1]
            if a != b:
                swapped = number[:position] + b + a + number[position + 2 :]
                assert not verhoeff_valid(swapped), swapped


def test_verhoeff_refuses_non_digits() -> None:
    assert not verhoeff_valid("")
    assert not verhoeff_valid("12a4")
    assert not verhoeff_valid("١٢٣")  # Arabic-Indic digits are digits to str.isdigit
    with pytest.raises(ValueError):
        verhoeff_check_digit("12 3")


# --- formats ------------------------------------------------------------------------------------


def _aadhaar(base: str) -> str:
    return base + verhoeff_check_digit(base)


def test_aadhaar() -> None:
    number = _aadhaar("23412341234")
    spaced = f"{number[:4]} {number[4:8]} {number[8:]}"
    assert kyc_normalise(KycDocumentType.AADHAAR, spaced) == number
    assert kyc_normalise(KycDocumentType.AADHAAR, number.replace("", "-")[1:-1]) == number
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    with pytest.raises(KycNumberError, match="check digit"):
        kyc_normalise(KycDocumentType.AADHAAR, wrong)
    for bad in ("1" + number[1:], "0" + number[1:]):
        with pytest.raises(KycNumberError, match="start with 0 or 1"):
            kyc_normalise(KycDocumentType.AADHAAR, bad)
    for bad in (number[:-1], number + "1", "ABCD12341234", ""):
        with pytest.raises(KycNumberError):
            kyc_normalise(KycDocumentType.AADHAAR, bad)


@pytest.mark.parametrize(
    ("doc_type", "good", "canonical", "bad"),
    [
        (
            KycDocumentType.PAN,
            "abcpe1234f",
            "ABCPE1234F",
            ["ABCPE1234", "ABCXE1234F", "1BCPE1234F"],
        ),
        (KycDocumentType.VOTER_ID, "ABC 1234567", "ABC1234567", ["AB12345678", "ABC123456"]),
        (KycDocumentType.PASSPORT, "j8369854", "J8369854", ["J836985", "JJ369854", "12345678"]),
        (
            KycDocumentType.DRIVING_LICENCE,
            "KA01 20110012345",
            "KA0120110012345",
            ["KA01 1811 0012345", "K0120110012345", "KA012011001234"],
        ),
        (
            KycDocumentType.RATION_CARD,
            "KA/123/456789",
            "KA123456789",
            ["ABCDEFGH", "12AB", "X" * 21],
        ),
    ],
)
def test_document_formats(
    doc_type: KycDocumentType, good: str, canonical: str, bad: list[str]
) -> None:
    assert kyc_normalise(doc_type, good) == canonical
    for number in bad:
        with pytest.raises(KycNumberError):
            kyc_normalise(doc_type, number)


def test_non_ascii_and_overlong_input_is_refused() -> None:
    with pytest.raises(KycNumberError):
        kyc_normalise(KycDocumentType.PAN, "ABCPÉ1234F")
    with pytest.raises(KycNumberError):
        kyc_normalise(KycDocumentType.RATION_CARD, "1" * 200)


# --- masking and hashing ------------------------------------------------------------------------


def test_mask_keeps_the_last_four() -> None:
    assert kyc_mask("2341 2341 2346") == "XXXXXXXX2346"
    assert kyc_mask("ABCPE1234F") == "XXXXXX234F"
    assert kyc_mask("1234") == "XXXX"
    assert kyc_mask("") == ""


def test_hash_ignores_spacing_and_case_but_not_type_or_key() -> None:
    number = _aadhaar("98765432109")
    spaced = f"{number[:4]} {number[4:8]} {number[8:]}"
    h = kyc_hash(KycDocumentType.AADHAAR, number, secret_key=SECRET)
    assert len(h) == 64 and int(h, 16) >= 0
    assert kyc_hash(KycDocumentType.AADHAAR, spaced, secret_key=SECRET) == h
    assert kyc_hash("aadhaar", f" {number[:6]}-{number[6:]} ", secret_key=SECRET) == h
    assert kyc_hash(KycDocumentType.RATION_CARD, number, secret_key=SECRET) != h
    assert kyc_hash(KycDocumentType.AADHAAR, number, secret_key=SECRET + "x") != h
    assert number not in h
    assert kyc_hash(KycDocumentType.PAN, "abcpe1234f", secret_key=SECRET) == kyc_hash(
        KycDocumentType.PAN, "ABCPE1234F", secret_key=SECRET
    )
