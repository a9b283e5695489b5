"""Business dates. An MFI's day is the Indian day, whatever zone the server's clock is in."""

from __future__ import annotations

import datetime as dt

INDIA = dt.timezone(dt.timedelta(hours=5, minutes=30), "IST")


def today_india() -> dt.date:
    return dt.datetime.now(INDIA).date()
