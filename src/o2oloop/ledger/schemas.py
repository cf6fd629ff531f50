"""Request and response shapes for balances, stored value, settlements and reconciliation."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from o2oloop.validation import Id

MinorUnits = Annotated[int, Field(ge=1, le=100_000_000, description="Integer minor units")]
SandboxBehaviour = Literal["succeed", "fail", "decline", "timeout"]


class ORM(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class BonusTier(BaseModel):
    pay: MinorUnits
    bonus: Annotated[int, Field(ge=0, le=100_000_000)]


class StoredValueProgramUpdate(BaseModel):
    tiers: Annotated[list[BonusTier], Field(max_length=20)]
    active: bool = True


class StoredValueProgramRead(ORM):
    merchant_id: str
    tiers: list[BonusTier]
    active: bool
    updated_at: datetime


class StoredValueTopUpCreate(BaseModel):
    merchant_id: Id
    amount: MinorUnits
    behaviour: SandboxBehaviour | None = Field(
        default=None, description="Sandbox provider only: how the charge should end"
    )


class StoredValueSpendCreate(BaseModel):
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


class MerchantBalances(BaseModel):
    merchant_id: str
    currency: str
    payable: int
    voucher_escrow: int
    stored_value_escrow: int
    payouts_in_transit: int
    refunds_in_transit: int
    commission: int


class SettlementCreate(BaseModel):
    cutoff: AwareDatetime


class SettlementRead(ORM):
    id: str
    merchant_id: str
    sequence: int
    currency: str
    cutoff: datetime
    status: str
    carried_in: int
    net: int
    payout_amount: int
    carried_out: int
    line_count: int
    payout_operation_id: str | None
    created_at: datetime
    updated_at: datetime


class StatementLineRead(BaseModel):
    entry_id: int
    transaction_id: str
    kind: str
    reference: str
    occurred_at: datetime
    gross: int
    commission: int
    net: int
    currency: str
    memo: str


class Statement(BaseModel):
    settlement: SettlementRead
    lines: list[StatementLineRead]


class DifferenceRead(BaseModel):
    check: str
    subject: str
    expected: int
    actual: int
    detail: str


class ReconciliationReport(BaseModel):
    generated_at: datetime
    ok: bool
    differences: list[DifferenceRead]
