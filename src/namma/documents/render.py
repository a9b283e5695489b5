"""Receipts and statements as PDF: pure functions from data to bytes (no database, no clock).

In the customer's language (``ReceiptData.language``, ``StatementData.language``):

- English: fpdf2 with the PDF core fonts (Helvetica), nothing embedded. Those fonts cover Latin-1
  only, so the rupee sign is written "Rs." and text outside Latin-1 (a name in Kannada script,
  say) is shown with "?" for each character it cannot draw.
- Kannada: the labels from the pages' catalogue (``namma.web.i18n``), drawn with Noto Sans
  Kannada + Latin (``fonts/``, SIL OFL) and shaped by HarfBuzz (``uharfbuzz``); amounts with
  ₹ and dates with Kannada month names. The amount in words stays in English words.

Amounts are Decimals, shown with Indian digit grouping (``Rs. 1,23,456.50``, ``₹1,23,456.50``).
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from namma.kit.clock import INDIA
from namma.web import i18n
from namma.web.i18n import N_

ZERO = Decimal("0.00")
CENT = Decimal("0.01")

# --- formatting ------------------------------------------------------------------------------


def group_indian(amount: Decimal) -> str:
    """``123456.5`` → ``1,23,456.50``: the last three digits, then groups of two."""
    value = amount.quantize(CENT, rounding=ROUND_HALF_UP)
    sign = "-" if value < 0 else ""
    whole, _, paise = f"{abs(value):.2f}".partition(".")
    head, tail = whole[:-3], whole[-3:]
    groups: list[str] = []
    while len(head) > 2:
        groups.insert(0, head[-2:])
        head = head[:-2]
    if head:
        groups.insert(0, head)
    return sign + ",".join([*groups, tail]) + "." + paise


def rupees(amount: Decimal) -> str:
    """``Rs. 1,23,456.50`` (core PDF fonts have no ₹ glyph)."""
    text = group_indian(amount)
    return f"-Rs. {text[1:]}" if text.startswith("-") else f"Rs. {text}"


def day(value: dt.date) -> str:
    """``05 Oct 2026``: no day/month order to misread."""
    return value.strftime("%d %b %Y")


def month_title(start: dt.date) -> str:
    return start.strftime("%B %Y")


_ONES = [
    "Zero",
    "One",
    "Two",
    "Three",
    "Four",
    "Five",
    "Six",
    "Seven",
    "Eight",
    "Nine",
    "Ten",
    "Eleven",
    "Twelve",
    "Thirteen",
    "Fourteen",
    "Fifteen",
    "Sixteen",
    "Seventeen",
    "Eighteen",
    "Nineteen",
]
_TENS = ["_", "_", "Twenty", "Thirty", "Forty", "Fifty", "Sixty", "Seventy", "Eighty", "Ninety"]


def _below_hundred(n: int) -> str:
    if n < 20:
        return _ONES[n]
    return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])


def _words(n: int) -> str:
    """A whole number in words, Indian system (thousand, lakh, crore)."""
    if n == 0:
        return "Zero"
    parts: list[str] = []
    crore, n = divmod(n, 10_000_000)
    if crore:
        parts.append(_words(crore) + " Crore")
    lakh, n = divmod(n, 100_000)
    if lakh:
        parts.append(_below_hundred(lakh) + " Lakh")
    thousand, n = divmod(n, 1000)
    if thousand:
        parts.append(_below_hundred(thousand) + " Thousand")
    hundred, n = divmod(n, 100)
    if hundred:
        parts.append(_ONES[hundred] + " Hundred")
    if n:
        parts.append(_below_hundred(n))
    return " ".join(parts)


def amount_in_words(amount: Decimal) -> str:
    """``Rupees One Thousand Two Hundred Thirty Four and Fifty Paise Only``."""
    value = abs(amount.quantize(CENT, rounding=ROUND_HALF_UP))
    rupee_part = int(value)
    paise = int((value - rupee_part) * 100)
    text = "Rupees " + _words(rupee_part)
    if paise:
        text += " and " + _below_hundred(paise) + " Paise"
    return text + " Only"


_PUNCTUATION = str.maketrans(
    {
        "‘": "'",
        "’": "'",
        "“": '"',
        "”": '"',
        "–": "-",
        "—": "-",
        "…": "...",
        "₹": "Rs.",
        "\u00a0": " ",
    }
)


def pdf_text(value: object) -> str:
    """Text the core fonts can draw: Latin-1, anything else as "?"."""
    text = unicodedata.normalize("NFKC", str(value)).translate(_PUNCTUATION)
    return text.encode("latin-1", errors="replace").decode("latin-1")


# --- the data ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Parts:
    """Money split by component."""

    principal: Decimal = ZERO
    interest: Decimal = ZERO
    fee: Decimal = ZERO
    penalty: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.principal + self.interest + self.fee + self.penalty

    def __add__(self, other: Parts) -> Parts:
        return Parts(
            self.principal + other.principal,
            self.interest + other.interest,
            self.fee + other.fee,
            self.penalty + other.penalty,
        )


def parts_sum(items: Iterable[Parts]) -> Parts:
    total = Parts()
    for item in items:
        total = total + item
    return total


@dataclass(frozen=True)
class Letterhead:
    lender_name: str
    branch_name: str
    branch_code: str
    grievance_contact: str
    generated_at: dt.datetime


@dataclass(frozen=True)
class ReceiptLine:
    """What the collection paid on one installment."""

    number: int
    due_date: dt.date
    parts: Parts


@dataclass(frozen=True)
class ReceiptReschedule:
    """What the collection's prepaid principal did to the schedule (excess policy)."""

    policy: str  # reduce-term or reduce-installment
    prepaid: Decimal
    installments_after: int
    installment_after: Decimal


