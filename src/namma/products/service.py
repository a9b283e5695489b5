"""Loan product commands. Editing a product adds a version; loans keep theirs."""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.audit.service import AuditActor, audit_record
from namma.calendars.queries import institution_calendar
from namma.finance import (
    CENT,
    ExcessPolicy,
    Schedule,
    TermsError,
    generate_schedule,
    reschedule_after_prepayment,
)
from namma.kit.errors import ConflictError, InvalidInputError, NotFoundError
from namma.models import LoanProduct, LoanProductVersion
from namma.products.schemas import ProductTerms


@dataclass(frozen=True)
class ProductLimits:
    min_principal: Decimal
    max_principal: Decimal
    min_rate: Decimal
    max_rate: Decimal
    default_rate: Decimal
    min_installments: int
    max_installments: int
    microfinance: bool = True
    max_obligation_ratio: Decimal = Decimal("0.5")


def terms_error_to_input(exc: TermsError, *, prefix: str = "") -> InvalidInputError:
    """The first problem of a money-core validation as a 422 naming the field."""
    first = exc.errors[0]
    error = InvalidInputError(prefix + first.field, first.message)
    error.details = [{"field": prefix + e.field, "message": e.message} for e in exc.errors]
    return error


def _limits_check(limits: ProductLimits, terms: ProductTerms) -> None:
    if limits.min_principal <= 0:
        raise InvalidInputError("min_principal", "Principal must be greater than 0")
    if limits.min_principal > limits.max_principal:
        raise InvalidInputError("max_principal", "The largest principal is below the smallest")
    if not (0 <= limits.min_rate <= limits.default_rate <= limits.max_rate <= 100):
        raise InvalidInputError("default_rate", "Rates must satisfy 0 ≤ min ≤ default ≤ max ≤ 100")
    if not (1 <= limits.min_installments <= limits.max_installments):
        raise InvalidInputError("max_installments", "Installments must satisfy 1 ≤ min ≤ max")
    if not (Decimal(0) < limits.max_obligation_ratio <= 1):
        raise InvalidInputError("max_obligation_ratio", "Between 0 and 1 (e.g. 0.5 for 50 %)")
    if limits.microfinance and terms.prepayment_penalty_percent > 0:
        raise InvalidInputError(
            "terms.prepayment_penalty_percent",
            "Microfinance products cannot charge a prepayment penalty (RBI)",
        )
    # The terms must make sense at both ends of the limits.
    for principal, rate, count in (
        (limits.min_principal, limits.min_rate, limits.min_installments),
        (limits.max_principal, limits.max_rate, limits.max_installments),
    ):
        try:
            terms.loan_terms(
                principal=principal,
                annual_rate=rate,
                installments=count,
                microfinance=limits.microfinance,
            )
        except TermsError as exc:
            raise terms_error_to_input(exc, prefix="terms.") from None


async def product_create(
    session: AsyncSession,
    *,
    actor: AuditActor,
    created_by_id: uuid.UUID,
    code: str,
    name: str,
    description: str | None,
    terms: ProductTerms,
    limits: ProductLimits,
) -> tuple[LoanProduct, LoanProductVersion]:
    code = code.strip().upper()
    if not re.fullmatch(r"[A-Z0-9-]{2,20}", code):
        raise InvalidInputError("code", "2 to 20 capital letters, digits or dashes, e.g. JLG-52W")
    if not name.strip():
        raise InvalidInputError("name", "Name is required")
    _limits_check(limits, terms)
    if await session.scalar(select(func.count()).where(LoanProduct.code == code)):
        raise ConflictError(f"Product code {code} is already used")
    product = LoanProduct(code=code, name=name.strip(), description=description, latest_version=1)
    session.add(product)
    await session.flush()
    version = _version(product.id, 1, terms, limits, created_by_id)
    session.add(version)
    await session.flush()
    await audit_record(
        session,
        actor=actor,
        action="product.created",
        entity_type="loan_product",
        entity_id=str(product.id),
        after={"code": code, "version": 1, "terms": terms.stored(), **_limits_json(limits)},
    )
    return product, version


