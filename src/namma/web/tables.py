"""Sortable, paginated tables: the address says the sort (``?sort=principal&dir=asc``) and the
page (``&after=<cursor>``); the query (in its domain's ``queries.py``) pages by keyset
(``namma.kit.pagination``). The template draws headers as sort links (``aria-sort`` on the
sorted one) and a "next page" link: ``macros/tables.html``.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from fastapi import Request
from fastapi.responses import Response

from namma.kit.pagination import Keyset, SortColumn, cursor_decode
from namma.reports.base import ColumnType
from namma.reports.export import CSV_MEDIA_TYPE, csv_cell

PAGE_SIZE = 20


@dataclass(frozen=True)
class Column:
    key: str
    label: str  # an N_() message, translated when shown
    numeric: bool = False
    sortable: bool = True
    phone: bool = True  # shown on a phone-sized screen (else only from 40rem wide)


@dataclass(frozen=True)
class Table:
    """What a table's template needs besides its rows."""

    path: str
    columns: Sequence[Column]
    sort: str
    descending: bool
    next: str | None = None
    after: str | None = None
    extra: Mapping[str, str] | None = None  # other query parameters to keep (filters)

    def _url(self, **params: str) -> str:
        values = dict(self.extra or {}) | params
        return f"{self.path}?{urlencode(values)}"

    def sort_url(self, key: str) -> str:
        # The sorted column flips; another starts from the largest (newest) first.
        descending = not self.descending if key == self.sort else True
        return self._url(sort=key, dir="desc" if descending else "asc")

    def aria_sort(self, key: str) -> str | None:
        if key != self.sort:
            return None
        return "descending" if self.descending else "ascending"

    @property
    def next_url(self) -> str | None:
        if self.next is None:
            return None
        return self._url(sort=self.sort, dir="desc" if self.descending else "asc", after=self.next)

    @property
    def first_url(self) -> str | None:
        if self.after is None:
            return None
        return self._url(sort=self.sort, dir="desc" if self.descending else "asc")


def table_keyset(
    request: Request,
    sorts: Mapping[str, SortColumn],
    *,
    default: str,
    descending: bool = True,
    limit: int = PAGE_SIZE,
) -> tuple[Keyset, str | None]:
    """The keyset the address asks for (unknown sorts fall back to the default), and the raw
    cursor (to offer "first page")."""
    params = request.query_params
    key = params.get("sort", default)
    sort = sorts.get(key) or sorts[default]
    direction = params.get("dir")
    desc = descending if direction not in ("asc", "desc") else direction == "desc"
    after_text = params.get("after") or None
    after = cursor_decode(after_text, sort) if after_text else None
    return Keyset(sort=sort, descending=desc, after=after, limit=limit), after_text


def table_of(
    request: Request,
    columns: Sequence[Column],
    keyset: Keyset,
    *,
    next_cursor: str | None,
    after: str | None,
    extra: Mapping[str, Any] | None = None,
) -> Table:
    return Table(
        path=request.url.path,
        columns=columns,
        sort=keyset.sort.key,
        descending=keyset.descending,
        next=next_cursor,
        after=after,
        extra={k: str(v) for k, v in (extra or {}).items() if v not in (None, "")},
    )


def table_csv(
    filename: str,
    header: Sequence[tuple[str, ColumnType]],
    rows: Iterable[Sequence[Any]],
) -> Response:
    """A list page's "Download CSV": the same rows as the table (every page of them), cells
    written by the reports' rule (money with two places, ISO dates, formula-safe text), UTF-8
    with a byte-order mark so that a spreadsheet reads Kannada names."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([key for key, _ in header])
    for row in rows:
        writer.writerow(
            [csv_cell(value, kind) for value, (_, kind) in zip(row, header, strict=True)]
        )
    return Response(
        out.getvalue().encode("utf-8-sig"),
        media_type=CSV_MEDIA_TYPE,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
