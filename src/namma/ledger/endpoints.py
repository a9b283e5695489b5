"""`/api/ledger`: the chart of accounts, the trial balance and account statements.

Who sees what (``ledger:read``): an Admin sees every account and the whole trial balance. A
Manager sees the cash accounts of their branch (the branch's cash and its agents' cash) and the
trial balance of the journal entries of their branch; anything else answers 404.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from sqlalchemy import ColumnElement, false, select, true

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.kit.apitypes import Day
from namma.kit.deps import SessionDep
from namma.kit.errors import NotFoundError
from namma.kit.openapi import error_responses
from namma.ledger.queries import (
    STATEMENT_MAX_LIMIT,
    account_balances,
    account_statement,
    trial_balance,
)
from namma.ledger.schemas import (
    AccountInfo,
    AccountList,
    AccountOut,
    StatementLineOut,
    StatementOut,
    TrialBalanceOut,
    TrialBalanceRowOut,
)
from namma.models import AccountKind, LedgerAccount, Role, User

router = APIRouter(prefix="/api/ledger", tags=["ledger"])

ZERO = Decimal("0.00")
MAX_BIGINT = 2**63 - 1

LedgerReader = Annotated[Principal, Depends(require(Permission.LEDGER_READ))]


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


@router.get("/accounts")
async def ledger_accounts(session: SessionDep, principal: LedgerReader) -> AccountList:
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
    return AccountList(
        accounts=[AccountOut.with_totals(a, *totals.get(a.id, (ZERO, ZERO))) for a in accounts]
    )


@router.get("/trial-balance", responses=error_responses(404))
async def ledger_trial_balance(
    session: SessionDep,
    principal: LedgerReader,
    as_of: Annotated[Day | None, Query(description="Entries dated on or before")] = None,
    branch_id: Annotated[
        uuid.UUID | None, Query(description="Only the entries of this branch")
    ] = None,
) -> TrialBalanceOut:
    """Debit and credit totals per account and the balance on its normal side; the grand
    totals are equal. A Manager always gets their own branch's entries."""
    if principal.role is not Role.ADMIN:
        if principal.branch_id is None or branch_id not in (None, principal.branch_id):
            raise NotFoundError("No such branch.")
        branch_id = principal.branch_id
    result = await trial_balance(session, as_of=as_of, branch_id=branch_id)
    return TrialBalanceOut(
        as_of=as_of,
        branch_id=branch_id,
        accounts=[TrialBalanceRowOut.of(r) for r in result.rows],
        total_debit=result.total_debit,
        total_credit=result.total_credit,
        balanced=result.balanced,
    )


@router.get("/accounts/{account_id}/statement")
async def ledger_account_statement(
    account_id: uuid.UUID,
    session: SessionDep,
    principal: LedgerReader,
    since: Annotated[Day | None, Query(description="From this entry date (inclusive)")] = None,
    until: Annotated[Day | None, Query(description="To this entry date (inclusive)")] = None,
    after_line_id: Annotated[
        int | None, Query(ge=1, le=MAX_BIGINT, description="Cursor: `next` of the previous page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=STATEMENT_MAX_LIMIT)] = 100,
) -> StatementOut:
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
    return StatementOut(
        account=AccountInfo.of(statement.account),
        since=since,
        until=until,
        opening_balance=statement.opening_balance,
        closing_balance=statement.closing_balance,
        lines=[StatementLineOut.of(line) for line in statement.lines],
        next=statement.next_after_line_id,
    )
