"""Use cases over what was sent: a merchant's deliveries and attempts, and replays."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.principal import Principal, get_owned
from o2oloop.errors import Conflict, NotFound
from o2oloop.pagination import paginate
from o2oloop.webhooks.endpoints import get_endpoint
from o2oloop.webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery


def list_deliveries(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    endpoint_id: str,
    state: DeliveryState | None = None,
    cursor: str | None,
    limit: int,
) -> tuple[list[WebhookDelivery], str | None]:
    """An endpoint's deliveries, oldest first, optionally only those in one state."""
    get_endpoint(session, principal=principal, merchant_id=merchant_id, endpoint_id=endpoint_id)
    query = select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
    if state is not None:
        query = query.where(WebhookDelivery.state == state)
    return paginate(session, query, WebhookDelivery.id, cursor=cursor, limit=limit)


def get_delivery(
    session: Session, *, principal: Principal, merchant_id: str, endpoint_id: str, delivery_id: str
) -> WebhookDelivery:
    get_endpoint(session, principal=principal, merchant_id=merchant_id, endpoint_id=endpoint_id)
    delivery = get_owned(
        session, WebhookDelivery, delivery_id, merchant_id=merchant_id, what="webhook delivery"
    )
    if delivery.endpoint_id != endpoint_id:
        raise NotFound("no webhook delivery with this id")
    return delivery


def list_attempts(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    endpoint_id: str,
    delivery_id: str | None = None,
    cursor: str | None,
    limit: int,
) -> tuple[list[WebhookAttempt], str | None]:
    """Every request made to an endpoint (or for one delivery), oldest first: status,
    latency, the first KiB of the answer, the error."""
    get_endpoint(session, principal=principal, merchant_id=merchant_id, endpoint_id=endpoint_id)
    query = select(WebhookAttempt).where(WebhookAttempt.endpoint_id == endpoint_id)
    if delivery_id is not None:
        query = query.where(WebhookAttempt.delivery_id == delivery_id)
    return paginate(session, query, WebhookAttempt.id, cursor=cursor, limit=limit)


def replay_delivery(
    session: Session, *, principal: Principal, merchant_id: str, endpoint_id: str, delivery_id: str
) -> WebhookDelivery:
    """Send a delivery again now, with the same webhook-id and body, on a fresh schedule.

    An attempt still on the wire when the replay is asked for is recorded, but no longer
    decides what happens to the delivery.
    """
    endpoint = get_endpoint(
        session, principal=principal, merchant_id=merchant_id, endpoint_id=endpoint_id
    )
    if not endpoint.enabled:
        raise Conflict("this endpoint is disabled; enable it to replay its deliveries")
    delivery = get_delivery(
        session,
        principal=principal,
        merchant_id=merchant_id,
        endpoint_id=endpoint_id,
        delivery_id=delivery_id,
    )
    now = clock.now()
    delivery.state = DeliveryState.PENDING
    delivery.scheduled_attempts = 0
    delivery.next_attempt_at = now
    delivery.lease_token = None
    delivery.leased_until = None
    delivery.updated_at = now
    session.flush()
    return delivery


def recent_deliveries(
    session: Session, *, principal: Principal, merchant_id: str, endpoint_id: str, limit: int
) -> list[WebhookDelivery]:
    """An endpoint's latest deliveries, newest first (what the console shows first)."""
    get_endpoint(session, principal=principal, merchant_id=merchant_id, endpoint_id=endpoint_id)
    return list(
        session.scalars(
            select(WebhookDelivery)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
            .order_by(WebhookDelivery.id.desc())
            .limit(limit)
        )
    )


def recent_attempts(
    session: Session, *, principal: Principal, merchant_id: str, endpoint_id: str, limit: int
) -> list[WebhookAttempt]:
    """An endpoint's latest requests, newest first."""
    get_endpoint(session, principal=principal, merchant_id=merchant_id, endpoint_id=endpoint_id)
    return list(
        session.scalars(
            select(WebhookAttempt)
            .where(WebhookAttempt.endpoint_id == endpoint_id)
            .order_by(WebhookAttempt.id.desc())
            .limit(limit)
        )
    )
