"""User commands. Services take a session and never commit."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.kit.errors import ConflictError, InvalidInputError
from namma.kit.passwords import password_hash, password_problem
from namma.models import Role, User


async def admin_create(session: AsyncSession, *, name: str, email: str, password: str) -> User:
    """Create an Admin (head office). Used to bootstrap the first user of an installation."""
    email = email.strip().lower()
    if "@" not in email or len(email) > 254:
        raise InvalidInputError("email", "Enter a valid email address")
    if not name.strip():
        raise InvalidInputError("name", "Name is required")
    problem = password_problem(password)
    if problem:
        raise InvalidInputError("password", problem)
    taken = await session.scalar(select(func.count()).where(User.email == email))
    if taken:
        raise ConflictError(f"A user with email {email} already exists")
    user = User(
        name=name.strip(), email=email, role=Role.ADMIN, password_hash=await password_hash(password)
    )
    session.add(user)
    await session.flush()
    return user
