"""The collection sheet, and posting a filled-in sheet in bulk.

**The sheet** (`collection_sheet`): for a date, every installment due on or before it and not
fully paid, on the active loans of the customers in view — an agent's assigned customers, a
manager's branch (optionally one agent's customers), anything for an admin — per customer, with
what is expected (the installment's dues still owed: overdue ones and those due that day, less
an advance held, which the close of business applies to them),
grouped by village (the centre where the agent collects), with totals per group and overall.

**Bulk posting** (`collection_sheet_post`): each line goes through `collection_record` on its
own savepoint, idempotent on its ``client_id`` (the same key, ``client:<id>``, that a single
`POST /api/collections` without a header uses), so a duplicate line, a re-sent sheet or a line
already posted alone reports the original receipt and changes nothing. One bad line rolls back
only its savepoint. Locks are taken in one fixed order for the whole request — idempotency keys
(sorted), then loans (sorted by id), then per line the receipt sequence and accounts — so two
sheets, or a sheet and single collections, never deadlock; the same line arriving twice at once
waits on its key and then replays the first answer. Lines are applied in the order of their
dates (then as sent), whatever order they arrived in.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import operator
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.auth.deps import Principal
from namma.auth.scope import customer_scope, loan_scope, staff_scope
from namma.collections.schemas import (
    CollectionPosted,
    CollectionSheet,
    SheetCustomer,
    SheetGroup,
    SheetInstallment,
    SheetLineResult,
    SheetLoan,
)
from namma.collections.service import CollectionResult, collection_record
from namma.finance.owed import owed, owed_fee, owed_interest, owed_penalty, owed_principal
from namma.kit.cache import Cache
from namma.kit.clock import today_india
from namma.kit.errors import AppError, InvalidInputError, NotFoundError, error_body
from namma.kit.idempotency import (
    answer_text,
    idempotency_begin,
    idempotency_complete,
    idempotency_release,
)
from namma.kit.sqltext import expression_of
from namma.loans.cache import SHEET_TTL_SECONDS, sheet_key, sheet_version_key
from namma.models import (
    AgentAssignment,
    Branch,
    CollectionMethod,
    Customer,
    Loan,
    LoanInstallment,
    LoanStatus,
    Role,
    User,
)

ZERO = Decimal("0.00")
NO_VILLAGE = "(no village)"


# --- the sheet ---------------------------------------------------------------------------------
# A lean read (issue 20): the agent's check and one statement of plain rows (a row per installment
# owed by the date, with its loan, customer and current agent); no ORM entities, no unit of work.
# What an installment owes is computed in SQL by the money core's own rules (`finance.owed`).

_INSTALLMENT_OWED = (
    expression_of(owed_principal, LoanInstallment).label("principal"),
    expression_of(owed_interest, LoanInstallment).label("interest"),
    expression_of(owed_fee, LoanInstallment).label("fee"),
    expression_of(owed_penalty, LoanInstallment).label("penalty"),
    expression_of(owed, LoanInstallment).label("amount"),
)


@dataclass(frozen=True)
class _SheetAgent:
    id: uuid.UUID
    name: str


async def _sheet_agent(
    session: AsyncSession, principal: Principal, agent_id: uuid.UUID | None
) -> _SheetAgent | None:
    """The agent whose customers the sheet is for (None: everyone in view). An agent sees only
    their own sheet; a manager their branch's agents; another id answers 404."""
    if principal.role is Role.AGENT:
        if agent_id is not None and agent_id != principal.user_id:
            raise NotFoundError("Agent not found")
        agent_id = principal.user_id
    if agent_id is None:
        return None
    found = (
        await session.execute(
            select(User.id, User.name)
            .where(User.id == agent_id)
            .where(User.role == Role.AGENT)
            .where(staff_scope(principal))
        )
    ).first()
    if found is None:
        raise NotFoundError("Agent not found")
    return _SheetAgent(found.id, found.name)


async def _sheet_branch(
    session: AsyncSession, principal: Principal, branch_id: uuid.UUID | None
) -> uuid.UUID | None:
    if principal.role is not Role.ADMIN:
        if branch_id is not None and branch_id != principal.branch_id:
            raise NotFoundError("Branch not found")
        return principal.branch_id
    if (
        branch_id is not None
        and await session.scalar(select(Branch.id).where(Branch.id == branch_id)) is None
    ):
        raise NotFoundError("Branch not found")
    return branch_id


