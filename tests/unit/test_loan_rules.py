"""The one definition of what an installment and a loan owe (`namma.finance.owed`), its SQL
reading (`namma.kit.sqltext`), and the table of a loan's status moves (`namma.loans.status`)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal

import pytest

from namma.finance import Due, days_past_due
from namma.finance.owed import (
    STATUS_OTHERWISE,
    STATUS_RULES,
    counts_past_due,
    installment_status,
    is_unpaid,
    loan_balances,
    owed,
    owed_fee,
    owed_interest,
    owed_penalty,
    owed_principal,
)
from namma.kit.errors import ConflictError
from namma.kit.sqltext import SqlText, sql_case, sql_of
from namma.loans.status import LOAN_MOVES, LoanMove, loan_move, loan_move_target, loan_settle_move
from namma.models import InstallmentStatus, LoanStatus

D = Decimal
ZERO = D("0.00")
TODAY = dt.date(2026, 12, 1)


@dataclass
class Row:
    number: int
    due_date: dt.date
    principal_due: Decimal = ZERO
    interest_due: Decimal = ZERO
    fee_due: Decimal = ZERO
    penalty_due: Decimal = ZERO
    principal_paid: Decimal = ZERO
    interest_paid: Decimal = ZERO
    fee_paid: Decimal = ZERO
    penalty_paid: Decimal = ZERO
    interest_waived: Decimal = ZERO
    fee_waived: Decimal = ZERO
    penalty_waived: Decimal = ZERO


def test_owed_per_component_is_due_less_paid_and_waived() -> None:
    row = Row(
        1,
        TODAY,
        principal_due=D("900.00"),
        interest_due=D("100.00"),
        fee_due=D("20.00"),
        penalty_due=D("15.00"),
        principal_paid=D("400.00"),
        interest_paid=D("60.00"),
        interest_waived=D("10.00"),
        fee_waived=D("20.00"),
        penalty_paid=D("5.00"),
        penalty_waived=D("2.50"),
    )
    assert owed_principal(row) == D("500.00")
    assert owed_interest(row) == D("30.00")
    assert owed_fee(row) == ZERO
    assert owed_penalty(row) == D("7.50")
    assert owed(row) == D("537.50")


def test_status_rules_in_order() -> None:
    paid = Row(1, TODAY - dt.timedelta(days=9), principal_due=D("10"), principal_paid=D("10"))
    late = Row(2, TODAY - dt.timedelta(days=1), principal_due=D("10"), principal_paid=D("3"))
    started = Row(3, TODAY, principal_due=D("10"), interest_paid=D("0.01"))
    untouched = Row(4, TODAY, principal_due=D("10"))
    assert [installment_status(r, TODAY) for r in (paid, late, started, untouched)] == [
        "paid",
        "overdue",
        "partly_paid",
        "due",
    ]
    # Every status a rule gives is one the database knows.
    names = {status for status, _ in STATUS_RULES} | {STATUS_OTHERWISE}
    assert names == {s.value for s in InstallmentStatus}


def test_loan_balances_agree_with_the_money_core_days_past_due() -> None:
    rows = [
        Row(
            1,
            TODAY - dt.timedelta(days=20),
            D("100"),
            D("10"),
            principal_paid=D("100"),
            interest_paid=D("10"),
        ),
        # Only a penalty left: not in arrears, so days past due count from row 3.
        Row(
            2,
            TODAY - dt.timedelta(days=13),
            D("100"),
            D("10"),
            penalty_due=D("5"),
            principal_paid=D("100"),
            interest_paid=D("10"),
        ),
        Row(3, TODAY - dt.timedelta(days=6), D("100"), D("10"), interest_paid=D("10")),
        Row(4, TODAY + dt.timedelta(days=1), D("100"), D("10")),
    ]
    balances = loan_balances(rows, TODAY)
    assert (balances.principal, balances.interest, balances.fees, balances.penalties) == (
        D("200"),
        D("10"),
        ZERO,
        D("5"),
    )
    assert balances.next_due_on == rows[1].due_date  # its penalty is still owed
    dues = [
        Due(r.number, r.due_date, owed_principal(r), owed_interest(r), owed_fee(r), owed_penalty(r))
        for r in rows
    ]
    assert balances.days_past_due == days_past_due(dues=dues, as_of=TODAY) == 6
    assert balances.statuses == ("paid", "overdue", "overdue", "due")
    assert balances.total == D("215")
    # The loan's aggregate is the rules applied installment by installment.
    assert balances.statuses == tuple(installment_status(r, TODAY) for r in rows)
    assert balances.next_due_on == min(r.due_date for r in rows if is_unpaid(r))
    assert min(r.due_date for r in rows if counts_past_due(r, TODAY)) == rows[2].due_date
    assert (balances.principal, balances.total) == (
        sum((owed_principal(r) for r in rows), ZERO),
        sum((owed(r) for r in rows), ZERO),
    )


def test_a_rule_reads_as_sql() -> None:
    assert sql_of(owed_interest, "i") == "((i.interest_due - i.interest_paid) - i.interest_waived)"
    case = sql_case(STATUS_RULES, STATUS_OTHERWISE, "x", SqlText(":d"), SqlText("o"))
    assert case.startswith("CASE WHEN (o = 0) THEN 'paid'") and case.endswith("ELSE 'due' END")
    assert "WHEN (x.due_date < :d) THEN 'overdue'" in case


def test_sql_text_refuses_python_truth() -> None:
    with pytest.raises(TypeError):
        bool(SqlText("a") > 0)
    with pytest.raises(TypeError):
        sql_of(lambda i: i.principal_due > 0 and i.fee_due > 0, "i")


# --- status moves --------------------------------------------------------------------------------


@dataclass
class Loanish:
    status: LoanStatus


@pytest.mark.parametrize("move", list(LoanMove))
def test_every_move_is_allowed_only_from_its_statuses(move: LoanMove) -> None:
    allowed, target = LOAN_MOVES[move]
    for status in LoanStatus:
        loan = Loanish(status)
        if status in allowed:
            loan_move(loan, move)
            assert loan.status is target
        else:
            with pytest.raises(ConflictError) as refused:
                loan_move(loan, move)
            assert loan.status is status  # unchanged
            assert refused.value.message == f"Cannot {move.value} a loan that is {status.value}"
            assert refused.value.details == {
                "status": status.value,
                "allowed_from": sorted(s.value for s in allowed),
            }


def test_the_table_has_the_loan_life() -> None:
    assert loan_move_target(LoanStatus.APPLIED, LoanMove.APPROVE) is LoanStatus.APPROVED
    assert loan_move_target(LoanStatus.APPROVED, LoanMove.DISBURSE) is LoanStatus.ACTIVE
    # A closed loan is re-opened by a reversal, never disbursed again.
    with pytest.raises(ConflictError):
        loan_move_target(LoanStatus.CLOSED, LoanMove.DISBURSE)
    # Nothing leaves these.
    for final in (
        LoanStatus.REJECTED,
        LoanStatus.WITHDRAWN,
        LoanStatus.REFINANCED,
        LoanStatus.WRITTEN_OFF,
    ):
        assert not any(final in allowed for allowed, _ in LOAN_MOVES.values())


def test_settling_a_loan_after_its_installments_changed() -> None:
    active, closed = LoanStatus.ACTIVE, LoanStatus.CLOSED
    assert loan_settle_move(active, owed_nothing=False, preclosed=False) is None
    assert loan_settle_move(active, owed_nothing=True, preclosed=False) is LoanMove.CLOSE
    assert loan_settle_move(active, owed_nothing=True, preclosed=True) is LoanMove.PRECLOSE
    assert loan_settle_move(closed, owed_nothing=False, preclosed=False) is LoanMove.REOPEN
    assert loan_settle_move(LoanStatus.PRECLOSED, owed_nothing=False, preclosed=False) is (
        LoanMove.REOPEN
    )
    assert loan_settle_move(closed, owed_nothing=True, preclosed=False) is None
