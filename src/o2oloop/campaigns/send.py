"""Sending: each pending treatment target gets its personal code and its message, once.

A batch of pending targets is taken in id order (SKIP LOCKED on PostgreSQL, so workers never
take the same rows). Consent is checked again (withdrawn since targeting: a recorded skip),
then frequency caps on the consumers' contact windows (`caps`) and the budget on the
campaign's row, both locked, so concurrent triggers never exceed either. The codes, messages
and events are drafted before the budget is locked (it is held until commit, and concurrent
senders wait for it), then written as bulk inserts, and the target rows are marked sent in
the same transaction: a crash before commit leaves them pending, a crash after leaves them
sent, never a second code or message.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from o2oloop import events
from o2oloop.campaigns import caps, compose
from o2oloop.campaigns.bulk import among, insert_rows, update_rows
from o2oloop.campaigns.compose import Recipient
from o2oloop.campaigns.events import CampaignMessageSent, message_event_id
from o2oloop.campaigns.launch import finish
from o2oloop.campaigns.models import (
    Campaign,
    CampaignState,
    CampaignTarget,
    Channel,
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
from o2oloop.offers.models import Offer, OfferState

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


def _pending(
    session: Session, campaign: Campaign, limit: int, after: int | None
) -> list[tuple[Recipient, bool]]:
    """Up to `limit` pending targets in id order (past `after`), each with what its message
    needs and whether the consumer still consents (read again: it may be withdrawn since).

    The batch's targets are picked (and locked) first, from the (campaign, state, id)
    index, then their consumers and consents read by key: joined before the limit,
    PostgreSQL read and sorted every pending target with its consumer's row, and it
    answered an EXISTS per target by hashing every membership of the merchant."""
    t, c, m = CampaignTarget, Consumer, Membership
    picked = (
        select(t.id, t.consumer_id, t.member_id, t.store_id)
        .where(t.campaign_id == campaign.id, t.state == TargetState.PENDING)
        .order_by(t.id)
        .limit(min(limit, BATCH))
    )
    if after is not None:
        picked = picked.where(t.id > after)
    if session.get_bind().dialect.name == "postgresql":
        picked = picked.with_for_update(skip_locked=True)
    targets = session.execute(picked).all()
    if not targets:
        return []
    ids = sorted({r.consumer_id for r in targets})
    people = {
        r[0]: r[1:]
        for r in session.execute(
            select(c.id, c.display_name, c.phone_e164, c.email, c.timezone).where(
                among(session, c.id, ids), c.erased_at.is_(None)
            )
        )
    }
    consenting = select(m.consumer_id).where(
        among(session, m.consumer_id, ids), m.marketing_consent.is_(True)
    )
    if campaign.merchant_id is not None:
        consenting = consenting.where(m.merchant_id == campaign.merchant_id)
    consents = set(session.scalars(consenting))
    out = []
    for target_id, consumer_id, member_id, store_id in targets:
        name, phone, email, zone = people.get(consumer_id, (None, None, None, None))
        person = Recipient(
            target_id, consumer_id, member_id, store_id, name or "", phone, email, zone
        )
        out.append((person, consumer_id in people and consumer_id in consents))
    return out


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


def _mark(session: Session, campaign: Campaign, rows: list[dict[str, Any]]) -> None:
    """Record what became of pending targets of `campaign` (all of one batch's id range)."""
    update_rows(
        session,
        CampaignTarget.__table__,
        rows,
        within={"campaign_id": campaign.id, "state": TargetState.PENDING},
    )


def _room(session: Session, campaign: Campaign, offer: Offer, wanted: int) -> int | None:
    """How many codes the budget and the offer's stock still allow (rows locked); None when
    the campaign stopped running meanwhile (paused or finished by someone else) or its offer
    is no longer published (the till would refuse its codes): the targets wait."""
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
        select(Offer.issued_count, Offer.total_stock, Offer.state)
        .where(Offer.id == offer.id)
        .with_for_update()
    ).one()
    if stock.state is not OfferState.PUBLISHED:
        return None
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
    windows = caps.open_windows(
        session, campaign, sorted({r.consumer_id for r in batch}), now, policy
    )
    capped = [r for r in batch if r.consumer_id not in windows.allowed]
    batch = [r for r in batch if r.consumer_id in windows.allowed]
    if windows.caps:  # two occurrences of one consumer in a batch: the cap lets one through
        seen: set[str] = set()
        first = []
        for r in batch:
            (capped if r.consumer_id in seen else first).append(r)
            seen.add(r.consumer_id)
        batch = first
    drafts = _draft(session, campaign, offer, batch, now, policy)
    room = _room(session, campaign, offer, len(batch)) if batch else 0
    rows = _skip(withdrawn, "consent_withdrawn") + _skip(capped, "frequency_cap")
    if room is None:  # paused or finished meanwhile: the rest stay as they are
        caps.settle(session, windows, [], now)
        _mark(session, campaign, rows)
        return report
    over, batch = batch[room:], batch[:room]
    report.skip("consent_withdrawn", len(withdrawn))
    report.skip("frequency_cap", len(capped))
    caps.settle(session, windows, [r.consumer_id for r in batch], now)
    if batch and drafts is not None:
        rows += _issue_and_queue(session, drafts, batch)
        report.sent += len(batch)
    _mark(session, campaign, rows)
    if over:
        _mark(session, campaign, _skip(over, "budget_spent"))
        report.skip("budget_spent", len(over))
        finish(session, campaign, now, reason="budget spent", skip_reason="budget_spent")
    session.flush()
    return report