@dataclass(frozen=True)
class ReceiptData:
    head: Letterhead
    receipt_number: str
    collected_on: dt.date
    customer_name: str
    loan_number: str
    amount: Decimal
    method: str
    reference: str | None
    parts: Parts
    lines: Sequence[ReceiptLine]
    collected_by: str
    # Principal still owed once this collection (and every one applied before it) is counted;
    # None when it does not apply (reversed, or money recovered on a written-off loan).
    outstanding_principal_after: Decimal | None
    preclosure: bool = False
    waived: Decimal = ZERO  # interest/fees/penalties waived by a pre-closure
    # Held as an advance for the installments still to fall due (negative: the advance a
    # pre-closure used).
    advance: Decimal = ZERO
    # Principal prepaid beyond the dues, and what it did to the schedule (None: nothing).
    rescheduled: ReceiptReschedule | None = None
    reversed_on: dt.date | None = None
    reversal_reason: str | None = None
    note: str | None = None
    language: str = "en"  # the customer's: "en" or "kn"

    @property
    def reversed(self) -> bool:
        return self.reversed_on is not None


@dataclass(frozen=True)
class StatementCollection:
    collected_on: dt.date
    receipt_number: str
    method: str
    amount: Decimal
    parts: Parts
    reversed: bool = False
    reversal_reason: str | None = None
    advance: Decimal = ZERO  # held as an advance (negative: used by a pre-closure)


@dataclass(frozen=True)
class StatementWaiver:
    on: dt.date
    what: str
    amount: Decimal
    reason: str


@dataclass(frozen=True)
class StatementInstallment:
    number: int
    due_date: dt.date
    due: Decimal
    paid: Decimal
    waived: Decimal
    status: str


