"""Audit commands: append an entry to the hash-chained log, and verify the chain.

``audit_record`` adds an entry to the caller's transaction (never commits), so the entry commits
or rolls back with the change it describes. The entry is written at the transaction boundary,
just before the commit (``namma.kit.db.before_commit``): appends are serialised by a
transaction-level advisory lock held until commit, so taking it last keeps every other writer's
wait to the commit itself, wherever in a command ``audit_record`` is called. An entry recorded
inside a savepoint that rolls back is dropped with it.

The hash of an entry is ``sha256(prev_hash + canonical_row)``, where ``canonical_row`` is
``audit_canonical_row`` over every column except ``id``, ``prev_hash`` and ``hash``. The same
function is used when writing and when verifying, on values that survive a round trip through
PostgreSQL unchanged (JSON holds only strings, integers, booleans and null; ``at`` is a
microsecond UTC timestamp taken from the database clock).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import functools
import hashlib
import json
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

from namma.kit.db import before_commit, raw_connection, sql_values
from namma.models.audit import AuditEntry

GENESIS_HASH = "0" * 64
# An arbitrary constant ("nammaaud"); distinct from the migration lock in namma.kit.migrations.
AUDIT_CHAIN_LOCK_KEY = 0x6E616D6D61617564
VERIFY_BATCH_SIZE = 1000

_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")
_MAX_LENGTHS = {"actor_role": 32, "ip": 45, "user_agent": 512, "request_id": 64}
_ENTITY_TYPE_MAX = 50
_ENTITY_ID_MAX = 100
_ACTION_MAX = 100


@dataclass(frozen=True)
class AuditActor:
    """Who did it, and from where. Every field is optional (jobs, anonymous callers)."""

    actor_id: uuid.UUID | None = None
    actor_role: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None

    @classmethod
    def system(cls, *, request_id: str | None = None) -> AuditActor:
        """The application itself: jobs, CLI commands, migrations of data."""
        return cls(actor_role="system", request_id=request_id)


@dataclass(frozen=True)
class AuditVerifyResult:
    ok: bool
    count: int  # entries checked (all of them when ok; up to and including the broken one if not)
    first_broken_id: int | None = None
    reason: str | None = None
    # The newest entry's id and hash when ok: record them elsewhere to detect later truncation of
    # the chain's tail, which the chain alone cannot reveal.
    last_id: int | None = None
    last_hash: str | None = None


# --- masking and JSON-safe values ---------------------------------------------------------------

# Key names are split into lower-case words ("refreshToken" → refresh, token). Single words below
# match inside any word ("password_hash", "accesstoken"); phrases match whole words only.
# Secrets: the value is replaced entirely.
_SECRET_IN_WORD = ("password", "passwd", "secret", "token", "totp", "credential", "apikey")
# "recovery" alone is a lending word (loan recovery), and "pin" is also India's postal code:
# only recovery codes and one-time passwords are matched.
_SECRET_PHRASES = ("otp", "recovery_code", "recovery_codes", "recovery_key", "api_key", "cvv")
# Identity document numbers: only the last four characters are kept.
_ID_IN_WORD = ("aadhaar", "aadhar")
_ID_PHRASES = (
    "pan",
    "kyc_number",
    "id_number",
    "document_number",
    "account_number",
    "passport_number",
    "voter_id",
)
_SECRET_MASK = "***"

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[^a-z0-9]+")


def _key_words(key: str) -> list[str]:
    return [w for w in _SEPARATORS.split(_CAMEL.sub("_", key).lower()) if w]


def _key_matches(words: list[str], in_word: tuple[str, ...], phrases: tuple[str, ...]) -> bool:
    bounded = "_" + "_".join(words) + "_"
    return any(part in word for part in in_word for word in words) or any(
        f"_{phrase}_" in bounded for phrase in phrases
    )


@functools.lru_cache(maxsize=4096)  # keys come from code: a few hundred names, every request
def _key_kind(key: str) -> str | None:
    """``"secret"``, ``"id_number"`` or None for a mapping key."""
    words = _key_words(key)
    if _key_matches(words, _SECRET_IN_WORD, _SECRET_PHRASES):
        return "secret"
    if _key_matches(words, _ID_IN_WORD, _ID_PHRASES):
        return "id_number"
    return None


def audit_mask_id_number(value: object) -> str:
    """Keep only the last four characters: ``"123456789012"`` → ``"********1234"``."""
    raw = re.sub(r"[\s-]", "", str(value))
    if len(raw) <= 4:
        return "*" * len(raw) if raw else ""
    return "*" * (len(raw) - 4) + raw[-4:]


def _clean_text(value: str) -> str:
    """Text PostgreSQL stores unchanged, so what is hashed is what is stored.

    PostgreSQL text and JSONB cannot hold NUL, nor can UTF-8 hold lone surrogates.
    """
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        value = value.encode("utf-8", "replace").decode("utf-8")
    return value


def _json_safe(value: object, path: str) -> Any:
    """A value built only of dict/list/str/int/bool/None, which JSONB stores and returns as is."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, enum.Enum):
        return _json_safe(value.value, path)
    if isinstance(value, str):
        return _clean_text(str(value))
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        raise TypeError(f"{path}: float is not allowed in the audit log (use Decimal for money)")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{path}: {value} is not a finite number")
        return format(value, "f")
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, Mapping):
        return _mask_mapping(value, path)
    if isinstance(value, set | frozenset):
        items = [_json_safe(v, f"{path}[]") for v in value]
        return sorted(items, key=_canonical_json)
    if isinstance(value, Sequence) and not isinstance(value, bytes | bytearray | memoryview):
        return [_json_safe(v, f"{path}[{i}]") for i, v in enumerate(value)]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _mask_mapping(
            {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}, path
        )
    raise TypeError(f"{path}: {type(value).__name__} cannot be written to the audit log")


