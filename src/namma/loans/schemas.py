"""The answers of `/api/loans`: typed, so the API reference describes every 2xx body. Money is
a decimal string with two places (`Money`), moments as ``isoformat`` writes them."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import Row

from namma.finance import Schedule
from namma.finance.owed import due_total
from namma.kit.apitypes import ANSWER, DecimalText, JsonObject, Timestamp
from namma.kit.money import Money
from namma.models import (
    DisbursementMethod,
    InstallmentStatus,
    Loan,
    LoanCharge,
    LoanInstallment,
    LoanScheduleRevision,
    LoanStatus,
)

# A row of a loan read selected by `namma.loans.queries` (Core, no ORM object): its columns are
# named as the `Loan` attributes the answers read.
LoanRow = Row[Any]


class LoanCustomer(BaseModel):
    model_config = ANSWER
    id: uuid.UUID
    name: str | None


class LoanOut(BaseModel):
    """A loan and its balances."""

    model_config = ANSWER
    id: uuid.UUID
    loan_number: str
    status: LoanStatus
    customer: LoanCustomer
    branch_id: uuid.UUID
    product_version_id: uuid.UUID
    principal: Money
    annual_rate: DecimalText
    installments: int
    frequency: str | None
    purpose: str | None
    applied_by_id: uuid.UUID
    applied_at: Timestamp | None
    decided_by_id: uuid.UUID | None
    decided_at: Timestamp | None
    rejection_reason: str | None
    disbursed_on: dt.date | None
    disbursement_method: DisbursementMethod | None
    disbursement_reference: str | None
    net_disbursed: Money | None
    installment_amount: Money | None
    total_interest: Money | None
    apr_percent: DecimalText | None
    schedule_status: str  # "generated" once disbursed (with its schedule), "none" before
    outstanding_principal: Money
    outstanding_interest: Money
    outstanding_fees: Money
    outstanding_penalties: Money
    total_collected: Money
    advance_balance: Money  # held beyond the dues, applied as installments fall due
    interest_receivable: Money = Field(
        description="Accrual basis: interest earned and not yet collected, recognised as income "
        "(0 on cash basis and while the loan is non-performing)"
    )
    interest_suspense: Money = Field(
        description="Accrual basis, a non-performing loan: interest earned and not collected, "
        "held in suspense — owed but not income until collected (D-215)"
    )
    next_due_on: dt.date | None
    days_past_due: int
    write_off_reason: str | None
    refinances_id: uuid.UUID | None
    # The day of the latest approved restructuring (RBI: a restructured standard asset is
    # downgraded; asset classification and provisioning read it) and its reason.
    restructured_on: dt.date | None
    restructure_reason: str | None

    @classmethod
    def fields_of(cls, loan: Loan | LoanRow, customer_name: str | None = None) -> dict[str, Any]:
        """The fields of ``loan``: the mapped object (a command's answer) or a row of
        `LOAN_ROW_COLUMNS` (the reads of `namma.loans.queries`), which has the same names."""
        return {
            "id": loan.id,
            "loan_number": loan.loan_number,
            "status": loan.status,
            "customer": LoanCustomer(id=loan.customer_id, name=customer_name),
            "branch_id": loan.branch_id,
            "product_version_id": loan.product_version_id,
            "principal": loan.principal,
            "annual_rate": loan.annual_rate,
            "installments": loan.installments,
            "frequency": loan.frequency,
            "purpose": loan.purpose,
            "applied_by_id": loan.applied_by_id,
            "applied_at": loan.applied_at,
            "decided_by_id": loan.decided_by_id,
            "decided_at": loan.decided_at,
            "rejection_reason": loan.rejection_reason,
            "disbursed_on": loan.disbursed_on,
            "disbursement_method": loan.disbursement_method,
            "disbursement_reference": loan.disbursement_reference,
            "net_disbursed": loan.net_disbursed,
            "installment_amount": loan.installment_amount,
            "total_interest": loan.total_interest,
            "apr_percent": loan.apr_percent,
            "schedule_status": "generated" if loan.disbursed_on is not None else "none",
            "outstanding_principal": loan.outstanding_principal,
            "outstanding_interest": loan.outstanding_interest,
            "outstanding_fees": loan.outstanding_fees,
            "outstanding_penalties": loan.outstanding_penalties,
            "total_collected": loan.total_collected,
            "advance_balance": loan.advance_balance,
            "interest_receivable": loan.interest_receivable,
            "interest_suspense": loan.interest_suspense,
            "next_due_on": loan.next_due_on,
            "days_past_due": loan.days_past_due,
            "write_off_reason": loan.write_off_reason,
            "refinances_id": loan.refinances_id,
            "restructured_on": loan.restructured_on,
            "restructure_reason": loan.restructure_reason,
        }

    @classmethod
    def of(cls, loan: Loan | LoanRow, customer_name: str | None = None) -> LoanOut:
        return cls(**cls.fields_of(loan, customer_name))


class LoanList(BaseModel):
    model_config = ANSWER
    loans: list[LoanOut]
    next: str | None  # the cursor for `after`


class ChargeOut(BaseModel):
    model_config = ANSWER
    name: str
    timing: str
    basis: str
    value: DecimalText
    amount: Money | None

    @classmethod
    def of(cls, c: LoanCharge | Row[Any]) -> ChargeOut:
        return cls(name=c.name, timing=c.timing, basis=c.basis, value=c.value, amount=c.amount)


class LoanDetail(LoanOut):
    """A loan with its charges."""

    charges: list[ChargeOut]


class InstallmentOut(BaseModel):
    """A written installment: what it asks and what was paid on it."""

    model_config = ANSWER
    number: int
    due_date: dt.date
    principal: Money
    interest: Money
    fees: Money
    penalties: Money
    total: Money
    balance: Money
    principal_paid: Money
    interest_paid: Money
    fees_paid: Money
    penalties_paid: Money
    status: InstallmentStatus

    @classmethod
    def of(cls, i: LoanInstallment | Row[Any]) -> InstallmentOut:
        return cls(
            number=i.number,
            due_date=i.due_date,
            principal=i.principal_due,
            interest=i.interest_due,
            fees=i.fee_due,
            penalties=i.penalty_due,
            total=due_total(i),
            balance=i.balance_after,
            principal_paid=i.principal_paid,
            interest_paid=i.interest_paid,
            fees_paid=i.fee_paid,
            penalties_paid=i.penalty_paid,
            status=i.status,
        )


class ProjectedInstallment(BaseModel):
    """A row of a schedule not written (yet): before disbursement, and in the KFS."""

    model_config = ANSWER
    number: int
    due_date: dt.date
    principal: Money
    interest: Money
    fees: Money
    total: Money
    balance: Money

    @classmethod
    def rows(cls, schedule: Schedule) -> list[ProjectedInstallment]:
        return [
            cls(
                number=r.number,
                due_date=r.due_date,
                principal=r.principal,
                interest=r.interest,
                fees=r.fees,
                total=r.total,
                balance=r.balance,
            )
            for r in schedule.rows
        ]


class Rescheduled(BaseModel):
    """What a prepayment did to the installments still to fall due (the product's excess
    policy): reduce-term keeps the installment and shortens the loan, reduce-installment keeps
    the number of installments and lowers each."""

    model_config = ANSWER
    policy: Literal["reduce-term", "reduce-installment"]
    prepaid_principal: Money
    installments_before: int
    installments_after: int
    installment_before: Money
    installment_after: Money

    @classmethod
    def of(cls, revision: LoanScheduleRevision | None) -> Rescheduled | None:
        if revision is None:
            return None
        return cls(
            policy=revision.policy,  # a check constraint holds it to the two
            prepaid_principal=revision.prepaid_principal,
            installments_before=revision.installments_before,
            installments_after=revision.installments_after,
            installment_before=revision.installment_before,
            installment_after=revision.installment_after,
        )


class ScheduleRevisionOut(Rescheduled):
    """A posted collection's prepayment that rewrote the installments still to fall due (the
    product's excess policy): reduce-term kept the installment and shortened the loan,
    reduce-installment kept the number of installments and lowered each."""

    collection_id: uuid.UUID
    receipt_number: str
    collected_on: dt.date


class ScheduleOut(BaseModel):
    """The loan's installments; ``projected``: computed as if disbursed today (not written);
    ``rescheduled``: the prepayments that rewrote them, oldest first."""

    model_config = ANSWER
    projected: bool
    installments: list[InstallmentOut] | list[ProjectedInstallment]
    rescheduled: list[ScheduleRevisionOut] = Field(default_factory=list)


class DisbursementWarning(BaseModel):
    """Something the disbursement did that the manager should look at (it was done)."""

    model_config = ANSWER
    code: str = Field(examples=["account_below_zero"])
    message: str
    account: str = Field(description="branch_cash or bank", examples=["branch_cash"])
    balance_after: Money


class LoanDisbursed(LoanOut):
    """A disbursed loan with its schedule, written in the same transaction; ``warnings``: the
    account it was paid from is below zero afterwards (setting ``disbursement_below_zero``)."""

    schedule: list[InstallmentOut]
    warnings: list[DisbursementWarning] = Field(default_factory=list)

    @classmethod
    def with_schedule(
        cls,
        loan: Loan,
        installments: Sequence[LoanInstallment],
        warnings: Sequence[DisbursementWarning] = (),
    ) -> LoanDisbursed:
        return cls(
            **cls.fields_of(loan),
            schedule=[InstallmentOut.of(i) for i in installments],
            warnings=list(warnings),
        )


class KfsLender(BaseModel):
    model_config = ANSWER
    name: str
    branch: str


class KfsBorrower(BaseModel):
    model_config = ANSWER
    id: uuid.UUID
    name: str
    phone: str | None


class KfsProduct(BaseModel):
    model_config = ANSWER
    code: str
    name: str
    version: int


class KfsCharge(BaseModel):
    model_config = ANSWER
    name: str
    when: str
    amount: Money


class KeyFactsStatement(BaseModel):
    """The Key Facts Statement (RBI)."""

    model_config = ANSWER
    lender: KfsLender
    borrower: KfsBorrower
    loan_number: str
    product: KfsProduct
    sanctioned_amount: Money
    charges: list[KfsCharge]
    deducted_at_disbursement: Money
    net_disbursed: Money
    annual_rate_percent: DecimalText
    interest_method: str
    apr_percent: DecimalText
    installments: int
    frequency: str
    installments_per_year: DecimalText
    installment_amount: Money
    total_interest: Money
    total_fees_in_installments: Money
    total_repayable: Money
    first_due_on: dt.date
    maturity_on: dt.date
    projected: bool
    penal_charges: JsonObject | None
    prepayment: str
    grievance_contact: str
    schedule: list[ProjectedInstallment]
