"""What `/api/reports…` and `/api/dashboard` answer.

A report is a table whose columns differ per report: ``ReportOut`` types what every report
shares — its columns (key, label, type), the filters applied, the totals, the summary figures and
the reconciliation with the ledger — and each cell is a ``Cell``: money and percents as
two-decimal strings, counts as integers, dates as ``YYYY-MM-DD``, text as strings, or null.
A column's ``type`` says which. Dashboards have one fixed shape per role (``Dashboard``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated, Literal

from pydantic import ConfigDict, Field

from namma.capital.schemas import CapitalSummaryOut
from namma.kit.money import Money, Rate
from namma.kit.schemas import ApiModel, Timestamp
from namma.models import InstallmentStatus, LoanStatus
from namma.reports.base import ColumnType, Report, row_json, value_json

Cell = str | int | bool | None
"""One value of a report's table; its column's ``type`` says how to read it."""

Percent = Rate
"""A percentage with two decimals, as a string (``"26.44"``)."""


class ColumnOut(ApiModel):
    key: str = Field(description="The key of this column's value in each row and in totals")
    label: str
    type: ColumnType = Field(
        description="text, int, money (two-decimal string), percent (two-decimal string) "
        "or date (YYYY-MM-DD)"
    )


class ReportFiltersOut(ApiModel):
    model_config = ConfigDict(serialize_by_alias=True, validate_by_name=True)

    date_from: dt.date | None = Field(alias="from", description="null: a current state")
    date_to: dt.date | None = Field(alias="to")
    branch_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    product_id: uuid.UUID | None


class ReconciliationOut(ApiModel):
    figure: str = Field(description="The report's total, e.g. `outstanding_principal`")
    ledger: str = Field(description="What in the ledger it must equal")
    report_amount: Money
    ledger_amount: Money
    difference: Money
    ok: bool


class ReportOut(ApiModel):
    report: str = Field(examples=["portfolio-summary"])
    title: str
    as_of: dt.date | None = Field(description="The day current-state figures describe")
    filters: ReportFiltersOut
    columns: list[ColumnOut]
    rows: list[dict[str, Cell]] = Field(description="One object per row, keyed by column key")
    totals: dict[str, Cell] = Field(description="Column totals, by column key")
    summary: dict[str, Cell] = Field(description="Figures that are not a column total")
    reconciliation: list[ReconciliationOut]

    @classmethod
    def of(cls, report: Report) -> ReportOut:
        types = {c.key: c.type for c in report.columns}
        f = report.filters
        return cls(
            report=report.name,
            title=report.title,
            as_of=report.as_of,
            filters=ReportFiltersOut(
                date_from=f.date_from if report.uses_dates else None,
                date_to=f.date_to if report.uses_dates else None,
                branch_id=f.branch_id,
                agent_id=f.agent_id,
                product_id=f.product_id,
            ),
            columns=[ColumnOut(key=c.key, label=c.label, type=c.type) for c in report.columns],
            rows=[row_json(r, report.columns) for r in report.rows],
            totals={
                k: value_json(v, types.get(k, ColumnType.TEXT)) for k, v in report.totals.items()
            },
            summary={
                k: value_json(v, report.summary_types.get(k, ColumnType.TEXT))
                for k, v in report.summary.items()
            },
            reconciliation=[
                ReconciliationOut(
                    figure=r.figure,
                    ledger=r.ledger,
                    report_amount=r.report_amount,
                    ledger_amount=r.ledger_amount,
                    difference=r.report_amount - r.ledger_amount,
                    ok=r.ok,
                )
                for r in report.reconciliation
            ],
        )


class ReportLink(ApiModel):
    name: str
    url: str
    summary: str


class ReportIndex(ApiModel):
    reports: list[ReportLink] = Field(description="By name; only those the caller may read")


# --- dashboards ----------------------------------------------------------------------------------


class _Part(ApiModel):
    # A dashboard is built as JSON and cached (30 s); the answer is that JSON, typed where
    # declared here. A key without a field passes through instead of vanishing (a test checks
    # that every key is declared).
    model_config = ConfigDict(extra="allow")


class Span(_Part):
    model_config = ConfigDict(extra="allow", serialize_by_alias=True, validate_by_name=True)

    name: str = Field(examples=["month"])
    date_from: dt.date = Field(alias="from")
    date_to: dt.date = Field(alias="to")


class Portfolio(_Part):
    active_loans: int
    active_customers: int
    outstanding_principal: Money
    outstanding_interest: Money
    outstanding_fees: Money
    outstanding_penalties: Money
    overdue_amount: Money
    par_1: Percent | None = Field(description="null when nothing is outstanding")
    par_30: Percent | None
    par_90: Percent | None


class StaffPortfolio(Portfolio):
    overdue_loans: int


class Flows(_Part):
    """Dues of the period, what was collected against them, and what was received."""

    due_amount: Money
    collected_against_due: Money
    collection_rate: Percent | None = Field(description="null when nothing fell due")
    collections: int
    collected_amount: Money


class StaffFlows(_Part):
    disbursed_count: int
    disbursed_amount: Money
    due_amount: Money
    collected_against_due: Money
    collection_rate: Percent | None
    collected_amount: Money
    income: Money
    expenses: Money
    profit: Money = Field(description="income − expenses (negative: a loss)")
    penalties_collected: Money


class People(_Part):
    customers: int
    agents: int


class StaffRecentLoan(_Part):
    id: uuid.UUID
    loan_number: str
    customer_name: str
    branch_code: str
    principal: Money
    outstanding_principal: Money
    status: LoanStatus
    applied_at: Timestamp


class TrendPoint(_Part):
    """One business date's portfolio snapshot (close of business)."""

    date: dt.date
    active_loans: int
    outstanding_principal: Money
    par_1: Percent | None
    par_30: Percent | None
    par_90: Percent | None
    overdue_amount: Money
    due_amount: Money
    collected_amount: Money
    disbursed_amount: Money


