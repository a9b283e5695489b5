"""The authorization matrix: every `/api` route × every role × (own scope, other scope) and
anonymous, with the status each must get.

``RULES`` is the table. A route of the application without a rule fails
``test_every_api_route_has_a_rule`` (so a new route cannot ship without deciding who may call
it), and a rule for a route that no longer exists fails ``test_every_rule_names_a_live_route``.

Reading a rule: ``admin=allow()`` means the same answer for the own and the other target;
``manager=(allow(), hidden())`` is (own, other). Targets come from the ``world`` fixture:
"own" is branch BLR01 — the manager's branch, the agent's assigned customer (or the agent
themself), the customer's own record; "other" is branch MYS01 (another branch's staff, a customer
neither of that branch nor assigned to the agent, another customer). Admin sees every branch,
so both of its targets are allowed. ``anonymous`` sends no credentials at all.

The three layers (DESIGN.md §2.6): no credentials → 401; a role without the permission → 403;
the permission but a record outside the caller's scope → 404 (as if it did not exist). The login
steps and refresh are public: they answer bad input with 401/422, never 403.

Speed: one test per route sends every request that must not change anything in one world;
an allowed call that changes state (deactivate, create, …) runs in a world of its own.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

import httpx
import pyotp
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from psycopg import sql
from sqlalchemy import func, select, update

from namma.auth.deps import Principal
from namma.auth.scope import customer_scope, customer_scope_sql
from namma.auth.totp import totp_secret_encrypt
from namma.kit.clock import today_india
from namma.kit.db import raw_connection, transaction
from namma.models import AgentAssignment, Customer, Role, User
from tests.integration.conftest import _HASH, PASSWORD, World

Caller = Literal["anonymous", "admin", "manager", "agent", "customer"]
Scope = Literal["own", "other"]
ROLES: tuple[Caller, ...] = ("admin", "manager", "agent", "customer")
# Who acts for each role (attributes of the world); their "own" targets are in branch BLR01.
CALLER_USER = {
    "admin": "admin",
    "manager": "manager_a",
    "agent": "agent_a",
    "customer": "customer_user_a",
}
NEW_PASSWORD = "a brand new passphrase for the matrix"


# --- expectations -------------------------------------------------------------------------


@dataclass(frozen=True)
class Expect:
    status: int
    bug: str | None = None  # a known bug: the case runs alone, xfail(strict=True)

    def __str__(self) -> str:
        return str(self.status)


def allow(status: int = 200) -> Expect:
    return Expect(status)


def deny() -> Expect:
    """The role lacks the permission."""
    return Expect(403)


def hidden() -> Expect:
    """Permitted, but the record is outside the caller's scope: answered as unknown."""
    return Expect(404)


def unauthenticated() -> Expect:
    return Expect(401)


def known_bug(expect: Expect, reason: str) -> Expect:
    return Expect(expect.status, bug=reason)


Cell = Expect | tuple[Expect, Expect]  # the same for both targets, or (own, other)


@dataclass
class Req:
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    headers: dict[str, str] = field(default_factory=dict)  # extra, e.g. Idempotency-Key
    query: dict[str, str] = field(default_factory=dict)  # the query string


@dataclass
class Ctx:
    app: FastAPI
    client: httpx.AsyncClient
    world: World
    caller: Caller
    scope: Scope
    headers: dict[str, str]

    def pick(self, own: Any, other: Any) -> Any:
        return own if self.scope == "own" else other


Builder = Callable[[Ctx], Awaitable[Req]]


@dataclass(frozen=True)
class Rule:
    build: Builder
    admin: Cell
    manager: Cell
    agent: Cell
    customer: Cell
    anonymous: Expect = field(default_factory=unauthenticated)
    # False: the route has no target record, "other" would be the same request as "own".
    scoped: bool = True
    # True: an allowed call changes the world, so each allowed case gets a world of its own.
    # None: True for every method but GET.
    mutates: bool | None = None

    def expect(self, caller: Caller, scope: Scope) -> Expect:
        if caller == "anonymous":
            return self.anonymous
        cell: Cell = getattr(self, caller)
        if isinstance(cell, Expect):
            return cell
        return cell[0] if scope == "own" else cell[1]

    def cases(self) -> Iterator[tuple[Caller, Scope]]:
        yield "anonymous", "own"
        for role in ROLES:
            yield role, "own"
            if self.scoped:
                yield role, "other"

    def runs_alone(self, method: str, caller: Caller, scope: Scope) -> bool:
        expect = self.expect(caller, scope)
        mutates = self.mutates if self.mutates is not None else method != "GET"
        return expect.bug is not None or (mutates and 200 <= expect.status < 300)


def public(build: Builder, expect: Expect, *, mutates: bool = False) -> Rule:
    """A route anyone may call (the login steps, refresh): credentials make no difference."""
    return Rule(
        build,
        admin=expect,
        manager=expect,
        agent=expect,
        customer=expect,
        anonymous=expect,
        scoped=False,
        mutates=mutates,
    )


# --- request builders -----------------------------------------------------------------------


async def _nothing(ctx: Ctx) -> Req:
    return Req()


def _body(json: Any) -> Builder:
    async def build(ctx: Ctx) -> Req:
        return Req(json=json)

    return build


