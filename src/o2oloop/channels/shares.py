"""A consumer's own share link to an offer, with an optional note."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.principal import Principal, require_consumer
from o2oloop.channels.models import Share
from o2oloop.customers.models import Consumer
from o2oloop.db import new_id
from o2oloop.errors import Forbidden, NotFound
from o2oloop.offers.models import Offer, OfferState
from o2oloop.pagination import paginate


def _consumer(session: Session, principal: Principal) -> Consumer:
    consumer = session.get(Consumer, require_consumer(principal, "sharing needs a consumer key"))
    if consumer is None or consumer.erased_at is not None:
        raise Forbidden("this consumer account was erased")
    return consumer


def share(session: Session, *, principal: Principal, offer_id: str, note: str) -> Share:
    consumer = _consumer(session, principal)
    offer = session.get(Offer, offer_id)
    if offer is None or offer.state is not OfferState.PUBLISHED:
        raise NotFound("no published offer with this id")
    row = Share(
        id=new_id("shr"),
        merchant_id=offer.merchant_id,
        offer_id=offer.id,
        consumer_id=consumer.id,
        note=note,
        created_at=clock.now(),
    )
    session.add(row)
    session.flush()
    return row


def my_shares(
    session: Session, *, principal: Principal, cursor: str | None, limit: int
) -> tuple[list[Share], str | None]:
    consumer = _consumer(session, principal)
    query = select(Share).where(Share.consumer_id == consumer.id)
    return paginate(session, query, Share.id, cursor=cursor, limit=limit)
