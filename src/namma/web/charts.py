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


LINE_WIDTH = 100
LINE_HEIGHT = 40


@dataclass(frozen=True)
class Series:
    label: str
    kind: str  # a CSS class suffix: its colour
    points: str  # the SVG polyline's "x,y x,y …"
    shown: Sequence[str]  # each point's value as the page shows it


@dataclass(frozen=True)
class LineChart:
    id: str
    title: str
    summary: str
    labels: Sequence[str]  # the x axis: one per point (dates)
    series: Sequence[Series]
    width: int = LINE_WIDTH
    height: int = LINE_HEIGHT


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, str, Sequence[Decimal | str | None], Sequence[str]]],
    *,
    chart_id: str = "",
) -> LineChart:
    """``series``: (label, kind, values, shown values), one value per label; a missing value
    (None) is drawn as 0. The scale runs from 0 to the largest value of all series."""
    numbers = [[Decimal(str(v)) if v is not None else Decimal(0) for v in s[2]] for s in series]
    largest = max((v for vs in numbers for v in vs), default=Decimal(0))
    step = Decimal(LINE_WIDTH) / max(1, len(labels) - 1)
    drawn = []
    for (label, kind, _, shown), values in zip(series, numbers, strict=True):
        tenth = Decimal("0.1")
        heights = [v * LINE_HEIGHT / largest if largest else Decimal(0) for v in values]
        if len(heights) == 1:  # one day so far: a level line across the chart
            heights = heights * 2
            step = Decimal(LINE_WIDTH)
        points = " ".join(
            f"{(step * k).quantize(tenth, ROUND_HALF_UP)},"
            f"{(LINE_HEIGHT - h).quantize(tenth, ROUND_HALF_UP)}"
            for k, h in enumerate(heights)
        )
        drawn.append(Series(label=label, kind=kind, points=points, shown=tuple(shown)))
    last = {s.label: (s.shown[-1] if s.shown else "") for s in drawn}
    summary = "; ".join(f"{k}: {v}" for k, v in last.items())
    if labels:
        summary = f"{labels[0]} – {labels[-1]}. {summary}"
    return LineChart(
        id=chart_id or f"chart-{next(_ids)}",
        title=title,
        summary=summary,
        labels=tuple(labels),
        series=tuple(drawn),
    )