async def product_revise(
    session: AsyncSession,
    *,
    actor: AuditActor,
    created_by_id: uuid.UUID,
    product_id: uuid.UUID,
    terms: ProductTerms,
    limits: ProductLimits,
) -> LoanProductVersion:
    """Edit a product: a new version; loans already sanctioned keep theirs."""
    product = await session.scalar(
        select(LoanProduct).where(LoanProduct.id == product_id).with_for_update()
    )
    if product is None:
        raise NotFoundError("Product not found")
    _limits_check(limits, terms)
    product.latest_version += 1
    version = _version(product.id, product.latest_version, terms, limits, created_by_id)
    session.add(version)
    await session.flush()
    await audit_record(
        session,
        actor=actor,
        action="product.revised",
        entity_type="loan_product",
        entity_id=str(product.id),
        after={"version": version.version, "terms": terms.stored(), **_limits_json(limits)},
    )
    return version


async def product_set_active(
    session: AsyncSession, *, actor: AuditActor, product_id: uuid.UUID, active: bool
) -> LoanProduct:
    product = await session.scalar(
        select(LoanProduct).where(LoanProduct.id == product_id).with_for_update()
    )
    if product is None:
        raise NotFoundError("Product not found")
    if product.is_active == active:
        raise ConflictError(f"The product is already {'active' if active else 'inactive'}")
    product.is_active = active
    await audit_record(
        session,
        actor=actor,
        action="product.activated" if active else "product.deactivated",
        entity_type="loan_product",
        entity_id=str(product.id),
    )
    return product


def _version(
    product_id: uuid.UUID,
    number: int,
    terms: ProductTerms,
    limits: ProductLimits,
    created_by_id: uuid.UUID,
) -> LoanProductVersion:
    return LoanProductVersion(
        product_id=product_id,
        version=number,
        terms=terms.stored(),
        min_principal=limits.min_principal,
        max_principal=limits.max_principal,
        min_rate=limits.min_rate,
        max_rate=limits.max_rate,
        default_rate=limits.default_rate,
        min_installments=limits.min_installments,
        max_installments=limits.max_installments,
        microfinance=limits.microfinance,
        max_obligation_ratio=limits.max_obligation_ratio,
        created_by_id=created_by_id,
    )


def _limits_json(limits: ProductLimits) -> dict[str, object]:
    return {
        "min_principal": limits.min_principal,
        "max_principal": limits.max_principal,
        "min_rate": limits.min_rate,
        "max_rate": limits.max_rate,
        "default_rate": limits.default_rate,
        "min_installments": limits.min_installments,
        "max_installments": limits.max_installments,
        "microfinance": limits.microfinance,
        "max_obligation_ratio": limits.max_obligation_ratio,
    }


async def schedule_preview(
    session: AsyncSession,
    version: LoanProductVersion,
    *,
    principal: Decimal,
    annual_rate: Decimal,
    installments: int,
    disbursed_on: dt.date,
) -> Schedule:
    """The schedule a loan of this product version would have for the sample terms, from the
    money core (nothing is stored). The amounts must lie within the version's limits. A
    product belongs to no branch, so its due dates go on the institution-wide calendar (D-209):
    a branch's own holidays and weekdays can move a loan's dates further."""
    if not (version.min_principal <= principal <= version.max_principal):
        raise InvalidInputError(
            "principal",
            f"Between {version.min_principal} and {version.max_principal} for this product",
        )
    if not (version.min_rate <= annual_rate <= version.max_rate):
        raise InvalidInputError(
            "annual_rate", f"Between {version.min_rate} and {version.max_rate} for this product"
        )
    if not (version.min_installments <= installments <= version.max_installments):
        raise InvalidInputError(
            "installments",
            f"Between {version.min_installments} and {version.max_installments} for this product",
        )
    try:
        terms = ProductTerms.model_validate(version.terms).loan_terms(
            principal=principal,
            annual_rate=annual_rate,
            installments=installments,
            microfinance=version.microfinance,
        )
        calendar = await institution_calendar(session, since=disbursed_on)
        return generate_schedule(terms, disbursed_on=disbursed_on, calendar=calendar)
    except TermsError as exc:
        raise terms_error_to_input(exc) from None


def excess_example(schedule: Schedule) -> Schedule | None:
    """What the product's excess policy does with one installment paid beyond the first one's
    dues, on the preview's schedule (the money core's rescheduling; None for the policies that
    do not reschedule — an advance is held and applied as installments fall due)."""
    terms = schedule.terms
    policy = terms.allocation.excess
    if policy not in (ExcessPolicy.REDUCE_TERM, ExcessPolicy.REDUCE_INSTALLMENT):
        return None
    if len(schedule.rows) < 2:
        return None
    left = schedule.rows[0].balance
    prepaid = min(schedule.installment_amount, left - CENT)
    if prepaid <= 0:
        return None
    return reschedule_after_prepayment(
        schedule=schedule, paid_through=1, balance=left - prepaid, policy=policy
    )
