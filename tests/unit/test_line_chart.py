"""The server-drawn line chart (``namma.web.charts.line_chart``): geometry only, the shown
values as given."""

from __future__ import annotations

from decimal import Decimal

from namma.web.charts import LINE_HEIGHT, line_chart


def test_points_scale_to_the_largest_value_of_all_series() -> None:
    chart = line_chart(
        "PAR",
        ["1-Dec", "2-Dec", "3-Dec"],
        [
            ("PAR 1", "interest", ["5.00", "10.00", None], ["5 %", "10 %", "—"]),
            ("PAR 30", "penalties", [Decimal("2.5"), "0", "20"], ["2.5 %", "0 %", "20 %"]),
        ],
        chart_id="c",
    )
    first, second = chart.series
    assert first.points == "0.0,30.0 50.0,20.0 100.0,40.0"  # None is drawn as 0
    assert second.points == f"0.0,35.0 50.0,{LINE_HEIGHT}.0 100.0,0.0"
    assert first.shown == ("5 %", "10 %", "—")
    assert chart.summary == "1-Dec – 3-Dec. PAR 1: —; PAR 30: 20 %"


def test_one_day_is_a_level_line_and_nothing_is_a_flat_one() -> None:
    one = line_chart("t", ["1-Dec"], [("x", "paid", ["7"], ["7 %"])])
    assert one.series[0].points == "0.0,0.0 100.0,0.0"
    flat = line_chart("t", ["1-Dec", "2-Dec"], [("x", "paid", ["0", None], ["0 %", "—"])])
    assert flat.series[0].points == f"0.0,{LINE_HEIGHT}.0 100.0,{LINE_HEIGHT}.0"