async def _login_as(ctx: Ctx, login: str) -> dict[str, Any]:
    response = await ctx.client.post(
        "/api/auth/login", json={"login": login, "password": PASSWORD, "token_delivery": "body"}
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _login(ctx: Ctx) -> Req:
    return Req(
        json={"login": ctx.world.agent_a.email, "password": PASSWORD, "token_delivery": "body"}
    )


async def _login_totp(ctx: Ctx) -> Req:
    # A fresh secret for every case, so no code is ever presented twice.
    secret = pyotp.random_base32()
    async with transaction(ctx.app.state.db) as session:
        await session.execute(
            update(User)
            .where(User.id == ctx.world.agent_a.id)
            .values(
                totp_secret_encrypted=totp_secret_encrypt(
                    secret, secret_key=ctx.app.state.settings.secret_key.get_secret_value()
                ),
                totp_enabled_at=User.created_at,
                totp_last_step=None,
            )
        )
    step1 = await _login_as(ctx, ctx.world.agent_a.email or "")
    assert step1["status"] == "totp_required", step1
    return Req(
        json={
            "challenge": step1["challenge"],
            "code": pyotp.TOTP(secret).now(),
            "token_delivery": "body",
        }
    )


async def _admin_enrol_challenge(ctx: Ctx) -> str:
    step1 = await _login_as(ctx, ctx.world.admin.email or "")
    assert step1["status"] == "totp_enrolment_required", step1
    return str(step1["challenge"])


async def _login_totp_enrol(ctx: Ctx) -> Req:
    return Req(json={"challenge": await _admin_enrol_challenge(ctx)})


async def _login_totp_enrol_confirm(ctx: Ctx) -> Req:
    challenge = await _admin_enrol_challenge(ctx)
    started = await ctx.client.post("/api/auth/login/totp-enrol", json={"challenge": challenge})
    assert started.status_code == 200, started.text
    code = pyotp.TOTP(started.json()["secret"]).now()
    return Req(json={"challenge": challenge, "code": code, "token_delivery": "body"})


async def _refresh(ctx: Ctx) -> Req:
    session = await _login_as(ctx, ctx.world.agent_a.email or "")
    return Req(json={"refresh_token": session["refresh_token"]})


async def _password(ctx: Ctx) -> Req:
    return Req(json={"current_password": PASSWORD, "new_password": NEW_PASSWORD})


async def _totp_confirm(ctx: Ctx) -> Req:
    started = await ctx.client.post("/api/auth/totp/enrol", headers=ctx.headers)
    if started.status_code != 200:  # the caller may not enrol: any code will do
        return Req(json={"code": "123456"})
    return Req(json={"code": pyotp.TOTP(started.json()["secret"]).now()})


def _staff(ctx: Ctx) -> str:
    """A staff member: own = of the caller's branch (for an agent: themself), other = MYS01."""
    w = ctx.world
    own = w.agent_a if ctx.caller == "agent" else w.agent_a2
    return str(ctx.pick(own, w.agent_b).id)


def _staff_target(json: Any = None) -> Builder:
    async def build(ctx: Ctx) -> Req:
        return Req(params={"user_id": _staff(ctx)}, json=json)

    return build


async def _staff_create(ctx: Ctx) -> Req:
    w = ctx.world
    return Req(
        json={
            "name": "Nandini Agent",
            "role": "agent",
            "branch_id": str(ctx.pick(w.branch_a, w.branch_b).id),
            "email": "nandini@example.com",
            "password": NEW_PASSWORD,
        }
    )


async def _staff_reactivate(ctx: Ctx) -> Req:
    # A colleague who was deactivated (never the caller: their token would stop working).
    target = ctx.pick(ctx.world.agent_a2, ctx.world.agent_b)
    async with transaction(ctx.app.state.db) as session:
        await session.execute(update(User).where(User.id == target.id).values(is_active=False))
    return Req(params={"user_id": str(target.id)})


async def _staff_permissions(ctx: Ctx) -> Req:
    manager = ctx.pick(ctx.world.manager_a, ctx.world.manager_b)
    return Req(params={"user_id": str(manager.id)}, json={"permissions": ["collection:reverse"]})


async def _second_agent(ctx: Ctx) -> str:
    """Another active agent of the target customer's branch (made once per world)."""
    w = ctx.world
    if ctx.scope == "own":
        return str(w.agent_a2.id)
    async with transaction(ctx.app.state.db) as session:
        found = await session.scalar(select(User.id).where(User.email == "agent.b2@example.com"))
        if found is None:
            agent = User(
                name="Bhavya Agent",
                role=Role.AGENT,
                branch_id=w.branch_b.id,
                email="agent.b2@example.com",
                phone="9000000099",
                password_hash=_HASH,
            )
            session.add(agent)
            await session.flush()
            found = agent.id
    return str(found)


def _customer(ctx: Ctx) -> str:
    return str(ctx.pick(ctx.world.customer_a, ctx.world.customer_b).id)


def _customer_target(json: Any = None) -> Builder:
    async def build(ctx: Ctx) -> Req:
        return Req(params={"customer_id": _customer(ctx)}, json=json)

    return build


async def _customer_agent_set(ctx: Ctx) -> Req:
    return Req(
        params={"customer_id": _customer(ctx)},
        json={"agent_id": await _second_agent(ctx), "reason": "matrix"},
    )


async def _agent_reassign(ctx: Ctx) -> Req:
    from_agent = ctx.pick(ctx.world.agent_a, ctx.world.agent_b)
    return Req(
        params={"agent_id": str(from_agent.id)},
        json={"to_agent_id": await _second_agent(ctx), "reason": "matrix"},
    )


# --- the table --------------------------------------------------------------------------------

RULES: dict[tuple[str, str], Rule] = {
    # Public: the login steps and refresh. Credentials are ignored; bad input is 401/422.
    ("POST", "/api/auth/login"): public(_login, allow()),
    ("POST", "/api/auth/login/totp"): public(_login_totp, allow()),
    ("POST", "/api/auth/login/totp-enrol"): public(_login_totp_enrol, allow()),
    ("POST", "/api/auth/login/totp-enrol/confirm"): public(
        _login_totp_enrol_confirm, allow(), mutates=True
    ),
    ("POST", "/api/auth/refresh"): public(_refresh, allow()),
    # Your own account: every logged-in user.
    ("POST", "/api/auth/logout"): Rule(
        _nothing,
        admin=allow(204),
        manager=allow(204),
        agent=allow(204),
        customer=allow(204),
        scoped=False,
        mutates=False,  # ends only the caller's own, fresh session
    ),
    ("GET", "/api/auth/me"): Rule(
        _nothing, admin=allow(), manager=allow(), agent=allow(), customer=allow(), scoped=False
    ),
    ("POST", "/api/auth/password"): Rule(
        _password,
        admin=allow(204),
        manager=allow(204),
        agent=allow(204),
        customer=allow(204),
        scoped=False,
    ),
    ("POST", "/api/auth/totp/enrol"): Rule(
        _nothing,
        admin=allow(),
        manager=allow(),
        agent=allow(),
        customer=allow(),
        scoped=False,
        mutates=False,  # a pending secret, replaced by the next start
    ),
    ("POST", "/api/auth/totp/confirm"): Rule(
        _totp_confirm,
        admin=allow(),
        manager=allow(),
        agent=allow(),
        customer=allow(),
        scoped=False,
    ),
    # Branches: staff read their own (Admin: all); only Admin creates.
    ("GET", "/api/branches"): Rule(
        _nothing, admin=allow(), manager=allow(), agent=allow(), customer=deny(), scoped=False
    ),
    ("POST", "/api/branches"): Rule(
        _body({"code": "HBL01", "name": "Hubballi"}),
        admin=allow(201),
        manager=deny(),
        agent=deny(),
        customer=deny(),
        scoped=False,
    ),
    # Staff: Admin all; Manager their branch (changes Agents only); Agents and customers none.
    ("GET", "/api/staff"): Rule(
        _nothing, admin=allow(), manager=allow(), agent=deny(), customer=deny(), scoped=False
    ),
    ("GET", "/api/staff/{user_id}"): Rule(
        _staff_target(), admin=allow(), manager=(allow(), hidden()), agent=deny(), customer=deny()
    ),
    ("POST", "/api/staff"): Rule(
        _staff_create,
        admin=allow(201),
        # Another branch's id is in the body, not the path: refused (403), not hidden.
        manager=(allow(201), deny()),
        agent=deny(),
        customer=deny(),
    ),
    ("POST", "/api/staff/{user_id}/deactivate"): Rule(
        _staff_target(),
        admin=allow(),
        manager=(allow(), hidden()),
        agent=deny(),
        customer=deny(),
    ),
    ("POST", "/api/staff/{user_id}/reactivate"): Rule(
        _staff_reactivate,
        admin=allow(),
        manager=(allow(), hidden()),
        agent=deny(),
        customer=deny(),
    ),
    ("POST", "/api/staff/{user_id}/reset-password"): Rule(
        _staff_target({"new_password": NEW_PASSWORD}),
        admin=allow(),
        manager=(allow(), hidden()),
        agent=deny(),
        customer=deny(),
    ),
    ("POST", "/api/staff/{user_id}/role"): Rule(
        _staff_target({"role": "manager"}),
        admin=allow(),
        manager=deny(),
        agent=deny(),
        customer=deny(),
    ),
    ("PUT", "/api/staff/{user_id}/permissions"): Rule(
        _staff_permissions, admin=allow(), manager=deny(), agent=deny(), customer=deny()
    ),
    # Agent assignments: Admin and the customer's branch Manager assign; anyone in scope reads.
    ("PUT", "/api/customers/{customer_id}/agent"): Rule(
        _customer_agent_set,
        admin=allow(),
        manager=(allow(), hidden()),
        agent=deny(),
        customer=deny(),
    ),
    ("POST", "/api/customers/{customer_id}/agent/end"): Rule(
        _customer_target({"reason": "moved away"}),
        admin=allow(),
        manager=(allow(), hidden()),
        agent=deny(),
        customer=deny(),
    ),
    ("GET", "/api/customers/{customer_id}/agent/history"): Rule(
        _customer_target(),
        admin=allow(),
        manager=(allow(), hidden()),
        agent=(allow(), hidden()),
        # customer:read, scoped to themselves (permissions.py gives customers their own records).
        customer=(allow(), hidden()),
    ),
    ("POST", "/api/agents/{agent_id}/reassign"): Rule(
        _agent_reassign,
        admin=allow(),
        manager=(allow(), hidden()),
        agent=deny(),
        customer=deny(),
    ),
    # Audit log: Admin (and a Manager granted audit:read, see test_staff_and_assignments).
    ("GET", "/api/audit"): Rule(
        _nothing, admin=allow(), manager=deny(), agent=deny(), customer=deny(), scoped=False
    ),
}

# --- lending: products, loans, ledger -------------------------------------------------------

MATRIX_PRODUCT = {
    "code": "MX-W",
    "name": "Matrix weekly",
    "terms": {"frequency": "weekly"},
    "limits": {
        "min_principal": "1000.00",
        "max_principal": "50000.00",
        "min_rate": "10",
        "max_rate": "26",
        "default_rate": "24",
        "min_installments": 4,
        "max_installments": 52,
    },
}


async def _product_id(ctx: Ctx, *, active: bool = True) -> str:
    """The matrix product (made once per world), active or not as asked."""
    from namma.models import LoanProduct, LoanProductVersion

    async with transaction(ctx.app.state.db) as session:
        product = await session.scalar(select(LoanProduct).where(LoanProduct.code == "MX-W"))
        if product is None:
            product = LoanProduct(code="MX-W", name="Matrix weekly", latest_version=1)
            session.add(product)
            await session.flush()
            session.add(
                LoanProductVersion(
                    product_id=product.id,
                    version=1,
                    terms={"frequency": "weekly"},
                    min_principal=Decimal("1000"),
                    max_principal=Decimal("50000"),
                    min_rate=Decimal("10"),
                    max_rate=Decimal("26"),
                    default_rate=Decimal("24"),
                    min_installments=4,
                    max_installments=52,
                )
            )
        product.is_active = active
        return str(product.id)


async def _loan_id(ctx: Ctx, status: str) -> str:
    """A loan of the target customer (own: customer A, other: customer B) in ``status``,
    applied by that customer's agent."""
    from namma.loans.service import loan_apply, loan_approve, loan_disburse, today_india
    from namma.models import Customer, DisbursementMethod, KycStatus
    from tests.integration.test_loans import acting

    w = ctx.world
    customer = ctx.pick(w.customer_a, w.customer_b)
    agent = ctx.pick(w.agent_a, w.agent_b)
    manager = ctx.pick(w.manager_a, w.manager_b)
    product_id = await _product_id(ctx)
    async with transaction(ctx.app.state.db) as session:
        row = await session.get(Customer, customer.id)
        assert row is not None
        row.kyc_status = KycStatus.VERIFIED
        row.household_monthly_income = Decimal("50000.00")
        loan = await loan_apply(
            session,
            principal=acting(agent),
            customer_id=customer.id,
            product_id=uuid.UUID(product_id),
            amount=Decimal("10000.00"),
            annual_rate=None,
            installments=12,
            first_due_on=None,
            purpose=None,
        )
        if status in ("approved", "active"):
            await loan_approve(session, principal=acting(manager), loan_id=loan.id)
        if status == "active":
            await loan_disburse(
                session,
                principal=acting(manager),
                loan_id=loan.id,
                disbursed_on=today_india(),
                method=DisbursementMethod.CASH,
                reference=None,
            )
        return str(loan.id)


def _loan(status: str, json: Any = None) -> Builder:
    async def build(ctx: Ctx) -> Req:
        return Req(params={"loan_id": await _loan_id(ctx, status)}, json=json)

    return build


async def _loan_apply(ctx: Ctx) -> Req:
    from namma.models import Customer

    customer = ctx.pick(ctx.world.customer_a, ctx.world.customer_b)
    async with transaction(ctx.app.state.db) as session:
        row = await session.get(Customer, customer.id)
        assert row is not None
        row.household_monthly_income = Decimal("50000.00")
    return Req(
        json={
            "customer_id": str(customer.id),
            "product_id": await _product_id(ctx),
            "amount": "10000.00",
            "installments": 12,
        }
    )


async def _product(ctx: Ctx) -> Req:
    return Req(params={"product_id": await _product_id(ctx)})


async def _product_version(ctx: Ctx) -> Req:
    return Req(
        params={"product_id": await _product_id(ctx)},
        json={"terms": MATRIX_PRODUCT["terms"], "limits": MATRIX_PRODUCT["limits"]},
    )


async def _inactive_product(ctx: Ctx) -> Req:
    return Req(params={"product_id": await _product_id(ctx, active=False)})


async def _cash_account(ctx: Ctx) -> Req:
    """The target branch's cash account (made by a disbursement there)."""
    from namma.models import AccountKind, LedgerAccount

    await _loan_id(ctx, "active")
    branch = ctx.pick(ctx.world.branch_a, ctx.world.branch_b)
    async with transaction(ctx.app.state.db) as session:
        account = await session.scalar(
            select(LedgerAccount.id)
            .where(LedgerAccount.kind == AccountKind.BRANCH_CASH)
            .where(LedgerAccount.branch_id == branch.id)
        )
    return Req(params={"account_id": str(account)})


def _staff_only(*, manager: Cell | None = None) -> dict[str, Cell]:
    return {
        "admin": allow(),
        "manager": manager or (allow(), hidden()),
        "agent": (allow(), hidden()),
        "customer": (allow(), hidden()),
    }


def _deciders(status: int = 200) -> dict[str, Cell]:
    """Admin, and the Manager of the loan's branch."""
    return {
        "admin": allow(status),
        "manager": (allow(status), hidden()),
        "agent": deny(),
        "customer": deny(),
    }


def _restructure_ask() -> Builder:
    async def build(ctx: Ctx) -> Req:
        loan_id = await _loan_id(ctx, "active")
        return Req(
            json={"loan_id": loan_id, "kind": "moratorium", "periods": 1, "reason": "matrix"}
        )

    return build


def _restructuring(json: Any = None) -> Builder:
    """A pending restructuring of the target loan, asked by that customer's agent (so that
    neither the Admin nor the Manager is its maker)."""

    async def build(ctx: Ctx) -> Req:
        from namma.finance import RestructureKind
        from namma.loans.restructure import restructure_request
        from tests.integration.test_loans import acting

        loan_id = await _loan_id(ctx, "active")
        async with transaction(ctx.app.state.db) as session:
            made = await restructure_request(
                session,
                principal=acting(ctx.pick(ctx.world.agent_a, ctx.world.agent_b)),
                kind=RestructureKind.MORATORIUM,
                params={"periods": 1},
                reason="matrix",
                loan_id=uuid.UUID(loan_id),
            )
            request_id = str(made.id)
        return Req(params={"request_id": request_id}, json=json)

    return build


LENDING_RULES: dict[tuple[str, str], Rule] = {
    # Products: staff read; only Admin defines.
    ("GET", "/api/products"): Rule(
        _nothing, admin=allow(), manager=allow(), agent=allow(), customer=deny(), scoped=False
    ),
    ("GET", "/api/products/{product_id}"): Rule(
        _product, admin=allow(), manager=allow(), agent=allow(), customer=deny(), scoped=False
    ),
    ("POST", "/api/products"): Rule(
        _body(MATRIX_PRODUCT | {"code": "MX-NEW"}),
        admin=allow(201),
        manager=deny(),
        agent=deny(),
        customer=deny(),
        scoped=False,
    ),
    ("POST", "/api/products/{product_id}/versions"): Rule(
        _product_version,
        admin=allow(201),
        manager=deny(),
        agent=deny(),
        customer=deny(),
        scoped=False,
    ),
    ("POST", "/api/products/{product_id}/deactivate"): Rule(
        _product, admin=allow(), manager=deny(), agent=deny(), customer=deny(), scoped=False
    ),
    ("POST", "/api/products/{product_id}/activate"): Rule(
        _inactive_product,
        admin=allow(),
        manager=deny(),
        agent=deny(),
        customer=deny(),
        scoped=False,
    ),
    # Loans: read in scope (customers their own); each transition its own permission.
    ("GET", "/api/loans"): Rule(
        _nothing, admin=allow(), manager=allow(), agent=allow(), customer=allow(), scoped=False
    ),
    ("GET", "/api/loans/{loan_id}"): Rule(_loan("applied"), **_staff_only()),
    ("GET", "/api/loans/{loan_id}/schedule"): Rule(_loan("active"), **_staff_only(), mutates=True),
    ("GET", "/api/loans/{loan_id}/kfs"): Rule(_loan("approved"), **_staff_only()),
    ("POST", "/api/loans"): Rule(
        _loan_apply,
        admin=allow(201),
        manager=(allow(201), hidden()),
        agent=(allow(201), hidden()),
        customer=deny(),
    ),
    ("POST", "/api/loans/{loan_id}/withdraw"): Rule(
        _loan("applied"),
        admin=allow(),
        manager=(allow(), hidden()),
        agent=(allow(), hidden()),
        customer=deny(),
    ),
    ("POST", "/api/loans/{loan_id}/approve"): Rule(_loan("applied"), **_deciders()),
    ("POST", "/api/loans/{loan_id}/reject"): Rule(
        _loan("applied", {"reason": "matrix"}), **_deciders()
    ),
    ("POST", "/api/loans/{loan_id}/approval/undo"): Rule(_loan("approved"), **_deciders()),
    ("POST", "/api/loans/{loan_id}/disburse"): Rule(
        _loan("approved", {"disbursed_on": today_india().isoformat(), "method": "cash"}),
        **_deciders(201),
    ),
    ("POST", "/api/loans/{loan_id}/write-off"): Rule(
        _loan("active", {"reason": "matrix"}),
        admin=allow(),
        manager=deny(),  # needs the loan:write_off grant
        agent=deny(),
        customer=deny(),
    ),
    # Restructuring: a Manager (their branch) or Admin asks; another decides (maker-checker).
    ("POST", "/api/restructurings"): Rule(
        _restructure_ask(),
        admin=allow(201),
        manager=(allow(201), hidden()),
        agent=deny(),
        customer=deny(),
    ),
    ("GET", "/api/restructurings"): Rule(
        _nothing, admin=allow(), manager=allow(), agent=deny(), customer=deny(), scoped=False
    ),
    ("GET", "/api/restructurings/{request_id}"): Rule(_restructuring(), **_deciders()),
    ("POST", "/api/restructurings/{request_id}/approve"): Rule(_restructuring(), **_deciders()),
    ("POST", "/api/restructurings/{request_id}/reject"): Rule(
        _restructuring({"reason": "matrix"}), **_deciders()
    ),
    # Ledger: Admin all; a Manager their branch's cash and entries.
    ("GET", "/api/ledger/accounts"): Rule(
        _nothing, admin=allow(), manager=allow(), agent=deny(), customer=deny(), scoped=False
    ),
    ("GET", "/api/ledger/trial-balance"): Rule(
        _nothing, admin=allow(), manager=allow(), agent=deny(), customer=deny(), scoped=False
    ),
    ("GET", "/api/ledger/accounts/{account_id}/statement"): Rule(
        _cash_account, admin=allow(), manager=(allow(), hidden()), agent=deny(), customer=deny()
    ),
}
RULES.update(LENDING_RULES)

# --- customers ----------------------------------------------------------------------------------


async def _customer_create(ctx: Ctx) -> Req:
    """A new customer of the target branch (own: BLR01, other: MYS01), named in the body."""
    from namma.customers.kyc import verhoeff_check_digit

    w = ctx.world
    return Req(
        json={
            "branch_id": str(ctx.pick(w.branch_a, w.branch_b).id),
            "name": "Matrix Customer",
            "phone": "9845099999",
            "date_of_birth": "1985-01-15",
            "village": "Hosur",
            "household_monthly_income": "15000.00",
            "kyc_document_type": "aadhaar",
            "kyc_number": "23412341234" + verhoeff_check_digit("23412341234"),
        }
    )


CUSTOMER_RULES: dict[tuple[str, str], Rule] = {
    # Read in scope (a customer: themselves). Staff onboard into their own branch (another
    # branch's id is in the body: refused, not hidden); Admin into any.
    ("GET", "/api/customers"): Rule(
        _nothing, admin=allow(), manager=allow(), agent=allow(), customer=allow(), scoped=False
    ),
    ("GET", "/api/customers/{customer_id}"): Rule(_customer_target(), **_staff_only()),
    ("POST", "/api/customers"): Rule(
        _customer_create,
        admin=allow(201),
        manager=(allow(201), deny()),
        agent=(allow(201), deny()),
        customer=deny(),
    ),
    ("PATCH", "/api/customers/{customer_id}"): Rule(
        _customer_target({"village": "Attibele"}),
        admin=allow(),
        manager=(allow(), hidden()),
        agent=(allow(), hidden()),
        customer=deny(),
    ),
    ("POST", "/api/customers/{customer_id}/kyc"): Rule(
        _customer_target({"decision": "verified"}), **_deciders()
    ),
    ("POST", "/api/customers/{customer_id}/close"): Rule(
        _customer_target({"reason": "moved away"}),
        admin=allow(),
        manager=deny(),  # needs the customer:close grant
        agent=deny(),
        customer=deny(),
    ),
}
RULES.update(CUSTOMER_RULES)

# --- collections --------------------------------------------------------------------------------


async def _collection_id(ctx: Ctx) -> str:
    """A collection on the target customer's active loan, recorded by that customer's agent."""
    from namma.collections.service import collection_record
    from namma.loans.service import today_india
    from namma.models import CollectionMethod
    from tests.integration.test_loans import acting

    loan_id = await _loan_id(ctx, "active")
    agent = ctx.pick(ctx.world.agent_a, ctx.world.agent_b)
    async with transaction(ctx.app.state.db) as session:
        result = await collection_record(
            session,
            principal=acting(agent),
            loan_id=uuid.UUID(loan_id),
            amount=Decimal("100.00"),
            collected_on=today_india(),
            method=CollectionMethod.CASH,
            reference=None,
            remarks=None,
            client_id=None,
            backdate_days=7,
        )
        return str(result.collection.id)


def _collection(json: Any = None) -> Builder:
    async def build(ctx: Ctx) -> Req:
        return Req(params={"collection_id": await _collection_id(ctx)}, json=json)

    return build


async def _collection_new(ctx: Ctx) -> Req:
    # The client id is the idempotency key (the matrix sends no extra headers).
    return Req(
        json={
            "loan_id": await _loan_id(ctx, "active"),
            "amount": "100.00",
            "client_id": str(uuid.uuid4()),
        }
    )


COLLECTION_RULES: dict[tuple[str, str], Rule] = {
    # Agents (their customers), Managers (their branch), Admin record; customers never do
    # (the origin let them). Reading: in scope, an agent only what they collected.
    ("POST", "/api/collections"): Rule(
        _collection_new,
        admin=allow(201),
        manager=(allow(201), hidden()),
        agent=(allow(201), hidden()),
        customer=deny(),
    ),
    ("GET", "/api/collections"): Rule(
        _nothing, admin=allow(), manager=allow(), agent=allow(), customer=allow(), scoped=False
    ),
    ("GET", "/api/collections/{collection_id}"): Rule(_collection(), **_staff_only()),
    ("POST", "/api/collections/{collection_id}/reverse"): Rule(
        _collection({"reason": "matrix"}),
        admin=allow(),
        manager=deny(),  # needs the collection:reverse grant
        agent=deny(),
        customer=deny(),
    ),
    ("GET", "/api/loans/{loan_id}/preclosure"): Rule(_loan("active"), **_staff_only()),
    ("GET", "/api/loans/{loan_id}/penalties"): Rule(_loan("active"), **_staff_only()),
    ("GET", "/api/loans/{loan_id}/waivers"): Rule(_loan("active"), **_staff_only()),
    # Waivers: Admin, and the Manager of the loan's branch (a future installment's interest).
    ("POST", "/api/loans/{loan_id}/waivers"): Rule(
        _loan(
            "active",
            {
                "component": "interest",
                "amount": "1.00",
                "reason": "goodwill after a flood",
                "installment_number": 1,
            },
        ),
        **_deciders(201),
    ),
}
RULES.update(COLLECTION_RULES)

# --- collection sheet, bulk posting, cash hand-over ---------------------------------------------


async def _sheet_post(ctx: Ctx) -> Req:
    """One line on the target customer's loan. The request answers 200 either way: scope is
    decided per line (a line out of scope reports 404; see test_collection_sheet)."""
    from namma.loans.service import today_india

    return Req(
        json={
            "lines": [
                {
                    "loan_id": await _loan_id(ctx, "active"),
                    "amount": "100.00",
                    "collected_on": today_india().isoformat(),
                    "client_id": str(uuid.uuid4()),
                }
            ]
        }
    )


async def _handover_new(ctx: Ctx) -> Req:
    """A hand-over of the target agent's cash (own: agent A, other: agent B of MYS01)."""
    from namma.loans.service import today_india

    agent = ctx.pick(ctx.world.agent_a, ctx.world.agent_b)
    return Req(
        json={
            "agent_id": str(agent.id),
            "business_date": today_india().isoformat(),
            "amount_deposited": "10.00",
        }
    )


SHEET_AND_HANDOVER_RULES: dict[tuple[str, str], Rule] = {
    # The sheet: staff who collect (an agent their customers, a manager their branch, admin
    # all); customers never.
    ("GET", "/api/collection-sheet"): Rule(
        _nothing, admin=allow(), manager=allow(), agent=allow(), customer=deny(), scoped=False
    ),
    ("POST", "/api/collection-sheet/post"): Rule(
        _sheet_post, admin=allow(), manager=allow(), agent=allow(), customer=deny()
    ),
    # Hand-over: an agent their own cash, a manager their branch's agents, admin any agent.
    ("POST", "/api/cash-handovers"): Rule(
        _handover_new,
        admin=allow(201),
        manager=(allow(201), hidden()),
        agent=(allow(201), hidden()),
        customer=deny(),
    ),
    ("GET", "/api/cash-handovers"): Rule(
        _nothing, admin=allow(), manager=allow(), agent=allow(), customer=deny(), scoped=False
    ),
}
RULES.update(SHEET_AND_HANDOVER_RULES)

# --- capital: investments, borrowings, repayments, summary (head office: admin only) ----------


async def _borrowing_id(ctx: Ctx) -> str:
    """A fresh borrowing (recorded by the admin through the service)."""
    from namma.capital.service import BorrowingTerms, borrowing_record
    from namma.loans.service import today_india
    from namma.models import CapitalMethod
    from tests.integration.test_loans import acting

    async with transaction(ctx.app.state.db) as session:
        borrowing, _ = await borrowing_record(
            session,
            principal=acting(ctx.world.admin),
            lender_name="Matrix Lender",
            lender_contact=None,
            amount=Decimal("12000.00"),
            annual_rate=Decimal("8"),
            installments=12,
            terms=BorrowingTerms(),
            received_on=today_india(),
            first_due_on=None,
            method=CapitalMethod.BANK,
            reference=None,
            remarks=None,
        )
        return str(borrowing.id)


async def _borrowing(ctx: Ctx) -> Req:
    return Req(params={"borrowing_id": await _borrowing_id(ctx)})


async def _repayment_new(ctx: Ctx) -> Req:
    return Req(
        params={"borrowing_id": await _borrowing_id(ctx)},
        json={"amount": "100.00"},
        headers={"Idempotency-Key": str(uuid.uuid4())},
    )


def _admin_only(status: int = 200) -> dict[str, Any]:
    return {
        "admin": allow(status),
        "manager": deny(),
        "agent": deny(),
        "customer": deny(),
        "scoped": False,
    }


CAPITAL_RULES: dict[tuple[str, str], Rule] = {
    ("POST", "/api/capital/investments"): Rule(
        _body({"amount": "1000.00", "source": "Matrix"}), **_admin_only(201)
    ),
    ("GET", "/api/capital/investments"): Rule(_nothing, **_admin_only()),
    ("POST", "/api/capital/borrowings"): Rule(
        _body(
            {
                "lender_name": "Matrix Lender",
                "principal": "12000.00",
                "annual_rate": "8",
                "installments": 12,
            }
        ),
        **_admin_only(201),
    ),
    ("GET", "/api/capital/borrowings"): Rule(_nothing, **_admin_only()),
    ("GET", "/api/capital/borrowings/{borrowing_id}"): Rule(_borrowing, **_admin_only()),
    ("POST", "/api/capital/borrowings/{borrowing_id}/repayments"): Rule(
        _repayment_new, **_admin_only(201)
    ),
    ("GET", "/api/capital/summary"): Rule(_nothing, **_admin_only()),
}


RULES.update(CAPITAL_RULES)

# --- reversals: cash hand-overs (manager: their branch; admin: any), capital (admin only) -----

_handover_days = iter(range(1, 10_000))


async def _handover_reverse(ctx: Ctx) -> Req:
    """A fresh hand-over of the target agent (own: agent A, other: agent B of MYS01), each on
    a date of its own so that cases sharing a world do not collide."""
    from datetime import timedelta

    from namma.handover.service import cash_handover_record
    from namma.loans.service import today_india
    from tests.integration.test_loans import acting

    agent = ctx.pick(ctx.world.agent_a, ctx.world.agent_b)
    async with transaction(ctx.app.state.db) as session:
        handover, _ = await cash_handover_record(
            session,
            principal=acting(ctx.world.admin),
            agent_id=agent.id,
            business_date=today_india() - timedelta(days=next(_handover_days)),
            amount_deposited=Decimal("10.00"),
            remarks=None,
        )
        return Req(params={"handover_id": str(handover.id)}, json={"reason": "matrix"})


async def _handover_count(ctx: Ctx) -> Req:
    """A fresh hand-over declared by the target agent itself (own: agent A, other: agent B of
    MYS01), each on a date of its own, to be counted."""
    from datetime import timedelta

    from namma.handover.service import cash_handover_record
    from namma.loans.service import today_india
    from tests.integration.test_loans import acting

    agent = ctx.pick(ctx.world.agent_a, ctx.world.agent_b)
    async with transaction(ctx.app.state.db) as session:
        handover, _ = await cash_handover_record(
            session,
            principal=acting(agent),
            agent_id=agent.id,
            business_date=today_india() - timedelta(days=next(_handover_days)),
            amount_deposited=Decimal("10.00"),
            remarks=None,
        )
        return Req(params={"handover_id": str(handover.id)}, json={"amount_counted": "10.00"})


async def _investment_reverse(ctx: Ctx) -> Req:
    from namma.capital.service import investment_record
    from namma.loans.service import today_india
    from namma.models import CapitalMethod
    from tests.integration.test_loans import acting

    async with transaction(ctx.app.state.db) as session:
        investment = await investment_record(
            session,
            principal=acting(ctx.world.admin),
            amount=Decimal("1000.00"),
            source="Matrix",
            invested_on=today_india(),
            method=CapitalMethod.BANK,
            reference=None,
            description=None,
        )
        return Req(params={"investment_id": str(investment.id)}, json={"reason": "matrix"})


async def _borrowing_reverse(ctx: Ctx) -> Req:
    return Req(params={"borrowing_id": await _borrowing_id(ctx)}, json={"reason": "matrix"})


async def _repayment_reverse(ctx: Ctx) -> Req:
    from namma.capital.service import borrowing_repay
    from namma.loans.service import today_india
    from namma.models import CapitalMethod
    from tests.integration.test_loans import acting

    borrowing_id = await _borrowing_id(ctx)
    async with transaction(ctx.app.state.db) as session:
        result = await borrowing_repay(
            session,
            principal=acting(ctx.world.admin),
            borrowing_id=uuid.UUID(borrowing_id),
            amount=Decimal("100.00"),
            paid_on=today_india(),
            method=CapitalMethod.BANK,
            reference=None,
        )
        return Req(
            params={"borrowing_id": borrowing_id, "repayment_id": str(result.repayment.id)},
            json={"reason": "matrix"},
        )


REVERSAL_RULES: dict[tuple[str, str], Rule] = {
    ("POST", "/api/cash-handovers/{handover_id}/reverse"): Rule(
        _handover_reverse,
        admin=allow(),
        manager=(allow(), hidden()),
        agent=deny(),  # no cash_handover:reverse, not even for their own
        customer=deny(),
    ),
    ("POST", "/api/cash-handovers/{handover_id}/count"): Rule(
        _handover_count,
        admin=allow(),
        manager=(allow(), hidden()),
        agent=deny(),  # no cash_handover:count: the declarer never counts
        customer=deny(),
    ),
    ("POST", "/api/capital/investments/{investment_id}/reverse"): Rule(
        _investment_reverse, **_admin_only()
    ),
    ("POST", "/api/capital/borrowings/{borrowing_id}/reverse"): Rule(
        _borrowing_reverse, **_admin_only()
    ),
    ("POST", "/api/capital/borrowings/{borrowing_id}/repayments/{repayment_id}/reverse"): Rule(
        _repayment_reverse, **_admin_only()
    ),
}
RULES.update(REVERSAL_RULES)

# --- background work: close of business, documents, notifications, reports, dashboards -------


async def _yesterday(ctx: Ctx) -> Req:
    from datetime import timedelta

    from namma.loans.service import today_india

    return Req(json={"business_date": (today_india() - timedelta(days=1)).isoformat()})


async def _receipt(ctx: Ctx) -> Req:
    return Req(params={"collection_id": await _collection_id(ctx)})


async def _statement_id(ctx: Ctx) -> str:
    """A statement of this month asked for the target customer (by the Admin)."""
    from namma.documents.service import statement_request
    from namma.loans.service import today_india
    from tests.integration.test_loans import acting

    async with transaction(ctx.app.state.db) as session:
        document = await statement_request(
            session,
            principal=acting(ctx.world.admin),
            customer_id=uuid.UUID(_customer(ctx)),
            month=today_india().replace(day=1),
        )
        return str(document.id)


def _document() -> Builder:
    async def build(ctx: Ctx) -> Req:
        return Req(params={"document_id": await _statement_id(ctx)})

    return build


async def _statement_new(ctx: Ctx) -> Req:
    from namma.loans.service import today_india

    return Req(params={"customer_id": _customer(ctx)}, json={"month": f"{today_india():%Y-%m}"})


async def _notification(ctx: Ctx) -> Req:
    """An SMS recorded for the target customer."""
    from namma.models import Customer, Notification, NotificationChannel

    async with transaction(ctx.app.state.db) as session:
        customer = await session.get(Customer, uuid.UUID(_customer(ctx)))
        assert customer is not None
        row = Notification(
            customer_id=customer.id,
            channel=NotificationChannel.SMS,
            recipient=customer.phone,
            template="loan_approved",
            language="en",
            body="a message",
            dedupe_key=f"matrix:{uuid.uuid4()}",
        )
        session.add(row)
    return Req(params={"notification_id": str(row.id)})


def _report_readers() -> dict[str, Any]:
    """Admin (every branch) and Managers (their own branch); the filter is the scope."""
    return {
        "admin": allow(),
        "manager": allow(),
        "agent": deny(),
        "customer": deny(),
        "scoped": False,
    }


REPORT_PATHS = (
    "portfolio-summary",
    "par",
    "demand-collection",
    "collections",
    "disbursements",
    "agent-performance",
    "overdue",
    "loan-aging",
    "income",
    "trial-balance",
    "income-statement",
    "provisioning",
)


async def _provisioning_rate(ctx: Ctx) -> Req:
    return Req(params={"asset_class": "standard"}, json={"rate": "0.40"})


BACKGROUND_RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/api/cob/runs"): Rule(_nothing, **_report_readers()),
    ("POST", "/api/cob/runs"): Rule(_yesterday, **_admin_only(202)),
    # Receipts and statements: anyone who may see the customer (a customer: themself).
    # A receipt is rendered on its first download: the answer is the PDF at once. The first
    # allowed case stores it and the later ones are served it, the same answer: one world.
    ("GET", "/api/collections/{collection_id}/receipt.pdf"): Rule(
        _receipt,
        admin=allow(),
        manager=(allow(), hidden()),
        agent=(allow(), hidden()),
        customer=(allow(), hidden()),
        mutates=False,
    ),
    ("GET", "/api/documents"): Rule(
        _nothing,
        admin=allow(),
        manager=allow(),
        agent=allow(),
        customer=allow(),
        scoped=False,
    ),
    ("GET", "/api/documents/{document_id}"): Rule(_document(), **_staff_only()),
    # A statement still being made answers 202 with Retry-After.
    ("GET", "/api/documents/{document_id}/pdf"): Rule(
        _document(),
        admin=allow(202),
        manager=(allow(202), hidden()),
        agent=(allow(202), hidden()),
        customer=(allow(202), hidden()),
    ),
    ("POST", "/api/customers/{customer_id}/statements"): Rule(
        _statement_new,
        admin=allow(202),
        manager=(allow(202), hidden()),
        agent=(allow(202), hidden()),
        customer=(allow(202), hidden()),
    ),
    # The messages sent to customers, in the caller's scope (the list filters itself; a
    # customer sees their own).
    ("GET", "/api/notifications"): Rule(
        _nothing, admin=allow(), manager=allow(), agent=allow(), customer=allow(), scoped=False
    ),
    ("GET", "/api/notifications/{notification_id}"): Rule(
        _notification,
        admin=allow(),
        manager=(allow(), hidden()),
        agent=(allow(), hidden()),
        customer=(allow(), hidden()),
    ),
    ("GET", "/api/reports"): Rule(_nothing, **_report_readers()),
    # Provisioning rates: read with the reports, changed by the Admin (the same rate again:
    # nothing changes, so one world serves every case).
    ("GET", "/api/provisioning/rates"): Rule(_nothing, **_report_readers()),
    ("PUT", "/api/provisioning/rates/{asset_class}"): Rule(
        _provisioning_rate, **_admin_only(), mutates=False
    ),
    # Capital utilisation needs capital:read as well (Admin).
    ("GET", "/api/reports/capital-utilisation"): Rule(_nothing, **_admin_only()),
    ("GET", "/api/dashboard"): Rule(
        _nothing, admin=allow(), manager=allow(), agent=allow(), customer=allow(), scoped=False
    ),
}
BACKGROUND_RULES.update(
    {("GET", f"/api/reports/{name}"): Rule(_nothing, **_report_readers()) for name in REPORT_PATHS}
)
RULES.update(BACKGROUND_RULES)


