"""What the counter reports back online."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from o2oloop.events import Event


@dataclass(frozen=True, kw_only=True)
class VisitRecorded(Event):
    """A payment at a store became a visit, of a member when the payer was identified."""

    name = "visit.recorded"
    merchant_id: str
    store_id: str
    visit_id: str
    member_id: str | None
    amount: int
    currency: str
    visited_at: datetime
    redemption_id: str | None
