"""What `/health` and `/ready` answer."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from namma.kit.schemas import ApiModel


class HealthOut(ApiModel):
    status: Literal["ok"]
    version: str


class ReadyCheck(ApiModel):
    """One dependency. Fields other than ``ok`` are present where they apply."""

    ok: bool
    error: str | None = Field(default=None, description="The kind of failure")
    backend: str | None = Field(default=None, description="The cache: `redis` or `memory`")
    current: list[str] | None = Field(default=None, description="Migrations: the revision")
    head: list[str] | None = Field(default=None, description="Migrations: the code's head")
    reads: Literal["replica", "primary"] | None = Field(
        default=None, description="Replica: where dashboards, reports and lists read now"
    )
    lag_seconds: str | None = Field(
        default=None, description="Replica: its replay delay in seconds (null: unknown)"
    )
    max_lag_seconds: str | None = Field(
        default=None, description="Replica: above this lag reads go to the primary"
    )


class ReadyOut(ApiModel):
    status: Literal["ready", "not_ready"]
    checks: dict[str, ReadyCheck] = Field(
        description="database, migrations, cache, jobs; replica when one is configured (it "
        "never makes the answer 503: reads fall back to the primary)"
    )
