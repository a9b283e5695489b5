"""Read a rule written as Python arithmetic (the money core's `namma.finance.owed`) as SQL.

A rule like ``def owed_fee(i): return i.fee_due - i.fee_paid - i.fee_waived`` computes a
``Decimal`` when ``i`` is a row. Given SQLAlchemy columns it builds an SQL expression
(`expression_of`); given `SqlText` columns it writes the SQL text of a hand-written statement
(`sql_of`): ``((i.fee_due - i.fee_paid) - i.fee_waived)``. One definition, no copy to keep
equal. `SqlText` knows ``+ - * / = <> < <= > >=``, ``&`` (AND), ``|`` (OR) and ``~`` (NOT);
it refuses to be used as a Python truth value, so a rule written with ``and`` / ``or`` / ``if``
fails loudly instead of being read wrong.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from decimal import Decimal
from typing import Any, ClassVar, cast

from sqlalchemy import ColumnElement


class SqlText:
    """A fragment of SQL text; operators build larger fragments (always parenthesised)."""

    __slots__ = ("text",)
    __hash__: ClassVar[None]  # type: ignore[assignment]

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"SqlText({self.text!r})"

    def __bool__(self) -> bool:
        raise TypeError(
            "an SQL fragment has no truth value: combine conditions with & and |, "
            "and write branches as a table of rules"
        )

    def _op(self, op: str, other: object) -> SqlText:
        return SqlText(f"({self.text} {op} {sql_literal(other)})")

    def _rop(self, op: str, other: object) -> SqlText:
        return SqlText(f"({sql_literal(other)} {op} {self.text})")

    def __add__(self, other: object) -> SqlText:
        return self._op("+", other)

    def __radd__(self, other: object) -> SqlText:
        return self._rop("+", other)

    def __sub__(self, other: object) -> SqlText:
        return self._op("-", other)

    def __rsub__(self, other: object) -> SqlText:
        return self._rop("-", other)

    def __mul__(self, other: object) -> SqlText:
        return self._op("*", other)

    def __rmul__(self, other: object) -> SqlText:
        return self._rop("*", other)

    def __truediv__(self, other: object) -> SqlText:
        return self._op("/", other)

    def __eq__(self, other: object) -> SqlText:  # type: ignore[override]
        return self._op("=", other)

    def __ne__(self, other: object) -> SqlText:  # type: ignore[override]
        return self._op("<>", other)

    def __lt__(self, other: object) -> SqlText:
        return self._op("<", other)

    def __le__(self, other: object) -> SqlText:
        return self._op("<=", other)

    def __gt__(self, other: object) -> SqlText:
        return self._op(">", other)

    def __ge__(self, other: object) -> SqlText:
        return self._op(">=", other)

    def __and__(self, other: object) -> SqlText:
        return self._op("AND", other)

    def __rand__(self, other: object) -> SqlText:
        return self._rop("AND", other)

    def __or__(self, other: object) -> SqlText:
        return self._op("OR", other)

    def __ror__(self, other: object) -> SqlText:
        return self._rop("OR", other)

    def __invert__(self) -> SqlText:
        return SqlText(f"(NOT {self.text})")


def sql_literal(value: object) -> str:
    """A constant of a rule as SQL: numbers as they are, strings quoted. Values that come from
    outside are bound parameters, never literals: pass them as `SqlText` placeholders."""
    if isinstance(value, SqlText):
        return value.text
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no SQL literal for {type(value).__name__}")


class SqlColumns:
    """The columns of a table alias as `SqlText`: ``SqlColumns("i").fee_due`` is ``i.fee_due``."""

    def __init__(self, alias: str) -> None:
        self._alias = alias

    def __getattr__(self, name: str) -> SqlText:
        if name.startswith("_"):
            raise AttributeError(name)
        return SqlText(f"{self._alias}.{name}")


def sql_of(rule: Callable[..., object], alias: str | SqlColumns, *args: SqlText) -> str:
    """The SQL text of ``rule`` over the columns of ``alias`` (further arguments, e.g. the
    date a status is taken on, as `SqlText` such as ``SqlText("CAST(:d AS date)")``). An
    `SqlColumns` instead of an alias may give some columns as expressions of their own."""
    columns = alias if isinstance(alias, SqlColumns) else SqlColumns(alias)
    return str(rule(cast(Any, columns), *args))


def sql_case(
    rules: Iterable[tuple[str, Callable[..., object]]],
    otherwise: str,
    alias: str | SqlColumns,
    *args: SqlText,
) -> str:
    """An ordered table of ``(value, condition)`` rules as ``CASE WHEN … THEN … ELSE … END``:
    the first condition that holds gives the value, as the Python reading of the table does."""
    whens = " ".join(
        f"WHEN {sql_of(holds, alias, *args)} THEN {sql_literal(value)}" for value, holds in rules
    )
    return f"CASE {whens} ELSE {sql_literal(otherwise)} END"


def expression_of(rule: Callable[..., object], entity: Any, *args: Any) -> ColumnElement[Any]:
    """``rule`` as an SQLAlchemy expression over ``entity`` (a mapped class or an alias)."""
    return cast(ColumnElement[Any], rule(entity, *args))