# --- working calendars: the institution's is the Admin's; a branch's the Admin's or its Manager's


def _calendar_branch(json: dict[str, Any] | None = None) -> Builder:
    """The target branch's calendar (own: BLR01, other: MYS01): as a query, or in the body."""

    async def build(ctx: Ctx) -> Req:
        branch = ctx.pick(ctx.world.branch_a, ctx.world.branch_b)
        if json is None:
            return Req(query={"branch_id": str(branch.id)})
        return Req(json={**json, "branch_id": str(branch.id)})

    return build


async def _holiday(ctx: Ctx) -> Req:
    """A holiday of the target branch, a new one for each case."""
    from namma.models import Holiday

    branch = ctx.pick(ctx.world.branch_a, ctx.world.branch_b)
    async with transaction(ctx.app.state.db) as session:
        taken = await session.scalar(select(func.count()).select_from(Holiday))
        on = date(2099, 1, 1) + timedelta(days=int(taken or 0))
        holiday = Holiday(branch_id=branch.id, on_date=on, name="Sankranti")
        session.add(holiday)
        await session.flush()
        return Req(params={"holiday_id": str(holiday.id)})


_CALENDAR_MANAGERS: dict[str, Cell] = {
    "admin": allow(),
    "manager": (allow(), hidden()),
    "agent": deny(),
    "customer": deny(),
}
CALENDAR_RULES: dict[tuple[str, str], Rule] = {
    ("GET", "/api/calendar"): Rule(
        _calendar_branch(),
        admin=allow(),
        manager=(allow(), hidden()),
        agent=(allow(), hidden()),
        customer=deny(),
    ),
    ("POST", "/api/calendar/holidays"): Rule(
        _calendar_branch({"on_date": "2099-01-15", "name": "Pongal"}),
        **{**_CALENDAR_MANAGERS, "admin": allow(201), "manager": (allow(201), hidden())},
    ),
    ("DELETE", "/api/calendar/holidays/{holiday_id}"): Rule(_holiday, **_CALENDAR_MANAGERS),
    ("PUT", "/api/calendar/working-week"): Rule(
        _calendar_branch({"non_working_weekdays": ["sunday"]}), **_CALENDAR_MANAGERS
    ),
}
RULES.update(CALENDAR_RULES)