@dataclass
class _Drafts:
    """A batch's codes, messages and events, made before the budget is locked (the lock is
    held until commit: drafting inside it kept concurrent senders waiting on it); all lists
    are in the batch's order, and a budget that allows fewer keeps the first ones."""

    shared: compose.Composer
    codes: list[compose.IssuedCode]
    messages: list[dict[str, Any]]
    claimed: list[dict[str, Any]]  # a code.claimed outbox row per code
    handed: list[dict[str, Any]]  # the webhook channel: a campaign.message_sent row each


def _draft(
    session: Session,
    campaign: Campaign,
    offer: Offer,
    batch: list[Recipient],
    now: datetime,
    policy: Policy,
) -> _Drafts | None:
    if not batch:
        return None
    shared = compose.composer(session, campaign, offer, policy, now)
    codes = compose.issue_codes(shared, len(batch))
    messages = compose.message_rows(shared, batch, codes)
    return _Drafts(shared, codes, messages, *_event_rows(shared, batch, codes, messages))


def _issue_and_queue(
    session: Session, drafts: _Drafts, batch: list[Recipient]
) -> list[dict[str, Any]]:
    """Codes, claims, messages and their events for `batch` (the first of the drafted
    recipients, as many as the budget allows); the target rows to mark sent."""
    shared, n = drafts.shared, len(batch)
    campaign, offer, now = shared.campaign, shared.offer, shared.now
    codes, messages = drafts.codes[:n], drafts.messages[:n]
    insert_rows(
        session,
        Code.__table__,
        [
            {"id": code.id, "digest": code.digest, "consumer_id": r.consumer_id}
            for code, r in zip(codes, batch, strict=True)
        ],
        constants=compose.code_constants(shared),
    )
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
        [{"consumer_id": r.consumer_id} for r in batch],
        constants={"offer_id": offer.id, "claimed": 1},
        on_conflict="ON CONFLICT (offer_id, consumer_id) DO UPDATE"
        " SET claimed = offer_claims.claimed + 1",
    )
    insert_rows(session, Message.__table__, messages, constants=compose.message_constants(shared))
    # `events.record_all`'s rows, through the driver's executemany (see bulk.py).
    insert_rows(session, OutboxEntry.__table__, drafts.claimed[:n] + drafts.handed[:n])
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


def _event_rows(
    shared: compose.Composer,
    batch: list[Recipient],
    codes: list[compose.IssuedCode],
    messages: list[dict[str, Any]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The outbox rows of a code.claimed per code (as for a consumer's own claim) and, for
    the webhook channel, of the message the merchant's own system delivers."""
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
    if campaign.channel is not Channel.WEBHOOK:
        return rows, []
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
    return rows, outbox_rows_like(
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