def _mask_mapping(mapping: Mapping[Any, Any], path: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for raw_key, value in mapping.items():
        key = _json_safe(raw_key, f"{path}.<key>")
        if not isinstance(key, str):
            raise TypeError(f"{path}: audit keys must be strings, not {type(raw_key).__name__}")
        child = f"{path}.{key}"
        kind = _key_kind(key)
        if kind is None or value is None or isinstance(value, bool):
            # A flag such as must_change_password or totp_enabled reveals no secret.
            result[key] = _json_safe(value, child)
        elif kind == "secret" or isinstance(value, Mapping | list | tuple | set | frozenset):
            result[key] = _SECRET_MASK
        else:
            scalar = _json_safe(value, child)
            result[key] = audit_mask_id_number(scalar)
    return result


def audit_safe_details(details: Mapping[str, Any] | None, *, name: str = "details") -> Any:
    """``details`` as stored: secrets masked, ID numbers cut to the last four, JSON-safe.

    Raises TypeError for floats (money is never a float) and for values JSON cannot hold.
    """
    if details is None:
        return None
    if not isinstance(details, Mapping):
        raise TypeError(f"{name}: expected a mapping, got {type(details).__name__}")
    return _mask_mapping(details, name)


# --- canonical form and hash --------------------------------------------------------------------


def _canonical_json(value: object) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def audit_render_at(at: dt.datetime) -> str:
    """The entry time as hashed: UTC, microseconds, ``Z`` suffix."""
    if at.tzinfo is None:
        raise ValueError("audit times must be timezone-aware")
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def audit_canonical_row(
    *,
    at: dt.datetime,
    actor_id: uuid.UUID | None,
    actor_role: str | None,
    action: str,
    entity_type: str,
    entity_id: str | None,
    before: Any,
    after: Any,
    ip: str | None,
    user_agent: str | None,
    request_id: str | None,
) -> bytes:
    """Deterministic JSON (sorted keys, no whitespace, UTF-8) of an entry's hashed columns."""
    row = {
        "action": action,
        "actor_id": str(actor_id) if actor_id is not None else None,
        "actor_role": actor_role,
        "after": after,
        "at": audit_render_at(at),
        "before": before,
        "entity_id": entity_id,
        "entity_type": entity_type,
        "ip": ip,
        "request_id": request_id,
        "user_agent": user_agent,
    }
    return _canonical_json(row).encode("utf-8")


def audit_hash(prev_hash: str, canonical_row: bytes) -> str:
    return hashlib.sha256(prev_hash.encode("ascii") + canonical_row).hexdigest()


def _entry_hash(prev_hash: str, row: Any) -> str:
    """The hash an entry should have, from its stored columns (an ORM entry or a Core row)."""
    return audit_hash(
        prev_hash,
        audit_canonical_row(
            at=row.at,
            actor_id=row.actor_id,
            actor_role=row.actor_role,
            action=row.action,
            entity_type=row.entity_type,
            entity_id=row.entity_id,
            before=row.before,
            after=row.after,
            ip=row.ip,
            user_agent=row.user_agent,
            request_id=row.request_id,
        ),
    )


# --- commands -----------------------------------------------------------------------------------


def _short(value: object, limit: int) -> str | None:
    """Request-supplied text (user agent, …) cut to its column, never a reason to fail."""
    if value is None:
        return None
    return _clean_text(str(value))[:limit]


def _required(value: str, name: str, limit: int) -> str:
    if not value or len(value) > limit:
        raise ValueError(f"audit {name} must be 1 to {limit} characters, got {value!r}")
    return _clean_text(value)


async def audit_record(
    session: AsyncSession,
    *,
    actor: AuditActor,
    action: str,
    entity_type: str,
    entity_id: str | None = None,
    before: Mapping[str, Any] | None = None,
    after: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append an entry to the audit log in the session's transaction (flushed, not committed).

    ``action`` is ``<area>.<verb>`` in lower case (``loan.disbursed``, ``auth.login_failed``).
    ``before``/``after`` are masked (secrets → ``***``, ID numbers → last four characters) and
    must be JSON-safe: Decimal, date/datetime, UUID and enums are converted; floats raise
    TypeError. Holds the audit chain lock until the transaction ends.
    """
    if not _ACTION.match(action) or len(action) > _ACTION_MAX:
        raise ValueError(f"audit action must look like 'loan.disbursed', got {action!r}")
    entity_type = _required(str(entity_type), "entity_type", _ENTITY_TYPE_MAX)
    if entity_id is not None:
        entity_id = _required(str(entity_id), "entity_id", _ENTITY_ID_MAX)
    safe_before = audit_safe_details(before, name="before")
    safe_after = audit_safe_details(after, name="after")
    actor_role = _short(
        actor.actor_role.value if isinstance(actor.actor_role, enum.Enum) else actor.actor_role,
        _MAX_LENGTHS["actor_role"],
    )

    entry = AuditEntry(
        actor_id=actor.actor_id,
        actor_role=actor_role,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        before=safe_before,
        after=safe_after,
        ip=_short(actor.ip, _MAX_LENGTHS["ip"]),
        user_agent=_short(actor.user_agent, _MAX_LENGTHS["user_agent"]),
        request_id=_short(actor.request_id, _MAX_LENGTHS["request_id"]),
    )
    sync = session.sync_session
    where = sync.get_nested_transaction() or sync.get_transaction()
    session.info.setdefault(_PENDING, []).append((entry, where))
    before_commit(session, "audit", _pending_write, last=True)
    return entry


_PENDING = "namma.audit_pending"


# Every money request appends an entry: its three statements go straight to the driver
# (`raw_connection`), and the entries stay plain objects that learn their ids from RETURNING —
# nothing reads them back through the session.
AUDIT_INSERT = (
    "INSERT INTO audit_log (at, actor_id, actor_role, action, entity_type, entity_id, before, "
    "after, ip, user_agent, request_id, prev_hash, hash) VALUES "
)
AUDIT_ROW = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
AUDIT_LOCK = "SELECT pg_advisory_xact_lock(%s)"  # parameter: AUDIT_CHAIN_LOCK_KEY
AUDIT_LAST = "SELECT clock_timestamp(), (SELECT hash FROM audit_log ORDER BY id DESC LIMIT 1)"
_AUDIT_ROWS_PER_INSERT = 1000


async def _pending_write(session: AsyncSession) -> None:
    """Append the transaction's entries to the chain, in the order they were recorded."""
    pending: list[tuple[AuditEntry, SessionTransaction | None]] = session.info.pop(_PENDING, [])
    if not pending:
        return
    await session.flush()  # as a query would: an entry may name a row made in this transaction
    connection = await raw_connection(session)
    # Serialise appends: the lock is held to commit, so the next writer reads our rows as last.
    await connection.execute(AUDIT_LOCK, (AUDIT_CHAIN_LOCK_KEY,))
    # The time comes from the database clock, read after the lock so times follow chain order.
    cursor = await connection.execute(AUDIT_LAST)
    row = await cursor.fetchone()
    assert row is not None
    now, last_hash = row
    prev_hash = last_hash or GENESIS_HASH
    rows: list[tuple[object, ...]] = []
    for entry, _ in pending:
        entry.at = now
        entry.prev_hash = prev_hash
        entry.hash = prev_hash = _entry_hash(prev_hash, entry)
        rows.append(
            (
                entry.at,
                entry.actor_id,
                entry.actor_role,
                entry.action,
                entry.entity_type,
                entry.entity_id,
                None if entry.before is None else Jsonb(entry.before),
                None if entry.after is None else Jsonb(entry.after),
                entry.ip,
                entry.user_agent,
                entry.request_id,
                entry.prev_hash,
                entry.hash,
            )
        )
    # Multi-row INSERTs (a VALUES list's rows take their ids in list order, the chain's order),
    # within PostgreSQL's 65,535 parameters per statement.
    ids: list[int] = []
    for start in range(0, len(rows), _AUDIT_ROWS_PER_INSERT):
        chunk = rows[start : start + _AUDIT_ROWS_PER_INSERT]
        cursor = await connection.execute(
            AUDIT_INSERT + sql_values(AUDIT_ROW, len(chunk)) + " RETURNING id",
            [value for row in chunk for value in row],
        )
        ids += sorted(row[0] for row in await cursor.fetchall())
    for (entry, _), entry_id in zip(pending, ids, strict=True):
        entry.id = entry_id


@event.listens_for(Session, "after_soft_rollback")
def _pending_forget(session: Session, previous_transaction: SessionTransaction) -> None:
    """A rolled-back savepoint (or transaction) takes the entries recorded inside it along."""
    pending = session.info.get(_PENDING)
    if not pending:
        return

    def inside(where: SessionTransaction | None) -> bool:
        while where is not None:
            if where is previous_transaction:
                return True
            where = where.parent
        return False

    session.info[_PENDING] = [(entry, where) for entry, where in pending if not inside(where)]


async def audit_verify(
    session: AsyncSession, *, batch_size: int = VERIFY_BATCH_SIZE
) -> AuditVerifyResult:
    """Walk the chain in id order, in keyset batches, and report the first broken entry.

    An entry is broken when its stored hash differs from the one recomputed from its columns
    (it was edited), or when its ``prev_hash`` is not the previous entry's hash (an entry before
    it was removed, inserted or edited along with its hash).
    """
    table = AuditEntry.__table__
    count = 0
    expected_prev = GENESIS_HASH
    last_id = 0
    while True:
        rows = (
            await session.execute(
                select(table).where(table.c.id > last_id).order_by(table.c.id).limit(batch_size)
            )
        ).all()
        if not rows:
            break
        for row in rows:
            count += 1
            if row.prev_hash != expected_prev:
                reason = (
                    "the first entry does not start the chain"
                    if expected_prev == GENESIS_HASH
                    else "does not link to the previous entry "
                    "(an entry before it was removed or changed)"
                )
                return AuditVerifyResult(
                    ok=False, count=count, first_broken_id=row.id, reason=reason
                )
            if _entry_hash(row.prev_hash, row) != row.hash:
                return AuditVerifyResult(
                    ok=False,
                    count=count,
                    first_broken_id=row.id,
                    reason="its contents do not match its hash (the entry was changed)",
                )
            expected_prev = row.hash
            last_id = row.id
    return AuditVerifyResult(
        ok=True,
        count=count,
        last_id=last_id or None,
        last_hash=expected_prev if count else None,
    )
