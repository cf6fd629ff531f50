"""Sending: each pending treatment target gets its personal code and its message, once.

A batch of pending targets is taken in id order (SKIP LOCKED on PostgreSQL, so workers never
take the same rows). Consent is checked again (withdrawn since targeting: a recorded skip),
then frequency caps on the consumers' contact windows and the budget on the campaign's row,
both locked, so concurrent triggers never exceed either. Codes and messages are bulk
inserts, and the target rows are marked sent in the same transaction: a crash before commit
leaves them pending, a crash after leaves them sent, never a second code or message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, bindparam, select, update
from sqlalchemy.orm import Session

from o2oloop.campaigns.bulk import insert_rows
from o2oloop.campaigns.launch import finish
from o2oloop.campaigns.models import (
    Campaign,
    CampaignState,
    CampaignTarget,
    Channel,
    ContactWindow,
    TargetState,
)
from o2oloop.campaigns.policy import Policy
from o2oloop.campaigns.service import max_discount, merchant_name
from o2oloop.codes.models import Code, CodeState, OfferClaim
from o2oloop.customers.models import Consumer, Membership
from o2oloop.db import new_id
from o2oloop.merchants.models import Merchant, Store
from o2oloop.notify import service as notify
from o2oloop.notify import templates
from o2oloop.notify.models import Message
from o2oloop.offers.models import Offer
from o2oloop.offers.rules import code_expires_at
from o2oloop.offers.service import rules_of
from o2oloop.prepared import dialect_insert

BATCH = 2_000


@dataclass
class SendReport:
    sent: int = 0
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, n: int = 1) -> None:
        if n:
            self.skipped[reason] = self.skipped.get(reason, 0) + n

    def add(self, other: SendReport) -> None:
        self.sent += other.sent
        for reason, n in other.skipped.items():
            self.skip(reason, n)


def send_pending(
    session: Session,
    *,
    now: datetime,
    policy: Policy,
    campaign_id: str | None = None,
    limit: int = BATCH,
) -> SendReport:
    """Send one batch (up to `limit`) of pending targets of a running campaign (the given
    one, or the first with any). One batch per transaction keeps the lock order — contact
    windows by key, then the campaign, then the offer — the same in every transaction, so
    concurrent senders wait for each other but never deadlock; callers loop."""
    query = select(Campaign.id).where(Campaign.state == CampaignState.RUNNING)
    if campaign_id is not None:
        query = query.where(Campaign.id == campaign_id)
    for cid in session.scalars(query.order_by(Campaign.id)).all():
        batch = _pending(session, cid, limit)
        if batch:
            return _send_batch(session, cid, batch, now, policy)
    return SendReport()


def _pending(session: Session, campaign_id: str, limit: int) -> list[Any]:
    query = (
        select(
            CampaignTarget.id,
            CampaignTarget.consumer_id,
            CampaignTarget.member_id,
            CampaignTarget.store_id,
        )
        .where(CampaignTarget.campaign_id == campaign_id)
        .where(CampaignTarget.state == TargetState.PENDING)
        .order_by(CampaignTarget.id)
        .limit(min(limit, BATCH))
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=CampaignTarget)
    return list(session.execute(query).all())


def _mark(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(
            update(CampaignTarget.__table__)
            .where(CampaignTarget.__table__.c.id == bindparam("target_id"))
            .values(
                state=bindparam("state"),
                skip_reason=bindparam("skip_reason"),
                sent_at=bindparam("sent_at"),
                code_id=bindparam("code_id"),
                message_id=bindparam("message_id"),
            ),
            rows,
        )


def _skip(rows: list[Any], reason: str) -> list[dict[str, Any]]:
    return [
        {
            "target_id": r.id,
            "state": TargetState.SKIPPED.value,
            "skip_reason": reason,
            "sent_at": None,
            "code_id": None,
            "message_id": None,
        }
        for r in rows
    ]


def _consenting(session: Session, campaign: Campaign, consumer_ids: list[str]) -> set[str]:
    query = (
        select(Membership.consumer_id)
        .join(Consumer, Consumer.id == Membership.consumer_id)
        .where(Membership.consumer_id.in_(consumer_ids), Membership.marketing_consent.is_(True))
        .where(Consumer.erased_at.is_(None))
    )
    if campaign.merchant_id is not None:
        query = query.where(Membership.merchant_id == campaign.merchant_id)
    return set(session.scalars(query))


def _within_caps(
    session: Session, campaign: Campaign, consumer_ids: list[str], now: datetime, policy: Policy
) -> tuple[set[str], list[str]]:
    """Consumers no cap holds back, and the scopes to stamp; the windows are locked in key
    order, so two triggers deciding on one consumer take turns."""
    caps = {}
    if campaign.cap_days > 0 and campaign.merchant_id is not None:
        caps[campaign.merchant_id] = campaign.cap_days
    if policy.platform_cap_days > 0:
        caps[""] = policy.platform_cap_days
    if not caps or not consumer_ids:
        return set(consumer_ids), list(caps)
    insert_rows(
        session,
        ContactWindow.__table__,
        [{"consumer_id": c, "scope": s} for c in consumer_ids for s in caps],
        ignore_conflicts_on=["consumer_id", "scope"],
    )
    query = (
        select(ContactWindow.consumer_id, ContactWindow.scope, ContactWindow.last_contacted_at)
        .where(ContactWindow.consumer_id.in_(consumer_ids), ContactWindow.scope.in_(list(caps)))
        .order_by(ContactWindow.consumer_id, ContactWindow.scope)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    blocked = {
        consumer
        for consumer, scope, last in session.execute(query)
        if last is not None and last > now - timedelta(days=caps[scope])
    }
    return set(consumer_ids) - blocked, list(caps)


def _room(session: Session, campaign: Campaign, offer: Offer, wanted: int) -> int | None:
    """How many codes the budget and the offer's stock still allow (rows locked); None when
    the campaign stopped running meanwhile (paused or finished by someone else)."""
    locked = session.execute(
        select(Campaign.codes_issued, Campaign.discount_committed, Campaign.state)
        .where(Campaign.id == campaign.id)
        .with_for_update()
    ).one()
    if locked.state is not CampaignState.RUNNING:
        return None
    room = wanted
    if campaign.budget_codes is not None:
        room = min(room, campaign.budget_codes - locked.codes_issued)
    per_code = max_discount(offer) or 0
    if campaign.budget_discount is not None and per_code > 0:
        room = min(room, (campaign.budget_discount - locked.discount_committed) // per_code)
    stock = session.execute(
        select(Offer.issued_count, Offer.total_stock).where(Offer.id == offer.id).with_for_update()
    ).one()
    if stock.total_stock is not None:
        room = min(room, stock.total_stock - stock.issued_count)
    return max(room, 0)


def _send_batch(
    session: Session, campaign_id: str, batch: list[Any], now: datetime, policy: Policy
) -> SendReport:
    report = SendReport()
    campaign = session.get(Campaign, campaign_id)
    assert campaign is not None
    session.refresh(campaign)
    offer = session.get(Offer, campaign.offer_id)
    assert offer is not None
    consenting = _consenting(session, campaign, [r.consumer_id for r in batch])
    withdrawn = [r for r in batch if r.consumer_id not in consenting]
    batch = [r for r in batch if r.consumer_id in consenting]
    allowed, scopes = _within_caps(
        session, campaign, sorted({r.consumer_id for r in batch}), now, policy
    )
    capped = [r for r in batch if r.consumer_id not in allowed]
    batch = [r for r in batch if r.consumer_id in allowed]
    if scopes:  # two occurrences of one consumer in a batch: the cap lets one through
        seen: set[str] = set()
        first = []
        for r in batch:
            (capped if r.consumer_id in seen else first).append(r)
            seen.add(r.consumer_id)
        batch = first
    room = _room(session, campaign, offer, len(batch)) if batch else 0
    if room is None:  # paused or finished meanwhile: the rows stay as they are
        _mark(session, _skip(withdrawn, "consent_withdrawn") + _skip(capped, "frequency_cap"))
        return report
    over, batch = batch[room:], batch[:room]
    rows = _skip(withdrawn, "consent_withdrawn") + _skip(capped, "frequency_cap")
    report.skip("consent_withdrawn", len(withdrawn))
    report.skip("frequency_cap", len(capped))
    if batch:
        rows += _issue_and_queue(session, campaign, offer, batch, scopes, now, policy)
        report.sent += len(batch)
    _mark(session, rows)
    if over:
        _mark(session, _skip(over, "budget_spent"))
        report.skip("budget_spent", len(over))
        finish(session, campaign, now, reason="budget spent", skip_reason="budget_spent")
    session.flush()
    return report


def _issue_and_queue(
    session: Session,
    campaign: Campaign,
    offer: Offer,
    batch: list[Any],
    scopes: list[str],
    now: datetime,
    policy: Policy,
) -> list[dict[str, Any]]:
    consumer_ids = [r.consumer_id for r in batch]
    dialect = session.get_bind().dialect.name
    if scopes:
        session.execute(
            update(ContactWindow)
            .where(ContactWindow.consumer_id.in_(consumer_ids), ContactWindow.scope.in_(scopes))
            .values(last_contacted_at=now)
            .execution_options(synchronize_session=False)
        )
    codes = _codes(campaign, offer, consumer_ids, now, policy)
    insert_rows(session, Code.__table__, codes)
    per_code = max_discount(offer) or 0
    n = len(batch)
    session.execute(
        update(Offer)
        .where(Offer.id == offer.id)
        .values(issued_count=Offer.issued_count + n)
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Campaign)
        .where(Campaign.id == campaign.id)
        .values(
            codes_issued=Campaign.codes_issued + n,
            discount_committed=Campaign.discount_committed + n * per_code,
        )
        .execution_options(synchronize_session=False)
    )
    claims = dialect_insert(dialect)(OfferClaim)
    session.execute(
        claims.on_conflict_do_update(
            index_elements=["offer_id", "consumer_id"],
            set_={"claimed": OfferClaim.claimed + 1},
        ),
        [{"offer_id": offer.id, "consumer_id": c, "claimed": 1} for c in consumer_ids],
    )
    messages = _messages(session, campaign, offer, batch, codes, now, policy)
    insert_rows(session, Message.__table__, messages)
    return [
        {
            "target_id": r.id,
            "state": TargetState.SENT.value,
            "skip_reason": None,
            "sent_at": now,
            "code_id": code["id"],
            "message_id": message["id"],
        }
        for r, code, message in zip(batch, codes, messages, strict=True)
    ]


def _codes(
    campaign: Campaign, offer: Offer, consumer_ids: list[str], now: datetime, policy: Policy
) -> list[dict[str, Any]]:
    keys = policy.code_keys
    expires = code_expires_at(rules_of(offer), now)
    if campaign.code_valid_days is not None:
        own = now + timedelta(days=campaign.code_valid_days)
        expires = own if expires is None else min(expires, own)
    rows = []
    for consumer_id in consumer_ids:
        code_id = new_id("cod")
        rows.append(
            {
                "id": code_id,
                "merchant_id": offer.merchant_id,
                "offer_id": offer.id,
                "consumer_id": consumer_id,
                "digest": keys.digest(keys.serial_for(code_id)),
                "state": CodeState.ACTIVE,
                "claimed_at": now,
                "expires_at": expires,
                "price_paid": 0,
            }
        )
    return rows


def _messages(
    session: Session,
    campaign: Campaign,
    offer: Offer,
    batch: list[Any],
    codes: list[dict[str, Any]],
    now: datetime,
    policy: Policy,
) -> list[dict[str, Any]]:
    """One message per target, rendered; SMS and email wait out the consumer's quiet hours.

    A consumer without an address for the channel gets the message in the app inbox."""
    merchant = session.get(Merchant, offer.merchant_id)
    fallback_zone = merchant.timezone if merchant is not None else "UTC"
    stores = _store_names(session, offer.merchant_id)
    people = {
        c.id: c
        for c in session.scalars(
            select(Consumer).where(Consumer.id.in_([r.consumer_id for r in batch]))
        )
    }
    keys = policy.code_keys
    name = (
        merchant_name(session, campaign.merchant_id)
        if campaign.merchant_id
        else (merchant.name if merchant is not None else "")
    )
    rows = []
    for target, code in zip(batch, codes, strict=True):
        person = people[target.consumer_id]
        channel, address = _address(campaign.channel, person)
        zone = notify.zone_of(person.timezone, fallback_zone)
        expiry = code["expires_at"]
        values = {
            "name": person.display_name or "there",
            "merchant": name,
            "offer": offer.title,
            "code": keys.code_text(code["id"]),
            "expiry": expiry.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d") if expiry else "",
            "store": stores.get(target.store_id) or next(iter(stores.values()), ""),
            "unsubscribe_url": notify.unsubscribe_url(
                policy.public_url, target.member_id, policy.secret_key
            )
            if target.member_id
            else "",
        }
        quiet = channel in ("sms", "email")
        rows.append(
            {
                "id": new_id("msg"),
                "consumer_id": target.consumer_id,
                "merchant_id": campaign.merchant_id,
                "campaign_id": campaign.id,
                "channel": channel,
                "to_address": address,
                "subject": templates.render(campaign.message_subject, values),
                "body": templates.render(campaign.message_body, values),
                "member_id": target.member_id,
                "state": notify.queued_state(channel),
                "not_before": notify.not_before(
                    now, zone, start=policy.quiet_hours_start, end=policy.quiet_hours_end
                )
                if quiet
                else now,
                "attempts": 0,
                "cost": notify.COST[channel],
                "created_at": now,
                "delivered_at": now if channel == "inbox" else None,
            }
        )
    return rows


def _address(channel: Channel, person: Consumer) -> tuple[str, str | None]:
    if channel is Channel.SMS and person.phone_e164:
        return "sms", person.phone_e164
    if channel is Channel.EMAIL and person.email:
        return "email", person.email
    if channel is Channel.WEBHOOK:
        return "webhook", None
    return "inbox", None


def _store_names(session: Session, merchant_id: str) -> dict[str | None, str]:
    rows = session.execute(
        select(Store.id, Store.name).where(and_(Store.merchant_id == merchant_id, Store.active))
    ).all()
    return {r.id: r.name for r in rows}