class MonthPoint(_Part):
    month: str = Field(examples=["2026-11"])
    loans_disbursed: int
    disbursed_amount: Money
    collected_amount: Money
    income: Money
    expenses: Money
    profit: Money


class BranchRow(_Part):
    """A branch's row of the portfolio-summary report, with its profit."""

    branch_id: uuid.UUID
    branch_code: str
    branch_name: str
    active_loans: int
    active_customers: int
    outstanding_principal: Money
    outstanding_interest: Money
    outstanding_fees: Money
    outstanding_penalties: Money
    overdue_amount: Money
    overdue_loans: int
    par_1: Percent | None
    par_30: Percent | None
    par_90: Percent | None
    disbursed_count: int
    disbursed_amount: Money
    due_amount: Money
    collected_against_due: Money
    collection_rate: Percent | None
    collected_amount: Money
    profit: Money


class HeadOffice(_Part):
    profit: Money = Field(description="Of the entries of no branch (capital, borrowings)")


class AgentRow(_Part):
    """An agent's row of the agent-performance report."""

    agent_name: str
    branch_code: str
    customers: int
    active_loans: int
    outstanding_principal: Money
    par_1: Percent | None
    par_30: Percent | None
    par_90: Percent | None
    due_amount: Money
    collected_against_due: Money
    collection_efficiency: Percent | None
    collections: int
    collected_amount: Money


class _Kept(_Part):
    """When a dashboard's figures were read, and whether they may miss writes since (D-221)."""

    figures_at: dt.datetime = Field(description="When the figures were read (Indian time)")
    stale: bool = Field(
        description="A copy of the last dashboard built, answered while a new one is built "
        "after a write in its scope: what was written since `figures_at` may be missing; ask "
        "again in a few seconds for the new one"
    )


