"""Inbox messages and consumers' contact details."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, ConfigDict, Field

from o2oloop.validation import JsonBody


class MessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    merchant_id: str | None
    campaign_id: str | None
    subject: str
    body: str
    created_at: datetime
    read_at: datetime | None


class ContactUpdate(JsonBody):
    model_config = ConfigDict(extra="forbid")
    email: str | None = Field(None, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    timezone: str | None = Field(None, max_length=64)
    birthday: date | None = None


class ContactRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    email: str | None
    timezone: str | None
    birthday: date | None
