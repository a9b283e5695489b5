"""Audit details: masking, JSON-safe values, the canonical row and its hash (no database)."""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
import uuid
from decimal import Decimal

import pytest

from namma.audit.service import (
    GENESIS_HASH,
    AuditActor,
    audit_canonical_row,
    audit_hash,
    audit_mask_id_number,
    audit_render_at,
    audit_safe_details,
)


class Status(enum.StrEnum):
    ACTIVE = "active"


class Level(enum.IntEnum):
    HIGH = 3


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "new_password",
        "password_hash",
        "passwordHash",
        "client_secret",
        "totp_secret_encrypted",
        "refresh_token",
        "accessToken",
        "token_hash",
        "otp",
        "otp_code",
        "recovery_codes",
        "recoveryCode",
        "api_key",
        "credentials",
    ],
)
def test_secrets_are_replaced(key: str) -> None:
    assert audit_safe_details({key: "hunter2-very-secret"}) == {key: "***"}


@pytest.mark.parametrize(
    ("key", "value", "masked"),
    [
        ("aadhaar", "123456789012", "********9012"),
        ("aadhaar_number", "1234 5678 9012", "********9012"),
        ("aadharNo", 123456789012, "********9012"),
        ("pan", "ABCDE1234F", "******234F"),
        ("pan_number", "ABCDE1234F", "******234F"),
        ("kyc_number", "XYZ987654", "*****7654"),
        ("id_number", "DL-0420110012345", "***********2345"),
        ("document_number", "P1234567", "****4567"),
        ("bank_account_number", "00112233445566", "**********5566"),
        ("voter_id", "ABC1234567", "******4567"),
        ("pan", "123", "***"),
    ],
)
def test_id_numbers_keep_the_last_four(key: str, value: object, masked: str) -> None:
    assert audit_safe_details({key: value}) == {key: masked}


@pytest.mark.parametrize(
    "key",
    [
        # Lending and address words that merely contain a sensitive fragment.
        "recovery_amount",
        "recovery_rate",
        "pincode",
        "pin_code",
        "company",
        "expanded",
        "span",
        "footprint",
        "hotpath",
        "valid_number",
        "loan_id",
        "pivot_price",
    ],
)
def test_ordinary_keys_are_kept(key: str) -> None:
    assert audit_safe_details({key: "560001"}) == {key: "560001"}


def test_masking_is_recursive_and_keeps_flags() -> None:
    details = {
        "user": {
            "email": "a@example.com",
            "password": "x" * 20,
            "must_change_password": True,
            "totp_secret": None,
        },
        "customers": [{"name": "Lakshmi", "aadhaar": "999988887777"}],
        "refresh_tokens": ["t1", "t2"],
        "kyc_number": {"value": "123"},
    }
    assert audit_safe_details(details) == {
        "user": {
            "email": "a@example.com",
            "password": "***",
            "must_change_password": True,
            "totp_secret": None,
        },
        "customers": [{"name": "Lakshmi", "aadhaar": "********7777"}],
        "refresh_tokens": "***",
        "kyc_number": "***",
    }


def test_values_become_json_safe_and_exact() -> None:
    loan_id = uuid.UUID("12345678-1234-5678-1234-567812345678")
    details = {
        "emi": Decimal("8884.88"),
        "zero": Decimal("0.00"),
        "big": Decimal("1E+2"),
        "due": dt.date(2026, 11, 25),
        "at": dt.datetime(2026, 11, 25, 10, 30, 0, 123456, tzinfo=dt.UTC),
        "loan_id": loan_id,
        "status": Status.ACTIVE,
        "level": Level.HIGH,
        "count": 3,
        "huge": 10**30,
        "ok": False,
        "tags": ("a", "b"),
        "roles": {"manager", "agent"},
        Status.ACTIVE: "enum key",
    }
    assert audit_safe_details(details) == {
        "emi": "8884.88",
        "zero": "0.00",
        "big": "100",
        "due": "2026-11-25",
        "at": "2026-11-25T10:30:00.123456+00:00",
        "loan_id": "12345678-1234-5678-1234-567812345678",
        "status": "active",
        "level": 3,
        "count": 3,
        "huge": 10**30,
        "ok": False,
        "tags": ["a", "b"],
        "roles": ["agent", "manager"],
        "active": "enum key",
    }


