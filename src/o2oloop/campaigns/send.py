"""Sending: each pending treatment target gets its personal code and its message, once.

A batch of pending targets is taken in id order (SKIP LOCKED on PostgreSQL, so workers never
take the same rows). Consent is checked again (withdrawn since targeting: a recorded skip),
then frequency caps on the consumers' contact windows and the budget on the campaign's row,
both locked, so concurrent triggers never exceed either. Codes and messages are bulk
inserts, and the target rows are marked sent in the same transaction: a crash before commit
leaves them pending, a crash after leaves them sent, never a second code or message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, String, and_, any_, bindparam, exists, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Session

from o2oloop import events
from o2oloop.campaigns import compose
from o2oloop.campaigns.bulk import insert_rows, update_rows
from o2oloop.campaigns.compose import Recipient
from o2oloop.campaigns.events import CampaignMessageSent, message_event_id
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
from o2oloop.campaigns.service import max_discount
from o2oloop.codes.events import CodeClaimed
from o2oloop.codes.models import Code, OfferClaim
from o2oloop.customers.models import Consumer, Membership
from o2oloop.db import new_ids
from o2oloop.jobs.models import OutboxEntry
from o2oloop.notify.models import Message
from o2oloop.offers.models import Offer

BATCH = 2_000


@dataclass
class SendReport:
    sent: int = 0
    skipped: dict[str, int] = field(default_factory=dict)
    # Per campaign, the highest target id a batch took: the next batch starts after it.
    reached: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str, n: int = 1) -> None:
        if n:
            self.skipped[reason] = self.skipped.get(reason, 0) + n

    def add(self, other: SendReport) -> None:
        self.sent += other.sent
        for reason, n in other.skipped.items():
            self.skip(reason, n)
        for campaign_id, target_id in other.reached.items():
            self.reached[campaign_id] = max(target_id, self.reached.get(campaign_id, 0))


def send_pending(
    session: Session,
    *,
    now: datetime,
    policy: Policy,
    campaign_id: str | None = None,
    limit: int = BATCH,
    after: Mapping[str, int] | None = None,
) -> SendReport:
    """Send one batch (up to `limit`) of pending targets of a running campaign (the given
    one, or the first with any). One batch per transaction keeps the lock order — contact
    windows by key, then the campaign, then the offer — the same in every transaction, so
    concurrent senders wait for each other but never deadlock; callers loop, passing the
    report's `reached` as `after`: each batch starts past the targets the previous ones
    took instead of reading them again (a row another sender held is left to that sender,
    or to the next run)."""
    query = select(Campaign.id).where(Campaign.state == CampaignState.RUNNING)
    if campaign_id is not None:
        query = query.where(Campaign.id == campaign_id)
    for cid in session.scalars(query.order_by(Campaign.id)).all():
        report = _send_batch(session, cid, now, policy, limit, (after or {}).get(cid))
        if report.sent or report.skipped:
            return report
    return SendReport()


def _among(session: Session, column: Any, values: list[Any], kind: Any = String) -> Any:
    """`column IN values`; on PostgreSQL `= ANY(one array parameter)`: the same statement every
    batch, instead of a new one with 2,000 placeholders for the driver to split and the
    server to parse."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(bindparam(None, values, ARRAY(kind)))
    return column.in_(values)


def _pending(
    session: Session, campaign: Campaign, limit: int, after: int | None
) -> list[tuple[Recipient, bool]]:
    """Up to `limit` pending targets in id order (past `after`), each with what its message
    needs and whether the consumer still consents (read again: it may be withdrawn since).

    The batch's ids are picked (and locked) first, then their consumers read: joined before
    the limit, PostgreSQL read and sorted every pending target with its consumer's row."""
    t, c, m = CampaignTarget, Consumer, Membership
    picked = (
        select(t.id)
        .where(t.campaign_id == campaign.id, t.state == TargetState.PENDING)
        .order_by(t.id)
        .limit(min(limit, BATCH))
    )
    if after is not None:
        picked = picked.where(t.id > after)
    if session.get_bind().dialect.name == "postgresql":
        picked = picked.with_for_update(skip_locked=True)
    ids = list(session.scalars(picked))
    if not ids:
        return []
    consent = [
        m.consumer_id == t.consumer_id,
        m.marketing_consent.is_(True),
    ]
    if campaign.merchant_id is not None:
        consent.append(m.merchant_id == campaign.merchant_id)
    query = (
        select(
            t.id,
            t.consumer_id,
            t.member_id,
            t.store_id,
            c.display_name,
            c.phone_e164,
            c.email,
            c.timezone,
            (c.erased_at.is_(None) & exists().where(and_(*consent))).label("consenting"),
        )
        .join(c, c.id == t.consumer_id)
        .where(_among(session, t.id, ids, BigInteger))
        .order_by(t.id)
    )
    return [
        (Recipient(r[0], r[1], r[2], r[3], r[4] or "", r[5], r[6], r[7]), bool(r[8]))
        for r in session.execute(query)
    ]


def _skip(rows: list[Recipient], reason: str) -> list[dict[str, Any]]:
    return [
        {
            "id": r.target_id,
            "state": TargetState.SKIPPED.value,
            "skip_reason": reason,
            "sent_at": None,
            "code_id": None,
            "message_id": None,
        }
        for r in rows
    ]


