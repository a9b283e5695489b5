"""The answers of `/api/collections`, `/api/collection-sheet` and the servicing routes under
`/api/loans/{id}` (pre-closure, penalties, waivers): typed, so the API reference describes
every 2xx body. Money is a decimal string with two places (`Money`).

A recorded collection's 201 body is built in one place only, `CollectionPosted.of`: it is
stored with its idempotency key and replayed byte for byte, by a single post and by a sheet's
line alike.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from namma.finance import PayoffQuote
from namma.kit.apitypes import ANSWER, JsonObject, Timestamp
from namma.kit.money import Money
from namma.loans.schemas import Rescheduled
from namma.models import (
    Collection,
    CollectionAllocation,
    CollectionMethod,
    CollectionStatus,
    InstallmentStatus,
    Loan,
    LoanScheduleRevision,
    LoanStatus,
    LoanWaiver,
    WaiverComponent,
)

if TYPE_CHECKING:
    from namma.collections.service import CollectionResult
    from namma.loans.store import InstallmentLike

ZERO = Decimal("0.00")


class AllocationOut(BaseModel):
    """What a collection paid (and, on a pre-closure, waived) on one installment."""

    model_config = ANSWER
    installment_number: int
    due_date: dt.date
    principal: Money
    interest: Money
    fee: Money
    penalty: Money
    total: Money
    interest_waived: Money
    fee_waived: Money
    penalty_waived: Money

    @classmethod
    def fields_of(cls, a: CollectionAllocation, i: InstallmentLike) -> dict[str, Any]:
        return {
            "installment_number": a.installment_number,
            "due_date": i.due_date,
            "principal": a.principal,
            "interest": a.interest,
            "fee": a.fee,
            "penalty": a.penalty,
            "total": a.principal + a.interest + a.fee + a.penalty,
            "interest_waived": a.interest_waived,
            "fee_waived": a.fee_waived,
            "penalty_waived": a.penalty_waived,
        }


class CollectionOut(BaseModel):
    """A collection (reversed ones stay, marked) with its allocation per installment."""

    model_config = ANSWER
    id: uuid.UUID
    receipt_number: str
    loan_id: uuid.UUID
    loan_number: str
    customer_id: uuid.UUID
    branch_id: uuid.UUID
    collected_by_id: uuid.UUID
    amount: Money
    principal: Money
    interest: Money
    fee: Money
    penalty: Money
    recovery: Money
    advance: Money = Field(
        description="Held as an advance for installments still to fall due (applied by the "
        "close of business as they do); negative: the advance a pre-closure used"
    )
    prepaid_principal: Money = Field(
        description="Part of `principal` prepaid beyond the dues (excess policy reduce-term or "
        "reduce-installment): it rescheduled the installments still to fall due"
    )
    collected_on: dt.date
    method: CollectionMethod
    reference: str | None
    remarks: str | None
    client_id: str | None
    preclosure: bool
    status: CollectionStatus
    reversed_at: Timestamp | None
    reversed_by_id: uuid.UUID | None
    reversal_reason: str | None
    journal_entry_id: int | None
    reversal_entry_id: int | None
    created_at: Timestamp | None
    allocation: list[AllocationOut]
    rescheduled: Rescheduled | None = Field(
        default=None,
        description="What its prepaid principal did to the schedule (the 201 and a single "
        "collection; null in lists, and once reversed)",
    )

    @classmethod
    def fields_of(
        cls,
        c: Collection,
        loan: Loan,
        allocations: Sequence[tuple[CollectionAllocation, InstallmentLike]] = (),
        revision: LoanScheduleRevision | None = None,
    ) -> dict[str, Any]:
        return {
            "id": c.id,
            "receipt_number": c.receipt_number,
            "loan_id": c.loan_id,
            "loan_number": loan.loan_number,
            "customer_id": loan.customer_id,
            "branch_id": c.branch_id,
            "collected_by_id": c.collected_by_id,
            "amount": c.amount,
            "principal": c.principal,
            "interest": c.interest,
            "fee": c.fee,
            "penalty": c.penalty,
            "recovery": c.recovery,
            "advance": c.advance,
            "prepaid_principal": c.prepaid_principal,
            "collected_on": c.collected_on,
            "method": c.method,
            "reference": c.reference,
            "remarks": c.remarks,
            "client_id": c.client_id,
            "preclosure": c.preclosure,
            "status": c.status,
            "reversed_at": c.reversed_at,
            "reversed_by_id": c.reversed_by_id,
            "reversal_reason": c.reversal_reason,
            "journal_entry_id": c.journal_entry_id,
            "reversal_entry_id": c.reversal_entry_id,
            "created_at": c.created_at,
            "allocation": [AllocationOut(**AllocationOut.fields_of(a, i)) for a, i in allocations],
            "rescheduled": Rescheduled.of(revision),
        }

    @classmethod
    def of(
        cls,
        c: Collection,
        loan: Loan,
        allocations: Sequence[tuple[CollectionAllocation, InstallmentLike]] = (),
        revision: LoanScheduleRevision | None = None,
    ) -> CollectionOut:
        return cls(**cls.fields_of(c, loan, allocations, revision))


class CollectionList(BaseModel):
    model_config = ANSWER
    collections: list[CollectionOut]
    next: str | None  # the cursor for `after`


class LoanBalances(BaseModel):
    """A loan's status and balances after a collection, a reversal or a waiver."""

    model_config = ANSWER
    id: uuid.UUID
    loan_number: str
    status: LoanStatus
    outstanding_principal: Money
    outstanding_interest: Money
    outstanding_fees: Money
    outstanding_penalties: Money
    total_collected: Money
    advance_balance: Money = Field(
        description="Money held as an advance (a liability), applied as installments fall due"
    )
    next_due_on: dt.date | None
    days_past_due: int
    closed_at: Timestamp | None

    @classmethod
    def of(cls, loan: Loan) -> LoanBalances:
        return cls(
            id=loan.id,
            loan_number=loan.loan_number,
            status=loan.status,
            outstanding_principal=loan.outstanding_principal,
            outstanding_interest=loan.outstanding_interest,
            outstanding_fees=loan.outstanding_fees,
            outstanding_penalties=loan.outstanding_penalties,
            total_collected=loan.total_collected,
            advance_balance=loan.advance_balance,
            next_due_on=loan.next_due_on,
            days_past_due=loan.days_past_due,
            closed_at=loan.closed_at,
        )


