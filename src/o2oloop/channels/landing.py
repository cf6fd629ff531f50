"""What an offer's public landing page shows: the offer, where to use it, and whether the
link that brought the visitor is one to carry on to the claim.

The page is where tracking links and shares lead (`publications.follow`). A token that
names this offer's publication or share travels on to the claim; any other token (forged,
edited, another offer's) is dropped here, so the claim never sees it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from o2oloop.channels import attribution, geo, nearby
from o2oloop.channels.models import Channel
from o2oloop.customers.models import Consumer
from o2oloop.errors import NotFound
from o2oloop.merchants.hours import WEEKDAYS
from o2oloop.merchants.models import Merchant, Store
from o2oloop.offers.models import Offer, OfferState


@dataclass(frozen=True, slots=True)
class LandingStore:
    id: str
    name: str
    address: str
    open_now: bool
    today: list[tuple[str, str]]  # today's opening intervals, store-local
    distance_m: float | None


@dataclass(frozen=True, slots=True)
class Landing:
    offer: Offer
    merchant_name: str
    stores: list[LandingStore]  # nearest first when the visitor's position is known
    via: str | None  # the token to carry to the claim, only when it is this offer's link
    channel: Channel | None
    share_note: str
    ended: bool


def _where(session: Session, offer: Offer) -> list[Store]:
    statement = select(Store).where(Store.merchant_id == offer.merchant_id, Store.active)
    if offer.store_ids is not None:
        statement = statement.where(Store.id.in_(offer.store_ids))
    return list(session.scalars(statement.order_by(Store.name, Store.id)))


def _shaped(store: Store, now: datetime, at: tuple[float, float] | None) -> LandingStore:
    local = now.astimezone(ZoneInfo(store.timezone))
    today = [
        (i["open"], i["close"]) for i in store.opening_hours.get(WEEKDAYS[local.weekday()], ())
    ]
    distance = geo.haversine_m(*at, store.latitude, store.longitude) if at else None
    return LandingStore(
        id=store.id,
        name=store.name,
        address=store.address,
        open_now=nearby.open_now(store.opening_hours, store.timezone, now),
        today=today,
        distance_m=distance,
    )


def landing(
    session: Session,
    *,
    offer_id: str,
    secret: str,
    via: str | None,
    at: tuple[float, float] | None,
    now: datetime,
) -> Landing:
    """The landing page of an offer; NotFound unless it was ever published (no drafts)."""
    offer = session.get(Offer, offer_id)
    if offer is None or offer.state is OfferState.DRAFT:
        raise NotFound("no offer with this id")
    merchant = session.get(Merchant, offer.merchant_id)
    assert merchant is not None
    found = attribution.resolve(session, secret=secret, token=via, offer_id=offer_id)
    channel, note, ended = None, "", offer.state is not OfferState.PUBLISHED
    if found is not None:
        channel, _link_id, share = found
        if share is not None:
            sharer = session.get(Consumer, share.consumer_id)
            if sharer is None or sharer.erased_at is not None:
                found, channel, ended = None, None, True  # an erased consumer's link
            else:
                note = share.note
    if offer.valid_until is not None and offer.valid_until <= now:
        ended = True
    if not merchant.active:
        ended = True
    stores = [_shaped(s, now, at) for s in _where(session, offer)]
    if at is not None:
        stores.sort(key=lambda s: (s.distance_m, s.id))
    return Landing(
        offer=offer,
        merchant_name=merchant.name,
        stores=stores,
        via=via if found is not None else None,
        channel=channel,
        share_note=note,
        ended=ended or not stores,
    )
