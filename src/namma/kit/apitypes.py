"""Value types of the API's answers besides money (`namma.kit.money`): how a moment, a plain
decimal and a whole JSON object are written.

A moment keeps Python's ``isoformat`` (``2026-12-06T22:47:18.574458+00:00``), the form the API
has always answered — Pydantic's own would write ``Z`` for UTC, which would change answers that
clients compare or that idempotency replays byte for byte.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, Any

from pydantic import ConfigDict, PlainSerializer, WithJsonSchema

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
