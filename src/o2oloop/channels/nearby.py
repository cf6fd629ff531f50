"""Nearby offers: published offers of active stores within a radius, exactly.

Candidates come from the H3 cells covering the disc (`geo.covering`), then every store is
kept only if its haversine distance is within the radius. An offer appears once, with its
nearest store in the radius that it is valid at.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import Text, cast, or_, select
from sqlalchemy.orm import Session

from o2oloop.channels import geo
from o2oloop.channels.models import StoreCell, StoreRating
from o2oloop.errors import InvalidInput
from o2oloop.merchants.hours import is_open
from o2oloop.merchants.models import Category, Merchant, Store
from o2oloop.offers.models import DiscountKind, Offer, OfferKind, OfferState

MAX_RADIUS_M = 50_000
Sort = Literal["distance", "value", "rating"]


@dataclass(frozen=True, slots=True, kw_only=True)
class NearbyQuery:
    latitude: float
    longitude: float
    radius_m: float
    category: Category | None = None
    kind: OfferKind | None = None
    open_now: bool | None = None
    sort: Sort = "distance"
    cursor: str | None = None
    limit: int = 20


@dataclass(frozen=True, slots=True)
class NearbyStore:
    id: str
    merchant_id: str
    name: str
    latitude: float
    longitude: float
    timezone: str
    category: str
    distance_m: float


@dataclass(frozen=True, slots=True)
class NearbyOffer:
    offer: Any  # a row of offers' columns (see _OFFER_COLUMNS)
    store: NearbyStore
    distance_m: float
    open_now: bool
    value: int
    rating: float | None
    key: tuple[Any, ...]


_OFFER_COLUMNS = (
    Offer.id,
    Offer.merchant_id,
    Offer.kind,
    Offer.title,
    Offer.currency,
    Offer.discount_kind,
    Offer.amount_off,
    Offer.percent_off_bps,
    Offer.discount_cap,
    Offer.price,
    Offer.face_value,
    cast(Offer.topup_tiers, Text).label("topup_tiers"),
    Offer.min_spend,
    cast(Offer.store_ids, Text).label("store_ids"),
    Offer.total_stock,
    Offer.issued_count,
    Offer.valid_until,
)


def value_of(offer: Any) -> int:
    """What the offer saves or adds, in minor units, for sort=value.

    A percent-off coupon counts its cap, or its percentage of the minimum spend; a voucher
    its face value over its price; a stored-value card its largest bonus.
    """
    if offer.kind is OfferKind.COUPON:
        if offer.discount_kind is DiscountKind.AMOUNT_OFF:
            return offer.amount_off or 0
        if offer.discount_cap:
            return offer.discount_cap
        return (offer.min_spend or 0) * (offer.percent_off_bps or 0) // 10_000
    if offer.kind is OfferKind.VOUCHER:
        return max(0, (offer.face_value or 0) - (offer.price or 0))
    if offer.kind is OfferKind.STORED_VALUE:
        tiers = json.loads(offer.topup_tiers or "[]") or ()
        return max((int(t.get("bonus", 0)) for t in tiers), default=0)
    return 0


def open_now(hours: dict[str, Any], timezone: str, now: datetime) -> bool:
    """Open at this instant by the store's own wall clock (so DST and midnight hold)."""
    return is_open(hours, now.astimezone(ZoneInfo(timezone)))


def _hours(session: Session, store_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Opening hours of these stores: decoded only for the stores a page shows or filters."""
    rows = session.execute(
        select(Store.id, Store.opening_hours).where(Store.id.in_(list(store_ids)))
    )
    return {store_id: hours for store_id, hours in rows}


def _candidate_stores(session: Session, query: NearbyQuery) -> list[NearbyStore]:
    cells = geo.covering(query.latitude, query.longitude, query.radius_m)
    statement = (
        select(
            Store.id,
            Store.merchant_id,
            Store.name,
            Store.latitude,
            Store.longitude,
            Store.timezone,
            Merchant.category,
        )
        .join(StoreCell, StoreCell.store_id == Store.id)
        .join(Merchant, Merchant.id == Store.merchant_id)
        .where(StoreCell.cell.in_(cells), Store.active.is_(True), Merchant.active.is_(True))
    )
    if query.category is not None:
        statement = statement.where(Merchant.category == query.category)
    found = []
    lat, lng, radius = query.latitude, query.longitude, query.radius_m
    for row in session.connection().execute(statement):
        distance = geo.haversine_m(lat, lng, row.latitude, row.longitude)
        if distance <= radius:
            found.append(NearbyStore(*row, distance_m=distance))  # type: ignore[misc]
    found.sort(key=lambda s: (s.distance_m, s.id))
    return found


def _offers_of(
    session: Session, merchant_ids: Sequence[str], kind: OfferKind | None, now: datetime
) -> list[Any]:
    statement = select(*_OFFER_COLUMNS).where(
        Offer.merchant_id.in_(merchant_ids),
        Offer.state == OfferState.PUBLISHED,
        or_(Offer.valid_until.is_(None), Offer.valid_until > now),
        or_(Offer.valid_from.is_(None), Offer.valid_from <= now),
    )
    if kind is not None:
        statement = statement.where(Offer.kind == kind)
    return list(session.connection().execute(statement))


def _ratings(session: Session, store_ids: Sequence[str]) -> dict[str, float]:
    rows = session.execute(
        select(StoreRating.store_id, StoreRating.average).where(StoreRating.store_id.in_(store_ids))
    )
    return {store_id: average for store_id, average in rows}


def _key(sort: Sort, distance: float, value: int, rating: float | None, offer_id: str) -> tuple:
    if sort == "value":
        return (-value, distance, offer_id)
    if sort == "rating":
        return (-(rating if rating is not None else -1.0), distance, offer_id)
    return (distance, offer_id)


def encode_cursor(key: tuple[Any, ...]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(key)).encode()).decode().rstrip("=")


def decode_cursor(cursor: str, sort: Sort) -> tuple[Any, ...]:
    """The sort key after which the next page starts; anything else is a clear 422."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = tuple(json.loads(raw))
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError) as error:
        raise InvalidInput("cursor is not one this API returned") from error
    size = 2 if sort == "distance" else 3
    numbers, last = key[:-1], key[-1] if key else None
    if (
        len(key) != size
        or not all(isinstance(n, int | float) and not isinstance(n, bool) for n in numbers)
        or not isinstance(last, str)
    ):
        raise InvalidInput("cursor is not one this API returned (or belongs to another sort)")
    return key


