"""What one send batch writes: a personal code per treated member and its rendered message.

Everything a batch shares is worked out once (`Composer`): the templates are parsed once,
the merchant, offer and store names read once, the code's expiry and the end of quiet hours
computed once per timezone. Per member only what is personal remains: two ids, the code's
serial, digest and printed form, the unsubscribe link, and the text itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from o2oloop.campaigns.models import Campaign, Channel
from o2oloop.campaigns.policy import Policy
from o2oloop.codes import codec
from o2oloop.db import new_ids
from o2oloop.merchants.models import Merchant, Store
from o2oloop.notify import service as notify
from o2oloop.notify import templates
from o2oloop.offers.models import Offer
from o2oloop.offers.rules import code_expires_at
from o2oloop.offers.service import rules_of

QUIET_CHANNELS = ("sms", "email")


@dataclass(frozen=True, slots=True)
class Recipient:
    """A pending treated target with what its message needs of the consumer."""

    target_id: int
    consumer_id: str
    member_id: str | None
    store_id: str | None
    name: str
    phone: str | None
    email: str | None
    timezone: str | None


@dataclass
class Composer:
    """The parts of a campaign's codes and messages that every member of a batch shares."""

    campaign: Campaign
    offer: Offer
    policy: Policy
    now: datetime
    merchant_name: str
    fallback_zone: str
    stores: dict[str | None, str]
    expires_at: datetime | None
    subject: templates.Compiled
    body: templates.Compiled
    _zones: dict[str | None, tuple[str, str, datetime]] = field(default_factory=dict)

    def zone(self, timezone: str | None) -> tuple[str, str, datetime]:
        """(zone, the code's expiry as a local date, when quiet hours end) for a timezone."""
        known = self._zones.get(timezone)
        if known is None:
            zone = notify.zone_of(timezone, self.fallback_zone)
            expiry = self.expires_at
            local = expiry.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d") if expiry else ""
            wake = notify.not_before(
                self.now,
                zone,
                start=self.policy.quiet_hours_start,
                end=self.policy.quiet_hours_end,
            )
            known = self._zones[timezone] = (zone, local, wake)
        return known


def composer(session: Session, campaign: Campaign, offer: Offer, policy: Policy, now: datetime):
    """The shared parts of a batch of `campaign` sent at `now`."""
    merchant = session.get(Merchant, offer.merchant_id)
    stores = {
        r.id: r.name
        for r in session.execute(
            select(Store.id, Store.name).where(Store.merchant_id == offer.merchant_id, Store.active)
        )
    }
    expires = code_expires_at(rules_of(offer), now)
    if campaign.code_valid_days is not None:
        own = now + timedelta(days=campaign.code_valid_days)
        expires = own if expires is None else min(expires, own)
    return Composer(
        campaign=campaign,
        offer=offer,
        policy=policy,
        now=now,
        merchant_name=merchant.name if merchant is not None else "",
        fallback_zone=merchant.timezone if merchant is not None else "UTC",
        stores=stores,
        expires_at=expires,
        subject=templates.compile_template(campaign.message_subject),
        body=templates.compile_template(campaign.message_body),
    )


@dataclass(frozen=True, slots=True)
class IssuedCode:
    id: str
    digest: bytes
    text: str  # the printed form, for the message only: storage keeps the digest


def issue_codes(c: Composer, n: int) -> list[IssuedCode]:
    """`n` new personal codes: an id each, the serial the id keys, its digest and text."""
    keys = c.policy.code_keys
    out = []
    for code_id in new_ids("cod", n):
        serial = keys.serial_for(code_id)
        out.append(IssuedCode(code_id, keys.digest(serial), codec.format_code(serial, keys.code)))
    return out


def code_constants(c: Composer) -> dict[str, Any]:
    return {
        "merchant_id": c.offer.merchant_id,
        "offer_id": c.offer.id,
        "state": "active",
        "claimed_at": c.now,
        "expires_at": c.expires_at,
        "price_paid": 0,
    }


def _address(channel: Channel, person: Recipient) -> tuple[str, str | None]:
    if channel is Channel.SMS and person.phone:
        return "sms", person.phone
    if channel is Channel.EMAIL and person.email:
        return "email", person.email
    if channel is Channel.WEBHOOK:
        return "webhook", None
    return "inbox", None


def message_rows(
    c: Composer, recipients: list[Recipient], codes: list[IssuedCode]
) -> list[dict[str, Any]]:
    """One rendered message per recipient; SMS and email wait out the consumer's quiet hours.

    A consumer without an address for the channel gets the message in the app inbox; a
    webhook message is the merchant's to deliver, handed over through the outbox."""
    unsubscribe = notify.unsubscribe_signer(c.policy.public_url, c.policy.secret_key)
    first_store = next(iter(c.stores.values()), "")
    shared = {"merchant": c.merchant_name, "offer": c.offer.title}
    rows = []
    ids = new_ids("msg", len(recipients))
    for person, code, message_id in zip(recipients, codes, ids, strict=True):
        channel, address = _address(c.campaign.channel, person)
        _, expiry, wake = c.zone(person.timezone)
        values = shared | {
            "name": person.name or "there",
            "code": code.text,
            "expiry": expiry,
            "store": c.stores.get(person.store_id) or first_store,
            "unsubscribe_url": unsubscribe(person.member_id) if person.member_id else "",
        }
        rows.append(
            {
                "id": message_id,
                "consumer_id": person.consumer_id,
                "channel": channel,
                "to_address": address,
                "subject": c.subject.render(values),
                "body": c.body.render(values),
                "member_id": person.member_id,
                "state": notify.queued_state(channel).value,
                "not_before": wake if channel in QUIET_CHANNELS else c.now,
                "cost": notify.COST[channel],
                "delivered_at": c.now if channel == "inbox" else None,
                "sent_at": c.now if channel == "webhook" else None,
            }
        )
    return rows


def message_constants(c: Composer) -> dict[str, Any]:
    return {
        "merchant_id": c.campaign.merchant_id,
        "campaign_id": c.campaign.id,
        "attempts": 0,
        "created_at": c.now,
    }
