"""Staff and branch commands. Services take a session and never commit; every change is audited.

Who may do what beyond the route's permission (e.g. a Manager creates only Agents of their own
branch) is decided here, from the caller's ``Principal``.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import AuditActor, audit_record
from namma.auth.deps import Principal
from namma.auth.permissions import GRANTABLE
from namma.auth.scope import staff_scope
from namma.auth.service import login_normalise, user_sessions_end_all
from namma.kit.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from namma.kit.passwords import password_check, password_hash
from namma.models import Branch, RecoveryCode, Role, User, UserPermission

STAFF_ROLES = (Role.ADMIN, Role.MANAGER, Role.AGENT)


def staff_snapshot(user: User) -> dict[str, Any]:
    return {
        "name": user.name,
        "email": user.email,
        "phone": user.phone,
        "role": user.role.value,
        "branch_id": str(user.branch_id) if user.branch_id else None,
        "is_active": user.is_active,
    }


def email_normalise(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    email = value.strip().lower()
    if not re.fullmatch(r"[^@\s]+@[^@\s]+\.[^@\s]+", email) or len(email) > 254:
        raise InvalidInputError("email", "Enter a valid email address")
    return email


def phone_normalise(value: str | None) -> str | None:
    if value is None or not value.strip():
        return None
    kind, digits = login_normalise(value)
    if kind != "phone" or digits is None:
        raise InvalidInputError("phone", "Enter a 10-digit Indian mobile number starting with 6-9")
    return digits


async def _check_unique(session: AsyncSession, email: str | None, phone: str | None) -> None:
    if email and await session.scalar(select(func.count()).where(User.email == email)):
        raise ConflictError(f"A user with email {email} already exists")
    if phone and await session.scalar(select(func.count()).where(User.phone == phone)):
        raise ConflictError(f"A user with phone {phone} already exists")


async def _user_insert(session: AsyncSession, user: User) -> None:
    """Insert a user; a login taken meanwhile by a concurrent request is a 409, not a 500.

    The SELECT in ``_check_unique`` gives the clear message in the common case; the unique
    index settles races, inside a savepoint so the request can still answer.
    """
    try:
        async with session.begin_nested():
            session.add(user)
            await session.flush()
    except IntegrityError:
        raise ConflictError("A user with this email or phone already exists") from None


async def branch_create(
    session: AsyncSession, *, code: str, name: str, is_head_office: bool, actor: AuditActor
) -> Branch:
    code = code.strip().upper()
    if not re.fullmatch(r"[A-Z0-9]{2,10}", code):
        raise InvalidInputError("code", "Branch code is 2 to 10 letters or digits, e.g. BLR01")
    if not name.strip():
        raise InvalidInputError("name", "Branch name is required")
    if await session.scalar(select(func.count()).where(Branch.code == code)):
        raise ConflictError(f"Branch code {code} is already used")
    branch = Branch(code=code, name=name.strip(), is_head_office=is_head_office)
    session.add(branch)
    await session.flush()
    await audit_record(
        session,
        actor=actor,
        action="branch.created",
        entity_type="branch",
        entity_id=str(branch.id),
        after={"code": code, "name": branch.name, "is_head_office": is_head_office},
    )
    return branch


async def staff_create(
    session: AsyncSession,
    *,
    principal: Principal,
    name: str,
    role: Role,
    branch_id: uuid.UUID | None,
    email: str | None,
    phone: str | None,
    password: str,
) -> User:
    """Admin: any staff role in any branch. Manager: Agents of their own branch only."""
    if role not in STAFF_ROLES:
        raise InvalidInputError("role", "Staff role must be admin, manager or agent")
    if principal.role is Role.MANAGER:
        if role is not Role.AGENT:
            raise PermissionDeniedError("Managers can create Agents only.")
        branch_id = branch_id or principal.branch_id
        if branch_id != principal.branch_id:
            raise PermissionDeniedError("Managers can create Agents of their own branch only.")
    if role in (Role.MANAGER, Role.AGENT):
        if branch_id is None:
            raise InvalidInputError("branch_id", "Managers and Agents belong to a branch")
        if not await session.scalar(
            select(func.count()).where(Branch.id == branch_id).where(Branch.is_active)
        ):
            raise InvalidInputError("branch_id", "No such active branch")
    if not name.strip():
        raise InvalidInputError("name", "Name is required")
    email, phone = email_normalise(email), phone_normalise(phone)
    if not email and not phone:
        raise InvalidInputError("email", "Give an email or a mobile number to log in with")
    problem = await password_check(password, context=(name, email, phone))
    if problem:
        raise InvalidInputError("password", problem)
    await _check_unique(session, email, phone)
    user = User(
        name=name.strip(),
        email=email,
        phone=phone,
        role=role,
        branch_id=branch_id,
        password_hash=await password_hash(password),
        must_change_password=True,  # a password someone else chose
        created_by_id=principal.user_id,
    )
    await _user_insert(session, user)
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="staff.created",
        entity_type="user",
        entity_id=str(user.id),
        after=staff_snapshot(user),
    )
    return user


async def staff_for_update(
    session: AsyncSession, *, principal: Principal, user_id: uuid.UUID
) -> User:
    """The staff member, locked, if in the caller's scope; a Manager may change Agents only."""
    user = await session.scalar(
        select(User).where(User.id == user_id).where(staff_scope(principal)).with_for_update()
    )
    if user is None:
        raise NotFoundError("Staff member not found")
    if principal.role is Role.MANAGER and user.role is not Role.AGENT:
        raise PermissionDeniedError("Managers can change Agents only.")
    return user


