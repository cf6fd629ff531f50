"""Publishing an offer to a channel, and following its tracking link."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.principal import (
    Principal,
    get_owned,
    require_merchant_admin,
    require_merchant_staff,
)
from o2oloop.channels import links
from o2oloop.channels.models import PUBLISHABLE, Channel, Publication, Share
from o2oloop.channels.schemas import PublicationCreate
from o2oloop.customers.models import Consumer
from o2oloop.db import new_id
from o2oloop.errors import Conflict, InvalidInput, NotFound
from o2oloop.offers.models import Offer, OfferState
from o2oloop.pagination import paginate
from o2oloop.prepared import DriverTransaction, Prepared, driver

# utm_medium by channel: what analytics tools expect to see.
MEDIUM = {
    Channel.IN_APP: "app",
    Channel.WEB: "web",
    Channel.MAP_APP: "map",
    Channel.SOCIAL: "social",
    Channel.SMS: "sms",
    Channel.PARTNER: "partner",
    Channel.POSTER: "print",
    Channel.SHARE: "referral",
}


def publish(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    offer_id: str,
    data: PublicationCreate,
) -> Publication:
    require_merchant_admin(principal, merchant_id)
    offer = get_owned(session, Offer, offer_id, merchant_id=merchant_id, what="offer")
    if offer.state is OfferState.ENDED:
        raise Conflict("an ended offer cannot be published to a channel")
    if data.channel not in PUBLISHABLE:
        raise InvalidInput(
            f"channel: {data.channel.value} is not a channel a merchant publishes to"
        )
    publication = Publication(
        id=new_id("pub"),
        merchant_id=merchant_id,
        offer_id=offer.id,
        channel=data.channel,
        label=data.label,
        utm_source=data.utm_source or data.channel.value,
        utm_medium=MEDIUM[data.channel],
        utm_campaign=data.utm_campaign or offer.id,
        utm_content=data.utm_content,
        created_at=clock.now(),
    )
    session.add(publication)
    session.flush()
    return publication


def list_publications(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    offer_id: str,
    cursor: str | None,
    limit: int,
) -> tuple[list[Publication], str | None]:
    require_merchant_staff(principal, merchant_id)
    get_owned(session, Offer, offer_id, merchant_id=merchant_id, what="offer")
    query = select(Publication).where(
        Publication.merchant_id == merchant_id, Publication.offer_id == offer_id
    )
    return paginate(session, query, Publication.id, cursor=cursor, limit=limit)


def get_publication(
    session: Session, *, principal: Principal, merchant_id: str, publication_id: str
) -> Publication:
    require_merchant_staff(principal, merchant_id)
    return get_owned(
        session, Publication, publication_id, merchant_id=merchant_id, what="publication"
    )


def landing_query(publication: Any, token: str) -> str:
    """The landing page's query: the token (it travels on to the claim) and the UTM tags."""
    return urlencode(
        {
            "via": token,
            "utm_source": publication.utm_source,
            "utm_medium": publication.utm_medium,
            "utm_campaign": publication.utm_campaign,
            **({"utm_content": publication.utm_content} if publication.utm_content else {}),
        }
    )


class LinkEnded(Exception):
    """A genuine link whose offer is no longer published, or whose sharer was erased."""


@dataclass(frozen=True, slots=True)
class Followed:
    offer_id: str
    channel: Channel
    link_id: str
    location: str  # where the redirect goes: the offer's page, with the token and UTM tags


_publications, _shares, _offers = Publication.__table__, Share.__table__, Offer.__table__
_consumers = Consumer.__table__
# A link's whole lookup is one indexed read, run on the driver (`prepared`): the redirect is
# the hottest public route, hit by every scan of a poster.
_PUBLICATION_LINK = Prepared(
    select(
        _publications.c.offer_id,
        _publications.c.channel,
        _publications.c.utm_source,
        _publications.c.utm_medium,
        _publications.c.utm_campaign,
        _publications.c.utm_content,
        _offers.c.state,
    )
    .join(_offers, _offers.c.id == _publications.c.offer_id)
    .where(_publications.c.id == bindparam("link_id"))
)
_SHARE_LINK = Prepared(
    select(_shares.c.offer_id, _consumers.c.erased_at, _offers.c.state)
    .join(_offers, _offers.c.id == _shares.c.offer_id)
    .join(_consumers, _consumers.c.id == _shares.c.consumer_id)
    .where(_shares.c.id == bindparam("link_id"))
)


def follow(work_in: Session | DriverTransaction, *, secret: str, token: str) -> Followed:
    """Where a tracking link leads. NotFound for a token we did not sign (nothing counted);
    LinkEnded for a real link whose offer has ended or whose sharer was erased."""
    link = links.parse_token(secret, token)
    if link is None:
        raise NotFound("this link is not valid")
    transaction = driver(work_in)
    if link.kind == "publication":
        row = transaction.one_or_none(_PUBLICATION_LINK, link_id=link.id)
        if row is None:
            raise NotFound("this link is not valid")
        channel = Channel(row.channel)
        query = landing_query(row, token)
    else:
        row = transaction.one_or_none(_SHARE_LINK, link_id=link.id)
        if row is None:
            raise NotFound("this link is not valid")
        if row.erased_at is not None:
            raise LinkEnded(row.offer_id)
        channel = Channel.SHARE
        query = urlencode(
            {"via": token, "utm_source": "friend", "utm_medium": MEDIUM[Channel.SHARE]}
        )
    if OfferState(row.state) is not OfferState.PUBLISHED:
        raise LinkEnded(row.offer_id)
    return Followed(row.offer_id, channel, link.id, f"/offers/{row.offer_id}?{query}")
