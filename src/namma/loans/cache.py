"""Cache-aside for loans (the seed's keys and TTLs): a loan's detail for 1 minute.

Every loan mutation invalidates, after its commit, the loan, its customer's loan lists and the
dashboards (`dashboard:*`), through the platform cache — Redis when configured, so that every
server process sees the invalidation.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from namma.kit.cache import Cache
from namma.kit.db import after_commit

LOAN_TTL_SECONDS = 60


def loan_key(loan_id: uuid.UUID | str) -> str:
    return f"loan:{loan_id}"


async def loan_cache_invalidate(
    cache: Cache, *, loan_id: uuid.UUID, customer_id: uuid.UUID
) -> None:
    await cache.delete(loan_key(loan_id))
    await cache.delete_pattern(f"loans:customer:{customer_id}*")
    await cache.delete_pattern("dashboard:*")


def loan_changed(
    session: AsyncSession, cache: Cache, *, loan_id: uuid.UUID, customer_id: uuid.UUID
) -> None:
    """Invalidate the loan's cached reads once this transaction commits."""

    async def invalidate() -> None:
        await loan_cache_invalidate(cache, loan_id=loan_id, customer_id=customer_id)

    after_commit(session, invalidate)
