"""Consumer shapes."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class ConsumerCreate(BaseModel):
    display_name: str = Field(default="", max_length=80)


class ConsumerRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    display_name: str
    created_at: datetime


class ConsumerCreated(BaseModel):
    consumer: ConsumerRead
    token: str = Field(description="The consumer's API key, shown this once")
