"""Value types of the API's answers besides money (`namma.kit.money`): how a moment, a plain
decimal and a whole JSON object are written.

A moment keeps Python's ``isoformat`` (``2026-12-06T22:47:18.574458+00:00``), the form the API
has always answered — Pydantic's own would write ``Z`` for UTC, which would change answers that
clients compare or that idempotency replays byte for byte.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Annotated, Any, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    PlainSerializer,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import PydanticCustomError

Timestamp = Annotated[
    dt.datetime,
    PlainSerializer(lambda v: v.isoformat(), return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A moment with its offset, as ``isoformat`` writes it."""

DecimalText = Annotated[
    Decimal,
    PlainSerializer(lambda v: str(v), return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d+)?$", "examples": ["1.0000"]}),
]
"""A decimal that is not money (a percentage, a rule's value), as its exact digits."""

JsonObject = dict[str, Any]
"""A stored JSON object answered as it is (a product's penalty rule)."""

# Answers are built by the server from its own rows: no extra keys, nothing coerced silently.
ANSWER = ConfigDict(extra="forbid")


# --- what a request may carry --------------------------------------------------------------------

# C0/C1 control characters (tab, line feed and carriage return excepted), lone surrogates (JSON's
# "\ud800" decodes to one; PostgreSQL cannot store it), the bidirectional embeddings, overrides and
# isolates (text that reads differently from what it is) and the two non-characters U+FFFE/FFFF.
_REFUSED_TEXT = re.compile(
    r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff\ufffe\uffff]"
)
FIRST_DAY = dt.date(1900, 1, 1)
LAST_DAY = dt.date(2100, 12, 31)
_ISO_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_ISO_MOMENT = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9:.,]+(Z|[+-][0-9:]+)?)?", re.ASCII)


def text_problem(value: str) -> str | None:
    """Why ``value`` cannot be accepted as text (``None``: it can)."""
    found = _REFUSED_TEXT.search(value)
    if found is None:
        return None
    return f"Must not contain the invisible or control character U+{ord(found.group()):04X}"


def text_printable(value: str) -> str:
    """``value`` with each refused character replaced by U+FFFD (to quote a client's text)."""
    return _REFUSED_TEXT.sub("\ufffd", value)


def _refuse(code: str, message: str) -> PydanticCustomError:
    return PydanticCustomError(code, message)


def _check_text(value: object) -> None:
    # Strings and lists of strings; a nested object is a model of its own (checked by its fields).
    if isinstance(value, str):
        problem = text_problem(value)
        if problem is not None:
            raise _refuse("text_refused", problem)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _check_text(item)


def _check_days(value: object) -> None:
    if isinstance(value, dt.date):
        day = value.date() if isinstance(value, dt.datetime) else value
        if not FIRST_DAY <= day <= LAST_DAY:
            raise _refuse("date_out_of_range", "Must be a date between 1900-01-01 and 2100-12-31")
    elif isinstance(value, list | tuple):
        for item in value:
            _check_days(item)


def _mentions(annotation: Any, kinds: tuple[type, ...]) -> bool:
    if annotation in kinds:
        return True
    return any(_mentions(arg, kinds) for arg in get_args(annotation))


def _day_text(value: object, *, moment: bool) -> object:
    """A date (or moment) arrives as ISO text: a number is not a date (Pydantic would read it as
    seconds since 1970)."""
    if isinstance(value, bool | int | float | Decimal):
        raise _refuse("date_type", "Must be a date as YYYY-MM-DD, not a number")
    if isinstance(value, str) and not (_ISO_MOMENT if moment else _ISO_DAY).fullmatch(
        value.strip()
    ):
        raise _refuse(
            "date_format",
            "Must be a date and time in ISO 8601" if moment else "Must be a date as YYYY-MM-DD",
        )
    return value


class RequestModel(BaseModel):
    """The base of every request body (and of every model a body nests). Whatever the field:

    - text with a control character, a lone surrogate or a bidirectional override is refused
      (PostgreSQL refuses NUL; the others only make trouble further on);
    - ``true`` is not an integer; a number is not a date;
    - dates lie between 1900-01-01 and 2100-12-31;
    - unknown fields are refused.

    Each refusal is a 422 naming the field (the handlers of ``namma.kit.errors``)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _request_input(cls, value: Any, info: ValidationInfo) -> Any:
        _check_text(value)
        field = cls.model_fields.get(info.field_name or "")
        if field is None:
            return value
        annotation = field.annotation
        if (
            isinstance(value, bool)
            and _mentions(annotation, (int,))
            and not _mentions(annotation, (bool,))
        ):
            raise _refuse("int_type", "Must be an integer, not true or false")
        if _mentions(annotation, (dt.datetime,)):
            return _day_text(value, moment=True)
        if _mentions(annotation, (dt.date,)):
            return _day_text(value, moment=False)
        return value

    @field_validator("*", mode="after")
    @classmethod
    def _request_days(cls, value: Any) -> Any:
        _check_days(value)
        return value


def _query_day(value: object) -> object:
    return _day_text(value, moment=False)


def _query_moment(value: object) -> object:
    return _day_text(value, moment=True)


def _in_range(value: dt.date) -> dt.date:
    _check_days(value)
    return value


Day = Annotated[
    dt.date,
    BeforeValidator(_query_day),
    AfterValidator(_in_range),
    WithJsonSchema({"type": "string", "format": "date", "examples": ["2026-11-25"]}),
]
"""A date in a query string or a path: ``YYYY-MM-DD`` between 1900 and 2100 (not a number)."""

Moment = Annotated[
    dt.datetime,
    BeforeValidator(_query_moment),
    AfterValidator(_in_range),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
"""A moment in a query string: ISO 8601, in 1900–2100 (not a number)."""


def _query_text(value: str) -> str:
    _check_text(value)
    return value


QueryText = Annotated[str, AfterValidator(_query_text)]
"""Text in a query string, under the rule of a body's text (no control characters)."""

MAX_BIGINT = 2**63 - 1
"""The largest integer PostgreSQL's bigint holds: a query's whole numbers stay below it."""
