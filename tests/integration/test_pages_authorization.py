"""The pages' authorization matrix: every page (GET route of ``namma.web``) × every role ×
(own scope, other scope) and anonymous.

The API's matrix (test_authorization_matrix.py) covers ``/api``; this one covers what a browser
reaches. The rule is one table by address (``AREAS``): who may open the pages under a prefix.
For a role allowed there, an "own" record answers 200 and another branch's, another agent's or
another customer's record answers the 404 page (an Admin sees every branch: 200); a role not
allowed gets the 403 page; nobody signed in is sent to ``/login``. A page whose address matches
no area, or whose path parameter has no record to fill it with (``IDS``), fails
``test_every_page_has_a_rule`` — so a new page cannot ship without deciding who may open it.

"Own" and "other" come from the ``world`` fixture: branch BLR01 (Manager A, Agent A, Customer A)
and branch MYS01 (Manager B, Agent B, Customer B).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal as D
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from sqlalchemy import text

from namma.kit.clock import today_india
from namma.kit.db import transaction
from namma.models import Customer, Document, DocumentKind, DocumentStatus, KycStatus, User
from tests.factories import loan_active
from tests.integration.test_capital import BORROWING
from tests.integration.test_collections import collect, product, settings  # noqa: F401
from tests.integration.test_pages import sign_in

Role = str  # "admin" | "manager" | "agent" | "customer"
ROLES: tuple[Role, ...] = ("admin", "manager", "agent", "customer")
CALLER = {
    "admin": "admin",
    "manager": "manager_a",
    "agent": "agent_a",
    "customer": "customer_user_a",
}

# Who may open the pages under each prefix (the first that matches wins). D-149: the back
# office is one set of pages for Admin and Manager, scoped by the queries; some areas are the
# Admin's alone.
ADMIN_ONLY_OFFICE = ("branches", "products", "capital", "provisioning", "cob", "audit", "jobs")
AREAS: tuple[tuple[str, frozenset[Role]], ...] = (
    *((f"/office/{area}", frozenset({"admin"})) for area in ADMIN_ONLY_OFFICE),
    ("/office/", frozenset({"admin", "manager"})),
    ("/admin", frozenset({"admin"})),
    ("/manager", frozenset({"manager"})),
    ("/agent", frozenset({"agent"})),
    ("/customer", frozenset({"customer"})),
    # The Key Facts Statement: every role that may read the loan (scope decides).
    ("/loans/", frozenset(ROLES)),
    ("/profile", frozenset(ROLES)),
)
# Pages anyone may open (sign-in and its steps) or that are not pages (the service worker,
# the manifest): not in this matrix; the sign-in pages have their own tests.
PUBLIC = re.compile(
    r"^/(agent\.webmanifest|account|login|logout|password|language|totp|recovery|session|sw\.js|manifest|favicon|static)"
    r"|^/$"
)


# Pages that answer a found record by sending the browser on (303) rather than with a page.
# (path → the roles it forwards; a customer's profile is /customer/profile).
FORWARDS: dict[str, frozenset[Role]] = {
    "/customer/payments/{collection_id}/receipt": frozenset({"customer"}),
    "/profile": frozenset({"customer"}),
}


# Parts of pages (htmx) that need their inputs in the query string.
QUERIES: dict[str, str] = {
    "/office/products/{product_id}/preview": "?principal=10000&annual_rate=24&installments=12",
}


def page_routes(app: FastAPI) -> list[str]:
    """The GET page routes: not the API, not the API reference, not public."""
    from fastapi.routing import iter_route_contexts  # included routers are kept lazily

    paths = set()
    for context in iter_route_contexts(app.routes):
        route, path = context.original_route, context.path
        if not isinstance(route, APIRoute) or "GET" not in (context.methods or ()):
            continue
        if path.startswith(("/api", "/metrics", "/ready", "/live", "/health", "/docs", "/redoc")):
            continue
        if path.startswith("/openapi") or PUBLIC.match(path):
            continue
        paths.add(path)
    return sorted(paths)


def area_of(path: str) -> frozenset[Role] | None:
    for prefix, roles in AREAS:
        if path == prefix.rstrip("/") or path.startswith(prefix):
            return roles
    return None


# --- the records that fill path parameters -----------------------------------------------------


@dataclass
class Targets:
    """(own, other) for each path parameter, made on first use."""

    app: Any
    client: Any
    world: Any
    bearer: Any
    product: dict[str, Any]
    made: dict[str, tuple[str, str]] = field(default_factory=dict)

    async def ids(self, name: str) -> tuple[str, str] | None:
        if name not in self.made:
            maker = IDS.get(name)
            if maker is None:
                return None
            self.made[name] = await maker(self)
        return self.made[name]

    async def loans(self) -> tuple[str, str]:
        if "loan_id" not in self.made:
            async with transaction(self.app.state.db) as session:
                for customer in (self.world.customer_a, self.world.customer_b):
                    row = await session.get(Customer, customer.id)
                    assert row is not None
                    row.kyc_status = KycStatus.VERIFIED
                    row.household_monthly_income = D("100000.00")
            own = await loan_active(
                self.app, self.client, self.bearer, self.product,
                customer_id=self.world.customer_a.id, agent=self.world.agent_a,
                manager=self.world.manager_a,
            )  # fmt: skip
            other = await loan_active(
                self.app, self.client, self.bearer, self.product,
                customer_id=self.world.customer_b.id, agent=self.world.agent_b,
                manager=self.world.manager_b,
            )  # fmt: skip
            self.made["loan_id"] = (own, other)
        return self.made["loan_id"]


async def _loan(t: Targets) -> tuple[str, str]:
    return await t.loans()


async def _customer(t: Targets) -> tuple[str, str]:
    return str(t.world.customer_a.id), str(t.world.customer_b.id)


async def _staff(t: Targets) -> tuple[str, str]:
    # A Manager's own staff: an agent of the branch; the other: another branch's agent.
    return str(t.world.agent_a.id), str(t.world.agent_b.id)


async def _branch(t: Targets) -> tuple[str, str]:
    return str(t.world.branch_a.id), str(t.world.branch_b.id)


async def _product(t: Targets) -> tuple[str, str]:
    # Products belong to the institution: the same one is "own" and "other".
    return t.product["id"], t.product["id"]


async def _collection(t: Targets) -> tuple[str, str]:
    own_loan, other_loan = await t.loans()
    ids = []
    for agent, loan in ((t.world.agent_a, own_loan), (t.world.agent_b, other_loan)):
        posted = await collect(t.client, await t.bearer(agent), loan, "500.00")
        assert posted.status_code == 201, posted.text
        ids.append(posted.json()["collection"]["id"])
    return ids[0], ids[1]


async def _document(t: Targets) -> tuple[str, str]:
    """A ready monthly statement of each customer."""
    ids = []
    async with transaction(t.app.state.db) as session:
        for customer in (t.world.customer_a, t.world.customer_b):
            content = b"%PDF-1.4 a statement"
            doc = Document(
                kind=DocumentKind.STATEMENT,
                customer_id=customer.id,
                period_start=dt.date(2026, 10, 1),
                period_end=dt.date(2026, 10, 31),
                status=DocumentStatus.READY,
                content=content,
                sha256=hashlib.sha256(content).hexdigest(),
                size=len(content),
                generated_at=dt.datetime.now(dt.UTC),
            )
            session.add(doc)
            await session.flush()
            ids.append(str(doc.id))
    return ids[0], ids[1]


async def _borrowing(t: Targets) -> tuple[str, str]:
    # Capital belongs to the institution (Admin only): the same borrowing is "own" and "other".
    headers = {**await t.bearer(t.world.admin), "Idempotency-Key": str(uuid.uuid4())}
    made = await t.client.post("/api/capital/borrowings", json=BORROWING, headers=headers)
    assert made.status_code == 201, made.text
    return made.json()["id"], made.json()["id"]


async def _handover(t: Targets) -> tuple[str, str]:
    """A declared (pending) hand-over of each branch's agent."""
    ids = []
    for agent in (t.world.agent_a, t.world.agent_b):
        headers = {**await t.bearer(agent), "Idempotency-Key": str(uuid.uuid4())}
        body = {"business_date": today_india().isoformat(), "amount_deposited": "0.00"}
        made = await t.client.post("/api/cash-handovers", json=body, headers=headers)
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    return ids[0], ids[1]


