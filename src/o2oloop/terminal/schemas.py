"""Shapes of pairing a device with a terminal."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, Field

from o2oloop.validation import JsonBody


class PairingRead(BaseModel):
    id: str
    terminal_id: str
    code: str = Field(description="Shown once: type it on the device, or open pair_url there")
    pair_url: str
    expires_at: datetime


class PairCreate(JsonBody):
    code: Annotated[str, Field(min_length=1, max_length=40)]
    device: Annotated[str, Field(max_length=80)] = ""


class PairedRead(BaseModel):
    terminal_id: str
    store_id: str
    merchant_id: str
    token: str = Field(description="The device's terminal key; shown once")
