"""The dashboards' 12-month trend kept with its snapshot (D-204, ``namma.reports.monthly``):
after every kind of write, the kept sums plus what their snapshot could not see equal a full
read — also when an entry with a lower id commits after the kept read, which a watermark on
entry ids would miss; kept sums of another database, or of a database that went back in time,
are not used; a transaction that has written keeps nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

from namma.kit.cache import MemoryCache
from namma.kit.clock import today_india
from namma.kit.db import transaction
from namma.ledger.service import Leg, journal_post
from namma.models import AccountKind
from namma.reports.base import ReportFilters
from namma.reports.monthly import monthly_key, monthly_sums, monthly_trend
from namma.reports.queries import ledger_portfolio
from tests.integration.test_collections import (  # noqa: F401  (fixtures)
    collect,
    customer,
    make_loan,
    product,
    settings,
)

D = Decimal


async def _full(app: Any, branch_id: uuid.UUID | None) -> Any:
    async with transaction(app.state.db) as session:
        return await monthly_sums(session, None, branch_id=branch_id, today=today_india())


async def _kept(app: Any, cache: MemoryCache, branch_id: uuid.UUID | None) -> Any:
    async with transaction(app.state.db) as session:
        return await monthly_sums(session, cache, branch_id=branch_id, today=today_india())


async def _expense(session: Any, branch_id: uuid.UUID, amount: str, on: dt.date) -> int:
    entry = await journal_post(
        session,
        kind="expense.test",
        entry_date=on,
        memo="Rent",
        branch_id=branch_id,
        legs=[
            Leg(AccountKind.INTEREST_EXPENSE, debit=D(amount)),
            Leg(AccountKind.BRANCH_CASH, credit=D(amount), branch_id=branch_id),
        ],
    )
    return entry.id


async def _both_agree(app: Any, cache: MemoryCache, branches: list[uuid.UUID | None]) -> None:
    for branch_id in branches:
        assert await _kept(app, cache, branch_id) == await _full(app, branch_id), branch_id


async def test_the_kept_trend_equals_a_full_read_after_every_kind_of_write(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, customer
):
    cache = MemoryCache()
    branches: list[uuid.UUID | None] = [world.branch_a.id, world.branch_b.id, None]
    await _both_agree(app, cache, branches)  # nothing yet; the empty sums are kept
    assert (await cache.get(monthly_key(world.branch_a.id)))["value"] == {}

    # Two disbursements (the factory pays out today, then back-dates the loan, not the ledger).
    today = today_india()
    old_loan = await make_loan(app, client, bearer, world, product)
    await _both_agree(app, cache, branches)
    new_loan = await make_loan(app, client, bearer, world, product, amount="50000.00")
    await _both_agree(app, cache, branches)

    # Collections, a reversal, an expense in the branch, one back-dated to last month.
    manager = await bearer(world.manager_a)
    paid = await collect(client, manager, old_loan, "8884.88")
    assert paid.status_code == 201, paid.text
    await collect(client, manager, new_loan, "1000.00")
    await _both_agree(app, cache, branches)
    reversed_ = await client.post(
        f"/api/collections/{paid.json()['collection']['id']}/reverse",
        json={"reason": "Counted twice"},
        headers=await bearer(world.admin),
    )
    assert reversed_.status_code == 200, reversed_.text
    async with transaction(app.state.db) as session:
        await _expense(session, world.branch_a.id, "750.00", today - dt.timedelta(days=35))
    await _both_agree(app, cache, branches)

    full = await _full(app, world.branch_a.id)
    this_month = today.replace(day=1)
    assert full[this_month][:3] == (2, D("150000.00"), D("1000.00"))  # the reversal nets out
    back_dated = (today - dt.timedelta(days=35)).replace(day=1)
    assert full[back_dated] == (0, D("0.00"), D("0.00"), D("0.00"), D("750.00"))
    # Branch B saw none of it; the institution all of it.
    assert await _full(app, world.branch_b.id) == {}
    assert await _full(app, None) == full


async def test_an_entry_that_commits_after_a_kept_read_began_is_added(  # type: ignore[no-untyped-def]
    app, world
):
    """The entry with the lower id commits last: invisible to the kept read, then added."""
    cache = MemoryCache()
    branch = world.branch_a.id
    today = today_india()
    async with transaction(app.state.db) as session:
        # The accounts exist before the two transactions (creating one would make them wait).
        await _expense(session, branch, "1.00", today)
    await _kept(app, cache, branch)
    async with transaction(app.state.db) as slow:
        slow_id = await _expense(slow, branch, "100.00", today)  # posted, not committed
        async with transaction(app.state.db) as quick:
            quick_id = await _expense(quick, branch, "20.00", today)
        assert slow_id < quick_id  # what an id watermark would call "already seen"
        seen = await _kept(app, cache, branch)
        assert seen[today.replace(day=1)][4] == D("21.00")
    # The slow transaction has committed now.
    after = await _kept(app, cache, branch)
    assert after[today.replace(day=1)][4] == D("121.00")
    assert after == await _full(app, branch)

    # One that rolls back is never added.
    try:
        async with transaction(app.state.db) as failing:
            await _expense(failing, branch, "5.00", today)
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    assert (await _kept(app, cache, branch))[today.replace(day=1)][4] == D("121.00")


async def test_kept_sums_of_another_database_or_an_earlier_moment_are_not_used(  # type: ignore[no-untyped-def]
    app, world
):
    cache = MemoryCache()
    branch = world.branch_a.id
    today = today_india()
    async with transaction(app.state.db) as session:
        await _expense(session, branch, "300.00", today)
    await _kept(app, cache, branch)
    key = monthly_key(branch)
    kept = await cache.get(key)
    wrong = {today.replace(day=1).isoformat(): [0, "0.00", "0.00", "0.00", "999.00"]}

    # Another database (its oid), the same transaction ids.
    await cache.set(key, kept | {"database": "1", "value": wrong}, 60)
    assert (await _kept(app, cache, branch))[today.replace(day=1)][4] == D("300.00")

    # This database restored to an earlier moment: the kept snapshot is ahead of it.
    xmax = kept["snapshot"].split(":")[1]
    ahead = f"{int(xmax) + 10**6}:{int(xmax) + 10**6}:"
    await cache.set(key, kept | {"snapshot": ahead, "value": wrong}, 60)
    assert (await _kept(app, cache, branch))[today.replace(day=1)][4] == D("300.00")

    # Kept for another day: read in full.
    await cache.set(key, kept | {"day": "2000-01-01", "value": wrong}, 60)
    assert (await _kept(app, cache, branch))[today.replace(day=1)][4] == D("300.00")

    # Kept by an earlier version in another shape (its sums under "months"), or unreadable:
    # read in full and replaced, never an error (a cache outlives an upgrade).
    earlier = {k: v for k, v in kept.items() if k != "value"} | {"months": wrong}
    for shape in (earlier, kept | {"value": {"2026-13-01": [0]}}, kept | {"snapshot": "x"}):
        await cache.set(key, shape, 60)
        assert (await _kept(app, cache, branch))[today.replace(day=1)][4] == D("300.00")
        assert (await cache.get(key)).keys() == kept.keys()


async def test_a_transaction_that_has_written_keeps_nothing(app, world):  # type: ignore[no-untyped-def]
    cache = MemoryCache()
    branch = world.branch_a.id
    today = today_india()
    try:
        async with transaction(app.state.db) as session:
            await _expense(session, branch, "40.00", today)
            seen = await monthly_sums(session, cache, branch_id=branch, today=today)
            assert seen[today.replace(day=1)][4] == D("40.00")  # its own entry, read in full
            raise RuntimeError("rolled back")
    except RuntimeError:
        pass
    assert await cache.get(monthly_key(branch)) is None
    assert await _kept(app, cache, branch) == {}


async def test_the_dashboards_keep_the_trend_between_builds(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, customer
):
    """Through the API: a Manager's and the Admin's dashboard builds keep their trend's sums
    (the request's transaction has written nothing), and a build after a collection, which
    drops the cached dashboard, shows the collection in this month's figure."""
    loan_id = await make_loan(app, client, bearer, world, product)
    manager = await bearer(world.manager_a)
    admin = await bearer(world.admin)
    for headers in (manager, admin):
        built = await client.get("/api/dashboard", headers=headers)
        assert built.status_code == 200, built.text
    kept = await app.state.cache.get(monthly_key(world.branch_a.id))
    assert kept is not None and kept["day"] == today_india().isoformat()
    assert await app.state.cache.get(monthly_key(None)) is not None

    paid = await collect(client, manager, loan_id, "1234.56")
    assert paid.status_code == 201, paid.text
    after = (await client.get("/api/dashboard", headers=manager)).json()["monthly"][-1]
    assert after["collected_amount"] == "1234.56"
    assert after == (await _trend_full(app, world.branch_a.id))[-1]


async def _trend_full(app: Any, branch_id: uuid.UUID | None) -> Any:
    async with transaction(app.state.db) as session:
        return await monthly_trend(session, None, branch_id=branch_id, today=today_india())


# --- a scope's portfolio balance, the reports' reconciliation (namma.reports.kept) -----------


async def _portfolio_both(app: Any, f: ReportFilters) -> tuple[Decimal, Decimal]:
    """(kept through the transaction's cache, read in full without one)."""
    async with transaction(app.state.db) as session:
        kept = await ledger_portfolio(session, f)
    async with app.state.db.sessionmaker() as session:
        full = await ledger_portfolio(session, f)
    return kept, full


async def test_the_kept_portfolio_balance_equals_a_full_read_after_writes(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product, customer
):
    """The PAR report's reconciliation reads the portfolio balance of a branch (or the
    institution) kept with its snapshot: after a disbursement, collections and a reversal it
    equals a full read and the report's own outstanding principal; an agent's scope is read in
    full and never kept."""
    cache = app.state.db.cache
    today = today_india()
    branch_a = ReportFilters(today, today, world.branch_a.id)
    everyone = ReportFilters(today, today, None)
    first = await make_loan(app, client, bearer, world, product)
    for f in (branch_a, everyone):
        kept, full = await _portfolio_both(app, f)
        assert kept == full > 0
    assert await cache.get(f"kept:portfolio:{world.branch_a.id}") is not None

    manager = await bearer(world.manager_a)
    await make_loan(app, client, bearer, world, product, amount="50000.00")
    paid = await collect(client, manager, first, "8884.88")
    assert paid.status_code == 201, paid.text
    reversed_ = await client.post(
        f"/api/collections/{paid.json()['collection']['id']}/reverse",
        json={"reason": "Counted twice"},
        headers=await bearer(world.admin),
    )
    assert reversed_.status_code == 200, reversed_.text
    await collect(client, manager, first, "1000.00")
    for f in (branch_a, everyone):
        kept, full = await _portfolio_both(app, f)
        assert kept == full, f
    # Through the API: the report's outstanding principal and the kept ledger figure agree.
    par = (await client.get("/api/reports/par", headers=manager)).json()
    (check,) = par["reconciliation"]
    kept, full = await _portfolio_both(app, branch_a)
    assert check["report_amount"] == check["ledger_amount"] == str(kept) == str(full)

    # An agent's scope is read in full and never kept: a wrong figure kept for the branch is
    # neither used nor replaced by it.
    key = f"kept:portfolio:{world.branch_a.id}"
    planted = (await cache.get(key)) | {"value": "1.00"}
    await cache.set(key, planted, 60)
    agent = ReportFilters(today, today, world.branch_a.id, agent_id=world.agent_a.id)
    agent_kept, agent_full = await _portfolio_both(app, agent)
    assert agent_kept == agent_full > D("1.00")
    assert await cache.get(key) == planted
