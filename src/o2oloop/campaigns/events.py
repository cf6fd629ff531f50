"""What campaigns do that others react to: a message handed to the merchant's own system."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from o2oloop.events import Event


@dataclass(frozen=True, kw_only=True)
class CampaignMessageSent(Event):
    """A campaign's message for one member, to be delivered by the merchant's webhook.

    A merchant that reaches its members through its own app or CRM subscribes to this: the
    event carries the rendered text and the member's personal code, nothing else personal
    (no phone number, no email address)."""

    name = "campaign.message_sent"
    merchant_id: str
    campaign_id: str
    message_id: str
    member_id: str | None
    consumer_id: str
    offer_id: str
    code_id: str
    code: str
    code_expires_at: datetime | None
    subject: str
    body: str


def message_event_id(message_id: str) -> str:
    """The id of a message's `campaign.message_sent` event, derived from the message's own id
    (`msg_X` → `evt_X`), so a consumer's erasure finds their events without reading payloads."""
    return "evt_" + message_id.removeprefix("msg_")
