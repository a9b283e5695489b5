"""The collection sheet, and posting a filled-in sheet in bulk.

**The sheet** (`collection_sheet`): for a date, every installment due on or before it and not
fully paid, on the active loans of the customers in view — an agent's assigned customers, a
manager's branch (optionally one agent's customers), anything for an admin — per customer, with
what is expected (the installment's dues still owed: overdue ones and those due that day, less
an advance held, which the close of business applies to them),
grouped by village (the centre where the agent collects), with totals per group and overall.

Bulk posting of a filled-in sheet is `namma.collections.sheet_post`.
"""

from __future__ import annotations

import datetime as dt
import itertools
import operator
import time
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
from sqlalchemy import Row, Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.auth.deps import Principal
from namma.auth.scope import customer_scope, staff_scope
from namma.collections.schemas import (
    CollectionSheet,
    SheetCustomer,
    SheetGroup,
    SheetInstallment,
    SheetLoan,
)
from namma.finance.owed import owed, owed_fee, owed_interest, owed_penalty, owed_principal
from namma.kit.cache import Cache
from namma.kit.clock import today_india
from namma.kit.db import before_commit, transaction_cache
from namma.kit.errors import NotFoundError
from namma.kit.money import money_text
from namma.kit.sqltext import expression_of
from namma.loans.cache import (
    SHEET_TTL_SECONDS,
    SHEET_VERSION_TTL_SECONDS,
    SheetPatcher,
    sheet_kept_read,
    sheet_key,
    sheet_patch_offer,
    sheet_version_key,
)
from namma.models import (
    AgentAssignment,
    Branch,
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
    key = sheet_key(principal.user_id, on)
    version, kept = await sheet_kept_read(cache, principal.user_id, key)
    if kept is not None and isinstance(kept.get("sheet"), str):
        return KeptSheet(kept["sheet"], None)
    sheet = await collection_sheet(session, principal, on=on, agent_id=None, branch_id=None)
    text = sheet.model_dump_json()
    # When it goes, kept with it: patching its lines (below) does not make the rest live longer.
    expires = int(time.time()) + SHEET_TTL_SECONDS
    await cache.set(key, {"version": version, "sheet": text, "expires": expires}, SHEET_TTL_SECONDS)
    return KeptSheet(text, sheet)


# --- a collection's line put into the kept sheet -----------------------------------------------
# A collection changes one line of its agent's sheet, and the phone asks for the sheet after
# every sync. Reading the whole sheet afresh for that (the statement over every loan of the
# agent, then the models) is most of a day's sheet reads' cost. Instead, for an agent's own
# collection, the loan's new line is read just before the commit (inside the transaction: it is
# exactly what commits) and, once committed, put into the kept sheet with a new version, in one
# step that holds only if the version is still the one the kept sheet was read under
# (`Cache.set_if`). Otherwise — another change renewed the version meanwhile, no sheet is kept,
# the loan comes onto the sheet (its line is not there to replace) — the agent's sheet gets a
# plain new version as before, and the next read is afresh (`namma.loans.cache.sheets_changed`).

_RENEWED_LOANS = "namma.sheet_renewed_loans"


def sheet_line_renew(session: AsyncSession, *, agent_id: uuid.UUID, loan_id: uuid.UUID) -> None:
    """``agent_id`` collected on ``loan_id``: at the commit, put its new line into the agent's
    kept sheet (see above)."""
    session.info.setdefault(_RENEWED_LOANS, {}).setdefault(agent_id, set()).add(loan_id)
    before_commit(session, "sheet-lines", _sheet_lines_read)


async def _sheet_lines_read(session: AsyncSession) -> None:
    on = today_india()
    renewed: dict[uuid.UUID, set[uuid.UUID]] = session.info.pop(_RENEWED_LOANS, {})
    cache: Cache | None = transaction_cache(session)
    for agent_id, loan_ids in renewed.items():
        if cache is None or not await cache.exists(sheet_key(agent_id, on)):
            continue  # no sheet kept to put the lines in (the agent has not asked for it today)
        select_lines = _sheet_select(None, on=on, branch=None, agent_id=agent_id, loan_ids=loan_ids)
        rows = (await session.execute(select_lines)).all()
        lines: dict[str, dict[str, Any] | None] = {str(loan_id): None for loan_id in loan_ids}
        for loan_id, loan_rows in itertools.groupby(rows, key=operator.attrgetter("loan_id")):
            line = _sheet_loan(list(loan_rows), on=on)
            lines[str(loan_id)] = None if line is None else line.model_dump(mode="json")
        sheet_patch_offer(session, agent_id, _sheet_patcher(agent_id, on, lines))


def _sheet_patcher(
    agent_id: uuid.UUID, on: dt.date, lines: Mapping[str, dict[str, Any] | None]
) -> SheetPatcher:
    done = False

    async def patch(cache: Cache) -> bool:
        nonlocal done
        if done:  # the sheet is renewed once per commit, however many changes asked for it
            return True
        version_key, key = sheet_version_key(agent_id), sheet_key(agent_id, on)
        version, kept = await sheet_kept_read(cache, agent_id, key)
        if kept is None:
            return False
        text, expires = kept.get("sheet"), kept.get("expires")
        seconds_left = expires - int(time.time()) if isinstance(expires, int) else 0
        patched = sheet_text_patched(text, lines) if isinstance(text, str) else None
        if patched is None or seconds_left < 1:
            return False
        new = uuid.uuid4().hex
        entry = {"version": new, "sheet": patched, "expires": expires}
        done = await cache.set_if(
            version_key,
            version,
            {version_key: (new, SHEET_VERSION_TTL_SECONDS), key: (entry, seconds_left)},
        )
        return done

    return patch


def sheet_text_patched(text: str, lines: Mapping[str, dict[str, Any] | None]) -> str | None:
    """The kept sheet ``text`` (`CollectionSheet` as JSON) with the loans' ``lines`` (by loan
    id, as `SheetLoan` JSON; None: off the sheet) put in place and every total made again; None
    when a line is not on the sheet to be replaced (where it goes is for a full read)."""
    sheet = orjson.loads(text)
    left = dict(lines)
    groups = []
    for group in sheet["groups"]:
        customers = []
        for person in group["customers"]:
            loans = []
            for loan in person["loans"]:
                if loan["loan_id"] not in left:
                    loans.append(loan)
                elif (line := left.pop(loan["loan_id"])) is not None:
                    loans.append(line)
            if loans:
                person["loans"] = loans
                person["expected"] = _money_total(loan["expected"] for loan in loans)
                customers.append(person)
        if customers:
            group["customers"] = customers
            group["loans"] = sum(len(person["loans"]) for person in customers)
            group["expected"] = _money_total(person["expected"] for person in customers)
            groups.append(group)
    if any(line is not None for line in left.values()):
        return None
    sheet["groups"] = groups
    sheet["customers"] = sum(len(group["customers"]) for group in groups)
    sheet["loans"] = sum(group["loans"] for group in groups)
    sheet["expected"] = _money_total(group["expected"] for group in groups)
    # As pydantic writes it (`model_dump_json`): compact, UTF-8, non-ASCII as it is.
    return orjson.dumps(sheet).decode()


def _money_total(amounts: Iterable[str]) -> str:
    return money_text(sum((Decimal(amount) for amount in amounts), ZERO))


def _sheet_select(
    principal: Principal | None,
    *,
    on: dt.date,
    branch: uuid.UUID | None,
    agent_id: uuid.UUID | None,
    loan_ids: Collection[uuid.UUID] | None = None,
) -> Select[*tuple[Any, ...]]:
    """Every installment due by ``on`` and still owing, on the active loans in view (None: a
    collection's own loans, ``loan_ids``, read inside its transaction), with its loan, the
    loan's customer and the customer's current agent; by loan, then installment."""
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
        .where(Loan.status == LoanStatus.ACTIVE)
        .where(installment.due_date <= on)
        .where(expression_of(owed, installment) > 0)
        .order_by(Loan.id, installment.number)
    )
    if principal is not None:
        query = query.where(customer_scope(principal))
    if loan_ids is not None:
        query = query.where(Loan.id.in_(loan_ids))
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