async def _failed_job(t: Targets) -> tuple[str, str]:
    # Jobs belong to the installation (Admin only): the same failed job is "own" and "other".
    async with transaction(t.app.state.db) as session:
        job_id = (
            await session.execute(
                text(
                    "INSERT INTO procrastinate_jobs (queue_name, task_name, args, status,"
                    " attempts) VALUES ('default', 'notifications:send',"
                    " '{\"notification_id\": \"x\"}', 'failed', 4) RETURNING id"
                )
            )
        ).scalar_one()
    return str(job_id), str(job_id)


async def _restructuring(t: Targets) -> tuple[str, str]:
    """A pending restructuring of each branch's loan, asked by its manager."""
    own_loan, other_loan = await t.loans()
    ids = []
    for manager, loan in ((t.world.manager_a, own_loan), (t.world.manager_b, other_loan)):
        made = await t.client.post(
            "/api/restructurings",
            json={"loan_id": loan, "kind": "moratorium", "periods": 1, "reason": "Flood"},
            headers=await t.bearer(manager),
        )
        assert made.status_code == 201, made.text
        ids.append(made.json()["id"])
    return ids[0], ids[1]


async def _report(t: Targets) -> tuple[str, str]:
    return "par", "par"


IDS: dict[str, Callable[[Targets], Awaitable[tuple[str, str]]]] = {
    "loan_id": _loan,
    "customer_id": _customer,
    "user_id": _staff,
    "staff_id": _staff,
    "branch_id": _branch,
    "product_id": _product,
    "collection_id": _collection,
    "document_id": _document,
    "borrowing_id": _borrowing,
    "handover_id": _handover,
    "job_id": _failed_job,
    "name": _report,
    "request_id": _restructuring,
}
PARAMETER = re.compile(r"{(\w+)(?::\w+)?}")