async def admin_create(session: AsyncSession, *, name: str, email: str, password: str) -> User:
    """Create an Admin (head office). Used to bootstrap the first user of an installation."""
    email_clean = email_normalise(email)
    if email_clean is None:
        raise InvalidInputError("email", "Enter a valid email address")
    if not name.strip():
        raise InvalidInputError("name", "Name is required")
    problem = await password_check(password, context=(name, email_clean))
    if problem:
        raise InvalidInputError("password", problem)
    await _check_unique(session, email_clean, None)
    user = User(
        name=name.strip(),
        email=email_clean,
        role=Role.ADMIN,
        password_hash=await password_hash(password),
    )
    await _user_insert(session, user)
    await audit_record(
        session,
        actor=AuditActor.system(),
        action="staff.created",
        entity_type="user",
        entity_id=str(user.id),
        after=staff_snapshot(user),
    )
    return user


async def staff_set_active(
    session: AsyncSession, *, principal: Principal, user_id: uuid.UUID, active: bool
) -> User:
    if user_id == principal.user_id:
        raise ConflictError("You cannot deactivate or reactivate yourself.")
    user = await staff_for_update(session, principal=principal, user_id=user_id)
    if user.is_active == active:
        raise ConflictError(
            f"This user is already {'active' if active else 'inactive'}.",
            details={"is_active": active},
        )
    before = staff_snapshot(user)
    user.is_active = active
    if not active:
        await user_sessions_end_all(session, user)
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="staff.reactivated" if active else "staff.deactivated",
        entity_type="user",
        entity_id=str(user.id),
        before=before,
        after=staff_snapshot(user),
    )
    return user


async def staff_password_reset(
    session: AsyncSession, *, principal: Principal, user_id: uuid.UUID, new_password: str
) -> User:
    """Set a temporary password; the user must change it at next login. Sessions end."""
    user = await staff_for_update(session, principal=principal, user_id=user_id)
    problem = await password_check(new_password, context=(user.name, user.email, user.phone))
    if problem:
        raise InvalidInputError("new_password", problem)
    user.password_hash = await password_hash(new_password)
    user.must_change_password = True
    user.failed_logins = 0
    user.last_failed_login_at = None
    await user_sessions_end_all(session, user)
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="staff.password_reset",
        entity_type="user",
        entity_id=str(user.id),
    )
    return user


async def staff_role_change(
    session: AsyncSession,
    *,
    principal: Principal,
    user_id: uuid.UUID,
    role: Role,
    branch_id: uuid.UUID | None,
) -> User:
    """Admin only (the route's permission). Sessions end; grants the new role cannot hold go."""
    if user_id == principal.user_id:
        raise ConflictError("You cannot change your own role.")
    if role not in STAFF_ROLES:
        raise InvalidInputError("role", "Staff role must be admin, manager or agent")
    user = await staff_for_update(session, principal=principal, user_id=user_id)
    before = staff_snapshot(user)
    new_branch = branch_id if branch_id is not None else user.branch_id
    if role in (Role.MANAGER, Role.AGENT) and new_branch is None:
        raise InvalidInputError("branch_id", "Managers and Agents belong to a branch")
    if new_branch is not None and not await session.scalar(
        select(func.count()).where(Branch.id == new_branch)
    ):
        raise InvalidInputError("branch_id", "No such branch")
    user.role = role
    user.branch_id = new_branch
    allowed = {p.value for p in GRANTABLE[role]}
    await session.execute(
        delete(UserPermission)
        .where(UserPermission.user_id == user.id)
        .where(UserPermission.permission.not_in(allowed or {""}))
    )
    await user_sessions_end_all(session, user)
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="staff.role_changed",
        entity_type="user",
        entity_id=str(user.id),
        before=before,
        after=staff_snapshot(user),
    )
    return user