async def collection_sheet(
    session: AsyncSession,
    principal: Principal,
    *,
    on: dt.date,
    agent_id: uuid.UUID | None,
    branch_id: uuid.UUID | None,
) -> CollectionSheet:
    """The sheet for ``on`` (see the module docstring): the loans in view, what each owes by
    the date, per customer, grouped by village."""
    agent = await _sheet_agent(session, principal, agent_id)
    branch = await _sheet_branch(session, principal, branch_id)
    rows = (
        await session.execute(
            _sheet_select(principal, on=on, branch=branch, agent_id=agent.id if agent else None)
        )
    ).all()
    customers: dict[uuid.UUID, _CustomerOnSheet] = {}
    # Rows come by loan, then installment: one loan's rows are consecutive.
    for _, owed_rows in itertools.groupby(rows, key=operator.attrgetter("loan_id")):
        loan_rows = list(owed_rows)
        sheet_loan = _sheet_loan(loan_rows, on=on)
        if sheet_loan is None:
            continue  # the advance held covers it all
        first = loan_rows[0]
        entry = customers.get(first.customer_id)
        if entry is None:
            entry = customers[first.customer_id] = _CustomerOnSheet(
                first.customer_id,
                first.customer_name,
                first.phone,
                first.village,
                first.agent_id,
                first.agent_name,
            )
        entry.loans.append(sheet_loan)
    groups = _sheet_groups(customers.values())
    return CollectionSheet(
        date=on,
        branch_id=branch,
        agent_id=agent.id if agent else None,
        agent_name=agent.name if agent else None,
        groups=groups,
        customers=sum(len(g.customers) for g in groups),
        loans=sum(g.loans for g in groups),
        expected=sum((g.expected for g in groups), ZERO),
    )


@dataclass(frozen=True)
class KeptSheet:
    """A sheet as the JSON text the API answers, and as models when it was just read (None when
    it came from the cache: parse ``text`` if the models are needed)."""

    text: str
    sheet: CollectionSheet | None


async def collection_sheet_kept(
    session: AsyncSession,
    cache: Cache,
    principal: Principal,
    *,
    on: dt.date,
    agent_id: uuid.UUID | None,
    branch_id: uuid.UUID | None,
) -> KeptSheet:
    """`collection_sheet`, kept per agent and day for an agent's own sheet of today (the
    phone's sheet, asked again after every sync) until the agent's sheet version changes
    (`namma.loans.cache`: a collection, a reversal or any other change of one of their loans, an
    assignment, the close of business) or for `SHEET_TTL_SECONDS`. Any other sheet (a
    manager's, another date) is read afresh. Kept as text, so that the API sends a kept sheet
    as it is, without parsing it into models and writing it again."""
    if (
        principal.role is not Role.AGENT
        or agent_id not in (None, principal.user_id)
        or branch_id not in (None, principal.branch_id)
        or on != today_india()
    ):
        sheet = await collection_sheet(
            session, principal, on=on, agent_id=agent_id, branch_id=branch_id
        )
        return KeptSheet(sheet.model_dump_json(), sheet)
    # The version first: a change committed after this read gives a new one, so the sheet
    # stored below (read before that change, perhaps) is never served once it has.
    version = await cache.get(sheet_version_key(principal.user_id))
    key = sheet_key(principal.user_id, on)
    kept = await cache.get(key)
    if isinstance(kept, dict) and kept.get("version") == version:
        text = kept.get("sheet")
        if isinstance(text, str):
            return KeptSheet(text, None)
    sheet = await collection_sheet(session, principal, on=on, agent_id=None, branch_id=None)
    text = sheet.model_dump_json()
    await cache.set(key, {"version": version, "sheet": text}, SHEET_TTL_SECONDS)
    return KeptSheet(text, sheet)


def _sheet_select(
    principal: Principal, *, on: dt.date, branch: uuid.UUID | None, agent_id: uuid.UUID | None
) -> Select[*tuple[Any, ...]]:
    """Every installment due by ``on`` and still owing, on the active loans in view, with its
    loan, the loan's customer and the customer's current agent; by loan, then installment."""
    current = (
        select(AgentAssignment.customer_id, AgentAssignment.agent_id)
        .where(AgentAssignment.ended_at.is_(None))
        .subquery()
    )
    installment = LoanInstallment
    query: Select[*tuple[Any, ...]] = (
        select(
            Loan.id.label("loan_id"),
            Loan.loan_number,
            Loan.installment_amount,
            Loan.days_past_due,
            Loan.advance_balance,
            Customer.id.label("customer_id"),
            Customer.name.label("customer_name"),
            Customer.phone,
            Customer.village,
            User.id.label("agent_id"),
            User.name.label("agent_name"),
            installment.number,
            installment.due_date,
            installment.status,
            *_INSTALLMENT_OWED,
        )
        .select_from(Loan)
        .join(Customer, Customer.id == Loan.customer_id)
        .join(installment, installment.loan_id == Loan.id)
        .outerjoin(current, current.c.customer_id == Customer.id)
        .outerjoin(User, User.id == current.c.agent_id)
        .where(customer_scope(principal))
        .where(Loan.status == LoanStatus.ACTIVE)
        .where(installment.due_date <= on)
        .where(expression_of(owed, installment) > 0)
        .order_by(Loan.id, installment.number)
    )
    if branch is not None:
        query = query.where(Loan.branch_id == branch)
    if agent_id is not None:
        query = query.where(current.c.agent_id == agent_id)
    return query