class PostedAllocation(AllocationOut):
    """An installment's allocation and the status the collection left it in."""

    installment_status: InstallmentStatus


class CollectionPosted(BaseModel):
    """The 201 of a recorded collection: receipt, collection (with what a prepayment did to the
    schedule), allocation, the loan after it."""

    model_config = ANSWER
    receipt_number: str
    collection: CollectionOut
    allocation: list[PostedAllocation]
    loan: LoanBalances

    @classmethod
    def of(cls, result: CollectionResult) -> CollectionPosted:
        c = result.collection
        return cls(
            receipt_number=c.receipt_number,
            collection=CollectionOut.of(c, result.loan, result.allocations, result.revision),
            allocation=[
                PostedAllocation(
                    **AllocationOut.fields_of(a, i),
                    installment_status=result.installments[a.installment_number].status,
                )
                for a, i in result.allocations
            ],
            loan=LoanBalances.of(result.loan),
        )


class CollectionReversed(CollectionOut):
    """The reversed collection, and its loan rebuilt from the collections that remain."""

    loan: LoanBalances


class PreclosureQuote(BaseModel):
    """What paying the loan off on ``as_of`` costs, per component (collecting exactly ``total``
    that day closes it), and what it forgives."""

    model_config = ANSWER
    loan_id: uuid.UUID
    loan_number: str
    as_of: dt.date
    principal: Money
    overdue_principal: Money
    overdue_interest: Money
    accrued_interest: Money
    overdue_fees: Money
    upfront_fees: Money
    penalties: Money
    prepayment_penalty: Money
    total: Money
    advance_held: Money = Field(description="The advance held, which pays its part of the payoff")
    payable: Money = Field(description="What collecting closes the loan: total less advance_held")
    waived_interest: Money
    waived_fees: Money
    scheduled_remaining: Money

    @classmethod
    def of(cls, loan: Loan, quote: PayoffQuote, *, scheduled: Decimal) -> PreclosureQuote:
        o = quote.outstanding
        return cls(
            loan_id=loan.id,
            loan_number=loan.loan_number,
            as_of=o.as_of,
            principal=o.principal,
            overdue_principal=o.overdue_principal,
            overdue_interest=o.overdue_interest,
            accrued_interest=o.accrued_interest,
            overdue_fees=o.overdue_fees,
            upfront_fees=o.upfront_fees,
            penalties=o.penalties,
            prepayment_penalty=quote.prepayment_penalty,
            total=quote.total,
            advance_held=loan.advance_balance,
            payable=max(ZERO, quote.total - loan.advance_balance),
            waived_interest=sum((w.interest for w in quote.waived), ZERO),
            waived_fees=sum((w.fee for w in quote.waived), ZERO),
            scheduled_remaining=scheduled,
        )


