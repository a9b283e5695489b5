"""Interest a restructuring's moratorium capitalised, recognised as it is received (D-196).

On cash basis capitalised interest is not income when it is capitalised: the approval credits
the liability ``interest_capitalised`` (loan-tagged) against the loan portfolio. The capitalised
part of the principal is taken as repaid last: the liability a loan holds is always

    min(interest capitalised by its restructurings, its outstanding principal)

so it falls only once the outstanding principal falls below it — with the last installments, a
pre-closure or a top-up — and each fall is interest received (Cr ``interest_income``); a
write-off or a principal waiver releases it against the loss instead (Cr ``write_off_expense`` /
``waiver_expense``), since that part of the principal was never money lent. A reversal that
raises the outstanding principal again books it back. `capitalised_settle` brings the liability
to that amount; every command that changes a restructured loan's outstanding principal calls it
in its transaction, and `namma ledger check` verifies it (check 8). Loans never restructured
cost nothing (no query).
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.ledger.service import Leg, journal_post
from namma.models import AccountKind, JournalEntry, JournalLine, LedgerAccount, Loan

ZERO = Decimal("0.00")
CAPITALISED_KIND = "loan.restructure"
RELEASE_KIND = "loan.capitalised_interest"


async def capitalised_balances(
    session: AsyncSession, loan_id: uuid.UUID
) -> tuple[Decimal, Decimal]:
    """(interest capitalised by the loan's restructurings, the liability it holds now)."""
    row = (
        await session.execute(
            select(
                func.coalesce(
                    func.sum(
                        case(
                            (JournalEntry.kind == CAPITALISED_KIND, JournalLine.credit),
                            else_=0,
                        )
                    ),
                    0,
                ),
                func.coalesce(func.sum(JournalLine.credit - JournalLine.debit), 0),
            )
            .select_from(JournalLine)
            .join(LedgerAccount, LedgerAccount.id == JournalLine.account_id)
            .join(JournalEntry, JournalEntry.id == JournalLine.entry_id)
            .where(LedgerAccount.kind == AccountKind.INTEREST_CAPITALISED)
            .where(JournalLine.loan_id == loan_id)
        )
    ).one()
    return Decimal(row[0]), Decimal(row[1])


async def capitalised_settle(
    session: AsyncSession,
    *,
    loan: Loan,
    on: dt.date,
    created_by_id: uuid.UUID | None,
    against: AccountKind = AccountKind.INTEREST_INCOME,
) -> Decimal:
    """Bring the (locked) loan's capitalised-interest liability to min(capitalised,
    outstanding principal): the fall is released to ``against`` (interest received; a
    write-off's or waiver's expense), a rise booked back from interest income. Returns what
    was released (negative: booked back)."""
    if loan.restructured_on is None:
        return ZERO
    capitalised, held = await capitalised_balances(session, loan.id)
    if capitalised == 0:
        return ZERO
    target = min(capitalised, loan.outstanding_principal)
    released = held - target
    if released == 0:
        return ZERO
    if released > 0:
        legs = [
            Leg(AccountKind.INTEREST_CAPITALISED, debit=released, loan_id=loan.id),
            Leg(against, credit=released, loan_id=loan.id),
        ]
        memo = f"Capitalised interest of {loan.loan_number} received or released"
    else:
        legs = [
            Leg(AccountKind.INTEREST_INCOME, debit=-released, loan_id=loan.id),
            Leg(AccountKind.INTEREST_CAPITALISED, credit=-released, loan_id=loan.id),
        ]
        memo = f"Capitalised interest of {loan.loan_number} owed again (a reversal)"
    await journal_post(
        session,
        kind=RELEASE_KIND,
        entry_date=on,
        memo=memo,
        branch_id=loan.branch_id,
        loan_id=loan.id,
        created_by_id=created_by_id,
        legs=legs,
    )
    return released
