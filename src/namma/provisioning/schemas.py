"""Response bodies of `/api/provisioning` (rates per prudential class)."""

from __future__ import annotations

import uuid

from pydantic import Field

from namma.kit.money import Rate
from namma.kit.schemas import ApiModel, Timestamp
from namma.models import ProvisionClass, ProvisioningRate


class ProvisioningRateOut(ApiModel):
    asset_class: ProvisionClass = Field(description="standard, sub_standard, doubtful or loss")
    rate: Rate = Field(description="Percent of the outstanding principal provided for")
    updated_at: Timestamp
    updated_by_id: uuid.UUID | None

    @classmethod
    def of(cls, row: ProvisioningRate) -> ProvisioningRateOut:
        return cls.model_validate(row)


class ProvisioningRateList(ApiModel):
    items: list[ProvisioningRateOut] = Field(description="Every class, standard to loss")
    applies_from: str = Field(
        description="When a change takes effect: the next close of business",
        examples=["next close of business"],
    )
