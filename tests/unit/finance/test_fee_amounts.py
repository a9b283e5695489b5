"""What each fee comes to over a loan (the KFS's charges)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from namma.finance import Fee, LoanTerms, generate_schedule, schedule_fee_amounts


def test_fee_amounts_over_the_loan() -> None:
    terms = LoanTerms(
        principal=Decimal("12000"),
        annual_rate=Decimal("0"),
        installments=12,
        fees=(
            Fee.parse("processing:disbursement:percent:2"),
            Fee.parse("stamp:first-installment:flat:100"),
            Fee.parse("service:installment:flat:10"),
            Fee.parse("insurance:installment:percent-of-principal:1"),
        ),
    )
    schedule = generate_schedule(terms, disbursed_on=dt.date(2026, 1, 1))
    amounts = {fee.name: amount for fee, amount in schedule_fee_amounts(schedule)}
    assert amounts == {
        "processing": Decimal("240.00"),
        "stamp": Decimal("100"),
        "service": Decimal("120"),
        "insurance": Decimal("120.00"),  # 1 % of 1000 principal in each of 12 rows
    }
    # Everything charged with installments is in the rows' fees.
    assert schedule.total_fees == amounts["stamp"] + amounts["service"] + amounts["insurance"]


def test_monthly_repayment_of_weekly_and_monthly_loans() -> None:
    from namma.finance import Frequency, monthly_repayment

    weekly = generate_schedule(
        LoanTerms(
            principal=Decimal("52000"),
            annual_rate=Decimal("0"),
            installments=52,
            frequency=Frequency.WEEKLY,
        ),
        disbursed_on=dt.date(2026, 1, 1),
    )
    # 1000 a week is 52,000 a year: 4333.33 a month.
    assert monthly_repayment(weekly) == Decimal("4333.33")
    monthly = generate_schedule(
        LoanTerms(principal=Decimal("100000"), annual_rate=Decimal("12"), installments=12),
        disbursed_on=dt.date(2026, 1, 1),
    )
    assert monthly_repayment(monthly) == Decimal("8884.88")
