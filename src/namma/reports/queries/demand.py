"""Report 3: demand vs collection (docs/reports.md)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import (
    distinct,
    func,
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from namma.reports.base import (
    ZERO,
    Report,
    ReportFilters,
    collection_rate,
    count,
    day,
    money,
    pct,
    text,
)
from namma.reports.queries.blocks import (
    _branches,
    _dec,
    _sum,
    _users,
    collections_received,
    installment_demand,
    scoped_loans,
)


async def demand_collection(session: AsyncSession, f: ReportFilters) -> Report:
    """Per day, branch and agent: the dues falling due that day, what was collected against
    them (by the period's end), the shortfall and the collection rate; and the money received
    that day on the agent's loans."""
    sl = scoped_loans(f)
    demand = installment_demand(f, f.date_from, f.date_to)
    key: dict[tuple[dt.date, uuid.UUID, uuid.UUID | None], dict[str, Any]] = defaultdict(dict)
    for due_date, branch_id, agent_id, loans, due, against in (
        await session.execute(
            select(
                demand.c.due_date,
                demand.c.branch_id,
                demand.c.agent_id,
                func.count(distinct(demand.c.loan_id)),
                _sum(demand.c.due),
                _sum(demand.c.collected),
            ).group_by(demand.c.due_date, demand.c.branch_id, demand.c.agent_id)
        )
    ).all():
        key[(due_date, branch_id, agent_id)].update(
            loans_due=loans, due_amount=_dec(due), collected_against_due=_dec(against)
        )
    received = collections_received(sl, f.date_from, f.date_to)
    for on, branch_id, agent_id, n, amount in (
        await session.execute(
            select(
                received.c.collected_on,
                received.c.branch_id,
                received.c.agent_id,
                func.sum(received.c.n),
                _sum(received.c.amount),
            ).group_by(received.c.collected_on, received.c.branch_id, received.c.agent_id)
        )
    ).all():
        key[(on, branch_id, agent_id)].update(collections=n, collected_amount=_dec(amount))
    branches = await _branches(session, (k[1] for k in key))
    agents = await _users(session, (k[2] for k in key))
    rows = []
    for (on, branch_id, agent_id), r in sorted(
        key.items(),
        key=lambda kv: (
            kv[0][0],
            branches[kv[0][1]].code,
            agents[kv[0][2]].name if kv[0][2] in agents else "",
        ),
    ):
        due = r.get("due_amount", ZERO)
        against = r.get("collected_against_due", ZERO)
        rows.append(
            {
                "date": on,
                "branch_code": branches[branch_id].code,
                "agent_name": agents[agent_id].name if agent_id in agents else "(unassigned)",
                "loans_due": r.get("loans_due", 0),
                "due_amount": due,
                "collected_against_due": against,
                "shortfall": due - against,
                "collection_rate": collection_rate(against, due),
                "collections": r.get("collections", 0),
                "collected_amount": r.get("collected_amount", ZERO),
            }
        )
    totals: dict[str, Any] = {
        k: sum((r[k] for r in rows), ZERO)
        for k in ("due_amount", "collected_against_due", "shortfall", "collected_amount")
    }
    totals["loans_due"] = sum(r["loans_due"] for r in rows)
    totals["collections"] = sum(r["collections"] for r in rows)
    totals["collection_rate"] = collection_rate(
        totals["collected_against_due"], totals["due_amount"]
    )
    return Report(
        name="demand-collection",
        title="Demand vs collection",
        filters=f,
        columns=[
            day("date", "Date"),
            text("branch_code", "Branch"),
            text("agent_name", "Agent"),
            count("loans_due", "Loans due"),
            money("due_amount", "Due"),
            money("collected_against_due", "Collected against due"),
            money("shortfall", "Shortfall"),
            pct("collection_rate", "Collection rate %"),
            count("collections", "Collections"),
            money("collected_amount", "Collected"),
        ],
        rows=rows,
        totals=totals,
    )
