"""Report 6: agent performance (docs/reports.md)."""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import (
    distinct,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from namma.kit.clock import today_india
from namma.models import (
    AgentAssignment,
    Customer,
    Role,
    User,
)
from namma.reports.base import (
    ZERO,
    Reconciliation,
    Report,
    ReportFilters,
    collection_rate,
    count,
    money,
    pct,
    text,
)
from namma.reports.queries.blocks import (
    _branches,
    _dec,
    _par,
    _users,
    ledger_portfolio,
    loan_stock,
    period_dues,
    period_received,
)


async def agent_performance(
    session: AsyncSession, f: ReportFilters, *, reconcile: bool = True, stock: bool = True
) -> Report:
    """Per agent: customers, active loans, outstanding principal, PAR of their portfolio, the
    period's dues and what was collected against them (collection efficiency), and what they
    collected themselves. Loans of customers with no current agent form their own row, so the
    outstanding column adds up to the portfolio.

    ``reconcile=False`` leaves out the reconciliation with the ledger (its statements read the
    scope's journal lines): the dashboards show the figures, not the check, which the report's
    own page and the tests run. ``stock=False`` leaves out the agents' portfolios (customers,
    active loans, outstanding, PAR: zero and none) and their two statements over the scope's
    loans and assignments: the Manager's desk shows only the day's dues and collections.
    """
    today = today_india()
    by_agent: dict[uuid.UUID | None, dict[str, Any]] = defaultdict(dict)

    staff = select(User.id).where(User.role == Role.AGENT).where(User.is_active.is_(True))
    if f.branch_id is not None:
        staff = staff.where(User.branch_id == f.branch_id)
    if f.agent_id is not None:
        staff = staff.where(User.id == f.agent_id)
    if not f.narrows_loans or f.agent_id is not None:
        # Every (active) agent in scope appears, even with nothing to show yet.
        for (agent_id,) in (await session.execute(staff)).all():
            by_agent[agent_id]
    customers_q = (
        select(AgentAssignment.agent_id, func.count(distinct(AgentAssignment.customer_id)))
        .join(Customer, Customer.id == AgentAssignment.customer_id)
        .where(AgentAssignment.ended_at.is_(None))
        .group_by(AgentAssignment.agent_id)
    )
    if f.branch_id is not None:
        customers_q = customers_q.where(Customer.branch_id == f.branch_id)
    if f.agent_id is not None:
        customers_q = customers_q.where(AgentAssignment.agent_id == f.agent_id)
    if stock and f.product_id is None:
        for agent_id, n in (await session.execute(customers_q)).all():
            by_agent[agent_id]["customers"] = n
    if stock:
        # The scope's loans read once, each with its customer's current agent (``loan_stock``,
        # shared with the portfolio summary and PAR inside ``report_reads_shared``).
        portfolios = (await loan_stock(session, f, by_agent=True)).by_agent or {}
        for holder, a in portfolios.items():
            by_agent[holder].update(
                active_loans=a.loans,
                active_customers=a.customers,
                outstanding_principal=a.outstanding_principal,
                _risk=a.at_risk,
            )
    dues = (await period_dues(session, f, by_agent=True)).by_agent or {}
    for holder, (due, against) in dues.items():
        by_agent[holder].update(due_amount=due, collected_against_due=against)
    # What each agent collected in person (any loan in scope), standing collections.
    received = await period_received(session, f, by_collector=True, agent_scope=False)
    collected_rows = [
        (collector_id, n, amount)
        for collector_id, (n, amount) in (received.by_collector or {}).items()
        if f.agent_id is None or collector_id == f.agent_id
    ]
    collectors = await _users(session, [r[0] for r in collected_rows])
    for collector_id, n, amount in collected_rows:
        if collectors[collector_id].role is Role.AGENT:
            by_agent[collector_id].update(collections=n, collected_amount=amount)
    agents = await _users(session, by_agent)
    branches = await _branches(session, (a.branch_id for a in agents.values()))
    rows = []
    for agent_key, r in sorted(
        by_agent.items(),
        key=lambda kv: (kv[0] is None, agents[kv[0]].name if kv[0] in agents else ""),
    ):
        agent = agents.get(agent_key)
        outstanding = r.get("outstanding_principal", ZERO)
        due = r.get("due_amount", ZERO)
        against = r.get("collected_against_due", ZERO)
        rows.append(
            {
                "agent_id": agent_key,  # not a column: the pages' links
                "agent_name": agent.name if agent else "(unassigned)",
                "branch_code": branches[agent.branch_id].code
                if agent and agent.branch_id in branches
                else "",
                "customers": r.get("customers", r.get("active_customers", 0)),
                "active_loans": r.get("active_loans", 0),
                "outstanding_principal": outstanding,
                **_par(outstanding, r.get("_risk", {})),
                "due_amount": due,
                "collected_against_due": against,
                "collection_efficiency": collection_rate(against, due),
                "collections": r.get("collections", 0),
                "collected_amount": r.get("collected_amount", ZERO),
            }
        )
    money_keys = ("outstanding_principal", "due_amount", "collected_against_due")
    totals: dict[str, Any] = {k: sum((r[k] for r in rows), ZERO) for k in money_keys}
    totals["collected_amount"] = sum((r["collected_amount"] for r in rows), ZERO)
    totals["active_loans"] = sum(r["active_loans"] for r in rows)
    totals["collections"] = sum(r["collections"] for r in rows)
    totals["collection_efficiency"] = collection_rate(
        totals["collected_against_due"], totals["due_amount"]
    )
    risk = {
        n: sum((_dec(by_agent[a].get("_risk", {}).get(n)) for a in by_agent), ZERO)
        for n in (1, 30, 90)
    }
    totals |= _par(totals["outstanding_principal"], risk)
    return Report(
        name="agent-performance",
        title="Agent performance",
        filters=f,
        as_of=today,
        columns=[
            text("agent_name", "Agent"),
            text("branch_code", "Branch"),
            count("customers", "Customers"),
            count("active_loans", "Active loans"),
            money("outstanding_principal", "Outstanding principal"),
            pct("par_1", "PAR1 %"),
            pct("par_30", "PAR30 %"),
            pct("par_90", "PAR90 %"),
            money("due_amount", "Due"),
            money("collected_against_due", "Collected against due"),
            pct("collection_efficiency", "Collection efficiency %"),
            count("collections", "Collections made"),
            money("collected_amount", "Collected in person"),
        ],
        rows=rows,
        totals=totals,
        reconciliation=(
            [
                Reconciliation(
                    "outstanding_principal",
                    "loan_portfolio balance",
                    totals["outstanding_principal"],
                    await ledger_portfolio(session, f),
                )
            ]
            if reconcile
            else []
        ),
    )
