"""What every response model shares: the base class and the types whose JSON form is fixed.

Response models live in each domain's ``schemas.py``; a route declares its model and FastAPI
validates and serialises the answer with it (the OpenAPI document then describes the body).
Money and rates are ``namma.kit.money.Money`` / ``Rate`` (strings); timestamps are
``Timestamp``: ``datetime.isoformat()`` (``+00:00``, not Pydantic's ``Z``), which the API has
always answered.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema

M = TypeVar("M", bound=BaseModel)


class ApiModel(BaseModel):
    """A response body (or a part of one). ``from_attributes``: built straight from an ORM row
    (``Model.model_validate(row)``) when its attribute names are the JSON's."""

    model_config = ConfigDict(from_attributes=True)


def _timestamp_out(value: dt.datetime) -> str:
    return value.isoformat()


Timestamp = Annotated[
    dt.datetime,
    PlainSerializer(_timestamp_out, return_type=str),
    WithJsonSchema(
        {"type": "string", "format": "date-time", "examples": ["2026-11-25T10:15:30.123456+00:00"]}
    ),
]
"""A moment, as ISO 8601 with its UTC offset."""


def from_row(model: type[M], row: object, **fields: Any) -> M:
    """``model`` from ``row``'s attributes of the same names (an ORM row, a dataclass), with
    ``fields`` given instead of (or besides) attributes."""
    data = {
        name: fields[name] if name in fields else getattr(row, name) for name in model.model_fields
    }
    return model.model_validate(data)