class InstallmentPenalty(BaseModel):
    model_config = ANSWER
    installment_number: int
    due_date: dt.date
    days_overdue: int
    charged: Money
    paid: Money
    waived: Money
    owed: Money


class PenaltyCharge(BaseModel):
    model_config = ANSWER
    installment_number: int
    charged_on: dt.date
    days_overdue: int
    amount: Money
    total_after: Money


class LoanPenalties(BaseModel):
    """The loan's penalty rule, each installment's penalty and every charge made."""

    model_config = ANSWER
    loan_id: uuid.UUID
    loan_number: str
    rule: JsonObject | None
    outstanding_penalties: Money
    charged_total: Money
    installments: list[InstallmentPenalty]
    charges: list[PenaltyCharge]


class WaiverLine(BaseModel):
    model_config = ANSWER
    number: int
    amount: Money


class WaiverOut(BaseModel):
    model_config = ANSWER
    id: uuid.UUID
    loan_id: uuid.UUID
    component: WaiverComponent
    amount: Money
    reason: str
    waived_on: dt.date
    lines: list[WaiverLine]
    waived_by_id: uuid.UUID
    journal_entry_id: int | None
    created_at: Timestamp | None

    @classmethod
    def of(cls, w: LoanWaiver) -> WaiverOut:
        return cls(
            id=w.id,
            loan_id=w.loan_id,
            component=w.component,
            amount=w.amount,
            reason=w.reason,
            waived_on=w.waived_on,
            lines=[WaiverLine.model_validate(line) for line in w.lines],
            waived_by_id=w.waived_by_id,
            journal_entry_id=w.journal_entry_id,
            created_at=w.created_at,
        )


class WaiverPosted(BaseModel):
    model_config = ANSWER
    waiver: WaiverOut
    loan: LoanBalances


class LoanWaivers(BaseModel):
    model_config = ANSWER
    loan_id: uuid.UUID
    loan_number: str
    waivers: list[WaiverOut]


# --- the collection sheet --------------------------------------------------------------------


class SheetInstallment(BaseModel):
    """An installment due by the sheet's date and still owed: what it owes, per component."""

    model_config = ANSWER
    installment_number: int
    due_date: dt.date
    status: InstallmentStatus
    overdue: bool
    principal: Money
    interest: Money
    fee: Money
    penalty: Money
    amount: Money


class SheetLoan(BaseModel):
    model_config = ANSWER
    loan_id: uuid.UUID
    loan_number: str
    installment_amount: Money | None
    days_past_due: int
    overdue: Money
    due_today: Money
    advance: Money = Field(
        description="Held as an advance, which pays these dues at the close of business"
    )
    expected: Money = Field(description="What to collect: overdue + due_today − advance")
    installments: list[SheetInstallment]


class SheetCustomer(BaseModel):
    model_config = ANSWER
    customer_id: uuid.UUID
    name: str
    phone: str | None
    village: str | None
    agent_id: uuid.UUID | None
    agent_name: str | None
    loans: list[SheetLoan]
    expected: Money


class SheetGroup(BaseModel):
    """The customers of one village (the centre the agent visits)."""

    model_config = ANSWER
    village: str
    customers: list[SheetCustomer]
    loans: int
    expected: Money


class CollectionSheet(BaseModel):
    model_config = ANSWER
    date: dt.date
    branch_id: uuid.UUID | None
    agent_id: uuid.UUID | None
    agent_name: str | None
    groups: list[SheetGroup]
    customers: int
    loans: int
    expected: Money


class SheetLineResult(BaseModel):
    """One line of a posted sheet: 201 posted (``body``: the same 201 body
    `POST /api/collections` answers) or the line's own error (``body``: the error body)."""

    model_config = ANSWER
    index: int
    client_id: str | None
    loan_id: str | None
    status: int
    receipt_number: str | None
    replayed: bool
    duplicate_of: int | None
    body: JsonObject


class SheetPosted(BaseModel):
    model_config = ANSWER
    lines: list[SheetLineResult]
    posted: int
    replayed: int
    failed: int
    amount_posted: Money
