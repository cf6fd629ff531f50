"""From domain event to signed request: queue a delivery per subscribed endpoint, then claim,
send and record it, outside any transaction while the request is on the wire.

The deliveries table is the queue. A worker claims due deliveries in one short transaction
(`FOR UPDATE SKIP LOCKED` on PostgreSQL, the writers' turn on SQLite) by giving each a lease,
commits, makes the requests, and records each attempt in a transaction of its own. A worker
killed mid-request leaves a lease that runs out; another worker then sends the delivery again,
with the same `webhook-id`, so the receiver can drop the duplicate.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

from pydantic_core import to_jsonable_python
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.config import Settings
from o2oloop.db import Database, new_id
from o2oloop.events import Event
from o2oloop.prepared import dialect_insert
from o2oloop.webhooks import schedule, signing
from o2oloop.webhooks.catalog import EVENT_TYPES
from o2oloop.webhooks.endpoints import signing_secrets_of
from o2oloop.webhooks.models import (
    DeliveryState,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSequence,
)
from o2oloop.webhooks.outbound import Outcome

_EVENT_META = ("event_id", "occurred_at")


# ---- from event to deliveries (run by the worker, in its transaction) --------------------


def on_domain_event(session: Session, event: Event) -> list[WebhookDelivery]:
    """The outbox handler: a merchant's event becomes one delivery per endpoint subscribed to
    its type. Idempotent by (event id, endpoint): running it again adds nothing."""
    event_type = event.name
    merchant_id = event.merchant
    if event_type not in EVENT_TYPES or merchant_id is None:
        return []
    data = {f.name: getattr(event, f.name) for f in fields(event) if f.name not in _EVENT_META}
    return queue_event(
        session,
        merchant_id=merchant_id,
        event_id=str(event.event_id),
        event_type=event_type,
        occurred_at=event.occurred_at,
        data=data,
    )


def queue_event(
    session: Session,
    *,
    merchant_id: str,
    event_id: str,
    event_type: str,
    occurred_at: datetime,
    data: dict[str, Any],
) -> list[WebhookDelivery]:
    """Deliveries of one event to the merchant's enabled endpoints that subscribe to its type
    (new ones only); every endpoint gets the same sequence number for the same event."""
    endpoints = [
        endpoint
        for endpoint in session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.merchant_id == merchant_id, WebhookEndpoint.enabled.is_(True))
            .order_by(WebhookEndpoint.id)
        )
        if event_type in endpoint.event_types
    ]
    if not endpoints:
        return []
    existing = {
        d.endpoint_id: d.sequence
        for d in session.scalars(
            select(WebhookDelivery).where(WebhookDelivery.event_id == event_id)
        )
    }
    missing = [endpoint for endpoint in endpoints if endpoint.id not in existing]
    if not missing:
        return []
    sequence = next(iter(existing.values())) if existing else next_sequence(session, merchant_id)
    body = payload(
        event_type=event_type,
        occurred_at=occurred_at,
        sequence=sequence,
        event_id=event_id,
        data=data,
    )
    now = clock.now()
    queued = [
        WebhookDelivery(
            id=new_id("msg"),
            merchant_id=merchant_id,
            endpoint_id=endpoint.id,
            event_id=event_id,
            event_type=event_type,
            sequence=sequence,
            payload=body,
            state=DeliveryState.PENDING,
            attempts=0,
            scheduled_attempts=0,
            next_attempt_at=now,
            created_at=now,
            updated_at=now,
        )
        for endpoint in missing
    ]
    session.add_all(queued)
    session.flush()
    return queued


def payload(
    *, event_type: str, occurred_at: datetime, sequence: int, event_id: str, data: dict[str, Any]
) -> str:
    """The body, in the spec's shape (type, timestamp, data) plus the merchant's sequence
    number, minified: these exact bytes are signed and sent on every attempt."""
    document = {
        "type": event_type,
        "timestamp": clock.as_utc(occurred_at).isoformat().replace("+00:00", "Z"),
        "sequence": sequence,
        "event_id": event_id,
        "data": to_jsonable_python(data),
    }
    return json.dumps(document, separators=(",", ":"), ensure_ascii=False)


def redact(session: Session, *, event_ids: list[str], data: dict[str, Any]) -> int:
    """Overwrite fields of the data of the deliveries of these events (a consumer's erasure
    reaching personal text a delivery carries); an attempt not yet made sends the redacted
    body. Returns how many deliveries changed."""
    changed = 0
    found = session.execute(
        select(WebhookDelivery.id, WebhookDelivery.payload).where(
            WebhookDelivery.event_id.in_(event_ids)
        )
    ).all()
    for delivery_id, body in found:
        document = json.loads(body)
        document["data"] = document.get("data", {}) | data
        redacted = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
        if redacted != body:
            session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id)
                .values(payload=redacted)
                .execution_options(synchronize_session=False)
            )
            changed += 1
    return changed


def next_sequence(session: Session, merchant_id: str) -> int:
    """The merchant's next sequence number; concurrent workers take turns on its row."""
    bump = (
        update(WebhookSequence)
        .where(WebhookSequence.merchant_id == merchant_id)
        .values(last=WebhookSequence.last + 1)
        .returning(WebhookSequence.last)
    )
    value = session.execute(bump).scalar()
    if value is None:
        insert = dialect_insert(session.get_bind().dialect.name)
        session.execute(
            insert(WebhookSequence)
            .values(merchant_id=merchant_id, last=0)
            .on_conflict_do_nothing(index_elements=["merchant_id"])
        )
        value = session.execute(bump).scalar_one()
    return int(value)