@dataclass(frozen=True)
class StatementLoan:
    loan_number: str
    product_name: str
    status: str
    disbursed_on: dt.date | None
    principal: Decimal
    # Principal outstanding at the end of the day before the period, and at its last day.
    opening: Decimal
    disbursed: Decimal
    principal_repaid: Decimal
    # Principal taken off the books in the period other than by repayment (written off, or
    # paid off by a top-up loan), and what to call it.
    settled: Decimal
    settled_label: str | None
    closing: Decimal
    collections: Sequence[StatementCollection] = field(default_factory=tuple)
    waivers: Sequence[StatementWaiver] = field(default_factory=tuple)
    installments_due: Sequence[StatementInstallment] = field(default_factory=tuple)
    next_due_on: dt.date | None = None
    next_due_amount: Decimal | None = None

    @property
    def counted(self) -> list[StatementCollection]:
        """The collections that stand (reversed ones are listed but not counted)."""
        return [c for c in self.collections if not c.reversed]

    @property
    def collected(self) -> Parts:
        return parts_sum(c.parts for c in self.counted)

    @property
    def collected_amount(self) -> Decimal:
        """Everything received (a recovery on a written-off loan is in no component)."""
        return sum((c.amount for c in self.counted), ZERO)

    @property
    def collected_advance(self) -> Decimal:
        """What the collections held as an advance (less what pre-closures used)."""
        return sum((c.advance for c in self.counted), ZERO)

    @property
    def waived(self) -> Decimal:
        return sum((w.amount for w in self.waivers), ZERO)


@dataclass(frozen=True)
class StatementData:
    head: Letterhead
    customer_name: str
    customer_village: str | None
    period_start: dt.date
    period_end: dt.date
    loans: Sequence[StatementLoan]
    language: str = "en"  # the customer's: "en" or "kn"


@dataclass(frozen=True)
class StatementTotals:
    opening: Decimal
    disbursed: Decimal
    collected_amount: Decimal
    collected: Parts
    waived: Decimal
    settled: Decimal
    closing: Decimal
    advance: Decimal = ZERO  # of the amount collected, held as an advance


def statement_totals(data: StatementData) -> StatementTotals:
    return StatementTotals(
        opening=sum((loan.opening for loan in data.loans), ZERO),
        disbursed=sum((loan.disbursed for loan in data.loans), ZERO),
        collected_amount=sum((loan.collected_amount for loan in data.loans), ZERO),
        collected=parts_sum(loan.collected for loan in data.loans),
        waived=sum((loan.waived for loan in data.loans), ZERO),
        settled=sum((loan.settled for loan in data.loans), ZERO),
        closing=sum((loan.closing for loan in data.loans), ZERO),
        advance=sum((loan.collected_advance for loan in data.loans), ZERO),
    )


# --- drawing -------------------------------------------------------------------------------

WIDTH = 180.0  # A4 less 15 mm margins
BOLD = FontFace(emphasis="BOLD")
HEADING_FILL = FontFace(emphasis="BOLD", fill_color=(230, 230, 230))
RED = (180, 0, 0)
FONT_DIR = Path(__file__).resolve().parent / "fonts"
KANNADA_FAMILY = "NotoSansKannadaLatin"
# Labels made by the queries (``documents.queries``), translated here.
DATA_LABELS = (N_("Written off"), N_("Paid by top-up"), N_("Interest"), N_("Fees"))


