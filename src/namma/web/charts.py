"""Charts drawn by the server: horizontal bars, each as long as its share of the largest.

Only geometry is computed here (a bar's length in hundredths of the chart's width); the amounts
shown are the services' own, formatted. ``macros/charts.html`` draws the SVG and the table of
the same numbers.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

BAR_HEIGHT = 8
GAP = 4
_ids = itertools.count(1)


@dataclass(frozen=True)
class Bar:
    label: str
    shown: str  # the value as the page shows it (formatted)
    kind: str  # a CSS class suffix: its colour
    width: Decimal  # 0..100
    y: int


@dataclass(frozen=True)
class BarChart:
    id: str
    title: str
    summary: str  # what the chart says, for a screen reader
    bars: Sequence[Bar]
    bar_height: int = BAR_HEIGHT

    @property
    def height(self) -> int:
        return max(1, len(self.bars) * (BAR_HEIGHT + GAP) - GAP)


def bar_chart(
    title: str, items: Sequence[tuple[str, Decimal | str | int, str, str]], *, chart_id: str = ""
) -> BarChart:
    """``items``: (label, value, shown value, kind) for each bar."""
    values = [Decimal(str(value)) for _, value, _, _ in items]
    largest = max((v for v in values if v > 0), default=Decimal(0))
    bars = []
    for k, ((label, _, shown, kind), value) in enumerate(zip(items, values, strict=True)):
        width = (
            (max(value, Decimal(0)) * 100 / largest).quantize(Decimal("0.1"), ROUND_HALF_UP)
            if largest
            else Decimal(0)
        )
        bars.append(Bar(label=label, shown=shown, kind=kind, width=width, y=k * (BAR_HEIGHT + GAP)))
    summary = "; ".join(f"{bar.label}: {bar.shown}" for bar in bars)
    return BarChart(
        id=chart_id or f"chart-{next(_ids)}", title=title, summary=summary, bars=tuple(bars)
    )
