"""What happens to a merchant's members."""

from __future__ import annotations

from dataclasses import dataclass

from o2oloop.events import Event


@dataclass(frozen=True, kw_only=True)
class MemberEnrolled(Event):
    """A consumer became a member of a merchant (at the counter, or by claiming online)."""

    name = "member.enrolled"
    merchant_id: str
    member_id: str
    consumer_id: str
    source: str