PUBLIC_ROUTES = {
    ("POST", "/api/auth/login"),
    ("POST", "/api/auth/login/totp"),
    ("POST", "/api/auth/login/totp-enrol"),
    ("POST", "/api/auth/login/totp-enrol/confirm"),
    ("POST", "/api/auth/refresh"),
}


# --- the route table ----------------------------------------------------------------------------


def api_routes(app: FastAPI) -> dict[tuple[str, str], APIRoute]:
    """Every (method, path template) of the application's JSON API."""
    try:  # FastAPI ≥ 0.16x keeps included routers lazily; this walks them.
        from fastapi.routing import iter_route_contexts
    except ImportError:  # older FastAPI: app.routes is already flat
        flat = [(r, getattr(r, "path", ""), getattr(r, "methods", None)) for r in app.routes]
    else:
        flat = [(c.original_route, c.path, c.methods) for c in iter_route_contexts(app.routes)]
    routes: dict[tuple[str, str], APIRoute] = {}
    for route, path, methods in flat:
        if isinstance(route, APIRoute) and path and path.startswith("/api/"):
            for method in methods or ():
                routes[(method, path)] = route
    return routes


@pytest.fixture(scope="module")
def route_table() -> dict[tuple[str, str], APIRoute]:
    from namma.app import create_app
    from namma.config import Settings

    return api_routes(create_app(Settings(env="test")))


