"""What `/api/ledger/…` answers. Balances are on the account's normal side (``normal_side``):
debit for assets and expenses, credit for liabilities, equity and income."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Literal

from pydantic import Field

from namma.kit.money import Money
from namma.kit.schemas import ApiModel, from_row
from namma.ledger.queries import StatementLine, TrialBalanceRow, normal_balance, normal_side
from namma.models import AccountKind, AccountType, LedgerAccount

Side = Literal["debit", "credit"]


class AccountInfo(ApiModel):
    id: uuid.UUID
    code: str
    name: str
    kind: AccountKind
    type: AccountType
    normal_side: Side
    branch_id: uuid.UUID | None
    agent_id: uuid.UUID | None

    @classmethod
    def of(cls, account: LedgerAccount) -> AccountInfo:
        return from_row(cls, account, normal_side=normal_side(account.type))


class AccountOut(AccountInfo):
    debit: Money = Field(description="Σ debit lines")
    credit: Money = Field(description="Σ credit lines")
    balance: Money

    @classmethod
    def with_totals(cls, account: LedgerAccount, debit: Decimal, credit: Decimal) -> AccountOut:
        return from_row(
            cls,
            account,
            normal_side=normal_side(account.type),
            debit=debit,
            credit=credit,
            balance=normal_balance(account.type, debit, credit),
        )


class AccountList(ApiModel):
    accounts: list[AccountOut] = Field(description="In code order")


class TrialBalanceRowOut(ApiModel):
    account_id: uuid.UUID
    code: str
    name: str
    kind: AccountKind
    type: AccountType
    normal_side: Side
    debit: Money
    credit: Money
    balance: Money

    @classmethod
    def of(cls, row: TrialBalanceRow) -> TrialBalanceRowOut:
        return from_row(cls, row)


class TrialBalanceOut(ApiModel):
    as_of: dt.date | None
    branch_id: uuid.UUID | None
    accounts: list[TrialBalanceRowOut]
    total_debit: Money
    total_credit: Money
    balanced: bool = Field(description="The totals are equal")


class StatementLineOut(ApiModel):
    line_id: int
    entry_id: int
    entry_date: dt.date
    kind: str = Field(examples=["collection"], description="The journal entry's kind")
    memo: str | None
    receipt_number: str | None
    loan_id: uuid.UUID | None
    reverses_id: int | None = Field(description="The entry this one reverses")
    debit: Money
    credit: Money
    balance: Money = Field(description="The account's balance after this line")

    @classmethod
    def of(cls, line: StatementLine) -> StatementLineOut:
        return from_row(cls, line)


class StatementOut(ApiModel):
    account: AccountInfo
    since: dt.date | None
    until: dt.date | None
    opening_balance: Money = Field(description="Before this page's first line")
    closing_balance: Money = Field(description="After this page's last line")
    lines: list[StatementLineOut]
    next: int | None = Field(description="Pass as `after_line_id` for the next page")
