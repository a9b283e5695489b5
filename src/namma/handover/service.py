"""Cash hand-over: an agent deposits the day's cash at the branch, in two steps by two people
(maker-checker): the agent declares (`cash_handover_record`: pending, nothing posted), the
branch counts (`cash_handover_count`: posted). The declarer never counts.

``expected`` is the Σ of the agent's posted (not reversed) cash collections dated the business
date — exactly what those collections debited to the agent's cash account. The journal
(``cash_handover``): Dr the agent's branch cash with what was deposited, Cr the agent's cash with
what was expected, and the difference to ``cash_shortage`` (a shortfall is debited, an excess
credited): recorded, never hidden. One standing hand-over per agent and date (409 for a second);
services never commit.

A mistaken hand-over is reversed, never edited (`cash_handover_reverse`): the mirror journal is
posted, the row is kept and marked reversed, and the date is free for a corrected hand-over.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal

from sqlalchemy import Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import audit_record
from namma.auth.deps import Principal
from namma.auth.scope import staff_scope
from namma.handover.schemas import HandoverList, HandoverOut, HandoverStatus
from namma.kit.clock import today_india
from namma.kit.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
)
from namma.kit.money import money_str
from namma.ledger.service import Leg, journal_post, record_reverse
from namma.models import (
    AccountKind,
    CashHandover,
    Collection,
    CollectionMethod,
    CollectionStatus,
    Role,
    User,
)

ZERO = Decimal("0.00")


async def _agent_in_scope(
    session: AsyncSession, principal: Principal, agent_id: uuid.UUID | None
) -> User:
    """An agent may only hand over their own cash; a manager records for their branch's agents;
    an admin for any agent. Anyone else, or an unknown id: 404."""
    if principal.role is Role.AGENT:
        if agent_id is not None and agent_id != principal.user_id:
            raise NotFoundError("Agent not found")
        agent_id = principal.user_id
    if agent_id is None:
        raise InvalidInputError("agent_id", "Say whose cash is handed over")
    agent = await session.scalar(
        select(User)
        .where(User.id == agent_id)
        .where(User.role == Role.AGENT)
        .where(staff_scope(principal))
    )
    if agent is None:
        raise NotFoundError("Agent not found")
    return agent


async def handover_expected(
    session: AsyncSession, *, agent_id: uuid.UUID, business_date: dt.date
) -> tuple[Decimal, int]:
    """Σ and count of the agent's posted cash collections of the date."""
    total, count = (
        await session.execute(
            select(func.coalesce(func.sum(Collection.amount), ZERO), func.count())
            .where(Collection.collected_by_id == agent_id)
            .where(Collection.collected_on == business_date)
            .where(Collection.method == CollectionMethod.CASH)
            .where(Collection.status == CollectionStatus.POSTED)
        )
    ).one()
    return Decimal(total), int(count)


async def cash_handover_record(
    session: AsyncSession,
    *,
    principal: Principal,
    agent_id: uuid.UUID | None,
    business_date: dt.date,
    amount_deposited: Decimal,
    remarks: str | None,
) -> tuple[CashHandover, User]:
    """Declare the hand-over: the agent (or staff on the agent's behalf) says how much cash of
    ``business_date`` is handed over (``amount_deposited`` becomes ``amount_declared``). The
    hand-over is pending until someone else counts it (`cash_handover_count`); nothing is
    posted yet. 422: a negative amount, a date in the future, nothing collected and nothing
    declared. 404: the agent is unknown or out of scope. 409: the agent already handed over
    that date's cash (pending or received)."""
    if amount_deposited < 0:
        raise InvalidInputError("amount_deposited", "The amount deposited cannot be negative")
    if business_date > today_india():
        raise InvalidInputError("business_date", "A hand-over cannot be dated in the future")
    agent = await _agent_in_scope(session, principal, agent_id)
    if agent.branch_id is None:
        raise ConflictError("The agent belongs to no branch")
    existing = await _standing(session, agent.id, business_date)
    if existing is not None:
        raise _already(existing)
    expected, count = await handover_expected(
        session, agent_id=agent.id, business_date=business_date
    )
    if expected == 0 and amount_deposited == 0:
        raise InvalidInputError(
            "amount_deposited",
            f"{agent.name} collected no cash on {business_date.isoformat()} and nothing is "
            "deposited: there is nothing to hand over",
        )
    remarks = remarks.strip() if remarks and remarks.strip() else None
    handover = CashHandover(
        agent_id=agent.id,
        branch_id=agent.branch_id,
        business_date=business_date,
        expected=expected,
        collections_count=count,
        amount_declared=amount_deposited,
        remarks=remarks,
        recorded_by_id=principal.user_id,
    )
    try:
        async with session.begin_nested():
            session.add(handover)
            await session.flush()
    except IntegrityError:  # a concurrent hand-over of the same agent and date committed first
        existing = await _standing(session, agent.id, business_date)
        if existing is None:
            raise
        raise _already(existing) from None
    await session.refresh(handover)
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="cash_handover.declared",
        entity_type="cash_handover",
        entity_id=str(handover.id),
        after={
            "agent_id": agent.id,
            "branch_id": agent.branch_id,
            "business_date": business_date,
            "expected": expected,
            "collections": count,
            "amount_declared": amount_deposited,
            "remarks": remarks,
        },
    )
    return handover, agent


