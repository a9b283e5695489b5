"""What the back-office pages (``/office/<area>``) share: who may see them, reading a list's
filters from the address, and a list's CSV download (every row the filters select, not only
the page shown)."""

from __future__ import annotations

import enum
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlencode

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncSession

from namma.kit.errors import InvalidInputError
from namma.kit.idempotency import (
    idempotency_begin,
    idempotency_complete,
    json_text,
    request_fingerprint,
)
from namma.kit.pagination import Keyset, SortColumn
from namma.models import Role
from namma.web.forms import Form
from namma.web.i18n import N_
from namma.web.tables import table_keyset
from namma.web.viewer import Viewer

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


# The hidden field of a money form's confirmation step: its key for ``act_once``.
ONCE_FIELD = "idempotency_key"


def once_key_new() -> str:
    """A fresh key for a money form (made when the form or its confirmation step is shown)."""
    return str(uuid.uuid4())


def request_key_new(form: Form[Any]) -> None:
    """Give a money form's confirmation step a key of its own (``act_once``)."""
    form.values[ONCE_FIELD] = once_key_new()


async def act_once(
    session: AsyncSession,
    viewer: Viewer,
    request: Request,
    form: Form[Any],
    produce: Callable[[], Awaitable[str]],
    *,
    body: Mapping[str, Any] | None = None,
) -> str:
    """Run ``produce`` (the command; it returns where to go next) once per the form's key,
    through the API's idempotency keys (``kit.idempotency``): a second submit of the same form
    (a double click, a reload, a resent request) goes where the first went and changes
    nothing. The claim and the answer live in the request's transaction, so a refused command
    rolls both back. ``body``: the values the key stands for (default: the form's). A form
    without its key did not come from the page and is refused."""
    key = form.values.get(ONCE_FIELD, "")
    try:
        uuid.UUID(key)
    except ValueError:
        raise InvalidInputError(
            ONCE_FIELD, "The form has expired or did not come from this site."
        ) from None
    values = (
        dict(body)
        if body is not None
        else {k: v for k, v in form.values.items() if k != ONCE_FIELD}
    )
    fingerprint = request_fingerprint(f"PAGE {request.url.path}", json.loads(json_text(values)))
    user_id = viewer.principal.user_id
    stored = await idempotency_begin(
        session, user_id=user_id, key=f"page:{key}", fingerprint=fingerprint
    )
    if stored is not None:
        return str(json.loads(stored.body)["location"])
    location = await produce()
    await idempotency_complete(
        session,
        user_id=user_id,
        key=f"page:{key}",
        status=303,
        body=json_text({"location": location}),
    )
    return location


# The services' messages these pages may show, marked for the catalogue (``message_translate``
# finds them there).
SERVICE_MESSAGES = (
    N_("Branch code is 2 to 10 letters or digits, e.g. BLR01"),
    N_("Branch name is required"),
    N_("Move or deactivate the branch's staff before closing it"),
    N_("Branch not found"),
    N_("Staff member not found"),
    N_("Managers and Agents belong to a branch"),
    N_("No such active branch"),
    N_("Name is required"),
    N_("Enter a valid email address"),
    N_("Enter a 10-digit Indian mobile number starting with 6-9"),
    N_("Give an email or a mobile number to log in with"),
    N_("Managers can change Agents only."),
    N_("You cannot deactivate or reactivate yourself."),
    N_("Only an Admin can reset two-factor authentication."),
    N_("You cannot reset your own two-factor authentication."),
    N_("This user has no authenticator to reset."),
    N_("Choose the agent who takes over this agent's customers"),
    N_("No such agent"),
    N_("This agent is deactivated"),
    N_("The agent works for another branch than the customer"),
    N_("This agent already serves this customer."),
    N_("This agent already serves one of the chosen customers"),
    N_("Choose at least one customer"),
    N_("Choose a different agent"),
    N_("Product not found"),
    N_("Principal must be greater than 0"),
    N_("The largest principal is below the smallest"),
    N_("Rates must satisfy 0 ≤ min ≤ default ≤ max ≤ 100"),
    N_("Installments must satisfy 1 ≤ min ≤ max"),
    N_("Microfinance products cannot charge a prepayment penalty (RBI)"),
    N_("2 to 20 capital letters, digits or dashes, e.g. JLG-52W"),
    N_("Borrowing not found"),
    N_("The amount must be greater than 0"),
)
