"""Identity fixtures: branches and users of every role, and ways to act as them.

Users are made directly through the services; ``bearer(user)`` mints a real login session
(refresh family + access token) without going through the rate-limited login route.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from namma.audit.service import AuditActor
from namma.auth.service import session_issue
from namma.kit.db import transaction
from namma.kit.passwords import password_hash_sync
from namma.models import AgentAssignment, Branch, Customer, Role, User

PASSWORD = "correct horse battery staple"
_HASH = password_hash_sync(PASSWORD)


@dataclass
class World:
    """Two branches, each with a manager, an agent and a customer assigned to that agent."""

    head_office: Branch
    branch_a: Branch
    branch_b: Branch
    admin: User
    manager_a: User
    manager_b: User
    agent_a: User
    agent_a2: User
    agent_b: User
    customer_user_a: User
    customer_user_b: User
    customer_a: Customer
    customer_b: Customer


@pytest.fixture
async def world(app) -> World:  # type: ignore[no-untyped-def]
    async with transaction(app.state.db) as session:
        ho = Branch(code="HO", name="Head Office", is_head_office=True)
        a = Branch(code="BLR01", name="Bengaluru East")
        b = Branch(code="MYS01", name="Mysuru")
        session.add_all([ho, a, b])
        await session.flush()

        def user(name: str, role: Role, branch: Branch | None, email: str, phone: str) -> User:
            u = User(
                name=name,
                role=role,
                branch_id=branch.id if branch else None,
                email=email,
                phone=phone,
                password_hash=_HASH,
            )
            session.add(u)
            return u

        w_admin = user("Asha Admin", Role.ADMIN, ho, "admin@example.com", "9000000001")
        m_a = user("Manoj Manager", Role.MANAGER, a, "manager.a@example.com", "9000000002")
        m_b = user("Meena Manager", Role.MANAGER, b, "manager.b@example.com", "9000000003")
        ag_a = user("Arun Agent", Role.AGENT, a, "agent.a@example.com", "9000000004")
        ag_a2 = user("Anita Agent", Role.AGENT, a, "agent.a2@example.com", "9000000005")
        ag_b = user("Bala Agent", Role.AGENT, b, "agent.b@example.com", "9000000006")
        cu_a = user("Kamala Customer", Role.CUSTOMER, None, "kamala@example.com", "9000000007")
        cu_b = user("Latha Customer", Role.CUSTOMER, None, "latha@example.com", "9000000008")
        await session.flush()
        c_a = Customer(
            branch_id=a.id, user_id=cu_a.id, name=cu_a.name, phone="9100000001", village="Hosur"
        )
        c_b = Customer(
            branch_id=b.id, user_id=cu_b.id, name=cu_b.name, phone="9100000002", village="Nanjangud"
        )
        session.add_all([c_a, c_b])
        await session.flush()
        session.add_all(
            [
                AgentAssignment(customer_id=c_a.id, agent_id=ag_a.id),
                AgentAssignment(customer_id=c_b.id, agent_id=ag_b.id),
            ]
        )
    return World(ho, a, b, w_admin, m_a, m_b, ag_a, ag_a2, ag_b, cu_a, cu_b, c_a, c_b)


async def bearer_for(app, user: User) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """Headers with a fresh access token for ``user`` on ``app``."""
    async with transaction(app.state.db) as session:
        fresh = await session.get(User, user.id)
        assert fresh is not None
        issued = await session_issue(
            session,
            user=fresh,
            secret_key=app.state.settings.secret_key.get_secret_value(),
            actor=AuditActor(ip="127.0.0.1"),
            method="test",
        )
    return {"Authorization": f"Bearer {issued.access_token}"}


@pytest.fixture
def bearer(app):  # type: ignore[no-untyped-def]
    """``await bearer(user)`` → headers with a fresh access token for that user."""

    async def make(user: User) -> dict[str, str]:
        return await bearer_for(app, user)

    return make


def new_id() -> str:
    return str(uuid.uuid4())
