"""Charges (fees) at disbursement and with installments.

Percentages are rounded to 0.01 half-up (`rounding.FEE_ROUNDING`).
"""

from __future__ import annotations

from decimal import Decimal

from namma.finance.rounding import ZERO, percent_of
from namma.finance.terms import Fee, FeeBasis, FeeTiming, LoanTerms


def disbursement_fee_amount(fee: Fee, principal: Decimal) -> Decimal:
    """The amount of a disbursement-time fee: flat, or a percent of the loan principal."""
    if fee.basis is FeeBasis.FLAT:
        return fee.value
    return percent_of(principal, fee.value)


def deducted_fees(terms: LoanTerms) -> Decimal:
    """Fees deducted from the amount paid out at disbursement."""
    return sum(
        (
            disbursement_fee_amount(f, terms.principal)
            for f in terms.fees
            if f.timing is FeeTiming.DISBURSEMENT
        ),
        ZERO,
    )


def first_installment_fees(terms: LoanTerms) -> Decimal:
    """Fees charged at disbursement but collected with the first installment."""
    return sum(
        (
            disbursement_fee_amount(f, terms.principal)
            for f in terms.fees
            if f.timing is FeeTiming.FIRST_INSTALLMENT
        ),
        ZERO,
    )


def installment_fees(fees: tuple[Fee, ...], *, principal: Decimal, interest: Decimal) -> Decimal:
    """Per-installment fees for one installment with this principal and interest."""
    total = ZERO
    for fee in fees:
        if fee.basis is FeeBasis.FLAT:
            total += fee.value
        elif fee.basis is FeeBasis.PERCENT_OF_PRINCIPAL:
            total += percent_of(principal, fee.value)
        else:  # FeeBasis.PERCENT_OF_TOTAL (validated in Fee.problems)
            total += percent_of(principal + interest, fee.value)
    return total