def _handover_query(principal: Principal, handover_id: uuid.UUID) -> Select[CashHandover]:
    """The hand-over if in scope (Manager: their branch's; Admin: any; others: their own)."""
    query = select(CashHandover).where(CashHandover.id == handover_id)
    if principal.role is Role.MANAGER:
        query = query.where(CashHandover.branch_id == principal.branch_id)
    elif principal.role is not Role.ADMIN:
        query = query.where(CashHandover.agent_id == principal.user_id)
    return query


async def cash_handover_count(
    session: AsyncSession,
    *,
    principal: Principal,
    handover_id: uuid.UUID,
    amount_counted: Decimal,
    remarks: str | None,
) -> tuple[CashHandover, User]:
    """The branch counts a declared hand-over (a Manager their branch's, an Admin any): expected
    is set again from the agent's posted cash collections of the date, the journal is posted
    (``cash_handover``: Dr branch cash with the amount counted, Cr the agent's cash with the
    amount expected, the difference to ``cash_shortage`` — a shortfall debited, an excess
    credited) and the difference stays on the agent's hand-over.

    Maker-checker: whoever declared the cash never counts it (403). 404: unknown or out of
    scope. 409: already counted, or reversed. 422: a negative amount."""
    if amount_counted < 0:
        raise InvalidInputError("amount_counted", "The amount counted cannot be negative")
    handover = await session.scalar(
        _handover_query(principal, handover_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    if handover is None:
        raise NotFoundError("Cash hand-over not found")
    if handover.reversed_at is not None:
        raise ConflictError(
            "This hand-over was reversed; it cannot be counted",
            details={"cash_handover_id": str(handover.id), "status": "reversed"},
        )
    if handover.counted_at is not None:
        raise ConflictError(
            "This hand-over was already counted",
            details={"cash_handover_id": str(handover.id), "status": "received"},
        )
    if handover.recorded_by_id == principal.user_id:
        raise PermissionDeniedError(
            "You declared this hand-over; another officer must count the cash."
        )
    agent = await session.get(User, handover.agent_id)
    assert agent is not None
    expected, count = await handover_expected(
        session, agent_id=agent.id, business_date=handover.business_date
    )
    difference = amount_counted - expected
    legs = [
        Leg(AccountKind.BRANCH_CASH, debit=amount_counted, branch_id=handover.branch_id),
        Leg(AccountKind.AGENT_CASH, credit=expected, agent_id=agent.id),
    ]
    if difference < 0:
        legs.append(Leg(AccountKind.CASH_SHORTAGE, debit=-difference))
    elif difference > 0:
        legs.append(Leg(AccountKind.CASH_SHORTAGE, credit=difference))
    entry = await journal_post(
        session,
        kind="cash_handover",
        entry_date=handover.business_date,
        memo=f"Cash hand-over by {agent.name} for {handover.business_date.isoformat()}",
        branch_id=handover.branch_id,
        created_by_id=principal.user_id,
        legs=legs,
    )
    handover.expected = expected
    handover.collections_count = count
    handover.amount_deposited = amount_counted
    handover.difference = difference
    handover.journal_entry_id = entry.id
    handover.counted_by_id = principal.user_id
    handover.counted_at = dt.datetime.now(dt.UTC)
    handover.count_remarks = remarks.strip() if remarks and remarks.strip() else None
    await session.flush()
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="cash_handover.recorded",
        entity_type="cash_handover",
        entity_id=str(handover.id),
        before={"status": "pending", "amount_declared": handover.amount_declared},
        after={
            "status": "received",
            "agent_id": agent.id,
            "branch_id": handover.branch_id,
            "business_date": handover.business_date,
            "expected": expected,
            "collections": count,
            "amount_deposited": amount_counted,
            "difference": difference,
            "remarks": handover.count_remarks,
            "journal_entry_id": entry.id,
        },
    )
    return handover, agent


async def _standing(
    session: AsyncSession, agent_id: uuid.UUID, business_date: dt.date
) -> CashHandover | None:
    return await session.scalar(
        select(CashHandover)
        .where(CashHandover.agent_id == agent_id)
        .where(CashHandover.business_date == business_date)
        .where(CashHandover.reversed_at.is_(None))
    )


def _already(existing: CashHandover) -> ConflictError:
    return ConflictError(
        f"The cash of {existing.business_date.isoformat()} was already handed over "
        f"({money_str(existing.amount_declared)} declared against "
        f"{money_str(existing.expected)} expected)",
        details={"cash_handover_id": str(existing.id)},
    )


async def cash_handover_reverse(
    session: AsyncSession, *, principal: Principal, handover_id: uuid.UUID, reason: str
) -> tuple[CashHandover, User]:
    """Reverse a hand-over: the mirror image of its journal (kind
    ``cash_handover.reversal``, dated today) puts the cash back on the agent's account and takes
    it off the branch's (and undoes the shortage or excess); the hand-over is kept, marked
    reversed, and the agent's date is free for a corrected hand-over.

    Scope: a Manager reverses their branch's hand-overs, an Admin any (the route's permission
    keeps everyone else out); another branch's, or an unknown id: 404. 409 if already reversed.
    422: an empty reason.
    """
    reason = reason.strip()
    if not reason:
        raise InvalidInputError("reason", "Say why the hand-over is reversed")
    query = _handover_query(principal, handover_id)
    # Locked: two reversals at once queue here and the second sees the first.
    handover = await session.scalar(
        query.with_for_update().execution_options(populate_existing=True)
    )
    if handover is None:
        raise NotFoundError("Cash hand-over not found")
    if handover.reversed_at is not None:
        raise ConflictError(
            f"The hand-over of {handover.business_date.isoformat()} was already reversed",
            details={
                "cash_handover_id": str(handover.id),
                "reversal_entry_id": handover.reversal_entry_id,
            },
        )
    agent = await session.get(User, handover.agent_id)
    assert agent is not None
    if handover.journal_entry_id is None:
        # Pending (never counted): nothing was posted, the declaration is withdrawn.
        handover.reversed_at = dt.datetime.now(dt.UTC)
        handover.reversed_by_id = principal.user_id
        handover.reversal_reason = reason
        await session.flush()
        await audit_record(
            session,
            actor=principal.audit_actor,
            action="cash_handover.reversed",
            entity_type="cash_handover",
            entity_id=str(handover.id),
            before={"status": "pending"},
            after={"status": "reversed", "reason": reason},
        )
        return handover, agent
    reversal = await record_reverse(
        session,
        handover,
        by=principal.user_id,
        reason=reason,
        memo=f"hand-over by {agent.name} of {handover.business_date.isoformat()}: {reason}",
        on=today_india(),
    )
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="cash_handover.reversed",
        entity_type="cash_handover",
        entity_id=str(handover.id),
        before={"status": "received"},
        after={
            "status": "reversed",
            "agent_id": handover.agent_id,
            "business_date": handover.business_date,
            "amount_deposited": handover.amount_deposited,
            "expected": handover.expected,
            "reason": reason,
            "reversal_entry_id": reversal.id,
        },
    )
    return handover, agent


