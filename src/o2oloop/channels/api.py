"""Channels routes: nearby offers (tracking links, shares and steering follow)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from o2oloop import clock
from o2oloop.channels import geo, nearby, schemas
from o2oloop.http import DB, Caller, problems
from o2oloop.merchants.models import Category
from o2oloop.offers.models import OfferKind

router = APIRouter(prefix="/v1", tags=["channels"], responses=problems(401, 403, 404, 409, 422))


def _shaped(found: nearby.NearbyOffer) -> schemas.NearbyOfferRead:
    offer, store = found.offer, found.store
    return schemas.NearbyOfferRead(
        offer_id=offer.id,
        merchant_id=offer.merchant_id,
        kind=offer.kind,
        title=offer.title,
        currency=offer.currency,
        discount_kind=offer.discount_kind,
        amount_off=offer.amount_off,
        percent_off_bps=offer.percent_off_bps,
        price=offer.price,
        face_value=offer.face_value,
        value=found.value,
        distance_m=round(found.distance_m, 1),
        store=schemas.NearbyStoreRead(
            id=store.id,
            merchant_id=store.merchant_id,
            name=store.name,
            latitude=store.latitude,
            longitude=store.longitude,
            category=store.category,
            open_now=found.open_now,
            rating=found.rating,
        ),
    )


@router.get("/offers/nearby")
def nearby_offers(
    db: DB,
    caller: Caller,
    lat: Annotated[float, Query(ge=-90, le=90, description="Latitude in degrees")],
    lng: Annotated[float, Query(ge=-180, le=180, description="Longitude in degrees")],
    radius_m: Annotated[float, Query(gt=0, le=nearby.MAX_RADIUS_M)],
    coords: Annotated[
        Literal["wgs84", "gcj02"],
        Query(description="gcj02 for coordinates from a Chinese map app; converted to WGS-84"),
    ] = "wgs84",
    category: Category | None = None,
    kind: OfferKind | None = None,
    open_now: Annotated[bool | None, Query(description="Open now in the store's timezone")] = None,
    sort: nearby.Sort = "distance",
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> schemas.NearbyPage:
    """Published offers of active stores within the radius, each with its nearest store."""
    if coords == "gcj02":
        lat, lng = geo.gcj02_to_wgs84(lat, lng)
    query = nearby.NearbyQuery(
        latitude=lat,
        longitude=lng,
        radius_m=radius_m,
        category=category,
        kind=kind,
        open_now=open_now,
        sort=sort,
        cursor=cursor,
        limit=limit,
    )
    with db.reading() as session:
        found, next_cursor = nearby.search(session, query=query, now=clock.now())
    return schemas.NearbyPage(data=[_shaped(f) for f in found], next_cursor=next_cursor)
