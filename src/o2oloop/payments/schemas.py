"""Payment shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class PaymentIntentRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    consumer_id: str
    merchant_id: str | None
    purpose: str
    amount: int
    bonus: int
    currency: str
    reference: str
    status: str
    failure_reason: str | None
    provider: str
    provider_charge_id: str | None
    created_at: datetime
    updated_at: datetime


class WebhookReceived(BaseModel):
    received: bool = True
    event_id: str
    type: str
    duplicate: bool
    result: str
