"""`/api/ledger`: the chart of accounts, the trial balance and account statements.

Who sees what (``ledger:read``): an Admin sees every account and the whole trial balance. A
Manager sees the cash accounts of their branch (the branch's cash and its agents' cash) and the
trial balance of the journal entries of their branch; anything else answers 404.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import ColumnElement, false, select, true

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.kit.deps import SessionDep
from namma.kit.errors import NotFoundError
from namma.ledger.queries import (
    STATEMENT_MAX_LIMIT,
    StatementLine,
    TrialBalanceRow,
    account_balances,
    account_statement,
    normal_balance,
    normal_side,
    trial_balance,
)
from namma.models import AccountKind, LedgerAccount, Role, User

router = APIRouter(prefix="/api/ledger", tags=["ledger"])

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
MAX_BIGINT = 2**63 - 1

LedgerReader = Annotated[Principal, Depends(require(Permission.LEDGER_READ))]


def money(amount: Decimal) -> str:
    """Money as the API shows it: a string with exactly two decimals."""
    return str(amount.quantize(CENT))


def ledger_account_scope(principal: Principal) -> ColumnElement[bool]:
    """Admin: every account. Manager: their branch's cash and the cash of its agents."""
    if principal.role is Role.ADMIN:
        return true()
    if principal.role is Role.MANAGER and principal.branch_id is not None:
        branch_cash = (LedgerAccount.kind == AccountKind.BRANCH_CASH) & (
            LedgerAccount.branch_id == principal.branch_id
        )
        agent_cash = (LedgerAccount.kind == AccountKind.AGENT_CASH) & LedgerAccount.agent_id.in_(
            select(User.id).where(User.branch_id == principal.branch_id)
        )
        return branch_cash | agent_cash
    return false()


def _account_info(account: LedgerAccount) -> dict[str, Any]:
    return {
        "id": str(account.id),
        "code": account.code,
        "name": account.name,
        "kind": account.kind.value,
        "type": account.type.value,
        "normal_side": normal_side(account.type),
        "branch_id": str(account.branch_id) if account.branch_id else None,
        "agent_id": str(account.agent_id) if account.agent_id else None,
    }


def _account_json(account: LedgerAccount, debit: Decimal, credit: Decimal) -> dict[str, Any]:
    return _account_info(account) | {
        "debit": money(debit),
        "credit": money(credit),
        "balance": money(normal_balance(account.type, debit, credit)),
    }


def _row_json(row: TrialBalanceRow) -> dict[str, Any]:
    return {
        "account_id": str(row.account_id),
        "code": row.code,
        "name": row.name,
        "kind": row.kind.value,
        "type": row.type.value,
        "normal_side": row.normal_side,
        "debit": money(row.debit),
        "credit": money(row.credit),
        "balance": money(row.balance),
    }


def _line_json(line: StatementLine) -> dict[str, Any]:
    return {
        "line_id": line.line_id,
        "entry_id": line.entry_id,
        "entry_date": line.entry_date.isoformat(),
        "kind": line.kind,
        "memo": line.memo,
        "receipt_number": line.receipt_number,
        "loan_id": str(line.loan_id) if line.loan_id else None,
        "reverses_id": line.reverses_id,
        "debit": money(line.debit),
        "credit": money(line.credit),
        "balance": money(line.balance),
    }


@router.get("/accounts")
async def ledger_accounts(session: SessionDep, principal: LedgerReader) -> dict[str, Any]:
    """The accounts the caller may see, in code order, with their totals and balance."""
    accounts = list(
        (
            await session.scalars(
                select(LedgerAccount)
                .where(ledger_account_scope(principal))
                .order_by(LedgerAccount.code)
            )
        ).all()
    )
    totals = await account_balances(session, [a.id for a in accounts])
    return {"accounts": [_account_json(a, *totals.get(a.id, (ZERO, ZERO))) for a in accounts]}


@router.get("/trial-balance")
async def ledger_trial_balance(
    session: SessionDep,
    principal: LedgerReader,
    as_of: Annotated[dt.date | None, Query(description="Entries dated on or before")] = None,
    branch_id: Annotated[
        uuid.UUID | None, Query(description="Only the entries of this branch")
    ] = None,
) -> dict[str, Any]:
    """Debit and credit totals per account and the balance on its normal side; the grand
    totals are equal. A Manager always gets their own branch's entries."""
    if principal.role is not Role.ADMIN:
        if principal.branch_id is None or branch_id not in (None, principal.branch_id):
            raise NotFoundError("No such branch.")
        branch_id = principal.branch_id
    result = await trial_balance(session, as_of=as_of, branch_id=branch_id)
    return {
        "as_of": as_of.isoformat() if as_of else None,
        "branch_id": str(branch_id) if branch_id else None,
        "accounts": [_row_json(r) for r in result.rows],
        "total_debit": money(result.total_debit),
        "total_credit": money(result.total_credit),
        "balanced": result.balanced,
    }


@router.get("/accounts/{account_id}/statement")
async def ledger_account_statement(
    account_id: uuid.UUID,
    session: SessionDep,
    principal: LedgerReader,
    since: Annotated[dt.date | None, Query(description="From this entry date (inclusive)")] = None,
    until: Annotated[dt.date | None, Query(description="To this entry date (inclusive)")] = None,
    after_line_id: Annotated[
        int | None, Query(ge=1, le=MAX_BIGINT, description="Cursor: `next` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=STATEMENT_MAX_LIMIT)] = 100,
) -> dict[str, Any]:
    """The account's lines by entry date with the running balance after each; pass `next` as
    `after_line_id` for the following page."""
    statement = await account_statement(
        session,
        account_id=account_id,
        since=since,
        until=until,
        after_line_id=after_line_id,
        limit=limit,
        scope=ledger_account_scope(principal),
    )
    return {
        "account": _account_info(statement.account),
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "opening_balance": money(statement.opening_balance),
        "closing_balance": money(statement.closing_balance),
        "lines": [_line_json(line) for line in statement.lines],
        "next": statement.next_after_line_id,
    }