def _name(key: tuple[str, str]) -> str:
    return f"{key[0]} {key[1]}"


def test_every_api_route_has_a_rule(route_table) -> None:  # type: ignore[no-untyped-def]
    missing = sorted(set(route_table) - set(RULES))
    assert not missing, "Routes without an authorization rule (add them to RULES): " + ", ".join(
        _name(k) for k in missing
    )


def test_every_rule_names_a_live_route(route_table) -> None:  # type: ignore[no-untyped-def]
    stale = sorted(set(RULES) - set(route_table))
    assert not stale, "Rules for routes that no longer exist: " + ", ".join(_name(k) for k in stale)


def test_route_table_agrees_with_the_openapi_schema(route_table) -> None:  # type: ignore[no-untyped-def]
    """Guards the enumeration itself: it must see every operation the API documents."""
    from namma.app import create_app
    from namma.config import Settings

    schema = create_app(Settings(env="test")).openapi()
    documented = {
        (method.upper(), path)
        for path, operations in schema["paths"].items()
        if path.startswith("/api/")
        for method in operations
    }
    assert documented, "the OpenAPI schema lists no /api operations"
    assert documented <= set(route_table), sorted(documented - set(route_table))


def _required_permissions(route: APIRoute) -> list[str]:
    found: list[str] = []
    stack = list(route.dependant.dependencies)
    while stack:
        dependant = stack.pop()
        permission = getattr(dependant.call, "required_permission", None)
        if permission is not None:
            found.append(str(permission))
        stack.extend(dependant.dependencies)
    return found