# ---- claiming, sending, recording (run by the worker, outside transactions) --------------


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery a worker owns until its lease ends, with all it needs to send it."""

    delivery_id: str
    endpoint_id: str
    merchant_id: str
    url: str
    body: str
    secrets: tuple[str, ...]
    lease_token: str


def claim_due(
    db: Database,
    *,
    settings: Settings,
    limit: int,
    event_id: str | None = None,
    left_behind: bool = False,
) -> list[Claim]:
    """Leases on up to `limit` due deliveries to enabled endpoints (of one event, if given).

    `left_behind` is the periodic sweep's share: retries and replays (a delivery attempted
    before), deliveries whose sender's lease ran out, and first attempts no sender took
    within a lease's length (its process died between the commit and its first claim). A
    fresh first attempt is the after-commit sender's, which is on its way: a sweep taking
    it would make later events' jobs wait behind the sweep (PostgreSQL p99 of 4 s)."""
    with db.transaction() as session:
        now = clock.now()
        query = (
            select(WebhookDelivery, WebhookEndpoint)
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(
                WebhookDelivery.state == DeliveryState.PENDING,
                WebhookDelivery.next_attempt_at <= now,
                or_(WebhookDelivery.leased_until.is_(None), WebhookDelivery.leased_until < now),
                WebhookEndpoint.enabled.is_(True),
            )
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
            .with_for_update(skip_locked=True, key_share=True, of=WebhookDelivery)
        )
        if event_id is not None:
            query = query.where(WebhookDelivery.event_id == event_id)
        lease = timedelta(seconds=settings.webhooks_lease_seconds)
        if left_behind:
            query = query.where(
                or_(
                    WebhookDelivery.attempts > 0,
                    WebhookDelivery.leased_until.is_not(None),
                    WebhookDelivery.next_attempt_at <= now - lease,
                )
            )
        claims = []
        for delivery, endpoint in session.execute(query).all():
            delivery.lease_token = secrets.token_hex(8)
            delivery.leased_until = now + lease
            claims.append(
                Claim(
                    delivery_id=delivery.id,
                    endpoint_id=endpoint.id,
                    merchant_id=endpoint.merchant_id,
                    url=endpoint.url,
                    body=delivery.payload,
                    secrets=tuple(signing_secrets_of(endpoint, secret_key=settings.secret_key)),
                    lease_token=delivery.lease_token,
                )
            )
        return claims


def send(claim: Claim, post: Callable[..., Outcome]) -> tuple[datetime, Outcome]:
    """One signed request for a claimed delivery; `webhook-timestamp` is this attempt's time."""
    attempted_at = clock.now()
    headers = signing.headers(
        claim.secrets,
        msg_id=claim.delivery_id,
        timestamp=int(attempted_at.timestamp()),
        body=claim.body,
    )
    return attempted_at, post(claim.url, body=claim.body, headers=headers)