def _sheet_loan(rows: Sequence[Row[Any]], *, on: dt.date) -> SheetLoan | None:
    """What the loan owes by ``on`` (``rows``: its installments still owing, from
    `_sheet_select`), per installment, and what is left to collect once the advance held pays
    its part (None when the advance covers it all, which the close of business applies that
    evening)."""
    # The per-line models are built without validation (``model_construct``): every value comes
    # typed from the database or from Decimal arithmetic on it, and a big sheet has over 1,000.
    loan = rows[0]
    installments = [
        SheetInstallment.model_construct(
            installment_number=row.number,
            due_date=row.due_date,
            status=row.status,
            overdue=row.due_date < on,
            principal=row.principal,
            interest=row.interest,
            fee=row.fee,
            penalty=row.penalty,
            amount=row.amount,
        )
        for row in rows
    ]
    overdue = sum((i.amount for i in installments if i.overdue), ZERO)
    total = sum((i.amount for i in installments), ZERO)
    advance = min(loan.advance_balance, total)
    if advance == total:
        return None
    return SheetLoan.model_construct(
        loan_id=loan.loan_id,
        loan_number=loan.loan_number,
        installment_amount=loan.installment_amount,
        days_past_due=loan.days_past_due,
        overdue=overdue,
        due_today=total - overdue,
        advance=advance,
        expected=total - advance,
        installments=installments,
    )


@dataclass
class _CustomerOnSheet:
    id: uuid.UUID
    name: str
    phone: str | None
    village: str | None
    agent_id: uuid.UUID | None
    agent_name: str | None
    loans: list[SheetLoan] = field(default_factory=list)

    def out(self) -> SheetCustomer:
        return SheetCustomer.model_construct(  # values typed already (see `_sheet_loan`)
            customer_id=self.id,
            name=self.name,
            phone=self.phone,
            village=self.village,
            agent_id=self.agent_id,
            agent_name=self.agent_name,
            loans=sorted(self.loans, key=lambda loan: loan.loan_number),
            expected=sum((loan.expected for loan in self.loans), ZERO),
        )


def _sheet_groups(customers: Iterable[_CustomerOnSheet]) -> list[SheetGroup]:
    """Customers by name within villages; villages by name, customers without one last."""
    by_village: dict[str, list[SheetCustomer]] = {}
    for entry in sorted(customers, key=lambda c: (c.name, str(c.id))):
        village = (entry.village or "").strip() or NO_VILLAGE
        by_village.setdefault(village, []).append(entry.out())
    return [
        SheetGroup(
            village=village,
            customers=people,
            loans=sum(len(c.loans) for c in people),
            expected=sum((c.expected for c in people), ZERO),
        )
        for village, people in sorted(by_village.items(), key=lambda g: (g[0] == NO_VILLAGE, g[0]))
    ]


# --- bulk posting --------------------------------------------------------------------------


@dataclass(frozen=True)
class SheetLine:
    """One valid line of a posted sheet, with the fingerprint its single-collection request
    would have (so a line and a `POST /api/collections` of the same collection agree)."""

    loan_id: uuid.UUID
    amount: Decimal
    collected_on: dt.date
    method: CollectionMethod
    reference: str | None
    remarks: str | None
    client_id: str
    fingerprint: str

    @property
    def key(self) -> str:
        return f"client:{self.client_id}"


@dataclass(frozen=True)
class InvalidLine:
    """A line that did not parse: reported as 422, never posted."""

    client_id: str | None
    body: dict[str, Any]


@dataclass
class LineResult:
    index: int
    client_id: str | None
    loan_id: str | None
    status: int
    body: dict[str, Any]
    receipt_number: str | None = None
    replayed: bool = False
    duplicate_of: int | None = None
    posted: CollectionResult | None = field(default=None, repr=False)

    def out(self) -> SheetLineResult:
        return SheetLineResult(
            index=self.index,
            client_id=self.client_id,
            loan_id=self.loan_id,
            status=self.status,
            receipt_number=self.receipt_number,
            replayed=self.replayed,
            duplicate_of=self.duplicate_of,
            body=self.body,
        )