class _StaffDashboard(_Kept):
    role: Literal["admin", "manager"]
    scope: str = Field(description="`all`, or the manager's branch id")
    as_of: dt.date
    period: Span
    portfolio: StaffPortfolio
    flows: StaffFlows
    today: Flows
    loan_counts: dict[str, int] = Field(description="Loans by status")
    people: People
    recent_loans: list[StaffRecentLoan]
    trend: list[TrendPoint] = Field(description="The last 30 business dates")
    monthly: list[MonthPoint] = Field(description="The last 12 months, from the ledger")


class AdminDashboard(_StaffDashboard):
    role: Literal["admin"]
    branches: list[BranchRow]
    head_office: HeadOffice
    capital: CapitalSummaryOut


class ManagerDashboard(_StaffDashboard):
    role: Literal["manager"]
    agents: list[AgentRow]


class Upcoming(_Part):
    days: int
    due_amount: Money


class OverdueItem(_Part):
    customer_name: str
    phone: str | None
    village: str | None
    loan_number: str
    days_past_due: int
    overdue_amount: Money


class Overdue(_Part):
    loans: int
    customers: int
    amount: Money
    list: Annotated[list[OverdueItem], Field(description="The longest overdue first")]


class AgentRecentLoan(_Part):
    id: uuid.UUID
    loan_number: str
    customer_name: str
    principal: Money
    outstanding_principal: Money
    days_past_due: int
    next_due_on: dt.date | None
    disbursed_on: dt.date | None


class AgentDashboard(_Kept):
    role: Literal["agent"]
    scope: str = Field(description="The agent's user id")
    as_of: dt.date
    period: Span
    customers: int
    portfolio: Portfolio
    today: Flows = Field(description="Dues today; `collections`: what the agent collected today")
    flows: Flows
    upcoming: Upcoming
    overdue: Overdue
    cash_in_hand: Money = Field(description="The agent's cash account balance")
    recent_loans: list[AgentRecentLoan]
    trend: list[TrendPoint]


class CustomerLoan(_Part):
    id: uuid.UUID
    loan_number: str
    status: LoanStatus
    principal: Money
    disbursed_on: dt.date | None
    outstanding_principal: Money
    outstanding_interest: Money
    outstanding_fees: Money
    outstanding_penalties: Money
    outstanding_total: Money
    overdue_amount: Money
    days_past_due: int
    next_due_on: dt.date | None
    next_due_amount: Money | None


class CustomerTotals(_Part):
    loans: int
    active_loans: int
    total_borrowed: Money
    closed_loans: int
    total_paid: Money
    payments: int
    outstanding: Money
    outstanding_principal: Money
    outstanding_interest: Money
    outstanding_fees: Money
    outstanding_penalties: Money
    overdue_amount: Money
    overdue_installments: int
    due_next_7_days: Money
    installments_next_7_days: int


class CustomerNextDue(_Part):
    loan_number: str
    due_on: dt.date
    amount: Money
    days_remaining: int = Field(description="Negative: overdue")


class CustomerUpcomingInstallment(_Part):
    loan_id: uuid.UUID
    loan_number: str
    installment: int
    due_on: dt.date
    amount: Money = Field(description="Still owed on the installment")
    overdue: bool
    status: InstallmentStatus


class LastPayment(_Part):
    collected_on: dt.date
    amount: Money
    receipt_number: str | None
    loan_number: str


class CustomerDashboard(_Kept):
    role: Literal["customer"]
    scope: str = Field(description="The customer's user id")
    as_of: dt.date
    loans: list[CustomerLoan]
    totals: CustomerTotals | None
    next_due: CustomerNextDue | None
    upcoming_installments: list[CustomerUpcomingInstallment] = Field(
        description="The next installments still owed on active loans, late ones first"
    )
    last_payment: LastPayment | None


Dashboard = Annotated[
    AdminDashboard | ManagerDashboard | AgentDashboard | CustomerDashboard,
    Field(discriminator="role"),
]