def test_every_private_route_checks_a_permission(route_table) -> None:  # type: ignore[no-untyped-def]
    """The route and role layers: each non-public route depends on exactly one ``require``."""
    wrong = {
        _name(key): perms
        for key, route in route_table.items()
        if key not in PUBLIC_ROUTES and len(perms := _required_permissions(route)) != 1
    }
    assert not wrong, wrong
    public_with_auth = [_name(k) for k in PUBLIC_ROUTES if _required_permissions(route_table[k])]
    assert not public_with_auth


# --- sending the cases --------------------------------------------------------------------------


async def _send(
    key: tuple[str, str],
    caller: Caller,
    scope: Scope,
    *,
    app: FastAPI,
    client: httpx.AsyncClient,
    world: World,
    bearer: Callable[[User], Awaitable[dict[str, str]]],
) -> httpx.Response:
    method, template = key
    headers = {} if caller == "anonymous" else await bearer(getattr(world, CALLER_USER[caller]))
    ctx = Ctx(app=app, client=client, world=world, caller=caller, scope=scope, headers=headers)
    req = await RULES[key].build(ctx)
    return await client.request(
        method,
        template.format(**req.params),
        json=req.json,
        params=req.query,
        headers={**headers, **req.headers},
    )


@pytest.mark.parametrize("key", sorted(RULES), ids=_name)
async def test_route_answers_each_caller(key, app, client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    """Every case of the route that must leave the world unchanged, in one world."""
    rule = RULES[key]
    wrong = []
    for caller, scope in rule.cases():
        if rule.runs_alone(key[0], caller, scope):
            continue
        expected = rule.expect(caller, scope)
        response = await _send(
            key, caller, scope, app=app, client=client, world=world, bearer=bearer
        )
        if response.status_code != expected.status:
            wrong.append(
                f"  {caller}/{scope}: expected {expected}, got {response.status_code} "
                f"{response.text[:200]}"
            )
    assert not wrong, f"{_name(key)}:\n" + "\n".join(wrong)


def _alone_cases() -> Iterator[Any]:
    for key, rule in sorted(RULES.items()):
        for caller, scope in rule.cases():
            if not rule.runs_alone(key[0], caller, scope):
                continue
            expected = rule.expect(caller, scope)
            marks = [pytest.mark.xfail(strict=True, reason=expected.bug)] if expected.bug else []
            yield pytest.param(key, caller, scope, id=f"{_name(key)}-{caller}-{scope}", marks=marks)


@pytest.mark.parametrize(("key", "caller", "scope"), list(_alone_cases()))
async def test_route_answers_in_a_world_of_its_own(
    key, caller, scope, app, client, world, bearer
) -> None:  # type: ignore[no-untyped-def]
    """An allowed state change (or a known bug), each in a fresh world."""
    expected = RULES[key].expect(caller, scope)
    response = await _send(key, caller, scope, app=app, client=client, world=world, bearer=bearer)
    assert response.status_code == expected.status, response.text


# --- public routes answer bad input, never a permission error -----------------------------------


@pytest.mark.parametrize(
    ("path", "json", "status"),
    [
        ("/api/auth/login", {"login": "agent.a@example.com", "password": "wrong password!"}, 401),
        ("/api/auth/login", {"login": "agent.a@example.com"}, 422),
        ("/api/auth/login/totp", {"challenge": "not-a-challenge", "code": "123456"}, 401),
        ("/api/auth/login/totp", {}, 422),
        ("/api/auth/login/totp-enrol", {"challenge": "not-a-challenge"}, 401),
        (
            "/api/auth/login/totp-enrol/confirm",
            {"challenge": "not-a-challenge", "code": "123456"},
            401,
        ),
        ("/api/auth/login/totp-enrol/confirm", {"challenge": "x"}, 422),
        ("/api/auth/refresh", {"refresh_token": "not-a-token"}, 401),
        ("/api/auth/refresh", None, 401),
    ],
)
async def test_public_routes_answer_bad_input_with_401_or_422(
    path, json, status, client, world
) -> None:  # type: ignore[no-untyped-def]
    response = await client.post(path, json=json)
    assert response.status_code == status, response.text
    assert (
        response.json()["error"]["code"] == {401: "unauthenticated", 422: "invalid_input"}[status]
    )


async def test_a_known_id_outside_scope_looks_like_an_unknown_id(client, world, bearer) -> None:  # type: ignore[no-untyped-def]
    """404 for another branch's record is indistinguishable from 404 for no record at all."""
    headers = await bearer(world.manager_a)
    other = await client.get(f"/api/staff/{world.agent_b.id}", headers=headers)
    unknown = await client.get(f"/api/staff/{uuid.uuid4()}", headers=headers)
    assert other.status_code == unknown.status_code == 404
    assert other.json() == unknown.json()
    other = await client.get(f"/api/customers/{world.customer_b.id}/agent/history", headers=headers)
    unknown = await client.get(f"/api/customers/{uuid.uuid4()}/agent/history", headers=headers)
    assert other.status_code == unknown.status_code == 404
    assert other.json() == unknown.json()


async def test_the_driver_scope_finds_exactly_the_customers_the_orm_scope_finds(app, world) -> None:  # type: ignore[no-untyped-def]
    """`customer_scope_sql` (the loan lock every collection takes, sent straight to the driver)
    and `customer_scope` must agree for every role, an ended assignment included."""
    async with transaction(app.state.db) as session:
        # Agent A2 once had customer B: an ended assignment gives no access.
        session.add(
            AgentAssignment(
                customer_id=world.customer_b.id,
                agent_id=world.agent_a2.id,
                ended_at=datetime.now(UTC),
            )
        )
    expected = {
        "admin": {world.customer_a.id, world.customer_b.id},
        "manager_a": {world.customer_a.id},
        "manager_b": {world.customer_b.id},
        "agent_a": {world.customer_a.id},
        "agent_a2": set(),
        "agent_b": {world.customer_b.id},
        "customer_user_a": {world.customer_a.id},
        "customer_user_b": {world.customer_b.id},
    }
    async with transaction(app.state.db) as session:
        connection = await raw_connection(session)
        for name, customers in expected.items():
            user: User = getattr(world, name)
            principal = Principal(
                user_id=user.id,
                role=user.role,
                branch_id=user.branch_id,
                permissions=frozenset(),
                session_id=uuid.uuid4(),
                via_cookie=False,
                must_change_password=False,
                ip="127.0.0.1",
                user_agent=None,
                request_id=None,
            )
            orm = set(await session.scalars(select(Customer.id).where(customer_scope(principal))))
            scope, params = customer_scope_sql(principal)
            cursor = await connection.execute(
                sql.SQL("SELECT c.id FROM customers c WHERE {}").format(sql.SQL(scope)), params
            )
            driver = {row[0] for row in await cursor.fetchall()}
            assert orm == driver == customers, name
