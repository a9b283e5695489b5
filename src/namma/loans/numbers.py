"""Loan numbers as people type them.

A loan's number is ``<branch code>-<year>-<sequence of 6 digits>`` (``BLR01-2026-000007``). On a
phone, from a paper sheet or a receipt, people write ``blr01-2026-7``, ``BLR01 2026 000007`` or
``BLR01/2026/7``: each is that loan. ``loan_number_normalise`` gives the stored form (or ``None``
when the text is not a loan number at all); ``loan_id_by_number`` finds the loan in the caller's
scope.
"""

from __future__ import annotations

import re
import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from namma.auth.deps import Principal
from namma.auth.scope import loan_scope
from namma.models import Loan

_TYPED = re.compile(r"([A-Z][A-Z0-9]{0,19})[\s\-/._#]+([0-9]{4})[\s\-/._#]+([0-9]{1,12})", re.ASCII)


def loan_number_normalise(text: str) -> str | None:
    """``" blr01/2026/7 "`` → ``"BLR01-2026-000007"``; ``None`` if it is not a loan number."""
    found = _TYPED.fullmatch(text.strip().upper())
    if found is None:
        return None
    code, year, sequence = found.groups()
    return f"{code}-{year}-{int(sequence):06d}"


async def loan_id_by_number(
    session: AsyncSession, principal: Principal, number: str
) -> uuid.UUID | None:
    """The id of the loan numbered ``number`` (as typed) in the caller's scope, else ``None``."""
    normal = loan_number_normalise(number)
    if normal is None:
        return None
    found = await session.scalar(
        select(Loan.id).where(Loan.loan_number == normal).where(loan_scope(principal))
    )
    return found
