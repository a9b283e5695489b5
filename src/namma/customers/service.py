"""Customer commands: onboard, update, decide KYC, close. Services never commit; each command
ends with its audit entry.

Who may act on which customer: the route checks the permission, ``customer_scope`` (in every
lookup here) the record. An id outside the caller's scope is "not found".
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Final, Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import audit_record
from namma.auth.deps import Principal
from namma.auth.scope import customer_scope
from namma.customers.kyc import KycNumberError, kyc_hash, kyc_mask, kyc_normalise
from namma.kit.clock import today_india
from namma.kit.errors import ConflictError, InvalidInputError, NotFoundError, PermissionDeniedError
from namma.kit.passwords import password_check, password_hash
from namma.models import (
    AgentAssignment,
    Branch,
    Customer,
    CustomerStatus,
    KycDocumentType,
    KycStatus,
    Language,
    Loan,
    Role,
    User,
)
from namma.models.loan import OPEN_STATUSES
from namma.users.service import email_normalise, phone_normalise

MIN_AGE, MAX_AGE = 18, 100
MAX_INCOME = Decimal("1000000000.00")  # ₹100 crore a month: anything above is a typing error
NAME_MAX, VILLAGE_MAX, ADDRESS_MAX, REASON_MAX = 120, 120, 500, 1000


class _Unset:
    """Marks a keyword not passed to ``customer_update`` (unlike None, which clears a field)."""

    _instance: _Unset | None = None

    def __new__(cls) -> _Unset:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNSET"

    def __bool__(self) -> bool:
        return False


UNSET: Final = _Unset()


def customer_snapshot(customer: Customer) -> dict[str, Any]:
    """What the audit log keeps of a customer (never the document number, only its mask)."""
    return {
        "branch_id": str(customer.branch_id),
        "name": customer.name,
        "phone": customer.phone,
        "email": customer.email,
        "preferred_language": customer.preferred_language,
        "date_of_birth": customer.date_of_birth.isoformat() if customer.date_of_birth else None,
        "address": customer.address,
        "village": customer.village,
        "household_monthly_income": customer.household_monthly_income,
        "kyc_document_type": customer.kyc_document_type.value
        if customer.kyc_document_type
        else None,
        "kyc_document_masked": customer.kyc_number_masked,
        "kyc_status": customer.kyc_status.value,
        "status": customer.status.value,
    }


# --- field rules ----------------------------------------------------------------------------------


def storable_text(field: str, value: str) -> str:
    """``value`` if PostgreSQL can store it: no NUL character, valid UTF-8 (no lone surrogates,
    which JSON escapes can carry). Otherwise a 422 naming ``field``."""
    if "\x00" in value:
        raise InvalidInputError(field, "Contains a NUL character")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidInputError(field, "Contains characters that are not valid text") from None
    return value


def _text(field: str, value: str | None, *, max_length: int, required: bool) -> str | None:
    """Trimmed (and, except for addresses, with runs of white space made one space)."""
    if value is None:
        cleaned = None
    else:
        storable_text(field, value)
        cleaned = value.strip() if field == "address" else " ".join(value.split())
    if not cleaned:
        if required:
            raise InvalidInputError(field, "This field is required")
        return None
    if len(cleaned) > max_length:
        raise InvalidInputError(field, f"At most {max_length} characters")
    return cleaned


def _clean_email(value: str | None) -> str | None:
    return email_normalise(storable_text("email", value) if value is not None else None)


def _required_phone(value: str | None) -> str:
    # phone_normalise passes anything with an "@" through as an email login: digits only here.
    phone = phone_normalise(value) if value and "@" not in value else None
    if phone is None or not re.fullmatch(r"[6-9][0-9]{9}", phone):
        raise InvalidInputError("phone", "Enter a 10-digit Indian mobile number starting with 6-9")
    return phone


def _age(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _date_of_birth(value: dt.date | None, *, onboarded_on: dt.date) -> dt.date:
    if value is None:
        raise InvalidInputError("date_of_birth", "This field is required")
    if value > today_india():
        raise InvalidInputError("date_of_birth", "The date of birth is in the future")
    age = _age(value, onboarded_on)
    if age < MIN_AGE:
        raise InvalidInputError("date_of_birth", f"A customer must be at least {MIN_AGE} years old")
    if age > MAX_AGE:
        raise InvalidInputError("date_of_birth", f"A customer must be at most {MAX_AGE} years old")
    return value


def _income(value: Decimal | None) -> Decimal:
    if value is None:
        raise InvalidInputError("household_monthly_income", "This field is required")
    if not isinstance(value, Decimal) or not value.is_finite():
        raise InvalidInputError("household_monthly_income", "Must be a decimal amount")
    exponent = value.as_tuple().exponent
    if isinstance(exponent, int) and exponent < -2:
        raise InvalidInputError("household_monthly_income", "At most 2 decimal places")
    if value < 0:
        raise InvalidInputError("household_monthly_income", "Must be zero or more")
    if value > MAX_INCOME:
        raise InvalidInputError("household_monthly_income", "Unrealistically large")
    return value.quantize(Decimal("0.01"))


def _reason(value: str | None, *, required: bool) -> str | None:
    return _text("reason", value, max_length=REASON_MAX, required=required)


async def _phone_taken(
    session: AsyncSession, principal: Principal, phone: str, *, other_than: uuid.UUID | None = None
) -> None:
    query = select(Customer.id).where(Customer.phone == phone)
    if other_than is not None:
        query = query.where(Customer.id != other_than)
    existing = await session.scalar(query)
    if existing is not None:
        raise await _duplicate(session, principal, existing, "A customer with this phone number")


async def _duplicate(
    session: AsyncSession, principal: Principal, existing: uuid.UUID, what: str
) -> ConflictError:
    """The 409 for a duplicate: it names the existing customer only to a caller who may see it."""
    visible = await session.scalar(
        select(Customer.id).where(Customer.id == existing).where(customer_scope(principal))
    )
    if visible is not None:
        return ConflictError(
            f"{what} is already registered (customer {existing}).",
            details={"customer_id": str(existing)},
        )
    return ConflictError(f"{what} is already registered.")


async def _login_taken(
    session: AsyncSession,
    *,
    email: str | None,
    phone: str | None,
    other_than: uuid.UUID | None = None,
) -> None:
    for field, column, value in (("email", User.email, email), ("phone", User.phone, phone)):
        if value is None:
            continue
        query = select(func.count()).select_from(User).where(column == value)
        if other_than is not None:
            query = query.where(User.id != other_than)
        if await session.scalar(query):
            raise ConflictError(
                f"Another login already uses this {field}; the portal login needs its own.",
                details={"field": field},
            )


@contextmanager
def _unique_violations_as_conflicts() -> Iterator[None]:
    """A concurrent insert that slipped past the checks above hits a unique index: 409, not 500."""
    try:
        yield
    except IntegrityError as exc:
        constraint = getattr(getattr(exc.orig, "diag", None), "constraint_name", None) or ""
        if "kyc" in constraint:
            raise ConflictError("This identity document is already registered.") from None
        if "phone" in constraint:
            raise ConflictError("This phone number is already registered.") from None
        if "email" in constraint:
            raise ConflictError("This email address is already registered.") from None
        raise


async def _flush(session: AsyncSession) -> None:
    with _unique_violations_as_conflicts():
        async with session.begin_nested():
            await session.flush()


async def customer_for_update(
    session: AsyncSession, *, principal: Principal, customer_id: uuid.UUID
) -> Customer:
    """The customer, locked, if in the caller's scope (404 otherwise)."""
    customer = await session.scalar(
        select(Customer)
        .where(Customer.id == customer_id)
        .where(customer_scope(principal))
        .with_for_update()
    )
    if customer is None:
        raise NotFoundError("Customer not found")
    return customer


