"""Report 12: capital utilisation (docs/reports.md)."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

from sqlalchemy import (
    select,
)
from sqlalchemy.ext.asyncio import AsyncSession

from namma.capital.queries import capital_summary
from namma.kit.clock import today_india
from namma.ledger.queries import normal_balance
from namma.models import (
    AccountKind,
    JournalLine,
    LedgerAccount,
)
from namma.reports.base import (
    ZERO,
    ColumnType,
    Reconciliation,
    Report,
    ReportFilters,
    money,
    text,
)
from namma.reports.queries.blocks import (
    _dec,
    _sum,
)


async def capital_utilisation(session: AsyncSession, f: ReportFilters) -> Report:
    """The capital summary (``namma.capital.queries.capital_summary``) beside the ledger."""
    summary = await capital_summary(session)
    balances: dict[AccountKind, Decimal] = {}
    for kind, account_type, d, c in (
        await session.execute(
            select(
                LedgerAccount.kind,
                LedgerAccount.type,
                _sum(JournalLine.debit),
                _sum(JournalLine.credit),
            )
            .join(JournalLine, JournalLine.account_id == LedgerAccount.id)
            .where(
                LedgerAccount.kind.in_(
                    (AccountKind.CAPITAL, AccountKind.BORROWINGS, AccountKind.LOAN_PORTFOLIO)
                )
            )
            .group_by(LedgerAccount.kind, LedgerAccount.type)
        )
    ).all():
        balances[kind] = normal_balance(account_type, _dec(d), _dec(c))
    items = [
        ("own_capital", "Own capital (investments)", AccountKind.CAPITAL),
        ("borrowings_outstanding", "Borrowings outstanding", AccountKind.BORROWINGS),
        ("total_capital", "Total capital", None),
        ("disbursed_outstanding", "Loans outstanding (principal)", AccountKind.LOAN_PORTFOLIO),
        ("surplus", "Surplus (negative: deficit)", None),
    ]
    rows = [{"item": label, "key": key, "amount": Decimal(summary[key])} for key, label, _ in items]
    utilisation = summary["utilisation_percent"]
    return Report(
        name="capital-utilisation",
        title="Capital utilisation",
        filters=dataclasses.replace(f, branch_id=None, agent_id=None, product_id=None),
        as_of=today_india(),
        uses_dates=False,
        columns=[text("item", "Item"), text("key", "Key"), money("amount", "Amount")],
        rows=rows,
        summary={
            "utilisation_percent": Decimal(utilisation) if utilisation is not None else None,
            "position": summary["position"],
        },
        summary_types={"utilisation_percent": ColumnType.PERCENT},
        reconciliation=[
            Reconciliation(
                key, f"{kind.value} balance", Decimal(summary[key]), balances.get(kind, ZERO)
            )
            for key, _, kind in items
            if kind is not None
        ],
    )
