"""Product reads for the back office: a keyset page of products with their latest version,
and one product with every version."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.kit.errors import NotFoundError
from namma.kit.pagination import Keyset, KeysetPage, SortColumn, keyset_page, keyset_select
from namma.models import LoanProduct, LoanProductVersion

PRODUCT_SORTS: dict[str, SortColumn] = {
    "code": SortColumn("code", LoanProduct.code, str),
    "name": SortColumn("name", LoanProduct.name, str),
    "created": SortColumn("created", LoanProduct.created_at, dt.datetime.fromisoformat),
}


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def products_page(
    session: AsyncSession, keyset: Keyset, *, q: str | None = None, active: bool | None = None
) -> KeysetPage[Any]:
    """Rows of (product, latest version, sort value)."""
    query = select(
        LoanProduct, LoanProductVersion, keyset.sort.column.label("sort_value")
    ).outerjoin(
        LoanProductVersion,
        and_(
            LoanProductVersion.product_id == LoanProduct.id,
            LoanProductVersion.version == LoanProduct.latest_version,
        ),
    )
    if q:
        query = query.where(
            or_(
                LoanProduct.code.ilike(_like(q), escape="\\"),
                LoanProduct.name.ilike(_like(q), escape="\\"),
            )
        )
    if active is not None:
        query = query.where(LoanProduct.is_active == active)
    rows = (await session.execute(keyset_select(query, keyset, LoanProduct.id))).all()
    return keyset_page(rows, keyset, lambda row: (row.sort_value, row[0].id))


async def product_with_versions(
    session: AsyncSession, product_id: uuid.UUID
) -> tuple[LoanProduct, list[LoanProductVersion]]:
    """The product and its versions, the latest first (404 if unknown)."""
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
    return product, list(versions)