async def cash_handover_get(
    session: AsyncSession, principal: Principal, handover_id: uuid.UUID
) -> tuple[CashHandover, User]:
    """One hand-over in scope (Manager: their branch's; Admin: any; others: their own), with
    its agent; 404 otherwise."""
    row = (
        await session.execute(
            _handover_query(principal, handover_id)
            .add_columns(User)
            .join(User, User.id == CashHandover.agent_id)
        )
    ).one_or_none()
    if row is None:
        raise NotFoundError("Cash hand-over not found")
    return row[0], row[1]


async def cash_handovers_list(
    session: AsyncSession,
    principal: Principal,
    *,
    business_date: dt.date | None,
    agent_id: uuid.UUID | None,
    limit: int,
    status: HandoverStatus | None = None,
) -> HandoverList:
    """Hand-overs in scope (Admin: all; Manager: their branch's; Agent: their own), newest
    first (``status``: only the pending, received or reversed ones), with the totals of the
    received ones and of the pending declarations. Naming an agent out of scope answers 404."""
    if agent_id is not None:
        await _agent_in_scope(session, principal, agent_id)
    query = select(CashHandover, User).join(User, User.id == CashHandover.agent_id)
    if principal.role is Role.MANAGER:
        query = query.where(CashHandover.branch_id == principal.branch_id)
    elif principal.role is not Role.ADMIN:
        query = query.where(CashHandover.agent_id == principal.user_id)
    if agent_id is not None:
        query = query.where(CashHandover.agent_id == agent_id)
    if business_date is not None:
        query = query.where(CashHandover.business_date == business_date)
    if status == "reversed":
        query = query.where(CashHandover.reversed_at.is_not(None))
    elif status == "pending":
        query = query.where(CashHandover.reversed_at.is_(None), CashHandover.counted_at.is_(None))
    elif status == "received":
        query = query.where(
            CashHandover.reversed_at.is_(None), CashHandover.counted_at.is_not(None)
        )
    rows = (
        await session.execute(
            query.order_by(
                CashHandover.business_date.desc(), User.name, CashHandover.created_at
            ).limit(limit)
        )
    ).all()
    received = [h for h, _ in rows if h.reversed_at is None and h.counted_at is not None]
    pending = [h for h, _ in rows if h.reversed_at is None and h.counted_at is None]
    return HandoverList(
        cash_handovers=[HandoverOut.of(h, agent) for h, agent in rows],
        expected=sum((h.expected for h in received), ZERO),
        amount_deposited=sum((h.amount_deposited or ZERO for h in received), ZERO),
        difference=sum((h.difference or ZERO for h in received), ZERO),
        pending=len(pending),
        amount_pending=sum((h.amount_declared for h in pending), ZERO),
    )
