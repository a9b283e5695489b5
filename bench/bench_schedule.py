"""Schedules per second: the Decimal money core against a float baseline, on one core.

    .venv/bin/python bench/bench_schedule.py [--seconds 2]

Prints, for a 52-week and a 24-month loan, how many schedules a second
`namma.finance.generate_schedule` builds, how many the float implementation below builds (same
formula: EMI rounded to 0.01, row interest = balance × rate rounded, last row takes the rest,
due dates included), and the ratio. Both are measured in this run. Target: ≥ 5,000 52-week
schedules a second. Results and the machine go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

from namma.finance import Frequency, LoanTerms, generate_schedule


# --- FLOAT BASELINE: for speed comparison only. Float has no place on a money path. -----------
def float_schedule(
    principal: float, annual_rate: float, n: int, per_year: int, start: date, step_days: int
) -> list[tuple[int, date, float, float, float, float]]:
    r = annual_rate / 100 / per_year
    growth = (1 + r) ** n
    emi = round(principal * r * growth / (growth - 1), 2)
    balance = principal
    rows = []
    for k in range(1, n + 1):
        interest = round(balance * r, 2)
        principal_part = balance if k == n else round(emi - interest, 2)
        balance = round(balance - principal_part, 2)
        if step_days:
            due = start + timedelta(days=step_days * k)
        else:
            month = start.month - 1 + k
            due = start.replace(year=start.year + month // 12, month=month % 12 + 1)
        rows.append((k, due, principal_part, interest, principal_part + interest, balance))
    return rows


# ---------------------------------------------------------------------------------------------


def rate(fn: Callable[[], object], seconds: float) -> float:
    """Calls per second: best of three rounds of about `seconds` / 3 each."""
    fn()  # warm up
    calls = 1
    while True:  # size a batch to ~0.1 s
        began = time.perf_counter()
        for _ in range(calls):
            fn()
        if time.perf_counter() - began > 0.1:
            break
        calls *= 2
    best = 0.0
    for _ in range(3):
        began = time.perf_counter()
        done = 0
        while time.perf_counter() - began < seconds / 3:
            for _ in range(calls):
                fn()
            done += calls
        best = max(best, done / (time.perf_counter() - began))
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per measurement")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core

    start = date(2024, 1, 1)
    weekly = LoanTerms(
        principal=Decimal("50000"),
        annual_rate=Decimal("15"),
        installments=52,
        frequency=Frequency.WEEKLY,
    )
    monthly = LoanTerms(principal=Decimal("200000"), annual_rate=Decimal("10"), installments=24)

    # The float baseline computes the same numbers (checked here so the comparison is fair).
    ours = generate_schedule(weekly, disbursed_on=start)
    theirs = float_schedule(50000, 15, 52, 52, start, 7)
    assert f"{theirs[0][3]:.2f}" == str(ours.rows[0].interest)
    assert f"{theirs[-1][4]:.2f}" == str(ours.rows[-1].total)

    print(f"python {platform.python_version()} on {platform.machine()}, one core")
    for label, terms, baseline in (
        ("52-week", weekly, lambda: float_schedule(50000, 15, 52, 52, start, 7)),
        ("24-month", monthly, lambda: float_schedule(200000, 10, 24, 12, start, 0)),
    ):
        exact = rate(lambda t=terms: generate_schedule(t, disbursed_on=start), args.seconds)
        approx = rate(baseline, args.seconds)
        print(
            f"{label:>9}: Decimal {exact:>9,.0f} schedules/s | float {approx:>9,.0f} schedules/s"
            f" | Decimal/float = {exact / approx:.2f}"
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