def _error(exc: AppError) -> dict[str, Any]:
    return error_body(exc.code, exc.message, exc.details)


def _receipt_in(status: int, body: dict[str, Any]) -> str | None:
    if status == 201:
        receipt = body.get("receipt_number")
        return receipt if isinstance(receipt, str) else None
    details = body.get("error", {}).get("details")
    if isinstance(details, dict) and isinstance(details.get("receipt_number"), str):
        return str(details["receipt_number"])
    return None


async def collection_sheet_post(
    session: AsyncSession,
    *,
    principal: Principal,
    lines: Sequence[SheetLine | InvalidLine],
    backdate_days: int,
) -> list[LineResult]:
    """Post every valid line (see the module docstring); one result per line, in order."""
    results: dict[int, LineResult] = {}
    first: dict[str, int] = {}
    duplicates: list[int] = []
    for index, line in enumerate(lines):
        if isinstance(line, InvalidLine):
            results[index] = LineResult(index, line.client_id, None, 422, line.body)
        elif line.key in first:
            duplicates.append(index)
        else:
            first[line.key] = index

    def valid(index: int) -> SheetLine:
        line = lines[index]
        assert isinstance(line, SheetLine)
        return line

    # 1. Claim every key, in sorted order. A key another request is using makes us wait for
    # its commit, then we replay its answer: the same line never posts twice.
    todo: list[int] = []
    for key in sorted(first):
        index = first[key]
        line = valid(index)
        try:
            async with session.begin_nested():
                stored = await idempotency_begin(
                    session, user_id=principal.user_id, key=key, fingerprint=line.fingerprint
                )
        except InvalidInputError:
            results[index] = _result_error(
                index,
                line,
                InvalidInputError(
                    "client_id",
                    f"Client id {line.client_id} was already used for a different collection",
                ),
            )
            continue
        except AppError as exc:
            results[index] = _result_error(index, line, exc)
            continue
        if stored is None:
            todo.append(index)
            continue
        body = json.loads(stored.body)
        results[index] = LineResult(
            index,
            line.client_id,
            str(line.loan_id),
            stored.status,
            body,
            receipt_number=_receipt_in(stored.status, body),
            replayed=True,
        )

    # 2. Lock the loans in scope in one order (unknown or out-of-scope ones answer 404 later).
    loan_ids = sorted({valid(i).loan_id for i in todo})
    if loan_ids:
        await session.execute(
            select(Loan.id)
            .where(Loan.id.in_(loan_ids))
            .where(loan_scope(principal))
            .order_by(Loan.id)
            .with_for_update(of=Loan)
        )

    # 3. Post, by date then as sent, each on its own savepoint.
    for index in sorted(todo, key=lambda i: (valid(i).collected_on, i)):
        line = valid(index)
        try:
            async with session.begin_nested():
                posted = await collection_record(
                    session,
                    principal=principal,
                    loan_id=line.loan_id,
                    amount=line.amount,
                    collected_on=line.collected_on,
                    method=line.method,
                    reference=line.reference,
                    remarks=line.remarks,
                    client_id=line.client_id,
                    backdate_days=backdate_days,
                )
                answer = answer_text(CollectionPosted.of(posted))
                await idempotency_complete(
                    session, user_id=principal.user_id, key=line.key, status=201, body=answer
                )
        except AppError as exc:
            results[index] = _result_error(index, line, exc)
            # Free the key: a corrected line may be sent again with the same client id.
            await idempotency_release(session, user_id=principal.user_id, key=line.key)
            continue
        results[index] = LineResult(
            index,
            line.client_id,
            str(line.loan_id),
            201,
            json.loads(answer),
            receipt_number=posted.collection.receipt_number,
            posted=posted,
        )

    # 4. A line repeated in the same sheet: the first one's answer if it is the same collection.
    for index in duplicates:
        line = valid(index)
        original = results[first[line.key]]
        if valid(original.index).fingerprint != line.fingerprint:
            results[index] = _result_error(
                index,
                line,
                InvalidInputError(
                    "client_id",
                    f"Client id {line.client_id} is used by line {original.index} for a "
                    "different collection",
                ),
            )
            continue
        results[index] = LineResult(
            index,
            line.client_id,
            str(line.loan_id),
            original.status,
            original.body,
            receipt_number=original.receipt_number,
            replayed=original.status == 201,
            duplicate_of=original.index,
        )
    return [results[i] for i in range(len(lines))]


def _result_error(index: int, line: SheetLine, exc: AppError) -> LineResult:
    body = json.loads(json.dumps(_error(exc), default=str))
    return LineResult(
        index,
        line.client_id,
        str(line.loan_id),
        exc.status_code,
        body,
        receipt_number=_receipt_in(exc.status_code, body),
    )