class _Pdf(FPDF):
    def __init__(self, head: Letterhead, title: str, language: str = "en") -> None:
        super().__init__(orientation="portrait", unit="mm", format="A4")
        self.head = head
        self.kannada = language == "kn"
        self.family = "Helvetica"
        self.catalogue = i18n.translations("kn" if self.kannada else "en")
        if self.kannada:
            self.add_font(KANNADA_FAMILY, "", FONT_DIR / f"{KANNADA_FAMILY}-Regular.ttf")
            self.add_font(KANNADA_FAMILY, "B", FONT_DIR / f"{KANNADA_FAMILY}-Bold.ttf")
            self.set_text_shaping(True)
            self.family = KANNADA_FAMILY
        self.doc_title = self.t(title)
        title = self.doc_title
        self.set_margins(15, 15, 15)
        self.set_auto_page_break(auto=True, margin=18)
        self.set_creation_date(head.generated_at)
        self.set_title(title)
        self.set_author(pdf_text(head.lender_name))
        self.set_creator("Namma Finance")

    def t(self, message: str) -> str:
        """``message`` in the document's language."""
        return self.catalogue.gettext(message)

    def txt(self, value: object) -> str:
        """Text the document's font can draw."""
        return unicodedata.normalize("NFC", str(value)) if self.kannada else pdf_text(value)

    def day(self, value: dt.date) -> str:
        return i18n.date(value, "kn") if self.kannada else day(value)

    def rupees(self, amount: Decimal) -> str:
        return i18n.money(amount, "kn") if self.kannada else rupees(amount)

    def header(self) -> None:
        self.set_font(self.family, "B", 14)
        self.cell(0, 7, self.txt(self.head.lender_name), new_x="LMARGIN", new_y="NEXT")
        self.set_font(self.family, size=9)
        self.cell(
            0,
            5,
            self.txt(
                self.t("Branch: %(name)s (%(code)s)")
                % {"name": self.head.branch_name, "code": self.head.branch_code}
            ),
            new_x="LMARGIN",
            new_y="NEXT",
        )
        self.set_font(self.family, "B", 12)
        self.cell(0, 8, self.txt(self.doc_title), new_x="LMARGIN", new_y="NEXT")
        self.set_draw_color(120, 120, 120)
        self.line(15, self.get_y(), 15 + WIDTH, self.get_y())
        self.ln(3)

    def footer(self) -> None:
        self.set_y(-15)
        self.set_font(self.family, size=7)
        # India time, like every date on the document (a receipt made at 00:10 in India is
        # not dated the day before).
        generated = self.head.generated_at.astimezone(INDIA).strftime("%d %b %Y %H:%M IST")
        self.cell(
            0,
            4,
            self.txt(
                self.t(
                    "Computer-generated on %(when)s; no signature is needed. "
                    "Page %(page)s/%(pages)s"
                )
                % {"when": generated, "page": self.page_no(), "pages": "{nb}"}
            ),
            new_x="LMARGIN",
            new_y="NEXT",
        )
        self.cell(0, 4, self.txt(self.head.grievance_contact))

    def text_line(self, text: str, *, size: float = 9, style: str = "", height: float = 5) -> None:
        self.set_font(self.family, style, size)
        self.multi_cell(0, height, self.txt(text), new_x="LMARGIN", new_y="NEXT")

    def section(self, title: str) -> None:
        self.ln(2)
        self.set_font(self.family, "B", 10)
        self.cell(0, 6, self.txt(self.t(title)), new_x="LMARGIN", new_y="NEXT")

    def pairs(self, rows: Sequence[tuple[str, str]]) -> None:
        """Label / value lines in two columns."""
        self.set_font(self.family, size=9)
        with self.table(
            col_widths=(55, WIDTH - 55),
            first_row_as_headings=False,
            borders_layout="HORIZONTAL_LINES",
            line_height=5.5,
        ) as table:
            for label, value in rows:
                row = table.row()
                row.cell(self.txt(self.t(label)), style=BOLD)
                row.cell(self.txt(value))

    def grid(
        self,
        headings: Sequence[str],
        rows: Sequence[Sequence[str]],
        widths: Sequence[float],
        *,
        align: Sequence[str],
        total: Sequence[str] | None = None,
        size: float = 8,
    ) -> None:
        self.set_font(self.family, size=size)
        with self.table(
            col_widths=tuple(widths),
            width=sum(widths),
            align="LEFT",
            text_align=tuple(align),
            headings_style=HEADING_FILL,
            line_height=4.8,
        ) as table:
            head = table.row()
            for heading in headings:
                head.cell(self.txt(self.t(heading)))
            for values in rows:
                row = table.row()
                for value in values:
                    row.cell(self.txt(value))
            if total is not None:
                row = table.row()
                for value in total:
                    row.cell(self.txt(self.t(value) if value else value), style=BOLD)


def _output(pdf: FPDF) -> bytes:
    return bytes(pdf.output())


