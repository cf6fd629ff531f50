"""Shapes of codes, batches, redemptions and wallet entries."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from o2oloop.codes.models import RedemptionState
from o2oloop.validation import JsonBody


class ClaimedCode(BaseModel):
    """A code as its owner sees it: the typed form and the QR payload."""

    id: str
    offer_id: str
    merchant_id: str
    offer_title: str
    state: str = Field(description="active, used, expired or refunded")
    code: str
    qr_payload: str
    claimed_at: datetime
    expires_at: datetime | None
    redeemed_at: datetime | None


class BuyCreate(JsonBody):
    sandbox_behaviour: Literal["succeed", "fail", "decline", "timeout"] | None = Field(
        default=None, description="Sandbox provider only: how the charge should end"
    )


class BatchCreate(JsonBody):
    count: Annotated[int, Field(ge=1, le=1_000_000)]


class BatchRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    merchant_id: str
    offer_id: str
    batch_no: int
    count: int
    created_at: datetime
    expires_at: datetime | None


class RedemptionCreate(JsonBody):
    code: Annotated[
        str, Field(min_length=1, max_length=64, description="Typed code or scanned QR payload")
    ]
    bill_amount: Annotated[int, Field(ge=0, le=10**11)] | None = Field(
        default=None, description="The bill before discount, in minor units"
    )


class RedemptionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    merchant_id: str
    store_id: str
    terminal_id: str
    offer_id: str
    bill_amount: int | None
    discount_amount: int
    state: RedemptionState
    redeemed_at: datetime
    undone_at: datetime | None


class RedemptionResult(BaseModel):
    """What the cashier needs: what to give and how much to take off."""

    redemption: RedemptionRead
    offer_title: str
    offer_kind: str
    benefit: str
    discount_amount: int
    amount_due: int | None
    currency: str


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    store_id: str
    terminal_id: str
    at: datetime
    accepted: bool
    reason: str
    redemption_id: str | None


class AttemptPage(BaseModel):
    data: list[AttemptRead]
    next_cursor: int | None = None