def _not_closed(customer: Customer) -> None:
    if customer.status is CustomerStatus.CLOSED:
        raise ConflictError("This customer is closed.", details={"status": customer.status.value})


# --- commands ----------------------------------------------------------------------------------


async def _onboarding_branch(
    session: AsyncSession, principal: Principal, branch_id: uuid.UUID | None
) -> uuid.UUID:
    """Agents and Managers onboard into their own branch; Admins name an active branch."""
    if principal.role in (Role.AGENT, Role.MANAGER):
        if principal.branch_id is None:  # pragma: no cover - a check constraint forbids it
            raise PermissionDeniedError("You do not belong to a branch.")
        if branch_id is not None and branch_id != principal.branch_id:
            raise PermissionDeniedError("You can onboard customers of your own branch only.")
        branch_id = principal.branch_id
    elif principal.role is Role.ADMIN:
        if branch_id is None:
            raise InvalidInputError("branch_id", "Choose the customer's branch")
    else:
        raise PermissionDeniedError("You do not have permission to do this.")
    active = await session.scalar(
        select(func.count())
        .select_from(Branch)
        .where(Branch.id == branch_id)
        .where(Branch.is_active)
    )
    if not active:
        raise InvalidInputError("branch_id", "No such active branch")
    return branch_id


def _language(value: str) -> str:
    """A language the message templates exist in (see namma.notifications)."""
    if value not in {language.value for language in Language}:
        raise InvalidInputError("preferred_language", 'Must be "en" (English) or "kn" (Kannada)')
    return value