# The words of the pages for statuses (``namma.web.labels``' messages), in a Kannada document.
LOAN_STATUS_NAMES = {
    "active": "Active",
    "closed": "Closed",
    "preclosed": "Paid off early",
    "refinanced": "Replaced by a top-up",
    "written_off": "Written off",
}
INSTALLMENT_STATUS_NAMES = {
    "due": "Due",
    "partly_paid": "Partly paid",
    "paid": "Paid",
    "overdue": "Overdue",
}

METHOD_NAMES = {
    "cash": "Cash",
    "upi": "UPI",
    "cheque": "Cheque",
    "bank_transfer": "Bank transfer",
}


def method_name(method: str) -> str:
    return METHOD_NAMES.get(method, method)


def receipt_pdf(data: ReceiptData) -> bytes:
    pdf = _Pdf(data.head, N_("PAYMENT RECEIPT"), data.language)
    t = pdf.t
    pdf.alias_nb_pages()
    pdf.add_page()
    if data.reversed:
        assert data.reversed_on is not None
        pdf.set_text_color(*RED)
        pdf.text_line(t("REVERSED"), size=16, style="B", height=8)
        pdf.text_line(
            t(
                "This collection was reversed on %(date)s: %(reason)s. "
                "The amount below is not credited to the loan."
            )
            % {
                "date": pdf.day(data.reversed_on),
                "reason": data.reversal_reason or t("no reason given"),
            },
            style="B",
        )
        pdf.set_text_color(0, 0, 0)
        pdf.ln(2)
    rows = [
        (N_("Receipt number"), data.receipt_number),
        (N_("Date"), pdf.day(data.collected_on)),
        (N_("Customer"), data.customer_name),
        (N_("Loan number"), data.loan_number),
        (N_("Amount received"), pdf.rupees(data.amount)),
        (N_("In words"), amount_in_words(data.amount)),
        (N_("Method"), t(method_name(data.method))),
        (N_("Reference"), data.reference or t("none")),
        (N_("Collected by"), data.collected_by),
    ]
    if data.preclosure:
        rows.append(
            (
                N_("Pre-closure"),
                t("Loan paid off early; %(amount)s waived") % {"amount": pdf.rupees(data.waived)},
            )
        )
    if data.advance > 0:
        rows.append(
            (
                N_("Held as advance"),
                t("%(amount)s paid in advance: it pays your next installments as they fall due")
                % {"amount": pdf.rupees(data.advance)},
            )
        )
    elif data.advance < 0:
        rows.append(
            (
                N_("Advance used"),
                t("%(amount)s held in advance also paid the loan off")
                % {"amount": pdf.rupees(-data.advance)},
            )
        )
    if data.rescheduled is not None:
        rows.append((N_("Prepaid"), _rescheduled_text(pdf, data.rescheduled)))
    pdf.pairs(rows)

    pdf.section(N_("How the amount was applied"))
    widths = (22, 28, 26, 26, 26, 26, 26)
    align = ("LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT", "RIGHT", "RIGHT")
    lines = [
        [
            str(line.number),
            pdf.day(line.due_date),
            group_indian(line.parts.principal),
            group_indian(line.parts.interest),
            group_indian(line.parts.fee),
            group_indian(line.parts.penalty),
            group_indian(line.parts.total),
        ]
        for line in data.lines
    ]
    if data.rescheduled is not None:
        prepaid = group_indian(data.rescheduled.prepaid)
        lines.append([t("Prepaid"), "", prepaid, "", "", "", prepaid])
    pdf.grid(
        (
            N_("Installment"),
            N_("Due date"),
            N_("Principal"),
            N_("Interest"),
            N_("Fees"),
            N_("Penalties"),
            N_("Total (Rs.)"),
        ),
        lines,
        widths,
        align=align,
        total=[
            N_("Total"),
            "",
            group_indian(data.parts.principal),
            group_indian(data.parts.interest),
            group_indian(data.parts.fee),
            group_indian(data.parts.penalty),
            group_indian(data.parts.total),
        ],
    )
    pdf.ln(3)
    if data.outstanding_principal_after is not None and not data.reversed:
        pdf.text_line(
            t("Principal outstanding after this payment: %(amount)s")
            % {"amount": pdf.rupees(data.outstanding_principal_after)},
            style="B",
            size=10,
        )
    if data.note:
        pdf.text_line(data.note)
    return _output(pdf)


