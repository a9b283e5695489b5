"""Cache-aside for loans and customers (the seed's keys and TTLs): a loan's detail for 1 minute,
a customer's for 5; and the version of each agent's collection sheet.

Every loan mutation invalidates, after its commit, the loan, its customer and the dashboards its
branch's figures appear on (`dashboard_patterns`: the branch's and the institution's, never the
other branches'), through the platform cache — Redis when configured, so that every server
process sees the invalidation. (The seed's per-customer loan lists are not cached: the list
query is cheap and scoped.)

**Collection sheets** (`namma.collections.sheet.collection_sheet_kept`): an agent's sheet of
the day is kept under ``sheet:<agent>:<date>`` with the agent's *sheet version* at the time it
was read (``sheetversion:<agent>``, a random token; none until the first change). Whatever
changes an agent's sheet gives that agent a new version once it commits; a kept sheet of another
version is not used. A version, not a delete, so that a sheet read while a change was committing
and stored after it is never served: it carries the version from before the change. Who gets a
new version: the current agent of each customer whose loan changed (`loan_changed`, looked up
in one statement just before the commit) or whose details changed (`customer_changed`); both
agents of an assignment that changed (`sheets_changed`, from `namma.customers.assignments`);
every agent after the close of business. One key per agent, never a pattern. The sheet page's
rendered lines are kept the same way (``sheetpage:<agent>:<date>:<language>``, with the version),
and each of its villages by its content (``sheetvillage:…``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.kit.cache import Cache
from namma.kit.db import after_commit, before_commit, transaction_cache
from namma.models import AgentAssignment, Loan

log = structlog.get_logger(__name__)

LOAN_TTL_SECONDS = 60
CUSTOMER_TTL_SECONDS = 300
# A kept sheet: long enough to serve an agent's working hours' repeated loads, short enough to
# bound what a change made outside this application (by hand in the database) leaves stale.
SHEET_TTL_SECONDS = 900
# A version outlives every sheet kept under it (an expired version reads as "none").
SHEET_VERSION_TTL_SECONDS = 2 * SHEET_TTL_SECONDS


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


def sheet_key(agent_id: uuid.UUID | str, day: dt.date) -> str:
    return f"sheet:{agent_id}:{day.isoformat()}"


def sheet_page_key(agent_id: uuid.UUID | str, day: dt.date, language: str) -> str:
    """The sheet page's lines as rendered in ``language`` (`namma.web.pages.agent`), kept under
    the same sheet version as the sheet."""
    return f"sheetpage:{agent_id}:{day.isoformat()}:{language}"


def sheet_village_key(language: str, index: int, digest: str) -> str:
    """One village of a sheet page as rendered in ``language`` (`namma.web.pages.agent`), as
    the ``index``-th village: named by the digest of its part of the sheet, so never stale."""
    return f"sheetvillage:{language}:{index}:{digest}"


def sheet_version_key(agent_id: uuid.UUID | str) -> str:
    return f"sheetversion:{agent_id}"


async def sheet_kept_read(
    cache: Cache, agent_id: uuid.UUID, key: str
) -> tuple[Any, dict[str, Any] | None]:
    """The agent's sheet version, and the entry kept under ``key`` if it was kept under that
    version (None otherwise). The version is read first: a change committed after this read
    gives a new one, so whatever the caller stores with this version — read before that change,
    perhaps — is never served once it has."""
    version = await cache.get(sheet_version_key(agent_id))
    kept = await cache.get(key)
    if isinstance(kept, dict) and kept.get("version") == version:
        return version, kept
    return version, None


async def sheet_versions_new(cache: Cache, agent_ids: Iterable[uuid.UUID]) -> None:
    """Give each agent's sheet a new version: a sheet kept under an older one is not used."""
    for agent_id in sorted(set(agent_ids)):
        await cache.set(sheet_version_key(agent_id), uuid.uuid4().hex, SHEET_VERSION_TTL_SECONDS)


# Renews an agent's kept sheet after the commit by putting the changed lines into it, with a
# new version (`namma.collections.sheet.sheet_line_renew`): whether it did; if not, the plain new
# version follows.
SheetPatcher = Callable[[Cache], Awaitable[bool]]
_SHEET_PATCHERS = "namma.sheet_patchers"