def _mark(session: Session, rows: list[dict[str, Any]]) -> None:
    update_rows(session, CampaignTarget.__table__, rows)


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
        .where(
            _among(session, ContactWindow.consumer_id, consumer_ids),
            ContactWindow.scope.in_(list(caps)),
        )
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
    session: Session,
    campaign_id: str,
    now: datetime,
    policy: Policy,
    limit: int,
    after: int | None,
) -> SendReport:
    report = SendReport()
    campaign = session.get(Campaign, campaign_id)
    assert campaign is not None
    session.refresh(campaign)
    pending = _pending(session, campaign, limit, after)
    if not pending:
        return report
    report.reached[campaign.id] = pending[-1][0].target_id
    offer = session.get(Offer, campaign.offer_id)
    assert offer is not None
    withdrawn = [r for r, consenting in pending if not consenting]
    batch = [r for r, consenting in pending if consenting]
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
    rows = _skip(withdrawn, "consent_withdrawn") + _skip(capped, "frequency_cap")
    if room is None:  # paused or finished meanwhile: the rest stay as they are
        _mark(session, rows)
        return report
    over, batch = batch[room:], batch[:room]
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
    batch: list[Recipient],
    scopes: list[str],
    now: datetime,
    policy: Policy,
) -> list[dict[str, Any]]:
    """Codes, claims, messages and their events for `batch`; the target rows to mark sent."""
    consumer_ids = [r.consumer_id for r in batch]
    if scopes:  # the windows exist and are locked (`_within_caps`): stamp them in bulk
        insert_rows(
            session,
            ContactWindow.__table__,
            [{"consumer_id": c, "scope": scope} for c in consumer_ids for scope in scopes],
            constants={"last_contacted_at": now},
            on_conflict="ON CONFLICT (consumer_id, scope) DO UPDATE"
            " SET last_contacted_at = excluded.last_contacted_at",
        )
    shared = compose.composer(session, campaign, offer, policy, now)
    codes = compose.issue_codes(shared, len(batch))
    insert_rows(
        session,
        Code.__table__,
        [
            {"id": code.id, "digest": code.digest, "consumer_id": r.consumer_id}
            for code, r in zip(codes, batch, strict=True)
        ],
        constants=compose.code_constants(shared),
    )
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
            discount_committed=Campaign.discount_committed + n * (max_discount(offer) or 0),
        )
        .execution_options(synchronize_session=False)
    )
    insert_rows(
        session,
        OfferClaim.__table__,
        [{"consumer_id": c} for c in consumer_ids],
        constants={"offer_id": offer.id, "claimed": 1},
        on_conflict="ON CONFLICT (offer_id, consumer_id) DO UPDATE"
        " SET claimed = offer_claims.claimed + 1",
    )
    messages = compose.message_rows(shared, batch, codes)
    insert_rows(session, Message.__table__, messages, constants=compose.message_constants(shared))
    _record_events(session, shared, batch, codes, messages)
    return [
        {
            "id": r.target_id,
            "state": TargetState.SENT.value,
            "skip_reason": None,
            "sent_at": now,
            "code_id": code.id,
            "message_id": message["id"],
        }
        for r, code, message in zip(batch, codes, messages, strict=True)
    ]


def _record_events(
    session: Session,
    shared: compose.Composer,
    batch: list[Recipient],
    codes: list[compose.IssuedCode],
    messages: list[dict[str, Any]],
) -> None:
    """A code.claimed per code (as for a consumer's own claim) and, for the webhook channel,
    the message the merchant's own system delivers: one bulk insert into the outbox."""
    campaign, offer, now = shared.campaign, shared.offer, shared.now
    ids = new_ids("evt", len(codes))
    claimed = CodeClaimed(
        event_id=ids[0],
        merchant_id=offer.merchant_id,
        offer_id=offer.id,
        code_id=codes[0].id,
        consumer_id=batch[0].consumer_id,
        occurred_at=now,
    )
    rows = outbox_rows_like(
        claimed,
        [
            {"event_id": e, "code_id": code.id, "consumer_id": r.consumer_id}
            for e, r, code in zip(ids, batch, codes, strict=True)
        ],
    )
    if campaign.channel is Channel.WEBHOOK:
        sent = CampaignMessageSent(
            event_id=message_event_id(messages[0]["id"]),
            merchant_id=offer.merchant_id,
            campaign_id=campaign.id,
            message_id=messages[0]["id"],
            member_id=batch[0].member_id,
            consumer_id=batch[0].consumer_id,
            offer_id=offer.id,
            code_id=codes[0].id,
            code=codes[0].text,
            code_expires_at=shared.expires_at,
            subject=messages[0]["subject"],
            body=messages[0]["body"],
            occurred_at=now,
        )
        rows += outbox_rows_like(
            sent,
            [
                {
                    "event_id": message_event_id(m["id"]),
                    "message_id": m["id"],
                    "member_id": r.member_id,
                    "consumer_id": r.consumer_id,
                    "code_id": code.id,
                    "code": code.text,
                    "subject": m["subject"],
                    "body": m["body"],
                }
                for r, code, m in zip(batch, codes, messages, strict=True)
            ],
        )
    # `events.record_all`'s rows, through the driver's executemany (see bulk.py).
    insert_rows(session, OutboxEntry.__table__, rows)


def outbox_rows_like(first: events.Event, varying: list[dict[str, str | None]]) -> list[dict]:
    """The outbox rows of events that are `first` but for some plain (str or None) fields,
    one dict of them per event: `first` is serialised once, and each event's payload is
    that document with its own fields, in `Event.to_json`'s form (a send writes thousands,
    and building and serialising a dataclass for each was most of its events' cost)."""
    document = json.loads(first.to_json())
    row = events.outbox_row(first)
    return [
        row
        | {
            "event_id": fields["event_id"],
            "payload": json.dumps(document | fields, separators=(",", ":"), sort_keys=True),
        }
        for fields in varying
    ]
