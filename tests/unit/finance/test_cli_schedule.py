"""`namma schedule`, driven through a throwaway Typer app the way the platform registers it."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
import typer
from typer.testing import CliRunner

from namma.cli_schedule import IST, format_indian, schedule

from .conftest import D

app = typer.Typer()
app.command("schedule")(schedule)


@app.command("version")
def _version() -> None:  # a second command, so "schedule" is a subcommand as in `namma`
    typer.echo("0")


runner = CliRunner()
BASE = ["schedule", "--principal", "100000", "--rate", "12", "--disbursed-on", "2024-01-01"]


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, [*BASE, *args])
    assert result.exception is None or isinstance(result.exception, SystemExit)
    return result.exit_code, result.stdout, result.stderr


def test_json_has_exactly_the_public_shape() -> None:
    code, out, _ = run("--json")
    assert code == 0
    document = json.loads(out)
    assert list(document) == ["installment_amount", "apr_percent", "installments", "totals"]
    assert document["installment_amount"] == "8884.88"
    assert document["apr_percent"] == "12.00"
    first = document["installments"][0]
    assert first == {
        "number": 1,
        "due_date": "2024-02-01",
        "principal": "7884.88",
        "interest": "1000.00",
        "fees": "0.00",
        "total": "8884.88",
        "balance": "92115.12",
    }
    assert document["installments"][-1]["total"] == "8884.85"
    assert document["totals"] == {
        "principal": "100000.00",
        "interest": "6618.53",
        "fees": "0.00",
        "total": "106618.53",
    }


def test_table_is_aligned_with_indian_grouping() -> None:
    code, out, _ = run()
    assert code == 0
    assert "1,00,000.00" in out
    assert "1,06,618.53" in out
    assert "APR 12.00%" in out
    lines = [line for line in out.splitlines() if line[:3].strip().isdigit()]
    assert len(lines) == 12
    assert len({len(line) for line in lines}) == 1  # every row as wide as the others


def test_every_option_together() -> None:
    result = runner.invoke(
        app,
        [
            "schedule",
            "--principal",
            "25000.50",
            "--rate",
            "24.5",
            "--installments",
            "20",
            "--frequency",
            "weekly",
            "--every",
            "2",
            "--interest-method",
            "flat",
            "--amortization",
            "equal-principal",
            "--interest-period",
            "daily",
            "--days-in-year",
            "364",
            "--days-in-month",
            "30",
            "--installment-multiple",
            "5",
            "--installment-rounding",
            "up",
            "--interest-rounding",
            "half-even",
            "--grace-principal",
            "1",
            "--grace-interest",
            "1",
            "--interest-free",
            "1",
            "--disbursed-on",
            "2024-01-01",
            "--first-due-on",
            "2024-01-10",
            "--fee",
            "processing:disbursement:percent:2",
            "--fee",
            "service:installment:percent-of-total:1.5",
            "--apr-convention",
            "effective",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert len(document["installments"]) == 20
    assert document["totals"]["principal"] == "25000.50"


def test_every_n_days_with_the_origin_floor() -> None:
    result = runner.invoke(
        app,
        [
            "schedule",
            "--principal",
            "20000",
            "--rate",
            "10",
            "--installments",
            "10",
            "--frequency",
            "days",
            "--every",
            "15",
            "--periods-per-year-floor",
            "--json",
        ],
    )
    assert result.exit_code == 0
    assert json.loads(result.stdout)["installment_amount"] == "2046.12"


def test_days_frequency_in_the_table_and_bullet() -> None:
    code, out, _ = run("--frequency", "days", "--every", "15", "--amortization", "bullet")
    assert code == 0
    assert "every 15 days" in out
    code, out, _ = run("--frequency", "weekly", "--every", "2")
    assert "weekly (every 2)" in out


def test_disbursement_defaults_to_today_in_india() -> None:
    result = runner.invoke(app, ["schedule", "--principal", "1000", "--rate", "12", "--json"])
    assert result.exit_code == 0
    today = datetime.now(IST).date()
    first_due = json.loads(result.stdout)["installments"][0]["due_date"]
    assert first_due > today.isoformat()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--rate", "150"], "--rate: Interest rate cannot exceed 100%"),
        (["--rate", "abc"], "--rate: Invalid interest rate"),
        (["--principal", "-5"], "--principal: Principal must be greater than 0"),
        (["--principal", "ten"], "--principal: Invalid principal amount"),
        (["--principal", "NaN"], "--principal: Invalid principal amount"),
        (["--installments", "0"], "--installments: Tenure must be at least 1 installment"),
        (
            ["--frequency", "days"],
            "--every: Custom period days required for every-N-days frequency",
        ),
        (["--fee", "processing:disbursement:percent"], "--fee: Fee 'processing:disbursement"),
        (["--disbursed-on", "01/02/2024"], "--disbursed-on: '01/02/2024' is not a date"),
        (
            ["--first-due-on", "2023-12-01"],
            "--first-due-on: First due date must be after the disbursement date",
        ),
        (
            ["--installment-multiple", "x"],
            "--installment-multiple: Installment multiple must be a positive multiple of 0.01",
        ),
        (
            ["--schedule-convention", "fineract-progressive"],
            "--schedule-convention: The fineract-progressive convention counts each period's "
            "interest by its days",
        ),
    ],
)
def test_invalid_options_exit_2_with_the_message(args: list[str], message: str) -> None:
    result = runner.invoke(app, [*BASE, *args])
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stdout == ""


def test_the_fineract_progressive_convention() -> None:
    # Fineract's published 15-day schedule (tests/unit/finance/test_fineract_parity.py): 100 at
    # 9.4822 % on a 360-day year, EMI 16.90, the last 16.89; our default's installment is 16.89.
    args = [
        "schedule",
        "--principal",
        "100",
        "--rate",
        "9.4822",
        "--installments",
        "6",
        "--frequency",
        "days",
        "--every",
        "15",
        "--interest-period",
        "daily",
        "--days-in-year",
        "360",
        "--disbursed-on",
        "2024-01-01",
        "--json",
    ]
    ours = json.loads(runner.invoke(app, args).stdout)
    assert ours["installment_amount"] == "16.89"
    result = runner.invoke(app, [*args, "--schedule-convention", "fineract-progressive"])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert document["installment_amount"] == "16.90"
    assert [(r["principal"], r["interest"]) for r in document["installments"]] == [
        ("16.50", "0.40"),
        ("16.57", "0.33"),
        ("16.64", "0.26"),
        ("16.70", "0.20"),
        ("16.77", "0.13"),
        ("16.82", "0.07"),
    ]


def test_unknown_choice_is_a_usage_error() -> None:
    result = runner.invoke(app, [*BASE, "--frequency", "hourly"])
    assert result.exit_code == 2
    assert "--frequency" in result.stderr


def test_help_names_every_public_option() -> None:
    result = runner.invoke(app, ["schedule", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "--principal",
        "--rate",
        "--installments",
        "--frequency",
        "--every",
        "--interest-method",
        "--amortization",
        "--interest-period",
        "--days-in-year",
        "--days-in-month",
        "--installment-multiple",
        "--installment-rounding",
        "--interest-rounding",
        "--grace-principal",
        "--grace-interest",
        "--interest-free",
        "--disbursed-on",
        "--first-due-on",
        "--fee",
        "--json",
        "--periods-per-year-floor",
        "--schedule-convention",
    ):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        ("0", "0.00"),
        ("999.5", "999.50"),
        ("1000", "1,000.00"),
        ("100000", "1,00,000.00"),
        ("12345678.9", "1,23,45,678.90"),
        ("-1234567", "-12,34,567.00"),
    ],
)
def test_indian_grouping(amount: str, text: str) -> None:
    assert format_indian(D(amount)) == text


# --- the calendar: --holiday, --non-working-weekday, --on-holiday, --extend-term ---------------


def _dates(out: str) -> list[str]:
    return [row["due_date"] for row in json.loads(out)["installments"]]


def test_a_holiday_and_sundays_move_due_dates_by_the_rule() -> None:
    # Disbursed Monday 1 Jan 2024, monthly: 1 Feb (Thu), 1 Mar (Fri), 1 Apr (Mon). 1 Mar is a
    # holiday; with Fridays closed too, the next working day is Saturday 2 Mar.
    args = ("--installments", "3", "--holiday", "2024-03-01", "--json")
    code, out, _ = run(*args)
    assert code == 0
    assert _dates(out) == ["2024-02-01", "2024-03-02", "2024-04-01"]
    code, out, _ = run(*args, "--on-holiday", "previous-working-day")
    assert _dates(out) == ["2024-02-01", "2024-02-29", "2024-04-01"]
    code, out, _ = run(*args, "--non-working-weekday", "thursday")
    assert _dates(out) == ["2024-02-02", "2024-03-02", "2024-04-01"]
    code, out, _ = run(*args, "--on-holiday", "same-day")
    assert _dates(out) == ["2024-02-01", "2024-03-01", "2024-04-01"]


def test_next_meeting_day_collects_a_closed_installment_with_the_next_one() -> None:
    # 1 Mar 2024 is a holiday: installment 2 waits for the next regular date, 1 Apr, where
    # installment 3 falls due too; the amounts are those without the holiday.
    args = ("--installments", "3", "--holiday", "2024-03-01", "--json")
    code, out, _ = run(*args, "--on-holiday", "next-meeting-day")
    assert code == 0
    assert _dates(out) == ["2024-02-01", "2024-04-01", "2024-04-01"]
    plain = json.loads(run("--installments", "3", "--json")[1])["installments"]
    assert [(r["principal"], r["interest"]) for r in json.loads(out)["installments"]] == [
        (r["principal"], r["interest"]) for r in plain
    ]
    # The last one, with no next installment, goes to the regular date a month after it.
    code, out, _ = run(
        "--installments", "3", "--holiday", "2024-04-01", "--on-holiday", "next-meeting-day",
        "--json",
    )  # fmt: skip
    assert _dates(out) == ["2024-02-01", "2024-03-01", "2024-05-01"]


def test_extending_the_term_ends_the_loan_a_period_later() -> None:
    code, out, _ = run("--installments", "3", "--holiday", "2024-03-01", "--extend-term", "--json")
    assert code == 0
    assert _dates(out) == ["2024-02-01", "2024-04-01", "2024-05-01"]
    # Per-installment interest: the amounts are those of the loan without a holiday.
    assert (
        json.loads(out)["installments"][1]["interest"]
        == json.loads(run("--installments", "3", "--json")[1])["installments"][1]["interest"]
    )


def test_the_table_names_the_calendar_and_bad_values_exit_2() -> None:
    code, out, _ = run("--holiday", "2024-03-01", "--non-working-weekday", "sunday")
    assert code == 0
    assert (
        "Calendar: closed sunday; holidays 2024-03-01; a due date on them: next-working-day" in out
    )
    code, _, err = run("--holiday", "2024-02-30")
    assert code == 2 and "--holiday: '2024-02-30' is not a date" in err
    code, _, err = run("--extend-term", "--on-holiday", "same-day")
    assert code == 2 and "--extend-term:" in err
    every_day = [
        a
        for d in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
        for a in ("--non-working-weekday", d)
    ]
    code, _, err = run(*every_day)
    assert code == 2 and "--non-working-weekday: At least one weekday must be a working day" in err


def test_help_names_the_calendar_options() -> None:
    result = runner.invoke(app, ["schedule", "--help"], env={"COLUMNS": "200"})
    for option in ("--holiday", "--non-working-weekday", "--on-holiday", "--extend-term"):
        assert option in result.stdout
