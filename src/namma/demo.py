"""Demo data for `namma serve --demo`: loaded at start-up, idempotent (a second start adds nothing).

Only sample records with made-up names and example.com addresses; the passwords are printed in
README.md and must never be used outside a demo.
"""

from __future__ import annotations

import structlog
from sqlalchemy import select

from namma.kit.db import Database, transaction
from namma.models import User
from namma.users.service import admin_create

DEMO_ADMIN_EMAIL = "admin@example.com"
DEMO_PASSWORD = "namma-demo-2026"

log = structlog.get_logger(__name__)


async def demo_load(db: Database) -> None:
    async with transaction(db) as session:
        existing = await session.scalar(select(User.id).where(User.email == DEMO_ADMIN_EMAIL))
        if existing is not None:
            return
        await admin_create(
            session, name="Demo Admin", email=DEMO_ADMIN_EMAIL, password=DEMO_PASSWORD
        )
    log.info("demo.loaded", admin=DEMO_ADMIN_EMAIL)
