"""Report: provisioning for loan losses, per branch and prudential class (docs/reports.md).

Current state: the loans the close of business provides for (active), and those still holding
a provision it has yet to release (closed since the last close), by the class the last close
gave them. Per row: loans, outstanding principal, the class's rate *now*, the provision needed
now (rate × principal, per loan rounded to the paisa half-up, as the close computes it), the
provision held (what the ledger holds, ``loans.provision_held``) and the difference the next
close will post.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.finance.provisioning import CLASSES, SUB_STANDARD
from namma.kit.clock import today_india
from namma.models import (
    AccountKind,
    Branch,
    JournalLine,
    LedgerAccount,
    Loan,
    LoanStatus,
    ProvisioningRate,
)
from namma.provisioning.service import provisioning_rates_ensure
from namma.reports.base import (
    ZERO,
    ColumnType,
    Reconciliation,
    Report,
    ReportFilters,
    count,
    money,
    pct,
    percent,
    text,
)
from namma.reports.queries.blocks import _dec, _sum, scoped_loans

NPA_CLASSES = CLASSES[CLASSES.index(SUB_STANDARD) :]  # sub-standard, doubtful, loss


async def provisioning_report(session: AsyncSession, f: ReportFilters) -> Report:
    """Provision needed and held per branch and class; summary and the ledger's balance."""
    await provisioning_rates_ensure(session)
    sl = scoped_loans(f)
    active = Loan.status == LoanStatus.ACTIVE
    needed = case(
        (active, func.round(Loan.outstanding_principal * ProvisioningRate.rate / 100, 2)),
        else_=ZERO,
    )
    result = await session.execute(
        select(
            Branch.code,
            Branch.name,
            Loan.provision_class,
            ProvisioningRate.rate,
            func.count(Loan.id),
            _sum(case((active, Loan.outstanding_principal), else_=ZERO)),
            _sum(needed),
            _sum(Loan.provision_held),
        )
        .select_from(sl)
        .join(Loan, Loan.id == sl.c.loan_id)
        .join(Branch, Branch.id == Loan.branch_id)
        .join(ProvisioningRate, ProvisioningRate.asset_class == Loan.provision_class)
        .where(or_(active, Loan.provision_held != 0))
        .group_by(Branch.code, Branch.name, Loan.provision_class, ProvisioningRate.rate)
    )
    rates = {r.asset_class.value: r.rate for r in await session.scalars(select(ProvisioningRate))}
    found: dict[tuple[str, str], tuple[str, Decimal, int, Decimal, Decimal, Decimal]] = {}
    names: dict[str, str] = {}
    for code, name, klass, rate, n, principal, req, held in result.all():
        names[code] = name
        found[(code, klass.value)] = (name, rate, n, _dec(principal), _dec(req), _dec(held))
    rows: list[dict[str, Any]] = []
    for code in sorted(names):
        for klass in CLASSES:
            _, rate, n, principal, req, held = found.get(
                (code, klass), (names[code], rates.get(klass, ZERO), 0, ZERO, ZERO, ZERO)
            )
            rows.append(
                {
                    "branch_code": code,
                    "branch_name": names[code],
                    "asset_class": klass,
                    "loans": n,
                    "outstanding_principal": principal,
                    "rate": rate,
                    "provision_required": req,
                    "provision_held": held,
                    "difference": req - held,
                }
            )

    def total(key: str, classes: tuple[str, ...] = CLASSES) -> Decimal:
        return sum((r[key] for r in rows if r["asset_class"] in classes), ZERO)

    held_total = total("provision_held")
    npa_principal = total("outstanding_principal", NPA_CLASSES)
    npa_held = total("provision_held", NPA_CLASSES)
    ledger_held = _dec(
        await session.scalar(
            select(_sum(JournalLine.credit - JournalLine.debit))
            .select_from(JournalLine)
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .join(sl, sl.c.loan_id == JournalLine.loan_id)
            .where(LedgerAccount.kind == AccountKind.LOAN_LOSS_PROVISION)
        )
    )
    summary: dict[str, Any] = {
        "provision_required": total("provision_required"),
        "provision_held": held_total,
        "to_post_next_close": total("difference"),
        "gross_npa": npa_principal,
        "npa_provision_held": npa_held,
        "provision_coverage": percent(npa_held, npa_principal),
    }
    summary |= {f"rate_{klass}": rates.get(klass, ZERO) for klass in CLASSES}
    return Report(
        name="provisioning",
        title="Provisioning for loan losses",
        filters=f,
        as_of=today_india(),
        uses_dates=False,
        columns=[
            text("branch_code", "Branch"),
            text("branch_name", "Branch name"),
            text("asset_class", "Asset class"),
            count("loans", "Loans"),
            money("outstanding_principal", "Outstanding principal"),
            pct("rate", "Provisioning rate %"),
            money("provision_required", "Provision required"),
            money("provision_held", "Provision held"),
            money("difference", "To post at the next close"),
        ],
        rows=rows,
        totals={
            "loans": sum(r["loans"] for r in rows),
            "outstanding_principal": total("outstanding_principal"),
            "provision_required": total("provision_required"),
            "provision_held": held_total,
            "difference": total("difference"),
        },
        summary=summary,
        summary_types={
            "provision_required": ColumnType.MONEY,
            "provision_held": ColumnType.MONEY,
            "to_post_next_close": ColumnType.MONEY,
            "gross_npa": ColumnType.MONEY,
            "npa_provision_held": ColumnType.MONEY,
            "provision_coverage": ColumnType.PERCENT,
            **{f"rate_{klass}": ColumnType.PERCENT for klass in CLASSES},
        },
        reconciliation=[
            Reconciliation(
                "provision_held",
                "loan_loss_provision balance (Cr − Dr)",
                held_total,
                ledger_held,
            )
        ],
    )