def _rescheduled_text(pdf: _Pdf, r: ReceiptReschedule) -> str:
    """ "₹X prepaid: term reduced to N installments" / "… installment reduced to ₹Y"."""
    if r.policy == "reduce-term":
        return pdf.t("%(amount)s prepaid: term reduced to %(count)s installments") % {
            "amount": pdf.rupees(r.prepaid),
            "count": r.installments_after,
        }
    return pdf.t("%(amount)s prepaid: installment reduced to %(installment)s") % {
        "amount": pdf.rupees(r.prepaid),
        "installment": pdf.rupees(r.installment_after),
    }


def statement_pdf(data: StatementData) -> bytes:
    kannada = data.language == "kn"
    month = i18n.month(data.period_start, "kn") if kannada else month_title(data.period_start)
    pdf = _Pdf(data.head, N_("ACCOUNT STATEMENT - %(month)s"), data.language)
    pdf.doc_title = pdf.doc_title % {"month": month}
    pdf.set_title(pdf.doc_title)
    t = pdf.t
    pdf.alias_nb_pages()
    pdf.add_page()
    customer = data.customer_name + (f", {data.customer_village}" if data.customer_village else "")
    totals = statement_totals(data)
    pdf.pairs(
        [
            (N_("Customer"), customer),
            (
                N_("Period"),
                t("%(start)s to %(end)s")
                % {"start": pdf.day(data.period_start), "end": pdf.day(data.period_end)},
            ),
            (N_("Loans"), str(len(data.loans))),
            (N_("Opening principal outstanding"), pdf.rupees(totals.opening)),
            (N_("Disbursed"), pdf.rupees(totals.disbursed)),
            (N_("Collected"), pdf.rupees(totals.collected_amount)),
            (
                N_("  of which"),
                _split_text(pdf, totals.collected, totals.collected_amount, totals.advance),
            ),
            (N_("Waived"), pdf.rupees(totals.waived)),
            (N_("Closing principal outstanding"), pdf.rupees(totals.closing)),
        ]
    )
    pdf.text_line(
        t("Outstanding figures are principal. Amounts in tables are in rupees (Rs.)."), size=8
    )
    if not data.loans:
        pdf.ln(3)
        pdf.text_line(t("No loan was active in this period."))
    for loan in data.loans:
        _statement_loan(pdf, loan)
    return _output(pdf)


def _split_text(pdf: _Pdf, parts: Parts, amount: Decimal, advance: Decimal = ZERO) -> str:
    text = pdf.t(
        "principal %(principal)s, interest %(interest)s, fees %(fees)s, penalties %(penalties)s"
    ) % {
        "principal": pdf.rupees(parts.principal),
        "interest": pdf.rupees(parts.interest),
        "fees": pdf.rupees(parts.fee),
        "penalties": pdf.rupees(parts.penalty),
    }
    if advance:
        text += pdf.t(", held as advance %(amount)s") % {"amount": pdf.rupees(advance)}
    if amount != parts.total + advance:
        text += pdf.t(", recovered after write-off %(amount)s") % {
            "amount": pdf.rupees(amount - parts.total - advance)
        }
    return text


