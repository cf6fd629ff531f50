"""What a consumer gets back from their export and their erasure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class ConsumerExport(BaseModel):
    """Everything the platform holds about the consumer."""

    exported_at: datetime
    consumer: dict[str, Any]
    memberships: list[dict[str, Any]]
    consent_events: list[dict[str, Any]]
    visits: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    api_keys: list[dict[str, Any]]
    other: dict[str, Any] = Field(default_factory=dict)


class ErasureReceipt(BaseModel):
    consumer_id: str
    erased_at: datetime
    memberships_deleted: int
    visits_anonymised: int
    reviews_hidden: int = 0
    scores_deleted: int = 0
    consent_events_deleted: int = 0
