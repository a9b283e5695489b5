"""`namma schedule`: print a loan's repayment schedule as a table or as JSON.

The platform registers it with `app.command("schedule")(schedule)`. Option names are a public
interface (docs/money.md). Amounts are parsed as `Decimal` from the command-line text; no float
is involved anywhere.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated

import typer

from namma.finance import (
    Amortization,
    AprConvention,
    DaysInMonth,
    DaysInYear,
    Fee,
    FinanceError,
    Frequency,
    InterestMethod,
    InterestPeriod,
    InterestRounding,
    LoanTerms,
    NonWorkingDayRule,
    RoundingMode,
    Schedule,
    ScheduleConvention,
    WorkingCalendar,
    apr_percent,
    generate_schedule,
)

# India has one time zone and no daylight saving: "today" for a disbursement is today in IST.
IST = timezone(timedelta(hours=5, minutes=30), "IST")

# Which command-line option each validated field comes from, so messages name the option.
OPTION_OF_FIELD = {
    "principal": "--principal",
    "annual_rate": "--rate",
    "installments": "--installments",
    "frequency": "--frequency",
    "every": "--every",
    "periods_per_year_floor": "--periods-per-year-floor",
    "installment_multiple": "--installment-multiple",
    "grace_principal": "--grace-principal",
    "grace_interest": "--grace-interest",
    "interest_free": "--interest-free",
    "fees": "--fee",
    "schedule_convention": "--schedule-convention",
    "disbursed_on": "--disbursed-on",
    "first_due_on": "--first-due-on",
    "extend_term": "--extend-term",
    "non_working_weekdays": "--non-working-weekday",
    "calendar": "--holiday",
}


class Weekday(StrEnum):
    MONDAY = "monday"
    TUESDAY = "tuesday"
    WEDNESDAY = "wednesday"
    THURSDAY = "thursday"
    FRIDAY = "friday"
    SATURDAY = "saturday"
    SUNDAY = "sunday"


class UsageProblem(Exception):
    """A bad option value found while parsing (before the terms are built)."""

    def __init__(self, option: str, message: str) -> None:
        super().__init__(message)
        self.option = option
        self.message = message


def format_indian(amount: Decimal) -> str:
    """Money with Indian digit grouping: 1234567.8 → '12,34,567.80'."""
    text = f"{abs(amount):.2f}"
    whole, fraction = text.split(".")
    if len(whole) > 3:
        head, tail = whole[:-3], whole[-3:]
        groups: list[str] = []
        while len(head) > 2:
            groups.insert(0, head[-2:])
            head = head[:-2]
        groups.insert(0, head)
        whole = ",".join([*groups, tail])
    sign = "-" if amount < 0 else ""
    return f"{sign}{whole}.{fraction}"


def _money(amount: Decimal) -> str:
    return f"{amount:.2f}"


def _decimal(option: str, text: str, message: str) -> Decimal:
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise UsageProblem(option, message) from None
    if not value.is_finite():
        raise UsageProblem(option, message)
    return value


def _date(option: str, text: str | None) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise UsageProblem(option, f"'{text}' is not a date (use YYYY-MM-DD)") from None


def schedule_as_json(schedule: Schedule, apr: Decimal) -> dict[str, object]:
    """The `--json` document: money as strings with two decimals, dates in ISO format."""
    return {
        "installment_amount": _money(schedule.installment_amount),
        "apr_percent": _money(apr),
        "installments": [
            {
                "number": row.number,
                "due_date": row.due_date.isoformat(),
                "principal": _money(row.principal),
                "interest": _money(row.interest),
                "fees": _money(row.fees),
                "total": _money(row.total),
                "balance": _money(row.balance),
            }
            for row in schedule.rows
        ],
        "totals": {
            "principal": _money(schedule.total_principal),
            "interest": _money(schedule.total_interest),
            "fees": _money(schedule.total_fees),
            "total": _money(schedule.total_amount),
        },
    }


def schedule_as_table(schedule: Schedule, apr: Decimal) -> str:
    """A readable, aligned table with Indian digit grouping and a summary above it."""
    terms = schedule.terms
    if terms.frequency is Frequency.DAYS:
        cadence = f"every {terms.every} days"
    elif terms.repeat > 1:
        cadence = f"{terms.frequency.value} (every {terms.repeat})"
    else:
        cadence = terms.frequency.value
    lines = [
        f"Loan {format_indian(terms.principal)} at {terms.annual_rate}% a year, "
        f"{terms.installments} installments, {cadence}; "
        f"{terms.interest_method.value}, {terms.amortization.value}",
        f"Disbursed {schedule.disbursed_on.isoformat()}, "
        f"paid out {format_indian(schedule.net_disbursement)}; "
        f"installment {format_indian(schedule.installment_amount)}; APR {apr}%",
    ]
    calendar = schedule.calendar
    if calendar:
        closed = ", ".join(list(Weekday)[d].value for d in sorted(calendar.non_working_weekdays))
        holidays = ", ".join(d.isoformat() for d in sorted(calendar.holidays))
        rule = terms.non_working_day.value + (", extending the term" if terms.extend_term else "")
        lines.append(
            f"Calendar: closed {closed or 'no weekday'}; holidays {holidays or 'none'}; "
            f"a due date on them: {rule}"
        )
    lines.append("")
    header = ("No", "Due date", "Principal", "Interest", "Fees", "Total", "Balance")
    body = [
        (
            str(row.number),
            row.due_date.isoformat(),
            format_indian(row.principal),
            format_indian(row.interest),
            format_indian(row.fees),
            format_indian(row.total),
            format_indian(row.balance),
        )
        for row in schedule.rows
    ]
    footer = (
        "",
        "Total",
        format_indian(schedule.total_principal),
        format_indian(schedule.total_interest),
        format_indian(schedule.total_fees),
        format_indian(schedule.total_amount),
        "",
    )
    table = [header, *body, footer]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]

    def render(cells: tuple[str, ...]) -> str:
        left = {1}  # the date column reads best left-aligned; numbers align right
        return "  ".join(
            c.ljust(w) if i in left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    lines.extend([render(header), rule, *(render(r) for r in body), rule, render(footer)])
    return "\n".join(lines)


def schedule(
    principal: Annotated[
        str, typer.Option("--principal", help="Loan amount in rupees, e.g. 100000 or 25000.50.")
    ],
    rate: Annotated[
        str, typer.Option("--rate", help="Annual interest rate in percent (0–100), e.g. 12.5.")
    ],
    installments: Annotated[
        int, typer.Option("--installments", help="Number of installments.")
    ] = 12,
    frequency: Annotated[
        Frequency,
        typer.Option("--frequency", help="How often installments fall due; 'days' needs --every."),
    ] = Frequency.MONTHLY,
    every: Annotated[
        int | None,
        typer.Option(
            "--every",
            metavar="K",
            help="For --frequency days: the number of days in a period. Otherwise a multiplier "
            "(--frequency weekly --every 2 is every two weeks). Default 1.",
        ),
    ] = None,
    periods_per_year_floor: Annotated[
        bool,
        typer.Option(
            "--periods-per-year-floor",
            help="Every-N-days only: use ⌊365/N⌋ periods a year for the periodic rate (the "
            "original app's convention) instead of annual × N / 365.",
        ),
    ] = False,
    interest_method: Annotated[
        InterestMethod,
        typer.Option(
            "--interest-method",
            help="declining: interest on the outstanding balance; flat: on the original "
            "principal every period.",
        ),
    ] = InterestMethod.DECLINING,
    amortization: Annotated[
        Amortization,
        typer.Option(
            "--amortization",
            help="equal-installments (EMI), equal-principal, interest-only (principal in the "
            "last installment) or bullet (one installment at the end).",
        ),
    ] = Amortization.EQUAL_INSTALLMENTS,
    interest_period: Annotated[
        InterestPeriod,
        typer.Option(
            "--interest-period",
            help="installment: annual rate / periods per year each period; daily: annual rate × "
            "actual days between due dates / days in year.",
        ),
    ] = InterestPeriod.INSTALLMENT,
    days_in_year: Annotated[
        DaysInYear,
        typer.Option(
            "--days-in-year",
            help="Year length for daily interest (and for every period's interest under "
            "--schedule-convention fineract-progressive).",
        ),
    ] = DaysInYear.ACTUAL,
    days_in_month: Annotated[
        DaysInMonth,
        typer.Option(
            "--days-in-month",
            help="Month length for daily interest (30 = 30E/360 day count; under "
            "fineract-progressive, whole months of 30 days).",
        ),
    ] = DaysInMonth.ACTUAL,
    schedule_convention: Annotated[
        ScheduleConvention,
        typer.Option(
            "--schedule-convention",
            help="namma: the periodic rate and the annuity at it. fineract-progressive (Apache "
            "Fineract's progressive schedule): each period's interest by its days (30 a month "
            "with --days-in-month 30, a broken first period by its share of a month), the "
            "installment over those periods, a last installment far off evened out; needs "
            "--interest-period daily and --days-in-year 360, 364 or 365.",
        ),
    ] = ScheduleConvention.NAMMA,
    installment_multiple: Annotated[
        str,
        typer.Option(
            "--installment-multiple",
            metavar="D",
            help="Round the installment to a multiple of D rupees (0.01, 1, 5, 10 …).",
        ),
    ] = "0.01",
    installment_rounding: Annotated[
        RoundingMode,
        typer.Option("--installment-rounding", help="How the installment is rounded to D."),
    ] = RoundingMode.HALF_UP,
    interest_rounding: Annotated[
        InterestRounding,
        typer.Option(
            "--interest-rounding",
            help="How each period's interest is rounded to 0.01; none keeps it exact and "
            "rounds only the rows.",
        ),
    ] = InterestRounding.HALF_UP,
    grace_principal: Annotated[
        int,
        typer.Option("--grace-principal", metavar="N", help="First N periods pay interest only."),
    ] = 0,
    grace_interest: Annotated[
        int,
        typer.Option(
            "--grace-interest",
            metavar="N",
            help="First N periods' interest is deferred to the first installment after them.",
        ),
    ] = 0,
    interest_free: Annotated[
        int,
        typer.Option("--interest-free", metavar="N", help="First N periods charge no interest."),
    ] = 0,
    disbursed_on: Annotated[
        str | None,
        typer.Option(
            "--disbursed-on",
            metavar="DATE",
            help="Disbursement date, YYYY-MM-DD. Default: today in India (IST).",
        ),
    ] = None,
    first_due_on: Annotated[
        str | None,
        typer.Option(
            "--first-due-on",
            metavar="DATE",
            help="First due date, YYYY-MM-DD. Default: one period after disbursement; any other "
            "date is a broken first period with pro-rata interest.",
        ),
    ] = None,
    holiday: Annotated[
        list[str] | None,
        typer.Option(
            "--holiday",
            metavar="DATE",
            help="A holiday, YYYY-MM-DD (repeatable): a due date on it moves by --on-holiday.",
        ),
    ] = None,
    non_working_weekday: Annotated[
        list[Weekday] | None,
        typer.Option(
            "--non-working-weekday",
            metavar="DAY",
            help="A weekday the branch is closed (repeatable): monday … sunday. A due date on "
            "it moves by --on-holiday.",
        ),
    ] = None,
    on_holiday: Annotated[
        NonWorkingDayRule,
        typer.Option(
            "--on-holiday",
            help="Where a due date on a holiday or non-working weekday goes: the next working "
            "day, the working day before (never onto the disbursement or the installment before "
            "it), the next meeting (the loan's next regular due date that is a working day, "
            "collected with that installment; for group loans), or it stays (same-day).",
        ),
    ] = NonWorkingDayRule.NEXT_WORKING_DAY,
    extend_term: Annotated[
        bool,
        typer.Option(
            "--extend-term",
            help="Skip a due date on a non-working day instead: it and every later installment "
            "move on by whole periods until it is a working day, so the loan ends later.",
        ),
    ] = False,
    fee: Annotated[
        list[str] | None,
        typer.Option(
            "--fee",
            metavar="NAME:WHEN:HOW:VALUE",
            help="A charge (repeatable). WHEN: disbursement (deducted from the payout), "
            "first-installment (added to installment 1) or installment. HOW: flat or percent "
            "(of principal) at disbursement; flat, percent-of-principal or percent-of-total "
            "per installment. E.g. processing:disbursement:percent:2, "
            "service:installment:percent-of-total:1.5.",
        ),
    ] = None,
    apr_convention: Annotated[
        AprConvention,
        typer.Option(
            "--apr-convention",
            help="nominal: periodic IRR × periods per year; effective: compounded.",
        ),
    ] = AprConvention.NOMINAL,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help='Print JSON: {"installment_amount", "apr_percent", "installments": [{"number", '
            '"due_date", "principal", "interest", "fees", "total", "balance"}], "totals"}.',
        ),
    ] = False,
) -> None:
    """Print a loan's repayment schedule, with its installment and KFS APR.

    Defaults are the house conventions: declining balance; periodic rate =
    annual rate / periods per year; installment rounded to 0.01 half-up;
    each row's interest rounded to 0.01 half-up; the last installment
    takes whatever balance is left.

    Example: namma schedule --principal 100000 --rate 12 --installments 12

    With a calendar (--holiday, --non-working-weekday), due dates on its
    non-working days move by --on-holiday (or, with --extend-term, the
    loan ends later); see docs/money.md.

    Invalid options print the reason, naming the option, and exit with 2.
    """
    try:
        disbursed = _date("--disbursed-on", disbursed_on) or datetime.now(IST).date()
        terms = LoanTerms(
            principal=_decimal("--principal", principal, "Invalid principal amount"),
            annual_rate=_decimal("--rate", rate, "Invalid interest rate"),
            installments=installments,
            frequency=frequency,
            every=every,
            periods_per_year_floor=periods_per_year_floor,
            interest_method=interest_method,
            amortization=amortization,
            interest_period=interest_period,
            days_in_year=days_in_year,
            days_in_month=days_in_month,
            installment_multiple=_decimal(
                "--installment-multiple",
                installment_multiple,
                "Installment multiple must be a positive multiple of 0.01",
            ),
            installment_rounding=installment_rounding,
            interest_rounding=interest_rounding,
            grace_principal=grace_principal,
            grace_interest=grace_interest,
            interest_free=interest_free,
            fees=tuple(Fee.parse(spec) for spec in fee or ()),
            schedule_convention=schedule_convention,
            non_working_day=on_holiday,
            extend_term=extend_term,
        )
        calendar = WorkingCalendar.of(
            holidays=[d for d in (_date("--holiday", h) for h in holiday or ()) if d is not None],
            non_working_weekdays=[list(Weekday).index(w) for w in non_working_weekday or ()],
        )
        built = generate_schedule(
            terms,
            disbursed_on=disbursed,
            first_due_on=_date("--first-due-on", first_due_on),
            calendar=calendar or None,
        )
        apr = apr_percent(built, convention=apr_convention)
    except UsageProblem as problem:
        typer.echo(f"Error: {problem.option}: {problem.message}", err=True)
        raise typer.Exit(code=2) from None
    except FinanceError as error:
        for item in error.errors:
            option = OPTION_OF_FIELD.get(item.field, item.field)
            typer.echo(f"Error: {option}: {item.message}", err=True)
        raise typer.Exit(code=2) from None
    if as_json:
        typer.echo(json.dumps(schedule_as_json(built, apr), indent=2))
    else:
        typer.echo(schedule_as_table(built, apr))