async def staff_permissions_set(
    session: AsyncSession, *, principal: Principal, user_id: uuid.UUID, permissions: list[str]
) -> list[str]:
    """Replace the extra permissions of a user (Admin only)."""
    user = await staff_for_update(session, principal=principal, user_id=user_id)
    allowed = {p.value for p in GRANTABLE[user.role]}
    unknown = sorted(set(permissions) - allowed)
    if unknown:
        raise InvalidInputError(
            "permissions",
            f"Not grantable to a {user.role.value}: {', '.join(unknown)}"
            + (f" (grantable: {', '.join(sorted(allowed))})" if allowed else " (nothing is)"),
        )
    before = sorted(
        (
            await session.scalars(
                select(UserPermission.permission).where(UserPermission.user_id == user.id)
            )
        ).all()
    )
    await session.execute(delete(UserPermission).where(UserPermission.user_id == user.id))
    wanted = sorted(set(permissions))
    session.add_all(
        UserPermission(user_id=user.id, permission=p, granted_by_id=principal.user_id)
        for p in wanted
    )
    await session.flush()
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="staff.permissions_changed",
        entity_type="user",
        entity_id=str(user.id),
        before={"permissions": before},
        after={"permissions": wanted},
    )
    return wanted


async def branch_update(
    session: AsyncSession,
    *,
    actor: AuditActor,
    branch_id: uuid.UUID,
    name: str,
    is_head_office: bool,
    is_active: bool,
) -> Branch:
    """Rename a branch, mark it head office or not, open or close it (the code never changes:
    it prefixes loan and receipt numbers). A branch with active staff cannot be closed."""
    branch = await session.scalar(select(Branch).where(Branch.id == branch_id).with_for_update())
    if branch is None:
        raise NotFoundError("Branch not found")
    if not name.strip():
        raise InvalidInputError("name", "Branch name is required")
    if branch.is_active and not is_active:
        staffed = await session.scalar(
            select(func.count())
            .where(User.branch_id == branch.id)
            .where(User.is_active)
            .where(User.role.in_((Role.MANAGER, Role.AGENT)))
        )
        if staffed:
            raise InvalidInputError(
                "is_active", "Move or deactivate the branch's staff before closing it"
            )
    before = {"name": branch.name, "is_head_office": branch.is_head_office}
    before["is_active"] = branch.is_active
    branch.name = name.strip()
    branch.is_head_office = is_head_office
    branch.is_active = is_active
    await session.flush()
    await audit_record(
        session,
        actor=actor,
        action="branch.updated",
        entity_type="branch",
        entity_id=str(branch.id),
        before=before,
        after={"name": branch.name, "is_head_office": is_head_office, "is_active": is_active},
    )
    return branch


async def staff_totp_reset(
    session: AsyncSession, *, principal: Principal, user_id: uuid.UUID
) -> User:
    """Admin only: forget the staff member's authenticator (a lost phone). Their sessions end;
    an Admin enrols again at the next sign-in."""
    if principal.role is not Role.ADMIN:
        raise PermissionDeniedError("Only an Admin can reset two-factor authentication.")
    if user_id == principal.user_id:
        raise ConflictError("You cannot reset your own two-factor authentication.")
    user = await staff_for_update(session, principal=principal, user_id=user_id)
    if user.totp_secret_encrypted is None and user.totp_enabled_at is None:
        raise ConflictError("This user has no authenticator to reset.")
    user.totp_secret_encrypted = None
    user.totp_enabled_at = None
    user.totp_last_step = None
    await session.execute(
        update(RecoveryCode)
        .where(RecoveryCode.user_id == user.id)
        .where(RecoveryCode.used_at.is_(None))
        .values(used_at=func.now())
    )
    await user_sessions_end_all(session, user)
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="staff.totp_reset",
        entity_type="user",
        entity_id=str(user.id),
    )
    return user