# --- the tests -------------------------------------------------------------------------------


def test_every_page_has_a_rule(app) -> None:  # type: ignore[no-untyped-def]
    missing = [path for path in page_routes(app) if area_of(path) is None]
    assert missing == [], f"pages with no rule in AREAS: {missing}"
    unfilled = [
        f"{name} in {path}"
        for path in page_routes(app)
        for name in PARAMETER.findall(path)
        if name not in IDS
    ]
    assert unfilled == [], f"path parameters with no record to fill them (add to IDS): {unfilled}"


def expected(role: Role | None, allowed: frozenset[Role], scope: str, path: str) -> set[int]:
    if role is None:
        return {303}  # to /login
    if role not in allowed:
        return {403}
    if scope == "other" and role != "admin" and PARAMETER.search(path):
        return {404}
    if role in FORWARDS.get(path, ()):
        return {303}
    return {200}


async def test_every_page_answers_each_caller_by_its_rule(  # type: ignore[no-untyped-def]
    app, client, world, bearer, product
) -> None:
    targets = Targets(app, client, world, bearer, product)
    wrong: list[str] = []
    for path in page_routes(app):
        allowed = area_of(path)
        assert allowed is not None
        urls = {}
        for scope in ("own", "other"):
            url = path
            for name in PARAMETER.findall(path):
                pair = await targets.ids(name)
                assert pair is not None, name
                url = re.sub(r"{" + name + r"(?::\w+)?}", pair[0 if scope == "own" else 1], url)
            urls[scope] = url + QUERIES.get(path, "")
        for scope, url in urls.items():
            if scope == "other" and url == urls["own"]:
                continue  # the same record for both (or none): nothing to scope
            client.cookies.clear()
            anonymous = await client.get(url, follow_redirects=False)
            if anonymous.status_code not in expected(None, allowed, scope, path) or not (
                anonymous.headers.get("location", "").startswith("/login")
            ):
                wrong.append(f"anonymous {url}: {anonymous.status_code}")
            for role in ROLES:
                user: User = getattr(world, CALLER[role])
                await sign_in(app, client, user)
                answer = await client.get(url, follow_redirects=False)
                want = expected(role, allowed, scope, path)
                if answer.status_code not in want:
                    wrong.append(f"{role} {scope} {url}: {answer.status_code}, want {want}")
                elif answer.status_code in (403, 404):
                    # The refusal is a page, never a JSON error body.
                    assert answer.headers["content-type"].startswith("text/html"), (role, url)
    assert wrong == [], "\n".join(wrong)


def test_the_rule_table_decides_as_written() -> None:
    assert area_of("/office/products/x") == frozenset({"admin"})
    assert area_of("/office/loans") == frozenset({"admin", "manager"})
    assert area_of("/agent/sheet") == frozenset({"agent"})
    assert area_of("/somewhere/else") is None
    assert expected(
        "manager", frozenset({"admin", "manager"}), "other", "/office/loans/{loan_id}"
    ) == {404}
    assert expected(
        "admin", frozenset({"admin", "manager"}), "other", "/office/loans/{loan_id}"
    ) == {200}
    assert expected("agent", frozenset({"admin", "manager"}), "own", "/office/loans") == {403}
