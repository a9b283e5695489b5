"""The portfolio reports: one module per report (``portfolio``, ``par``, ``demand``,
``collection_register``, ``disbursement_register``, ``agent_performance``, ``overdue``,
``aging``, ``income``, ``trial_balance``, ``income_statement``, ``capital_utilisation``,
``provisioning``), each
a few set-based SQL statements (no per-loan Python loop), money as ``Decimal``.
docs/reports.md defines every report, its columns and how it reconciles with the ledger. This
package answers every report and building block by name (``queries.portfolio_summary``).

Building blocks shared by reports and dashboards (``blocks``):

- ``scoped_loans(f)``: the loans a request may see (branch, current agent, product);
- ``installment_demand(...)``: the dues of a period and what was collected against them — the
  one source of the collection rate (``base.collection_rate``);
- ``ledger_period_totals(...)``: income and expenses of a period from the ledger — the one
  source of profit (``base.profit``).

The agent of a loan is its customer's *current* agent (the open ``agent_assignments`` row).
Balances and days past due are the loan rows' current state (kept by collections and the
nightly close of business); buckets are computed here from ``loans.days_past_due``.
"""

from namma.reports.queries.agent_performance import agent_performance
from namma.reports.queries.aging import loan_aging
from namma.reports.queries.blocks import (
    AGING_BUCKETS,
    CASH_KINDS,
    COLLECTION_KINDS,
    INCOME_KINDS,
    PeriodTotal,
    bucket_of,
    collections_received,
    income_and_expenses,
    installment_demand,
    installment_owed,
    ledger_disbursed,
    ledger_period_totals,
    ledger_portfolio,
    loan_end_date,
    loan_stock,
    loans_in_scope,
    overdue_now,
    report_reads_shared,
    scoped_loans,
)
from namma.reports.queries.capital_utilisation import capital_utilisation
from namma.reports.queries.collection_register import (
    collection_entry,
    collection_register,
    entry_splits,
)
from namma.reports.queries.demand import demand_collection
from namma.reports.queries.disbursement_register import disbursement_register
from namma.reports.queries.income import income_report
from namma.reports.queries.income_statement import income_statement
from namma.reports.queries.overdue import overdue_list
from namma.reports.queries.par import par_report
from namma.reports.queries.portfolio import portfolio_summary
from namma.reports.queries.provisioning import provisioning_report
from namma.reports.queries.trial_balance import trial_balance_report

__all__ = [
    "AGING_BUCKETS",
    "CASH_KINDS",
    "COLLECTION_KINDS",
    "INCOME_KINDS",
    "PeriodTotal",
    "agent_performance",
    "bucket_of",
    "capital_utilisation",
    "collection_entry",
    "collection_register",
    "collections_received",
    "demand_collection",
    "disbursement_register",
    "entry_splits",
    "income_and_expenses",
    "income_report",
    "income_statement",
    "installment_demand",
    "installment_owed",
    "ledger_disbursed",
    "ledger_period_totals",
    "ledger_portfolio",
    "loan_aging",
    "loan_end_date",
    "loan_stock",
    "loans_in_scope",
    "overdue_list",
    "overdue_now",
    "par_report",
    "portfolio_summary",
    "provisioning_report",
    "report_reads_shared",
    "scoped_loans",
    "trial_balance_report",
]