def record_attempt(
    db: Database, *, claim: Claim, attempted_at: datetime, outcome: Outcome, settings: Settings
) -> WebhookAttempt:
    """Keep the attempt; then, if the lease is still this worker's, schedule what follows."""
    with db.transaction() as session:
        return _record(session, claim, attempted_at, outcome, settings)


def record_attempts(
    db: Database, results: list[tuple[Claim, datetime, Outcome]], *, settings: Settings
) -> None:
    """A batch's attempts in one transaction (one turn of the writer on SQLite)."""
    with db.transaction() as session:
        for claim, attempted_at, outcome in results:
            _record(session, claim, attempted_at, outcome, settings)


def _record(
    session: Session, claim: Claim, attempted_at: datetime, outcome: Outcome, settings: Settings
) -> WebhookAttempt:
    succeeded = outcome.error is None and schedule.is_success(outcome.status)
    # Rows are locked before the attempt's insert, which takes a key-share lock on both
    # (its foreign keys); NO KEY UPDATE does not conflict with that on PostgreSQL.
    delivery = session.scalars(
        select(WebhookDelivery)
        .where(WebhookDelivery.id == claim.delivery_id)
        .with_for_update(key_share=True)
    ).one()
    if delivery.lease_token == claim.lease_token:
        endpoint = session.scalars(
            select(WebhookEndpoint)
            .where(WebhookEndpoint.id == claim.endpoint_id)
            .with_for_update(key_share=True)
        ).one()
        _conclude(delivery, endpoint, outcome, succeeded, settings)
    attempt = WebhookAttempt(
        id=new_id("wha"),
        merchant_id=claim.merchant_id,
        endpoint_id=claim.endpoint_id,
        delivery_id=claim.delivery_id,
        attempted_at=attempted_at,
        url=claim.url,
        succeeded=succeeded,
        status=outcome.status,
        latency_ms=outcome.latency_ms,
        response_excerpt=outcome.excerpt,
        error=outcome.error or (None if succeeded else f"answered {outcome.status}"),
    )
    session.add(attempt)
    session.flush()
    return attempt


def _conclude(
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    outcome: Outcome,
    succeeded: bool,
    settings: Settings,
) -> None:
    now = clock.now()
    delivery.attempts += 1
    delivery.scheduled_attempts += 1
    delivery.last_status = outcome.status
    delivery.lease_token = None
    delivery.leased_until = None
    delivery.updated_at = now
    if succeeded:
        delivery.state = DeliveryState.DELIVERED
        delivery.delivered_at = now
        delivery.next_attempt_at = None
        endpoint.failing_since = None
        endpoint.consecutive_failures = 0
        return
    delay = schedule.next_attempt_delay(
        settings.webhooks_retry_schedule,
        delivery.scheduled_attempts,
        jitter=settings.webhooks_retry_jitter,
        retry_after=schedule.parse_retry_after(outcome.retry_after),
    )
    if delay is None:
        delivery.state = DeliveryState.FAILED
        delivery.next_attempt_at = None
    else:
        delivery.next_attempt_at = now + delay
    endpoint.consecutive_failures += 1
    endpoint.failing_since = endpoint.failing_since or now
    endpoint.updated_at = now
    if outcome.status == 410:
        _disable(endpoint, "the endpoint answered 410 Gone", now)
    elif endpoint.enabled and schedule.should_disable(
        failing_since=endpoint.failing_since,
        consecutive_failures=endpoint.consecutive_failures,
        now=now,
        disable_after=timedelta(hours=settings.webhooks_disable_after_hours),
        max_consecutive_failures=settings.webhooks_disable_after_failures,
    ):
        since = endpoint.failing_since.isoformat(timespec="seconds")
        _disable(
            endpoint,
            f"{endpoint.consecutive_failures} failed attempts in a row since {since}",
            now,
        )


def _disable(endpoint: WebhookEndpoint, reason: str, now: datetime) -> None:
    if endpoint.enabled:
        endpoint.enabled = False
        endpoint.disabled_reason = reason[:300]
        endpoint.updated_at = now
