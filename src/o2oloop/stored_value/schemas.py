"""Request and response shapes of stored value: programs, top-ups, spends, balances."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from o2oloop.validation import Id, JsonBody

MinorUnits = Annotated[int, Field(ge=1, le=100_000_000, description="Integer minor units")]
SandboxBehaviour = Literal["succeed", "fail", "decline", "timeout"]


class ORM(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class BonusTier(JsonBody):
    pay: MinorUnits
    bonus: Annotated[int, Field(ge=0, le=100_000_000)]


class StoredValueProgramUpdate(JsonBody):
    tiers: Annotated[list[BonusTier], Field(max_length=20)]
    active: bool = True


class StoredValueProgramRead(ORM):
    merchant_id: str
    tiers: list[BonusTier]
    active: bool
    updated_at: datetime


class StoredValueTopUpCreate(JsonBody):
    merchant_id: Id
    amount: MinorUnits
    behaviour: SandboxBehaviour | None = Field(
        default=None, description="Sandbox provider only: how the charge should end"
    )


class StoredValueSpendCreate(JsonBody):
    consumer_id: Id
    amount: MinorUnits


class StoredValueSpendRead(BaseModel):
    transaction_id: str
    consumer_id: str
    merchant_id: str
    amount: int
    balance: int
    currency: str


class StoredValueBalance(BaseModel):
    merchant_id: str
    merchant_name: str | None = None
    consumer_id: str
    balance: int
    currency: str


class ClosureRefunds(BaseModel):
    merchant_id: str
    refunds: int
    total: int
    currency: str | None
    operation_ids: list[str]