async def customer_create(
    session: AsyncSession,
    *,
    principal: Principal,
    secret_key: str,
    branch_id: uuid.UUID | None,
    name: str,
    phone: str,
    email: str | None,
    date_of_birth: dt.date | None,
    address: str | None,
    village: str | None,
    household_monthly_income: Decimal | None,
    kyc_document_type: KycDocumentType,
    kyc_number: str,
    portal_password: str | None = None,
    preferred_language: str = "en",
) -> Customer:
    """Onboard a customer (KYC pending). An Agent becomes the customer's agent.

    With ``portal_password`` the customer also gets a portal login (role customer) by their
    phone number or email; like every password chosen by someone else, it must be changed at
    first login.
    """
    branch = await _onboarding_branch(session, principal, branch_id)
    today = today_india()
    clean_name = _text("name", name, max_length=NAME_MAX, required=True)
    assert clean_name is not None
    clean_phone = _required_phone(phone)
    clean_email = _clean_email(email)
    born = _date_of_birth(date_of_birth, onboarded_on=today)
    clean_address = _text("address", address, max_length=ADDRESS_MAX, required=False)
    clean_village = _text("village", village, max_length=VILLAGE_MAX, required=True)
    income = _income(household_monthly_income)
    doc_type = KycDocumentType(kyc_document_type)
    try:
        number = kyc_normalise(doc_type, kyc_number)
    except KycNumberError as exc:
        raise InvalidInputError("kyc_number", str(exc)) from None
    if portal_password is not None:
        problem = await password_check(
            portal_password, context=(clean_name, clean_email, clean_phone)
        )
        if problem:
            raise InvalidInputError("portal_password", problem)

    await _phone_taken(session, principal, clean_phone)
    digest = kyc_hash(doc_type, number, secret_key=secret_key)
    existing = await session.scalar(
        select(Customer.id)
        .where(Customer.kyc_document_type == doc_type)
        .where(Customer.kyc_number_hash == digest)
    )
    if existing is not None:
        raise await _duplicate(session, principal, existing, "This identity document")

    user: User | None = None
    if portal_password is not None:
        await _login_taken(session, email=clean_email, phone=clean_phone)
        user = User(
            name=clean_name,
            email=clean_email,
            phone=clean_phone,
            role=Role.CUSTOMER,
            branch_id=None,
            password_hash=await password_hash(portal_password),
            must_change_password=True,
            created_by_id=principal.user_id,
        )
        session.add(user)
        await _flush(session)  # before the customer row that refers to it

    customer = Customer(
        branch_id=branch,
        user_id=user.id if user else None,
        name=clean_name,
        phone=clean_phone,
        email=clean_email,
        preferred_language=_language(preferred_language),
        date_of_birth=born,
        address=clean_address,
        village=clean_village,
        household_monthly_income=income,
        kyc_document_type=doc_type,
        kyc_number_masked=kyc_mask(number),
        kyc_number_hash=digest,
        kyc_status=KycStatus.PENDING,
        status=CustomerStatus.ACTIVE,
        created_by_id=principal.user_id,
    )
    session.add(customer)
    await _flush(session)
    if principal.role is Role.AGENT:
        session.add(
            AgentAssignment(
                customer_id=customer.id,
                agent_id=principal.user_id,
                assigned_by_id=principal.user_id,
                reason="Onboarded by this agent",
            )
        )
    await session.flush()
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="customer.created",
        entity_type="customer",
        entity_id=str(customer.id),
        after={
            **customer_snapshot(customer),
            "portal_user_id": str(user.id) if user else None,
            "agent_id": str(principal.user_id) if principal.role is Role.AGENT else None,
        },
    )
    return customer


