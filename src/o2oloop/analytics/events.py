"""What the platform learned about members."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from o2oloop.events import Event


@dataclass(frozen=True, kw_only=True)
class MembersScored(Event):
    """Every member of a merchant was scored and segmented afresh."""

    name = "members.scored"
    merchant_id: str
    members: int
    as_of: datetime


@dataclass(frozen=True, kw_only=True)
class SegmentChanged(Event):
    """A member moved from one segment to another (`before` is None for a first score)."""

    name = "member.segment_changed"
    merchant_id: str
    member_id: str
    before: str | None
    after: str
