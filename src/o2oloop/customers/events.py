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


@dataclass(frozen=True, kw_only=True)
class ConsumerErased(Event):
    """A consumer had their personal data erased: other domains erase their own copies.

    Platform-wide (no merchant), so never a merchant webhook; it carries only the id."""

    name = "consumer.erased"
    consumer_id: str
