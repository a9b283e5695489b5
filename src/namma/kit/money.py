"""Money and rates in the API: decimal strings in, decimal strings out — never JSON numbers.

A JSON number would pass through a float in most clients; ``"12500.00"`` cannot.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

# ASCII digits only: Python's \d and Decimal() would read "१२३" (Devanagari) as 123.
_DECIMAL = re.compile(r"^-?[0-9]{1,18}(\.[0-9]+)?$", re.ASCII)


def _decimal_from_string(places: int) -> Any:
    def parse(value: object) -> Decimal:
        if isinstance(value, Decimal):
            return value
        if not isinstance(value, str):
            raise ValueError('must be a decimal string such as "12500.00", not a JSON number')
        text = value.strip()
        if not _DECIMAL.fullmatch(text):
            raise ValueError('must be a decimal string such as "12500.00"')
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise ValueError("not a decimal number") from None
        exponent = number.as_tuple().exponent
        if isinstance(exponent, int) and -exponent > places:
            raise ValueError(f"at most {places} decimal places")
        return number

    return parse


def money_text(value: Decimal) -> str:
    """An amount as the API writes it (``Money``): two decimals."""
    return str(value.quantize(Decimal("0.01")))


Money = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_string(2)),
    PlainSerializer(money_text, return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^-?\d+(\.\d{1,2})?$", "examples": ["12500.00"]}),
]
"""An amount in rupees with at most 2 decimals, as a string."""

Rate = Annotated[
    Decimal,
    BeforeValidator(_decimal_from_string(4)),
    PlainSerializer(lambda v: str(v), return_type=str),
    WithJsonSchema({"type": "string", "pattern": r"^\d+(\.\d{1,4})?$", "examples": ["24.00"]}),
]
"""A percentage with at most 4 decimals, as a string."""


def money_str(value: Decimal | None) -> str | None:
    return None if value is None else money_text(value)
