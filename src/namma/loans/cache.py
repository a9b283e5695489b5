"""Cache-aside for loans and customers (the seed's keys and TTLs): a loan's detail for 1 minute,
a customer's for 5.

Every loan mutation invalidates, after its commit, the loan, its customer and the dashboards its
branch's figures appear on (`dashboard_patterns`: the branch's and the institution's, never the
other branches'), through the platform cache — Redis when configured, so that every server
process sees the invalidation. (The seed's per-customer loan lists are not cached: the list
query is cheap and scoped.)
"""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.kit.cache import Cache
from namma.kit.db import after_commit, transaction_cache
from namma.models import Loan

LOAN_TTL_SECONDS = 60
CUSTOMER_TTL_SECONDS = 300


def dashboard_patterns(branch_id: uuid.UUID | str | None) -> tuple[str, ...]:
    """The cached dashboards a write in ``branch_id`` moves: every dashboard key carries, after
    its family, the branch whose figures it shows (``all`` for the institution's; see
    `namma.reports.dashboard.dashboard_key`). ``None``: a write whose branch is not known moves
    every dashboard."""
    if branch_id is None:
        return ("dashboard:*",)
    return (f"dashboard:{branch_id}:*", "dashboard:all:*")


def loan_key(loan_id: uuid.UUID | str) -> str:
    return f"loan:{loan_id}"


def customer_key(customer_id: uuid.UUID | str) -> str:
    return f"customer:{customer_id}"


async def loan_cache_invalidate(
    cache: Cache,
    *,
    loan_id: uuid.UUID,
    customer_id: uuid.UUID,
    branch_id: uuid.UUID | None = None,
) -> None:
    # The customer's detail shows the loan's balances and next due date: it goes too.
    await cache.delete_matching(
        dashboard_patterns(branch_id), also=(loan_key(loan_id), customer_key(customer_id))
    )


def loan_changed(
    session: AsyncSession,
    cache: Cache | None = None,
    *,
    loan_id: uuid.UUID,
    customer_id: uuid.UUID,
    branch_id: uuid.UUID | None = None,
) -> None:
    """Invalidate the loan's cached reads once this transaction commits (through ``cache``, by
    default the transaction's own: `namma.kit.db.transaction_cache`); ``branch_id``, the loan's
    branch, limits the dashboards dropped to the ones showing it (all of them without it)."""
    target: Cache | None = cache if cache is not None else transaction_cache(session)
    if target is None:
        return  # nothing is cached in this process

    async def invalidate() -> None:
        assert target is not None
        await loan_cache_invalidate(
            target, loan_id=loan_id, customer_id=customer_id, branch_id=branch_id
        )

    after_commit(session, invalidate)


def customer_changed(
    session: AsyncSession,
    cache: Cache,
    *,
    customer_id: uuid.UUID,
    loan_ids: list[uuid.UUID],
    branch_ids: frozenset[uuid.UUID] | None = None,
) -> None:
    """Invalidate the customer's cached reads (and their loans', which show the customer) and
    the dashboards of ``branch_ids`` (every dashboard without them)."""
    patterns = (
        ("dashboard:*",)
        if branch_ids is None
        else tuple(dict.fromkeys(p for b in sorted(branch_ids) for p in dashboard_patterns(b)))
    )

    async def invalidate() -> None:
        await cache.delete_matching(
            patterns, also=(customer_key(customer_id), *(loan_key(i) for i in loan_ids))
        )

    after_commit(session, invalidate)


async def customer_and_loans_changed(
    session: AsyncSession, cache: Cache, customer_id: uuid.UUID
) -> None:
    """``customer_changed`` with the customer's loans looked up (after an edit of the customer)."""
    loan_ids = list(
        (await session.scalars(select(Loan.id).where(Loan.customer_id == customer_id))).all()
    )
    customer_changed(session, cache, customer_id=customer_id, loan_ids=loan_ids)