async def customer_update(
    session: AsyncSession,
    *,
    principal: Principal,
    customer_id: uuid.UUID,
    name: str | _Unset = UNSET,
    phone: str | _Unset = UNSET,
    email: str | _Unset | None = UNSET,
    address: str | _Unset | None = UNSET,
    village: str | _Unset = UNSET,
    household_monthly_income: Decimal | _Unset = UNSET,
    preferred_language: str | _Unset = UNSET,
) -> Customer:
    """Change the fields passed (``None`` clears an optional one). Branch, date of birth and
    KYC are not changed here. The portal login follows the customer's name, phone and email."""
    customer = await customer_for_update(session, principal=principal, customer_id=customer_id)
    _not_closed(customer)
    wanted: dict[str, Any] = {}
    if not isinstance(name, _Unset):
        wanted["name"] = _text("name", name, max_length=NAME_MAX, required=True)
    if not isinstance(phone, _Unset):
        wanted["phone"] = _required_phone(phone)
    if not isinstance(email, _Unset):
        wanted["email"] = _clean_email(email)
    if not isinstance(address, _Unset):
        wanted["address"] = _text("address", address, max_length=ADDRESS_MAX, required=False)
    if not isinstance(village, _Unset):
        wanted["village"] = _text("village", village, max_length=VILLAGE_MAX, required=True)
    if not isinstance(household_monthly_income, _Unset):
        wanted["household_monthly_income"] = _income(household_monthly_income)
    if not isinstance(preferred_language, _Unset):
        wanted["preferred_language"] = _language(preferred_language)

    changed = {k: v for k, v in wanted.items() if getattr(customer, k) != v}
    if not changed:
        return customer
    if "phone" in changed:
        await _phone_taken(session, principal, changed["phone"], other_than=customer.id)

    user = (
        await session.get(User, customer.user_id, with_for_update=True)
        if customer.user_id
        else None
    )
    if user is not None and (changed.get("phone") or changed.get("email")):
        await _login_taken(
            session, email=changed.get("email"), phone=changed.get("phone"), other_than=user.id
        )

    before = {k: getattr(customer, k) for k in changed}
    for key, value in changed.items():
        setattr(customer, key, value)
    if user is not None:  # the portal login follows what changed
        if "name" in changed:
            user.name = changed["name"]
        if "phone" in changed:
            user.phone = changed["phone"]
        if "email" in changed and (changed["email"] or user.phone):
            user.email = changed["email"]
    await _flush(session)
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="customer.updated",
        entity_type="customer",
        entity_id=str(customer.id),
        before=before,
        after=changed,
    )
    return customer


async def customer_kyc_decide(
    session: AsyncSession,
    *,
    principal: Principal,
    customer_id: uuid.UUID,
    decision: Literal["verified", "rejected"] | KycStatus,
    reason: str | None,
) -> Customer:
    """Verify or reject a pending KYC (Manager of the branch, or Admin). Records who and when;
    a rejection needs a reason. A decided KYC is not decided again (409)."""
    try:
        outcome = KycStatus(decision)
    except ValueError:
        raise InvalidInputError("decision", "Decide verified or rejected") from None
    if outcome is KycStatus.PENDING:
        raise InvalidInputError("decision", "Decide verified or rejected")
    clean_reason = _reason(reason, required=outcome is KycStatus.REJECTED)
    customer = await customer_for_update(session, principal=principal, customer_id=customer_id)
    _not_closed(customer)
    if customer.kyc_status is not KycStatus.PENDING:
        raise ConflictError(
            f"The KYC was already decided: {customer.kyc_status.value}.",
            details={"kyc_status": customer.kyc_status.value},
        )
    customer.kyc_status = outcome
    customer.kyc_decided_by_id = principal.user_id
    customer.kyc_decided_at = dt.datetime.now(dt.UTC)
    customer.kyc_rejection_reason = clean_reason if outcome is KycStatus.REJECTED else None
    await session.flush()
    await audit_record(
        session,
        actor=principal.audit_actor,
        action=f"customer.kyc_{outcome.value}",
        entity_type="customer",
        entity_id=str(customer.id),
        before={"kyc_status": KycStatus.PENDING.value},
        after={"kyc_status": outcome.value, "reason": clean_reason},
    )
    return customer


async def customer_close(
    session: AsyncSession, *, principal: Principal, customer_id: uuid.UUID, reason: str
) -> Customer:
    """Close a customer who has no open loan (applied, approved or active): this replaces
    deletion. The current agent assignment ends; every record is kept."""
    clean_reason = _reason(reason, required=True)
    customer = await customer_for_update(session, principal=principal, customer_id=customer_id)
    _not_closed(customer)
    open_loans = list(
        (
            await session.scalars(
                select(Loan.loan_number)
                .where(Loan.customer_id == customer.id)
                .where(Loan.status.in_(OPEN_STATUSES))
                .order_by(Loan.loan_number)
            )
        ).all()
    )
    if open_loans:
        raise ConflictError(
            "The customer has open loans; close, withdraw or write them off first.",
            details={"open_loans": open_loans},
        )
    now = dt.datetime.now(dt.UTC)
    assignment = await session.scalar(
        select(AgentAssignment)
        .where(AgentAssignment.customer_id == customer.id)
        .where(AgentAssignment.ended_at.is_(None))
        .with_for_update()
    )
    if assignment is not None:
        assignment.ended_at = now
    customer.status = CustomerStatus.CLOSED
    customer.closed_at = now
    customer.closed_by_id = principal.user_id
    customer.closed_reason = clean_reason
    await session.flush()
    await audit_record(
        session,
        actor=principal.audit_actor,
        action="customer.closed",
        entity_type="customer",
        entity_id=str(customer.id),
        before={
            "status": CustomerStatus.ACTIVE.value,
            "agent_id": str(assignment.agent_id) if assignment else None,
        },
        after={"status": CustomerStatus.CLOSED.value, "reason": clean_reason},
    )
    return customer
