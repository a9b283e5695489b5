"""What every report shares: its filters, its shape (columns, rows, totals), and the few
definitions that reports and dashboards must agree on — PAR buckets, the collection rate and
profit. See docs/reports.md.

A report is plain data: rows of Python values (``Decimal`` money, ``int`` counts, ``date``,
``str``); ``namma.reports.schemas.ReportOut`` turns it into the API's JSON (money as
two-decimal strings, percents as strings with two places; ``value_json`` formats one cell),
``namma.reports.export`` into CSV or XLSX.
"""

from __future__ import annotations

import datetime as dt
import enum
import uuid
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

ZERO = Decimal("0.00")
CENT = Decimal("0.01")
HUNDRED = Decimal(100)

# Days past due → bucket. "current" is 0 DPD; the others are inclusive ranges.
BUCKETS: tuple[str, ...] = ("current", "1-30", "31-60", "61-90", "90+")
# The PAR ratios reported, by name → the fewest days past due a loan needs to count:
# PAR1 = DPD ≥ 1, PAR30 = DPD > 30, PAR90 = DPD > 90 (the usual "more than 30 / 90 days"), so
# that PAR30 is exactly the buckets 31-60, 61-90 and 90+, and PAR90 the bucket 90+.
# PAR n % = outstanding principal of active loans counted ÷ all active outstanding principal.
PAR_THRESHOLDS: dict[int, int] = {1: 1, 30: 31, 90: 91}


def dpd_bucket(days_past_due: int) -> str:
    """The bucket of a loan with ``days_past_due`` (the same CASE the SQL uses)."""
    if days_past_due <= 0:
        return "current"
    if days_past_due <= 30:
        return "1-30"
    if days_past_due <= 60:
        return "31-60"
    if days_past_due <= 90:
        return "61-90"
    return "90+"


def percent(part: Decimal | int, whole: Decimal | int) -> Decimal | None:
    """``part`` as a percent of ``whole``, two places half-up; ``None`` when ``whole`` is 0 (a
    ratio to nothing is undefined, not 0)."""
    if whole == 0:
        return None
    return (Decimal(part) * HUNDRED / Decimal(whole)).quantize(CENT, rounding=ROUND_HALF_UP)


def collection_rate(collected_against_dues: Decimal, dues: Decimal) -> Decimal | None:
    """THE collection rate, everywhere (reports and dashboards): what was collected against the
    dues that fell due in a period ÷ those dues, in percent (2 places; ``None`` if nothing fell
    due). Dues and what counts against them are defined by ``queries.installment_demand``."""
    return percent(collected_against_dues, dues)


def profit(income: Decimal, expenses: Decimal) -> Decimal:
    """THE profit, everywhere: the ledger's income accounts minus its expense accounts for the
    period (cash basis; see ``queries.ledger_period_totals``). Negative is a loss."""
    return income - expenses


class ColumnType(enum.StrEnum):
    TEXT = "text"
    INT = "int"
    MONEY = "money"
    PERCENT = "percent"
    DATE = "date"


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    type: ColumnType = ColumnType.TEXT


def text(key: str, label: str) -> Column:
    return Column(key, label, ColumnType.TEXT)


def count(key: str, label: str) -> Column:
    return Column(key, label, ColumnType.INT)


def money(key: str, label: str) -> Column:
    return Column(key, label, ColumnType.MONEY)


def pct(key: str, label: str) -> Column:
    return Column(key, label, ColumnType.PERCENT)


def day(key: str, label: str) -> Column:
    return Column(key, label, ColumnType.DATE)


@dataclass(frozen=True)
class ReportFilters:
    """The filters of one report request, already scoped: a Manager's ``branch_id`` is always
    their own branch (the endpoint refuses another)."""

    date_from: dt.date
    date_to: dt.date
    branch_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    product_id: uuid.UUID | None = None

    @property
    def narrows_loans(self) -> bool:
        """True when the filters select loans by something the ledger's entries do not carry
        (the agent, the product): ledger figures are then taken from loan-tagged lines."""
        return self.agent_id is not None or self.product_id is not None


@dataclass(frozen=True)
class Reconciliation:
    """One report figure next to the ledger figure it must equal."""

    figure: str  # the report's total, e.g. "outstanding_principal"
    ledger: str  # what in the ledger, e.g. "loan_portfolio balance"
    report_amount: Decimal
    ledger_amount: Decimal

    @property
    def ok(self) -> bool:
        return self.report_amount == self.ledger_amount


@dataclass
class Report:
    name: str  # the URL name, e.g. "portfolio-summary"
    title: str
    filters: ReportFilters
    columns: list[Column]
    rows: list[dict[str, Any]]
    totals: dict[str, Any] = field(default_factory=dict)
    # Figures that are not a column total (ratios, a statement's result), shown beside the table.
    summary: dict[str, Any] = field(default_factory=dict)
    summary_types: dict[str, ColumnType] = field(default_factory=dict)
    reconciliation: list[Reconciliation] = field(default_factory=list)
    as_of: dt.date | None = None  # the day current-state figures (balances, DPD) describe
    uses_dates: bool = True  # False: the report is a current state; from/to do not apply


def value_json(value: Any, kind: ColumnType) -> Any:
    """A cell as the API shows it."""
    if value is None:
        return None
    if kind is ColumnType.MONEY:
        return str(Decimal(value).quantize(CENT))
    if kind is ColumnType.PERCENT:
        return str(Decimal(value).quantize(CENT))
    if kind is ColumnType.INT:
        return int(value)
    if kind is ColumnType.DATE:
        return value.isoformat() if isinstance(value, dt.date) else str(value)
    if isinstance(value, uuid.UUID | enum.Enum):
        return str(value.value if isinstance(value, enum.Enum) else value)
    return value


def row_json(row: dict[str, Any], columns: list[Column]) -> dict[str, Any]:
    return {c.key: value_json(row.get(c.key), c.type) for c in columns}
