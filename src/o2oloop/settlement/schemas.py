"""Request and response shapes of balances, settlements and their statements."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from o2oloop.validation import Instant, JsonBody


class ORM(BaseModel):
    model_config = ConfigDict(from_attributes=True)


class MerchantBalances(BaseModel):
    merchant_id: str
    currency: str
    payable: int
    voucher_escrow: int
    stored_value_escrow: int
    payouts_in_transit: int
    refunds_in_transit: int
    commission: int


class SettlementCreate(JsonBody):
    cutoff: Instant


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