def _statement_loan(pdf: _Pdf, loan: StatementLoan) -> None:
    t = pdf.t
    pdf.ln(2)
    pdf.section(
        t("Loan %(number)s - %(product)s")
        % {"number": loan.loan_number, "product": loan.product_name}
    )
    disbursed = (
        t("disbursed %(date)s, principal %(amount)s")
        % {"date": pdf.day(loan.disbursed_on), "amount": pdf.rupees(loan.principal)}
        if loan.disbursed_on
        else t("not disbursed")
    )
    status = (
        t(LOAN_STATUS_NAMES[loan.status])
        if pdf.kannada and loan.status in LOAN_STATUS_NAMES
        else loan.status.replace("_", " ")
    )
    pdf.text_line(
        t("Status: %(status)s; %(disbursed)s") % {"status": status, "disbursed": disbursed}
    )
    movement_heads = [N_("Opening outstanding"), N_("Disbursed"), N_("Principal repaid")]
    movement = [group_indian(loan.opening), group_indian(loan.disbursed)]
    movement.append(group_indian(loan.principal_repaid))
    if loan.settled_label:
        movement_heads.append(loan.settled_label)
        movement.append(group_indian(loan.settled))
    movement_heads.append(N_("Closing outstanding"))
    movement.append(group_indian(loan.closing))
    width = WIDTH / len(movement_heads)
    pdf.grid(
        movement_heads,
        [movement],
        [width] * len(movement_heads),
        align=["RIGHT"] * len(movement_heads),
    )

    pdf.section(N_("Collections"))
    if loan.collections:
        collected = loan.collected
        pdf.grid(
            (
                N_("Date"),
                N_("Receipt"),
                N_("Method"),
                N_("Amount"),
                N_("Principal"),
                N_("Interest"),
                N_("Fees"),
                N_("Penalties"),
                N_("Note"),
            ),
            [
                [
                    pdf.day(c.collected_on),
                    c.receipt_number,
                    t(method_name(c.method)),
                    group_indian(c.amount),
                    group_indian(c.parts.principal),
                    group_indian(c.parts.interest),
                    group_indian(c.parts.fee),
                    group_indian(c.parts.penalty),
                    t("REVERSED") if c.reversed else "",
                ]
                for c in loan.collections
            ],
            (19, 33, 17, 21, 20, 19, 15, 17, 19),
            align=(
                "LEFT",
                "LEFT",
                "LEFT",
                "RIGHT",
                "RIGHT",
                "RIGHT",
                "RIGHT",
                "RIGHT",
                "LEFT",
            ),
            total=[
                N_("Total"),
                "",
                "",
                group_indian(loan.collected_amount),
                group_indian(collected.principal),
                group_indian(collected.interest),
                group_indian(collected.fee),
                group_indian(collected.penalty),
                "",
            ],
            size=7.5,
        )
        if any(c.reversed for c in loan.collections):
            pdf.text_line(
                t("Reversed collections are listed but not counted in the totals."), size=8
            )
    else:
        pdf.text_line(t("No collections in this period."))

    if loan.waivers:
        pdf.section(N_("Waivers"))
        pdf.grid(
            (N_("Date"), N_("Waived"), N_("Amount (Rs.)"), N_("Reason")),
            [[pdf.day(w.on), t(w.what), group_indian(w.amount), w.reason] for w in loan.waivers],
            (22, 40, 28, WIDTH - 90),
            align=("LEFT", "LEFT", "RIGHT", "LEFT"),
            total=[N_("Total"), "", group_indian(loan.waived), ""],
        )

    pdf.section(N_("Installments due in this period"))
    if loan.installments_due:
        pdf.grid(
            (
                N_("No."),
                N_("Due date"),
                N_("Amount due (Rs.)"),
                N_("Paid"),
                N_("Waived"),
                N_("Status"),
            ),
            [
                [
                    str(i.number),
                    pdf.day(i.due_date),
                    group_indian(i.due),
                    group_indian(i.paid),
                    group_indian(i.waived),
                    t(INSTALLMENT_STATUS_NAMES[i.status])
                    if pdf.kannada and i.status in INSTALLMENT_STATUS_NAMES
                    else i.status.replace("_", " "),
                ]
                for i in loan.installments_due
            ],
            (15, 30, 35, 35, 30, 35),
            align=("LEFT", "LEFT", "RIGHT", "RIGHT", "RIGHT", "LEFT"),
        )
    else:
        pdf.text_line(t("None."))
    if loan.next_due_on is not None and loan.next_due_amount is not None:
        pdf.text_line(
            t("Next due: %(amount)s on %(date)s")
            % {"amount": pdf.rupees(loan.next_due_amount), "date": pdf.day(loan.next_due_on)},
            style="B",
        )
