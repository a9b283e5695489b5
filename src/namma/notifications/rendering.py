"""Message templates (Jinja2, plain text) in English and Kannada.

Each template file ``templates/<language>/<name>.txt`` has three blocks: ``subject`` and
``email`` (the e-mail) and ``sms`` (one short text). Amounts are shown in rupees with Indian
digit grouping (``₹1,00,000.00``), dates as ``DD-MM-YYYY``. A variable missing from the
context is an error, never an empty gap in a message to a customer.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from namma.models import Language

TEMPLATE_DIR = Path(__file__).parent / "templates"

REMINDER = "repayment_reminder"
OVERDUE = "overdue_notice"
RECEIPT = "receipt"
LOAN_APPROVED = "loan_approved"
LOAN_DISBURSED = "loan_disbursed"
COLLECTION_REVERSED = "collection_reversed"
DUE_DATE_MOVED = "due_date_moved"
LOAN_RESTRUCTURED = "loan_restructured"
TEMPLATES = (
    REMINDER,
    OVERDUE,
    RECEIPT,
    LOAN_APPROVED,
    LOAN_DISBURSED,
    COLLECTION_REVERSED,
    DUE_DATE_MOVED,
    LOAN_RESTRUCTURED,
)
LANGUAGES = tuple(language.value for language in Language)


def inr(value: Decimal) -> str:
    """Rupees with Indian digit grouping: ``Decimal("123456.5")`` → ``"1,23,456.50"``."""
    amount = Decimal(value).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    sign = "-" if amount < 0 else ""
    whole, paise = f"{abs(amount):.2f}".split(".")
    head, tail = whole[:-3], whole[-3:]
    groups: list[str] = []
    while len(head) > 2:
        groups.insert(0, head[-2:])
        head = head[:-2]
    if head:
        groups.insert(0, head)
    return sign + ",".join([*groups, tail]) + "." + paise


def day(value: dt.date) -> str:
    return value.strftime("%d-%m-%Y")


# Plain-text messages, not HTML: nothing to escape.
_env = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=False,  # noqa: S701
    undefined=StrictUndefined,
    trim_blocks=True,
)
_env.filters["inr"] = inr
_env.filters["day"] = day


@dataclass(frozen=True)
class Rendered:
    subject: str
    email: str
    sms: str


def message_render(template: str, language: str, context: Mapping[str, Any]) -> Rendered:
    """The three parts of ``template`` in ``language`` (English if it has no such language)."""
    if template not in TEMPLATES:
        raise ValueError(f"unknown message template {template!r}")
    lang = language if language in LANGUAGES else Language.EN.value
    compiled = _env.get_template(f"{lang}/{template}.txt")

    def block(name: str) -> str:
        return "".join(compiled.blocks[name](compiled.new_context(dict(context)))).strip()

    return Rendered(subject=block("subject"), email=block("email") + "\n", sms=block("sms"))