@pytest.mark.parametrize(
    "details",
    [
        {"amount": 8884.88},
        {"loan": {"rows": [{"interest": 1000.0}]}},
        {"rate": float("nan")},
    ],
)
def test_floats_are_refused(details: dict[str, object]) -> None:
    with pytest.raises(TypeError, match="float"):
        audit_safe_details(details)


def test_other_unsafe_values_are_refused() -> None:
    with pytest.raises(TypeError, match="bytes"):
        audit_safe_details({"blob": b"\x00"})
    with pytest.raises(TypeError, match="keys must be strings"):
        audit_safe_details({1: "x"})
    with pytest.raises(ValueError, match="finite"):
        audit_safe_details({"amount": Decimal("NaN")})
    with pytest.raises(TypeError, match="mapping"):
        audit_safe_details(["not", "a", "mapping"])  # type: ignore[arg-type]


def test_text_postgresql_cannot_store_is_replaced() -> None:
    assert audit_safe_details({"note": "a\x00b", "bad": "\ud800"}) == {
        "note": "a\ufffdb",
        "bad": "?",
    }


def test_mask_id_number() -> None:
    assert audit_mask_id_number("123456789012") == "********9012"
    assert audit_mask_id_number("1234") == "****"
    assert audit_mask_id_number("") == ""


def _row(**overrides: object) -> bytes:
    fields: dict[str, object] = {
        "at": dt.datetime(2026, 11, 25, 5, 0, 0, 1, tzinfo=dt.UTC),
        "actor_id": uuid.UUID("12345678-1234-5678-1234-567812345678"),
        "actor_role": "manager",
        "action": "loan.approved",
        "entity_type": "loan",
        "entity_id": "L-1",
        "before": {"status": "pending"},
        "after": {"status": "approved", "note": "ಸರಿ"},
        "ip": "10.0.0.1",
        "user_agent": "Mozilla/5.0",
        "request_id": "req-1",
    }
    fields.update(overrides)
    return audit_canonical_row(**fields)  # type: ignore[arg-type]


def test_canonical_row_is_sorted_compact_utf8() -> None:
    row = _row()
    assert (
        row
        == (
            '{"action":"loan.approved","actor_id":"12345678-1234-5678-1234-567812345678",'
            '"actor_role":"manager","after":{"note":"ಸರಿ","status":"approved"},'
            '"at":"2026-11-25T05:00:00.000001Z","before":{"status":"pending"},"entity_id":"L-1",'
            '"entity_type":"loan","ip":"10.0.0.1","request_id":"req-1","user_agent":"Mozilla/5.0"}'
        ).encode()
    )
    json.loads(row)  # valid JSON


def test_canonical_row_ignores_key_order_and_time_zone() -> None:
    ist = dt.timezone(dt.timedelta(hours=5, minutes=30))
    assert _row(after={"status": "approved", "note": "ಸರಿ"}) == _row(
        after={"note": "ಸರಿ", "status": "approved"}
    )
    assert _row(at=dt.datetime(2026, 11, 25, 10, 30, 0, 1, tzinfo=ist)) == _row()
    assert audit_render_at(dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)) == (
        "2026-01-02T03:04:05.000000Z"
    )
    with pytest.raises(ValueError, match="timezone"):
        audit_render_at(dt.datetime(2026, 1, 2))


def test_every_hashed_column_changes_the_row() -> None:
    base = _row()
    changes: dict[str, object] = {
        "at": dt.datetime(2026, 11, 25, 5, 0, 0, 2, tzinfo=dt.UTC),
        "actor_id": None,
        "actor_role": "admin",
        "action": "loan.rejected",
        "entity_type": "customer",
        "entity_id": "L-2",
        "before": None,
        "after": {"status": "approved", "note": "ಸರಿ "},
        "ip": "10.0.0.2",
        "user_agent": "curl",
        "request_id": "req-2",
    }
    for column, value in changes.items():
        assert _row(**{column: value}) != base, column


def test_hash_is_sha256_of_previous_hash_and_row() -> None:
    row = _row()
    expected = hashlib.sha256(GENESIS_HASH.encode() + row).hexdigest()
    assert audit_hash(GENESIS_HASH, row) == expected
    assert len(expected) == 64
    assert audit_hash("1" * 64, row) != expected


def test_system_actor() -> None:
    actor = AuditActor.system(request_id="job-7")
    assert actor == AuditActor(actor_role="system", request_id="job-7")
    assert actor.actor_id is None
    with pytest.raises(AttributeError):
        actor.actor_role = "admin"  # type: ignore[misc]
