"""Demo data for `namma serve --demo`: loaded at start-up, idempotent (a second start adds nothing).

Made-up people with example.com addresses. The password (and the Admin's TOTP key) are printed
in README.md and must never be used outside a demo.
"""

from __future__ import annotations

import datetime as dt

import structlog
from sqlalchemy import select

from namma.audit.service import AuditActor, audit_record
from namma.auth.totp import totp_secret_encrypt
from namma.kit.db import Database, transaction
from namma.kit.passwords import password_hash
from namma.models import AgentAssignment, Branch, Customer, Role, User

DEMO_ADMIN_EMAIL = "admin@example.com"
DEMO_PASSWORD = "namma-demo-2026"
# The demo Admin's authenticator key (Admins must use TOTP): codes with
#   python -c "import pyotp; print(pyotp.TOTP('NAMMADEMOADMINTOTPSECRETKEYABCDE').now())"
DEMO_ADMIN_TOTP_SECRET = "NAMMADEMOADMINTOTPSECRETKEYABCDE"

log = structlog.get_logger(__name__)


async def demo_load(db: Database) -> None:
    async with transaction(db) as session:
        if await session.scalar(select(User.id).where(User.email == DEMO_ADMIN_EMAIL)):
            return
        secret_key = await _secret_key()
        hashed = await password_hash(DEMO_PASSWORD)
        head_office = Branch(code="HO", name="Head Office", is_head_office=True)
        branch = Branch(code="BLR01", name="Bengaluru Rural 01")
        session.add_all([head_office, branch])
        await session.flush()

        def staff(name: str, role: Role, email: str, phone: str, branch_id: object) -> User:
            user = User(
                name=name,
                role=role,
                email=email,
                phone=phone,
                branch_id=branch_id,
                password_hash=hashed,
            )
            session.add(user)
            return user

        admin = staff("Demo Admin", Role.ADMIN, DEMO_ADMIN_EMAIL, "9800000001", head_office.id)
        admin.totp_secret_encrypted = totp_secret_encrypt(
            DEMO_ADMIN_TOTP_SECRET, secret_key=secret_key
        )
        admin.totp_enabled_at = dt.datetime.now(dt.UTC)
        staff("Demo Manager", Role.MANAGER, "manager@example.com", "9800000002", branch.id)
        agent1 = staff("Demo Agent One", Role.AGENT, "agent1@example.com", "9800000003", branch.id)
        agent2 = staff("Demo Agent Two", Role.AGENT, "agent2@example.com", "9800000004", branch.id)
        portal = staff("Kamala D.", Role.CUSTOMER, "kamala@example.com", "9800000005", None)
        await session.flush()

        customers = [
            Customer(
                branch_id=branch.id,
                user_id=portal.id,
                name="Kamala D.",
                phone="9800000005",
                village="Hoskote",
            ),
            Customer(branch_id=branch.id, name="Latha R.", phone="9800000006", village="Hoskote"),
            Customer(
                branch_id=branch.id, name="Savitha M.", phone="9800000007", village="Devanahalli"
            ),
        ]
        session.add_all(customers)
        await session.flush()
        session.add_all(
            [
                AgentAssignment(customer_id=customers[0].id, agent_id=agent1.id),
                AgentAssignment(customer_id=customers[1].id, agent_id=agent1.id),
                AgentAssignment(customer_id=customers[2].id, agent_id=agent2.id),
            ]
        )
        await session.flush()
        await audit_record(
            session,
            actor=AuditActor.system(),
            action="demo.loaded",
            entity_type="installation",
            after={"branches": 2, "staff": 4, "customers": 3},
        )
    log.info("demo.loaded", admin=DEMO_ADMIN_EMAIL)


async def _secret_key() -> str:
    from namma.config import get_settings

    return get_settings().secret_key.get_secret_value()
