"""The words pages show for the system's codes (a status, a role, a frequency…), marked for the
catalogue and translated where shown: ``{{ _(labels.loan_status[loan.status]) }}``.

A code without a label shows as itself (a new status must not break a page).
"""

from __future__ import annotations

from collections import defaultdict

from namma.web.i18n import N_


class _Labels(defaultdict[str, str]):
    def __missing__(self, key: str) -> str:
        return key


def _labels(values: dict[str, str]) -> _Labels:
    out = _Labels()
    out.update(values)
    return out


role = _labels(
    {
        "admin": N_("Admin"),
        "manager": N_("Branch manager"),
        "agent": N_("Field agent"),
        "customer": N_("Customer"),
    }
)
loan_status = _labels(
    {
        "applied": N_("Applied"),
        "approved": N_("Approved"),
        "rejected": N_("Rejected"),
        "withdrawn": N_("Withdrawn"),
        "active": N_("Active"),
        "closed": N_("Closed"),
        "preclosed": N_("Paid off early"),
        "refinanced": N_("Replaced by a top-up"),
        "written_off": N_("Written off"),
    }
)
installment_status = _labels(
    {
        "due": N_("Due"),
        "partly_paid": N_("Partly paid"),
        "paid": N_("Paid"),
        "overdue": N_("Overdue"),
        "upcoming": N_("Upcoming"),
    }
)
frequency = _labels(
    {
        "daily": N_("Daily"),
        "weekly": N_("Weekly"),
        "fortnightly": N_("Fortnightly"),
        "monthly": N_("Monthly"),
        "quarterly": N_("Quarterly"),
        "half-yearly": N_("Half-yearly"),
        "yearly": N_("Yearly"),
        "days": N_("Every few days"),
    }
)
method = _labels(
    {
        "cash": N_("Cash"),
        "upi": N_("UPI"),
        "cheque": N_("Cheque"),
        "bank_transfer": N_("Bank transfer"),
    }
)
collection_status = _labels({"posted": N_("Received"), "reversed": N_("Reversed")})
document_kind = _labels({"statement": N_("Statement"), "receipt": N_("Receipt")})
document_status = _labels(
    {"pending": N_("Being made"), "ready": N_("Ready"), "failed": N_("Could not be made")}
)
charge_timing = _labels(
    {
        "disbursement": N_("At disbursement (deducted)"),
        "first-installment": N_("With the first installment"),
        "installment": N_("With every installment"),
    }
)
interest_method = _labels({"declining": N_("Reducing balance"), "flat": N_("Flat rate")})
# --- the back office (issue 18: branches, staff, customers, products, capital) ------------------
kyc_status = _labels(
    {"pending": N_("KYC pending"), "verified": N_("KYC verified"), "rejected": N_("KYC rejected")}
)
kyc_badge = _labels({"pending": "pending", "verified": "paid", "rejected": "rejected"})
customer_status = _labels({"active": N_("Active"), "closed": N_("Closed")})
kyc_document = _labels(
    {
        "aadhaar": N_("Aadhaar"),
        "pan": N_("PAN card"),
        "voter_id": N_("Voter ID"),
        "passport": N_("Passport"),
        "driving_licence": N_("Driving licence"),
        "ration_card": N_("Ration card"),
    }
)
amortization = _labels(
    {
        "equal-installments": N_("Equal installments (EMI)"),
        "equal-principal": N_("Equal principal"),
        "interest-only": N_("Interest only, principal at the end"),
        "bullet": N_("Everything at the end"),
    }
)
# A product's excess policy: what money beyond the dues does (D-163).
excess_policy = _labels(
    {
        "advance": N_("Held as an advance, applied as installments fall due"),
        "reduce-term": N_("Prepays principal: the same installment, the loan ends sooner"),
        "reduce-installment": N_("Prepays principal: the same installments, each lower"),
        "refuse": N_("Refused: collect at most what is due"),
    }
)
# A product's schedule convention: whose rules work out the interest and the installment (D-180).
schedule_convention = _labels(
    {
        "namma": N_("Ours: a rate per period, the installment at that rate"),
        "fineract-progressive": N_(
            "Apache Fineract's progressive: interest by each period's days, the installment "
            "over those periods"
        ),
    }
)
due_on_holiday = _labels(
    {
        "next-working-day": N_("Moves to the next working day"),
        "previous-working-day": N_("Moves to the working day before"),
        "next-meeting-day": N_(
            "Moves to the next meeting (group loans): collected with the next installment"
        ),
        "same-day": N_("Stays on the holiday"),
        "extend-term": N_("Skipped: it and the later installments move on a period"),
    }
)
moratorium_interest = _labels(
    {
        "carry": N_("Carried: paid with the first installment after it"),
        "capitalise": N_("Capitalised: added to the principal"),
        "waive": N_("Waived: not charged"),
    }
)
# When a product's interest becomes income (D-200).
interest_accounting = _labels(
    {
        "cash": N_("Cash basis: interest is income when collected"),
        "accrual": N_("Accrual basis: interest is income as it is earned, day by day"),
    }
)
capital_method = _labels({"bank": N_("Bank"), "cash": N_("Cash at head office")})
borrowing_status = _labels(
    {"active": N_("Active"), "closed": N_("Repaid"), "reversed": N_("Reversed")}
)
waiver_component = _labels(
    {"interest": N_("Interest"), "fee": N_("Fees"), "penalty": N_("Penalties")}
)
handover_status = _labels(
    {"pending": N_("Waiting to be counted"), "received": N_("Received"), "reversed": N_("Reversed")}
)
handover_result = _labels({"exact": N_("Exact"), "short": N_("Short"), "excess": N_("Excess")})
provision_class = _labels(
    {
        "standard": N_("Standard"),
        "sub_standard": N_("Sub-standard"),
        "doubtful": N_("Doubtful"),
        "loss": N_("Loss"),
    }
)
