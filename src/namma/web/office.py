"""What the back-office pages (``/office/<area>``) share: who may see them, reading a list's
filters from the address, and a list's CSV download (every row the filters select, not only
the page shown)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from typing import TypeVar
from urllib.parse import urlencode

from fastapi import Request

from namma.kit.pagination import Keyset, SortColumn
from namma.models import Role
from namma.web.tables import table_keyset

OFFICE = (Role.ADMIN, Role.MANAGER)
ADMIN = (Role.ADMIN,)
CSV_LIMIT = 100_000  # a download's rows: far above any branch's list

E = TypeVar("E", bound=enum.Enum)


def param_text(request: Request, name: str) -> str | None:
    value = (request.query_params.get(name) or "").strip()
    return value[:120] or None


def param_bool(request: Request, name: str) -> bool | None:
    value = request.query_params.get(name)
    return {"yes": True, "no": False}.get(value or "")


def param_enum(request: Request, name: str, kind: type[E]) -> E | None:
    try:
        return kind(request.query_params.get(name) or "")
    except ValueError:
        return None


def param_uuid(request: Request, name: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(request.query_params.get(name) or "")
    except ValueError:
        return None


def wants_csv(request: Request) -> bool:
    return request.query_params.get("format") == "csv"


def list_keyset(
    request: Request, sorts: Mapping[str, SortColumn], *, default: str, descending: bool = False
) -> tuple[Keyset, str | None]:
    """The page the address asks for; for a CSV download, every row from the first."""
    keyset, after = table_keyset(request, sorts, default=default, descending=descending)
    if wants_csv(request):
        return Keyset(
            sort=keyset.sort, descending=keyset.descending, after=None, limit=CSV_LIMIT
        ), None
    return keyset, after


def csv_url(request: Request) -> str:
    """The current list's address asking for its CSV (filters and sort kept, page dropped)."""
    params = {k: v for k, v in request.query_params.items() if k not in ("after", "format")}
    return f"{request.url.path}?{urlencode(params | {'format': 'csv'})}"
