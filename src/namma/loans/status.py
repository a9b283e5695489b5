"""A loan's life: the moves between its statuses, in one table.

Every status change goes through `loan_move` (or, on the posting path that writes the loan's
columns itself, `loan_move_target`): a move not allowed from the loan's current status is a 409
that names that status and the ones the move is allowed from.

    applied ──approve──▶ approved ──disburse──▶ active ──close──▶ closed
       │  ▲                 │                     │ ├──pre-close──▶ preclosed
       │  └─undo approval───┘                     │ ├──refinance──▶ refinanced (by a top-up)
       ├──reject──▶ rejected                      │ └──write off──▶ written_off
       └──withdraw──▶ withdrawn                   ◀──re-open── closed / preclosed
                                                    (a reversed collection leaves money owed)
"""

from __future__ import annotations

import enum
from typing import Protocol

from namma.kit.errors import ConflictError
from namma.models import LoanStatus

S = LoanStatus


class LoanMove(enum.StrEnum):
    """A move, named by the words of its refusal: "Cannot <move> a loan that is <status>"."""

    APPROVE = "approve"
    REJECT = "reject"
    WITHDRAW = "withdraw"
    UNDO_APPROVAL = "undo the approval of"
    DISBURSE = "disburse"
    CLOSE = "close"
    PRECLOSE = "pre-close"
    REFINANCE = "refinance"
    WRITE_OFF = "write off"
    REOPEN = "re-open"


# move → (the statuses it may start from, the status it leads to)
LOAN_MOVES: dict[LoanMove, tuple[frozenset[LoanStatus], LoanStatus]] = {
    LoanMove.APPROVE: (frozenset({S.APPLIED}), S.APPROVED),
    LoanMove.REJECT: (frozenset({S.APPLIED}), S.REJECTED),
    LoanMove.WITHDRAW: (frozenset({S.APPLIED}), S.WITHDRAWN),
    LoanMove.UNDO_APPROVAL: (frozenset({S.APPROVED}), S.APPLIED),
    LoanMove.DISBURSE: (frozenset({S.APPROVED}), S.ACTIVE),
    LoanMove.CLOSE: (frozenset({S.ACTIVE}), S.CLOSED),
    LoanMove.PRECLOSE: (frozenset({S.ACTIVE}), S.PRECLOSED),
    LoanMove.REFINANCE: (frozenset({S.ACTIVE}), S.REFINANCED),
    LoanMove.WRITE_OFF: (frozenset({S.ACTIVE}), S.WRITTEN_OFF),
    LoanMove.REOPEN: (frozenset({S.CLOSED, S.PRECLOSED}), S.ACTIVE),
}


class HasStatus(Protocol):
    status: LoanStatus


def loan_move_target(current: LoanStatus, move: LoanMove) -> LoanStatus:
    """The status ``move`` leads to from ``current``; 409 if it is not allowed from there."""
    allowed, target = LOAN_MOVES[move]
    if current not in allowed:
        raise ConflictError(
            f"Cannot {move.value} a loan that is {current.value}",
            details={
                "status": current.value,
                "allowed_from": sorted(s.value for s in allowed),
            },
        )
    return target


def loan_move(loan: HasStatus, move: LoanMove) -> None:
    """Move the loan to its next status (409 if ``move`` is not allowed from its status)."""
    loan.status = loan_move_target(loan.status, move)


def loan_settle_move(
    current: LoanStatus, *, owed_nothing: bool, preclosed: bool
) -> LoanMove | None:
    """After its installments changed (a payment, a waiver, a replay), the move that brings the
    loan to where its balances put it — closed (or pre-closed) when nothing is owed, active
    otherwise — or None when it is there already."""
    target = (S.PRECLOSED if preclosed else S.CLOSED) if owed_nothing else S.ACTIVE
    if target is current:
        return None
    if target is S.ACTIVE:
        return LoanMove.REOPEN
    return LoanMove.PRECLOSE if preclosed else LoanMove.CLOSE