def search(
    session: Session, *, query: NearbyQuery, now: datetime
) -> tuple[list[NearbyOffer], str | None]:
    """One page of nearby offers in the asked order, and the cursor of the next page."""
    if not -90 <= query.latitude <= 90 or not -180 <= query.longitude <= 180:
        raise InvalidInput("latitude must be within ±90 and longitude within ±180")
    if not 0 < query.radius_m <= MAX_RADIUS_M:
        raise InvalidInput(f"radius_m must be above 0 and at most {MAX_RADIUS_M}")
    after = decode_cursor(query.cursor, query.sort) if query.cursor else None
    stores = _candidate_stores(session, query)
    hours: dict[str, dict[str, Any]] = {}
    if query.open_now is not None:
        hours = _hours(session, [s.id for s in stores])
        stores = [s for s in stores if open_now(hours[s.id], s.timezone, now) is query.open_now]
    by_merchant: dict[str, list[NearbyStore]] = {}
    for store in stores:  # nearest first, so merchants come in order of their nearest store
        by_merchant.setdefault(store.merchant_id, []).append(store)
    if not by_merchant:
        return [], None
    ratings = _ratings(session, [s.id for s in stores]) if query.sort == "rating" else {}
    if query.sort == "distance":
        results = _nearest_first(session, by_merchant, query, after, now)
    else:
        results = _ranked(session, list(by_merchant), by_merchant, query, after, ratings, now)
    results.sort(key=lambda r: r[0])
    page = results[: query.limit]
    missing = [store.id for _, _, store, _, _ in page if store.id not in hours]
    if missing:
        hours.update(_hours(session, missing))
    shaped = [
        NearbyOffer(
            offer=offer,
            store=store,
            distance_m=store.distance_m,
            open_now=open_now(hours[store.id], store.timezone, now),
            value=value,
            rating=rating,
            key=key,
        )
        for key, offer, store, value, rating in page
    ]
    next_cursor = encode_cursor(page[-1][0]) if len(results) > query.limit else None
    return shaped, next_cursor


_Ranked = tuple[tuple[Any, ...], Any, NearbyStore, int, float | None]
_CHUNK = 24  # merchants whose offers are read at a time when nearest come first


def _ranked(
    session: Session,
    merchant_ids: list[str],
    by_merchant: dict[str, list[NearbyStore]],
    query: NearbyQuery,
    after: tuple[Any, ...] | None,
    ratings: dict[str, float],
    now: datetime,
) -> list[_Ranked]:
    """Every offer of these merchants past the cursor, with its sort key."""
    results = []
    for offer in _offers_of(session, merchant_ids, query.kind, now):
        if offer.total_stock is not None and offer.issued_count >= offer.total_stock:
            continue
        store = _nearest_valid_store(by_merchant[offer.merchant_id], offer.store_ids)
        if store is None:
            continue
        value = value_of(offer)
        rating = ratings.get(store.id)
        key = _key(query.sort, store.distance_m, value, rating, offer.id)
        if after is not None and key <= after:
            continue
        results.append((key, offer, store, value, rating))
    return results


def _nearest_first(
    session: Session,
    by_merchant: dict[str, list[NearbyStore]],
    query: NearbyQuery,
    after: tuple[Any, ...] | None,
    now: datetime,
) -> list[_Ranked]:
    """Offers by distance, reading merchants nearest first and stopping once no farther
    merchant can place an offer on this page (its nearest store is past the page's last)."""
    past = after[0] if after is not None else -1.0
    # A merchant whose every store is nearer than the cursor has nothing left to show.
    merchants = [m for m, stores in by_merchant.items() if stores[-1].distance_m >= past]
    results: list[_Ranked] = []
    for start in range(0, len(merchants), _CHUNK):
        chunk = merchants[start : start + _CHUNK]
        results += _ranked(session, chunk, by_merchant, query, after, {}, now)
        if len(results) > query.limit and start + _CHUNK < len(merchants):
            results.sort(key=lambda r: r[0])
            last_needed = results[query.limit][0][0]
            if by_merchant[merchants[start + _CHUNK]][0].distance_m > last_needed:
                break
    return results


def _nearest_valid_store(stores: list[NearbyStore], store_ids: str | None) -> NearbyStore | None:
    """The nearest store the offer is valid at (`store_ids` as stored: JSON text or NULL)."""
    allowed_ids = json.loads(store_ids) if store_ids else None
    if allowed_ids is None:
        return stores[0]
    allowed = set(allowed_ids)
    return next((s for s in stores if s.id in allowed), None)
