"""Reports as downloads: CSV (the ``csv`` module) and XLSX (openpyxl).

CSV: UTF-8 with a byte-order mark (so Excel shows Kannada names right), a header row of the
column keys, then one line per row — data only, no totals line, so it loads straight into
another program. Money is a plain ``1234.50``; percents ``12.34``; dates ISO. A text cell that
starts with ``= + - @`` (or a tab / carriage return) is prefixed with ``'`` so a spreadsheet
never runs it as a formula (CSV injection).

XLSX: sheet "Report" with the column labels, typed cells (money as numbers formatted
``#,##0.00`` — the exact decimal is written, never a float), a bold totals row; sheet "About"
with the title, filters, summary figures and the ledger reconciliation.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from decimal import Decimal
from typing import Any

from openpyxl import Workbook  # type: ignore[import-untyped]
from openpyxl.cell import WriteOnlyCell  # type: ignore[import-untyped]
from openpyxl.styles import Font  # type: ignore[import-untyped]

from namma.reports.base import CENT, Column, ColumnType, Report
from namma.reports.schemas import ReportOut

CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
MONEY_FORMAT = "#,##0.00"
PERCENT_FORMAT = "0.00"
DATE_FORMAT = "yyyy-mm-dd"


def _safe_text(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_START) else value


def csv_cell(value: Any, kind: ColumnType) -> str:
    if value is None:
        return ""
    if kind in (ColumnType.MONEY, ColumnType.PERCENT):
        return str(Decimal(value).quantize(CENT))
    if kind is ColumnType.INT:
        return str(int(value))
    if isinstance(value, dt.date):
        return value.isoformat()
    return _safe_text(str(value))


def report_csv(report: Report) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.key for c in report.columns])
    for row in report.rows:
        writer.writerow([csv_cell(row.get(c.key), c.type) for c in report.columns])
    return out.getvalue().encode("utf-8-sig")


def _xlsx_value(value: Any, kind: ColumnType) -> Any:
    if value is None:
        return None
    if kind in (ColumnType.MONEY, ColumnType.PERCENT):
        return Decimal(value).quantize(CENT)
    if kind is ColumnType.INT:
        return int(value)
    if kind is ColumnType.DATE and isinstance(value, dt.date):
        return value
    return _safe_text(str(value))


def _cell(sheet: Any, value: Any, column: Column, *, bold: bool = False) -> Any:
    cell = WriteOnlyCell(sheet, value=_xlsx_value(value, column.type))
    if column.type is ColumnType.MONEY:
        cell.number_format = MONEY_FORMAT
    elif column.type is ColumnType.PERCENT:
        cell.number_format = PERCENT_FORMAT
    elif column.type is ColumnType.DATE:
        cell.number_format = DATE_FORMAT
    if bold:
        cell.font = Font(bold=True)
    return cell


def report_xlsx(report: Report) -> bytes:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet("Report")
    header = []
    for c in report.columns:
        cell = WriteOnlyCell(sheet, value=c.label)
        cell.font = Font(bold=True)
        header.append(cell)
    sheet.append(header)
    for row in report.rows:
        sheet.append([_cell(sheet, row.get(c.key), c) for c in report.columns])
    if report.totals:
        cells = []
        for i, c in enumerate(report.columns):
            if c.key in report.totals:
                cells.append(_cell(sheet, report.totals[c.key], c, bold=True))
            elif i == 0:
                cells.append(_cell(sheet, "Total", Column(c.key, c.label), bold=True))
            else:
                cells.append(None)
        sheet.append(cells)

    about = workbook.create_sheet("About")
    data = ReportOut.of(report).model_dump(mode="json")
    about.append(["Report", report.title])
    about.append(["As of", data["as_of"] or ""])
    for key, value in data["filters"].items():
        about.append([f"Filter: {key}", "" if value is None else str(value)])
    for key, value in data["summary"].items():
        about.append([key, "" if value is None else str(value)])
    for r in data["reconciliation"]:
        about.append(
            [
                f"Reconciles: {r['figure']}",
                r["ledger"],
                r["report_amount"],
                r["ledger_amount"],
                "ok" if r["ok"] else f"DIFFERENCE {r['difference']}",
            ]
        )
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def report_filename(report: Report, extension: str, *, scope: str = "all") -> str:
    """``collections_BLR01_2026-11-01_2026-11-25.csv``: name, scope, period (or as-of day)."""
    f = report.filters
    if report.uses_dates:
        period = f"{f.date_from.isoformat()}_{f.date_to.isoformat()}"
    else:
        period = (report.as_of or f.date_to).isoformat()
    name = _UNSAFE.sub("-", f"{report.name}_{scope}_{period}")
    return f"{name}.{extension}"
