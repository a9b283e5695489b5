"""Keyset pagination over any sortable column: ``WHERE (column, id) > (last value, last id)
ORDER BY column, id LIMIT n + 1`` — each page costs the same however deep it is, and rows
added meanwhile never shift a page.

A cursor is the last row's (value, id), base64url-encoded JSON; each sortable column says how
to read its value back (``parse``). Nullable columns are sorted through a non-null expression
(``coalesce``) by the query that declares them.
"""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, tuple_
from sqlalchemy.orm import QueryableAttribute

from namma.kit.errors import InvalidInputError

R = TypeVar("R")
Sortable = ColumnElement[Any] | QueryableAttribute[Any]
S = TypeVar("S", bound=Select[*tuple[Any, ...]])


@dataclass(frozen=True)
class SortColumn:
    key: str  # its name in the address (``?sort=principal``)
    column: Sortable
    parse: Callable[[str], Any]  # a cursor's text back to a value of the column


@dataclass(frozen=True)
class Keyset:
    """Which page: sorted by ``sort`` (descending or not), after the cursor, ``limit`` rows."""

    sort: SortColumn
    descending: bool
    after: tuple[Any, uuid.UUID] | None
    limit: int


@dataclass(frozen=True)
class KeysetPage(Generic[R]):
    rows: Sequence[R]
    next: str | None  # the cursor of the next page (None: this is the last)


def cursor_encode(value: object, row_id: uuid.UUID) -> str:
    raw = json.dumps([str(value), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def cursor_decode(cursor: str, sort: SortColumn, *, field: str = "after") -> tuple[Any, uuid.UUID]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value, row_id = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return sort.parse(str(value)), uuid.UUID(str(row_id))
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError):
        raise InvalidInputError(field, "Not a cursor from this list") from None


def keyset_select(query: S, keyset: Keyset, id_column: Sortable) -> S:
    """``query`` ordered and limited for ``keyset`` (one row more than the page, to tell whether
    another page follows)."""
    key = tuple_(keyset.sort.column, id_column)
    if keyset.after is not None:
        last = tuple_(*keyset.after)
        query = query.where(key < last if keyset.descending else key > last)
    if keyset.descending:
        query = query.order_by(keyset.sort.column.desc(), id_column.desc())
    else:
        query = query.order_by(keyset.sort.column.asc(), id_column.asc())
    return query.limit(keyset.limit + 1)


def keyset_page(
    rows: Sequence[R], keyset: Keyset, key_of: Callable[[R], tuple[object, uuid.UUID]]
) -> KeysetPage[R]:
    """The page from the rows ``keyset_select`` fetched."""
    if len(rows) <= keyset.limit:
        return KeysetPage(rows=rows, next=None)
    shown = rows[: keyset.limit]
    return KeysetPage(rows=shown, next=cursor_encode(*key_of(shown[-1])))