def sheet_patch_offer(session: AsyncSession, agent_id: uuid.UUID, patcher: SheetPatcher) -> None:
    """After this transaction commits, renew ``agent_id``'s sheet with ``patcher`` rather than
    with a plain new version (which follows if the patcher declines or fails)."""
    session.info.setdefault(_SHEET_PATCHERS, {})[agent_id] = patcher


def sheets_changed(
    session: AsyncSession, agent_ids: Iterable[uuid.UUID], cache: Cache | None = None
) -> None:
    """The agents' sheets get new versions once this transaction commits."""
    target: Cache | None = cache if cache is not None else transaction_cache(session)
    agents = set(agent_ids)
    if target is None or not agents:
        return

    async def invalidate() -> None:
        assert target is not None
        patchers: dict[uuid.UUID, SheetPatcher] = session.info.get(_SHEET_PATCHERS, {})
        plain = [a for a in agents if a not in patchers or not await _patched(patchers[a], target)]
        await sheet_versions_new(target, plain)

    after_commit(session, invalidate)


async def _patched(patcher: SheetPatcher, cache: Cache) -> bool:
    try:
        return await patcher(cache)
    except Exception:
        log.exception("sheet.patch_failed")  # committed: the plain new version follows
        return False


_SHEET_CUSTOMERS = "namma.sheet_customers"
_SHEET_CACHE = "namma.sheet_cache"


def _customer_sheets_changed(
    session: AsyncSession, customer_id: uuid.UUID, cache: Cache | None
) -> None:
    """The sheet of the customer's current agent changes: note the customer; their agents are
    looked up once for the whole transaction, just before it commits (after every change, and
    before the audit chain's append, which stays the last step)."""
    session.info.setdefault(_SHEET_CUSTOMERS, set()).add(customer_id)
    if cache is not None:
        session.info.setdefault(_SHEET_CACHE, cache)

    async def agents_find(session: AsyncSession) -> None:
        customers: set[uuid.UUID] = session.info.pop(_SHEET_CUSTOMERS, set())
        given: Cache | None = session.info.pop(_SHEET_CACHE, None)
        if customers:
            agents = await session.scalars(
                select(AgentAssignment.agent_id)
                .where(AgentAssignment.customer_id.in_(customers))
                .where(AgentAssignment.ended_at.is_(None))
            )
            sheets_changed(session, agents.all(), given)

    before_commit(session, "sheets", agents_find)


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
    agent_id: uuid.UUID | None = None,
) -> None:
    """Invalidate the loan's cached reads once this transaction commits (through ``cache``, by
    default the transaction's own: `namma.kit.db.transaction_cache`); ``branch_id``, the loan's
    branch, limits the dashboards dropped to the ones showing it (all of them without it).
    ``agent_id``: the customer's current agent when the caller knows it — an agent acting on a
    loan is, by their scope, its customer's one current agent — so that their sheet's new
    version needs no lookup of the customer's agents before the commit (a collection's hot
    path)."""
    target: Cache | None = cache if cache is not None else transaction_cache(session)
    if target is None:
        return  # nothing is cached in this process

    async def invalidate() -> None:
        assert target is not None
        await loan_cache_invalidate(
            target, loan_id=loan_id, customer_id=customer_id, branch_id=branch_id
        )

    after_commit(session, invalidate)
    if agent_id is not None:
        sheets_changed(session, (agent_id,), cache)
    else:
        _customer_sheets_changed(session, customer_id, cache)


def customer_changed(
    session: AsyncSession, cache: Cache, *, customer_id: uuid.UUID, loan_ids: list[uuid.UUID]
) -> None:
    """Invalidate the customer's cached reads (and their loans', which show the customer) and
    every dashboard (an edit can move the customer between agents or branches)."""

    async def invalidate() -> None:
        await cache.delete_matching(
            dashboard_patterns(None),
            also=(customer_key(customer_id), *(loan_key(i) for i in loan_ids)),
        )

    after_commit(session, invalidate)
    _customer_sheets_changed(session, customer_id, cache)  # the name, phone, village shown


async def customer_and_loans_changed(
    session: AsyncSession, cache: Cache, customer_id: uuid.UUID
) -> None:
    """``customer_changed`` with the customer's loans looked up (after an edit of the customer)."""
    loan_ids = list(
        (await session.scalars(select(Loan.id).where(Loan.customer_id == customer_id))).all()
    )
    customer_changed(session, cache, customer_id=customer_id, loan_ids=loan_ids)
