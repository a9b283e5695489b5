"""`/api/provisioning/rates`: the provisioning rate of each prudential class (percent of the
outstanding principal). Reading: ``report:read`` (Admin, Managers); changing one:
``provisioning:manage`` (Admin), audited, effective at the next close of business."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from pydantic import ConfigDict, Field

from namma.auth.deps import Principal, require
from namma.auth.permissions import Permission
from namma.kit.apitypes import RequestModel
from namma.kit.deps import SessionDep
from namma.kit.money import Rate
from namma.kit.openapi import error_responses
from namma.models import ProvisionClass
from namma.provisioning import service
from namma.provisioning.schemas import ProvisioningRateList, ProvisioningRateOut

router = APIRouter(prefix="/api/provisioning", tags=["provisioning"])

APPLIES_FROM = "next close of business"


class ProvisioningRateIn(RequestModel):
    model_config = ConfigDict(extra="forbid")
    rate: Rate = Field(description='Percent of the outstanding principal, 0–100, e.g. "0.40"')


async def provisioning_rates_read(session: SessionDep) -> ProvisioningRateList:
    rows = await service.provisioning_rates(session)
    return ProvisioningRateList(
        items=[ProvisioningRateOut.of(r) for r in rows], applies_from=APPLIES_FROM
    )


@router.get("/rates")
async def provisioning_rates(
    session: SessionDep,
    principal: Annotated[Principal, Depends(require(Permission.REPORT_READ))],
) -> ProvisioningRateList:
    """The rate of every prudential class (standard, sub-standard, doubtful, loss)."""
    return await provisioning_rates_read(session)


@router.put("/rates/{asset_class}", responses=error_responses(422))
async def provisioning_rate_set(
    session: SessionDep,
    asset_class: ProvisionClass,
    body: ProvisioningRateIn,
    principal: Annotated[
        Principal, Depends(require(Permission.PROVISIONING_MANAGE, limit="writes"))
    ],
) -> ProvisioningRateOut:
    """Set one class's rate (audited). The ledger changes at the next close of business."""
    row = await service.provisioning_rate_set(
        session, actor=principal.audit_actor, asset_class=asset_class, rate=body.rate
    )
    return ProvisioningRateOut.of(row)
