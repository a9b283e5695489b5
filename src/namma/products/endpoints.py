"""`/api/products`: loan products and their versions."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import ConfigDict, Field
from sqlalchemy import select

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.kit.apitypes import RequestModel
from namma.kit.deps import SessionDep
from namma.kit.errors import NotFoundError
from namma.kit.money import Money, Rate
from namma.kit.openapi import error_responses
from namma.models import LoanProduct, LoanProductVersion
from namma.products import service
from namma.products.schemas import (
    ProductDetailOut,
    ProductList,
    ProductOut,
    ProductTerms,
    VersionOut,
)

router = APIRouter(prefix="/api/products", tags=["products"])


class LimitsIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    min_principal: Money
    max_principal: Money
    min_rate: Rate
    max_rate: Rate
    default_rate: Rate
    min_installments: int = Field(ge=1, le=10_000)
    max_installments: int = Field(ge=1, le=10_000)
    microfinance: bool = True
    max_obligation_ratio: Rate = Decimal("0.5")

    def limits(self) -> service.ProductLimits:
        return service.ProductLimits(**dict(self))


class ProductIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=2, max_length=20, examples=["JLG-52W"])
    name: str = Field(min_length=1, max_length=120)
    description: str | None = Field(default=None, max_length=2000)
    terms: ProductTerms = Field(default_factory=ProductTerms)
    limits: LimitsIn


class VersionIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    terms: ProductTerms
    limits: LimitsIn


async def _product(session: SessionDep, product: LoanProduct) -> ProductOut:
    latest = await session.scalar(
        select(LoanProductVersion)
        .where(LoanProductVersion.product_id == product.id)
        .where(LoanProductVersion.version == product.latest_version)
    )
    return ProductOut(
        id=product.id,
        code=product.code,
        name=product.name,
        description=product.description,
        is_active=product.is_active,
        latest_version=VersionOut.of(latest) if latest else None,
    )


@router.get("")
async def products_list(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.PRODUCT_READ))],
    include_inactive: bool = False,
) -> ProductList:
    query = select(LoanProduct).order_by(LoanProduct.code)
    if not include_inactive:
        query = query.where(LoanProduct.is_active)
    products = (await session.scalars(query)).all()
    return ProductList(products=[await _product(session, p) for p in products])


@router.get("/{product_id}")
async def product_get(
    product_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.PRODUCT_READ))],
) -> ProductDetailOut:
    product = await session.get(LoanProduct, product_id)
    if product is None:
        raise NotFoundError("Product not found")
    versions = (
        await session.scalars(
            select(LoanProductVersion)
            .where(LoanProductVersion.product_id == product.id)
            .order_by(LoanProductVersion.version.desc())
        )
    ).all()
    return ProductDetailOut(
        **(await _product(session, product)).model_dump(),
        versions=[VersionOut.of(v) for v in versions],
    )


@router.post("", status_code=201, responses=error_responses(409))
async def product_create(
    body: ProductIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.PRODUCT_MANAGE, limit="writes"))],
) -> ProductOut:
    product, _ = await service.product_create(
        session,
        actor=principal.audit_actor,
        created_by_id=principal.user_id,
        code=body.code,
        name=body.name,
        description=body.description,
        terms=body.terms,
        limits=body.limits.limits(),
    )
    return await _product(session, product)


@router.post("/{product_id}/versions", status_code=201)
async def product_revise(
    product_id: uuid.UUID,
    body: VersionIn,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.PRODUCT_MANAGE, limit="writes"))],
) -> VersionOut:
    version = await service.product_revise(
        session,
        actor=principal.audit_actor,
        created_by_id=principal.user_id,
        product_id=product_id,
        terms=body.terms,
        limits=body.limits.limits(),
    )
    return VersionOut.of(version)


@router.post("/{product_id}/deactivate", responses=error_responses(409))
async def product_deactivate(
    product_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.PRODUCT_MANAGE, limit="writes"))],
) -> ProductOut:
    product = await service.product_set_active(
        session, actor=principal.audit_actor, product_id=product_id, active=False
    )
    return await _product(session, product)


@router.post("/{product_id}/activate", responses=error_responses(409))
async def product_activate(
    product_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.PRODUCT_MANAGE, limit="writes"))],
) -> ProductOut:
    product = await service.product_set_active(
        session, actor=principal.audit_actor, product_id=product_id, active=True
    )
    return await _product(session, product)
