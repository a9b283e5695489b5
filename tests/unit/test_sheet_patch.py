"""A collection's line put into the kept sheet (`collections.sheet.sheet_text_patched`, D-223):
the line replaced or gone, its customer and village gone with their last line, every total made
again exactly, and the text as the API writes it; a loan not on the sheet is refused."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

from namma.collections.schemas import (
    CollectionSheet,
    SheetCustomer,
    SheetGroup,
    SheetInstallment,
    SheetLoan,
)
from namma.collections.sheet import sheet_text_patched
from namma.models import InstallmentStatus

D = Decimal
ON = dt.date(2026, 12, 8)


def _loan(number: str, expected: str) -> SheetLoan:
    amount = D(expected)
    return SheetLoan(
        loan_id=uuid.uuid5(uuid.NAMESPACE_URL, number),
        loan_number=number,
        installment_amount=amount,
        days_past_due=0,
        overdue=D("0.00"),
        due_today=amount,
        advance=D("0.00"),
        expected=amount,
        installments=[
            SheetInstallment(
                installment_number=3,
                due_date=ON,
                status=InstallmentStatus.DUE,
                overdue=False,
                principal=amount - D("10.00"),
                interest=D("10.00"),
                fee=D("0.00"),
                penalty=D("0.00"),
                amount=amount,
            )
        ],
    )


def _customer(name: str, village: str, *loans: SheetLoan) -> SheetCustomer:
    return SheetCustomer(
        customer_id=uuid.uuid5(uuid.NAMESPACE_URL, name),
        name=name,
        phone=None,
        village=village,
        agent_id=None,
        agent_name=None,
        loans=list(loans),
        expected=sum((loan.expected for loan in loans), D("0.00")),
    )


def _sheet(*customers: SheetCustomer) -> CollectionSheet:
    villages: dict[str, list[SheetCustomer]] = {}
    for person in customers:
        villages.setdefault(person.village or "", []).append(person)
    groups = [
        SheetGroup(
            village=village,
            customers=people,
            loans=sum(len(p.loans) for p in people),
            expected=sum((p.expected for p in people), D("0.00")),
        )
        for village, people in villages.items()
    ]
    return CollectionSheet(
        date=ON,
        branch_id=None,
        agent_id=None,
        agent_name=None,
        groups=groups,
        customers=sum(len(g.customers) for g in groups),
        loans=sum(g.loans for g in groups),
        expected=sum((g.expected for g in groups), D("0.00")),
    )


def _line(loan: SheetLoan) -> dict[str, Any]:
    return loan.model_dump(mode="json")


A1, A2, B1, C1 = (
    _loan("L-A1", "1000.10"),
    _loan("L-A2", "500.45"),
    _loan("L-B1", "250.00"),
    _loan("L-C1", "99.99"),
)
KEPT = _sheet(
    _customer("Anitha", "Hosur", A1, A2),
    _customer("Bhavya", "Hosur", B1),
    _customer("Chandra", "Kolar", C1),
)


def test_a_line_is_replaced_and_every_total_made_again() -> None:
    paid = _loan("L-A1", "400.10")  # 600.00 collected
    text = sheet_text_patched(KEPT.model_dump_json(), {str(A1.loan_id): _line(paid)})
    expected = _sheet(
        _customer("Anitha", "Hosur", paid, A2),
        _customer("Bhavya", "Hosur", B1),
        _customer("Chandra", "Kolar", C1),
    )
    assert text == expected.model_dump_json()  # as the API writes it, byte for byte
    sheet = CollectionSheet.model_validate_json(text)
    assert (sheet.groups[0].expected, sheet.expected) == (D("1150.55"), D("1250.54"))


def test_a_paid_line_goes_and_its_customer_and_village_with_their_last_line() -> None:
    lines = {str(A2.loan_id): None, str(C1.loan_id): None}
    text = sheet_text_patched(KEPT.model_dump_json(), lines)
    expected = _sheet(_customer("Anitha", "Hosur", A1), _customer("Bhavya", "Hosur", B1))
    assert text == expected.model_dump_json()
    sheet = CollectionSheet.model_validate_json(text)
    assert (sheet.customers, sheet.loans, sheet.expected) == (2, 2, D("1250.10"))


def test_a_loan_off_the_sheet_that_stays_off_changes_nothing() -> None:
    elsewhere = _loan("L-Z9", "10.00")
    text = sheet_text_patched(KEPT.model_dump_json(), {str(elsewhere.loan_id): None})
    assert text == KEPT.model_dump_json()


def test_a_loan_coming_onto_the_sheet_is_left_to_a_full_read() -> None:
    newcomer = _loan("L-Z9", "10.00")
    lines = {str(A1.loan_id): None, str(newcomer.loan_id): _line(newcomer)}
    assert sheet_text_patched(KEPT.model_dump_json(), lines) is None


def test_non_ascii_names_are_written_as_the_api_writes_them() -> None:
    kept = _sheet(_customer("ಅನಿತಾ", "ಹೊಸೂರು", A1))
    text = sheet_text_patched(kept.model_dump_json(), {str(A1.loan_id): _line(A1)})
    assert text == kept.model_dump_json() and "ಅನಿತಾ" in (text or "")
    assert json.loads(text or "")["groups"][0]["village"] == "ಹೊಸೂರು"
