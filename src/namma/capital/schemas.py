"""What `/api/capital/…` answers. Reversed rows are listed with ``status: "reversed"`` and their
reversal's fields; they count in no total."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Literal

from pydantic import Field

from namma.capital.service import Placed, installment_owed
from namma.kit.money import Money, Rate
from namma.kit.schemas import ApiModel, Timestamp, from_row
from namma.models import (
    Borrowing,
    BorrowingInstallment,
    BorrowingRepayment,
    BorrowingStatus,
    CapitalMethod,
    Investment,
)

Standing = Literal["standing", "reversed"]


class InvestmentOut(ApiModel):
    id: uuid.UUID
    amount: Money
    source: str
    invested_on: dt.date
    method: CapitalMethod
    reference: str | None
    description: str | None
    journal_entry_id: int
    created_by_id: uuid.UUID
    created_at: Timestamp
    status: Standing
    reversed_at: Timestamp | None
    reversed_by_id: uuid.UUID | None
    reversal_reason: str | None
    reversal_entry_id: int | None = Field(description="The mirror journal entry")

    @classmethod
    def of(cls, i: Investment) -> InvestmentOut:
        return from_row(cls, i, status=_status(i))


class InvestmentList(ApiModel):
    items: list[InvestmentOut] = Field(description="Newest first, reversed ones included")
    count: int = Field(description="Standing investments")
    total: Money = Field(description="Σ standing investments: own capital")


class BorrowingOut(ApiModel):
    id: uuid.UUID
    lender_name: str
    lender_contact: str | None
    principal: Money
    annual_rate: Rate
    installments: int
    terms: dict[str, Any] = Field(description="frequency, every, interest_method, amortization")
    received_on: dt.date
    first_due_on: dt.date | None
    method: CapitalMethod
    reference: str | None
    remarks: str | None
    status: BorrowingStatus
    installment_amount: Money
    total_interest: Money
    outstanding_principal: Money
    outstanding_interest: Money
    total_repaid: Money
    closed_at: Timestamp | None
    journal_entry_id: int
    created_at: Timestamp
    reversed_at: Timestamp | None
    reversed_by_id: uuid.UUID | None
    reversal_reason: str | None
    reversal_entry_id: int | None = Field(description="The mirror journal entry")

    @classmethod
    def of(cls, b: Borrowing) -> BorrowingOut:
        return from_row(cls, b)


class BorrowingInstallmentOut(ApiModel):
    number: int
    due_date: dt.date
    principal_due: Money
    interest_due: Money
    total_due: Money
    balance_after: Money
    principal_paid: Money
    interest_paid: Money
    interest_waived: Money
    owed: Money
    paid_on: dt.date | None

    @classmethod
    def of(cls, r: BorrowingInstallment) -> BorrowingInstallmentOut:
        principal_owed, interest_owed = installment_owed(r)
        return from_row(
            cls, r, total_due=r.principal_due + r.interest_due, owed=principal_owed + interest_owed
        )


class RepaymentOut(ApiModel):
    id: uuid.UUID
    borrowing_id: uuid.UUID
    paid_on: dt.date
    amount: Money
    principal_paid: Money
    interest_paid: Money
    payoff: bool = Field(description="It settled the borrowing")
    method: CapitalMethod
    reference: str | None
    journal_entry_id: int
    created_at: Timestamp
    status: Standing
    reversed_at: Timestamp | None
    reversed_by_id: uuid.UUID | None
    reversal_reason: str | None
    reversal_entry_id: int | None = Field(description="The mirror journal entry")

    @classmethod
    def of(cls, r: BorrowingRepayment) -> RepaymentOut:
        return from_row(cls, r, status=_status(r))


class BorrowingList(ApiModel):
    items: list[BorrowingOut] = Field(description="Newest first")
    outstanding_principal: Money = Field(description="Σ principal owed on active borrowings")


class BorrowingDetailOut(BorrowingOut):
    schedule: list[BorrowingInstallmentOut]
    repayments: list[RepaymentOut] = Field(description="In the order they were applied")


class PlacedOut(ApiModel):
    installment_number: int
    principal: Money
    interest: Money
    interest_waived: Money

    @classmethod
    def of(cls, p: Placed) -> PlacedOut:
        return cls(
            installment_number=p.number,
            principal=p.principal,
            interest=p.interest,
            interest_waived=p.interest_waived,
        )


class RepaymentRecordedOut(ApiModel):
    repayment: RepaymentOut
    allocation: list[PlacedOut] = Field(description="What the repayment paid, per installment")
    payoff_before: Money = Field(description="The payoff the amount was checked against")
    borrowing: BorrowingOut


class RepaymentReversedOut(ApiModel):
    repayment: RepaymentOut
    reallocated: list[uuid.UUID] = Field(
        description="Later repayments whose split changed when the borrowing was rebuilt"
    )
    borrowing: BorrowingDetailOut


class CapitalSummaryOut(ApiModel):
    own_capital: Money
    borrowings_outstanding: Money
    total_capital: Money
    disbursed_outstanding: Money = Field(description="Σ outstanding principal of active loans")
    utilisation_percent: Rate | None = Field(
        description="disbursed ÷ total capital × 100; null when there is no capital"
    )
    surplus: Money = Field(description="Negative: a deficit")
    position: Literal["surplus", "deficit"]


def _status(row: Investment | BorrowingRepayment) -> Standing:
    return "reversed" if row.reversed_at else "standing"
