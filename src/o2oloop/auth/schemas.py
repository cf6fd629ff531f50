"""Shapes of API keys as the API shows them: never with a secret, except once at issue."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from o2oloop.auth.models import Role
from o2oloop.validation import JsonBody


class KeyCreate(JsonBody):
    label: str = Field(default="", max_length=120)


class KeyRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    role: Role
    label: str
    merchant_id: str | None
    store_id: str | None
    staff_id: str | None
    terminal_id: str | None
    consumer_id: str | None
    created_at: datetime
    revoked_at: datetime | None


class KeyCreated(BaseModel):
    key: KeyRead
    token: str = Field(description="Shown this once; only its hash is stored")
