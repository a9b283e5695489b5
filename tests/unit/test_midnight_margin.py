"""The suite's wait before a run that would cross the Indian midnight (tests/conftest.py)."""

from __future__ import annotations

import datetime as dt

from tests.conftest import seconds_until_clear_of_midnight

MARGIN = dt.timedelta(minutes=15)


def utc(hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2026, 12, 7, hour, minute, tzinfo=dt.UTC)


def test_a_run_ten_minutes_before_the_indian_midnight_waits_for_it() -> None:
    # 18:20 UTC is 23:50 IST: ten minutes and five seconds to wait.
    now = utc(18, 20)
    assert seconds_until_clear_of_midnight(now, MARGIN) == 605.0


def test_a_run_clear_of_the_margin_or_just_after_midnight_starts_at_once() -> None:
    assert seconds_until_clear_of_midnight(utc(18, 14), MARGIN) == 0
    # 18:31 UTC is 00:01 IST on the next day: the day has turned.
    assert seconds_until_clear_of_midnight(utc(18, 31), MARGIN) == 0
    # 23:50 UTC is 05:20 IST: UTC's own midnight is nothing to the business day.
    assert seconds_until_clear_of_midnight(utc(23, 50), MARGIN) == 0


def test_a_zero_margin_never_waits() -> None:
    now = dt.datetime(2026, 12, 7, 18, 29, 59, tzinfo=dt.UTC)
    assert seconds_until_clear_of_midnight(now, dt.timedelta(0)) == 0
