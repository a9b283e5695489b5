"""Advances: money received beyond a loan's dues (the product's excess policy ``advance``) is
held in the liability account ``customer_advances`` (tagged with the loan; the loan's
``advance_balance``) and applied to the installments as they fall due by the close of business
(`advances_apply`, its first step), oldest first in the product's allocation order.

An application is a journal entry ``advance.applied`` (Dr ``customer_advances``, Cr the
portfolio and the income accounts, every line tagged with the loan) and one
``advance_applications`` row per installment it paid on; the installments, the loan's balances
and, when nothing is owed any more, its status (closed) change with it. A reversal's replay
applies the advances again in the same order (`namma.collections.service._loan_replay`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from psycopg import sql
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import AuditActor, audit_record
from namma.collections.service import (
    COMPONENTS,
    OUTSTANDING,
    ZERO,
    _from_allocation,
    _income_legs,
    _place,
    _totals,
)
from namma.finance import advance_apply
from namma.finance.owed import owed
from namma.kit.db import raw_connection
from namma.kit.sqltext import sql_of
from namma.ledger.service import Leg, journal_post
from namma.loans.cache import loan_changed
from namma.loans.capitalised import capitalised_settle
from namma.loans.service import loan_balances, loan_dues, loan_terms_of
from namma.loans.status import LoanMove, loan_move_target
from namma.loans.store import (
    LOAN_ROWS,
    LOANS_WITH_TERMS,
    installment_changes,
    installment_states,
    installment_states_write,
    loan_columns_write,
    loan_version,
)
from namma.models import AccountKind, AdvanceApplication

# The loans holding an advance with something owed on an installment due by the date, locked in
# id order (the order every close-of-business step and a collection lock loans in).
ADVANCE_LOANS = (
    sql.SQL(
        "SELECT {} FROM {} WHERE l.status = 'active' AND l.advance_balance > 0 "
        "AND l.disbursed_on <= %s AND EXISTS (SELECT 1 FROM loan_installments i "
        "WHERE i.loan_id = l.id AND i.due_date <= %s AND {} > 0) ORDER BY l.id FOR UPDATE OF l"
    )
    .format(LOAN_ROWS.columns, sql.SQL(LOANS_WITH_TERMS), sql.SQL(sql_of(owed, "i")))
    .as_bytes()
)


async def advances_apply(
    session: AsyncSession,
    *,
    business_date: dt.date,
    actor: AuditActor | None = None,
    created_by_id: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Apply every advance held to what has fallen due by ``business_date``: one journal entry
    per loan. Idempotent per date: a second run finds nothing due that an advance could pay.
    Returns the counts (loans, installments, amount applied, loans it closed)."""
    await session.flush()
    connection = await raw_connection(session)
    cursor = await connection.execute(ADVANCE_LOANS, (business_date, business_date))
    loans = [LOAN_ROWS.adopt(session, row) for row in await cursor.fetchall()]
    counts: dict[str, Any] = {"loans": 0, "installments": 0, "applied": ZERO, "closed": 0}
    for loan in loans:
        version = await loan_version(session, loan)
        installments = await installment_states(session, loan.id)
        allocation = advance_apply(
            advance=loan.advance_balance,
            dues=loan_dues(installments),
            as_of=business_date,
            strategy=loan_terms_of(loan, version).allocation,
        )
        placed = _from_allocation(allocation.lines)
        if not placed:
            continue
        rows = {i.number: i for i in installments}
        unchanged = installment_changes(installments)
        now = dt.datetime.now(dt.UTC)
        for p in placed:
            _place(rows, p, now)
        balances = loan_balances(installments)
        balances["advance_balance"] = allocation.advance
        if sum((balances[f"outstanding_{c}"] for c in OUTSTANDING), ZERO) == 0:
            balances.update(status=loan_move_target(loan.status, LoanMove.CLOSE), closed_at=now)
            counts["closed"] += 1
        await installment_states_write(session, installments, unchanged)
        await loan_columns_write(session, loan, balances)
        totals = _totals(placed)
        entry = await journal_post(
            session,
            kind="advance.applied",
            entry_date=business_date,
            memo=f"Advance applied to {loan.loan_number} as its installments fell due",
            branch_id=loan.branch_id,
            loan_id=loan.id,
            created_by_id=created_by_id,
            legs=[
                Leg(AccountKind.CUSTOMER_ADVANCES, debit=allocation.amount, loan_id=loan.id),
                *_income_legs(totals, loan.id),
            ],
        )
        await capitalised_settle(session, loan=loan, on=business_date, created_by_id=created_by_id)
        # The order of collections and applications of a loan: one sequence (taken under the
        # loan's lock), the order a reversal's replay follows.
        seq = await session.scalar(select(func.nextval("collections_seq_seq")))
        session.add_all(
            AdvanceApplication(
                seq=seq,
                loan_id=loan.id,
                installment_id=rows[p.number].id,
                installment_number=p.number,
                applied_on=business_date,
                journal_entry_id=entry.id,
                **{c: getattr(p, c) for c in COMPONENTS},
            )
            for p in placed
        )
        await session.flush()
        loan_changed(
            session, loan_id=loan.id, customer_id=loan.customer_id, branch_id=loan.branch_id
        )
        counts["loans"] += 1
        counts["installments"] += len(placed)
        counts["applied"] += allocation.amount
    if counts["loans"]:
        await audit_record(
            session,
            actor=actor or AuditActor.system(),
            action="advance.applied",
            entity_type="loan",
            after={"business_date": business_date, **counts},
        )
    return {**counts, "applied": str(counts["applied"])}
