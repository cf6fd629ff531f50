"""Nearby offers: published offers of active stores within a radius, exactly.

Candidates come from the H3 cells covering the disc (`geo.covering`); the database keeps
the stores within the radius (by squared chord, half a metre generous), ranks every
(offer, store) pair and returns one page (`nearby_sql`); the exact haversine check then
drops what the margin let through. An offer appears once, at its nearest store in the radius
that it is valid at; sort=rating orders by that store's rating.
On SQLite, sorting by distance first asks a quarter of the radius (its few cells): a page
filled there is the exact page, since nothing farther can come before it. PostgreSQL ranks
the merchants in the disc first and stops at a full page (sort by distance or rating).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from o2oloop.channels import geo, nearby_sql
from o2oloop.errors import InvalidInput
from o2oloop.merchants.hours import is_open
from o2oloop.merchants.models import Category
from o2oloop.offers.models import DiscountKind, OfferKind

MAX_RADIUS_M = 50_000
Sort = nearby_sql.Sort


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
    offer: Any  # a row of the offer's columns (see `nearby_sql.page_statement`)
    store: NearbyStore
    distance_m: float
    open_now: bool
    value: int
    rating: float | None
    key: tuple[Any, ...]


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


@lru_cache(maxsize=4096)
def _hours_of(text: str) -> dict[str, Any]:
    """Opening hours decoded from the text the row holds (keyed by that text: never stale)."""
    return json.loads(text)


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


def _key(sort: Sort, row: Any) -> tuple[Any, ...]:
    """The page key of a row: what the next page's statement continues after."""
    if sort == "distance":
        return (row.d2, row.id)
    first = row.value if sort == "value" else row.rating
    return (-first, row.d2, row.id)


@dataclass(frozen=True, slots=True)
class _Plan:
    """One search as the statements see it."""

    query: NearbyQuery
    now: datetime
    point: tuple[float, float, float]
    stores: tuple[str, ...] | None  # only these (the open ones), or any


def _binds(dialect: str, plan: _Plan, radius: float) -> dict[str, Any]:
    q = plan.query
    x, y, z = plan.point
    # Cells for a metre beyond the radius, so the chord's margin finds no uncovered cell.
    cells = geo.covering(q.latitude, q.longitude, min(radius + 1.0, MAX_RADIUS_M + 1.0))
    values: dict[str, Any] = {
        "cells": nearby_sql.cells_value(dialect, cells),
        "x": x,
        "y": y,
        "z": z,
        "max_d2": geo.chord2_within(radius),
    }
    if q.category is not None:
        values["category"] = q.category.value
    return values


def stores_within(session: Session, query: NearbyQuery, *, hours: bool = False) -> list[Any]:
    """Active stores of active merchants within the radius, nearest first, exactly."""
    dialect = session.get_bind().dialect.name
    statement = nearby_sql.stores_statement(
        dialect, category=query.category is not None, hours=hours
    )
    plan = _Plan(query, datetime.min, geo.unit_vector(query.latitude, query.longitude), None)
    found = []
    lat, lng, radius = query.latitude, query.longitude, query.radius_m
    for row in session.execute(statement, _binds(dialect, plan, radius)):
        distance = geo.haversine_m(lat, lng, row.latitude, row.longitude)
        if distance <= radius:
            found.append((distance, row))
    found.sort(key=lambda pair: (pair[0], pair[1].id))
    return found


def _open_stores(session: Session, query: NearbyQuery, now: datetime) -> tuple[str, ...]:
    """The stores in the radius whose open-now is what the query asks."""
    return tuple(
        row.id
        for _, row in stores_within(session, query, hours=True)
        if open_now(_hours_of(row.opening_hours), row.timezone, now) is query.open_now
    )


def _fetch(
    session: Session, plan: _Plan, radius: float, after: tuple[Any, ...] | None, want: int
) -> list[tuple[float, Any]]:
    """Up to `want` live rows within `radius` past `after`, each with its exact distance.

    The ranking reads only covering indexes; whether the page's stores, merchants and
    offers are still live is read from their rows. A sold-out offer is skipped; a closed
    store (or one of a switched-off merchant) is left out and the page asked again, since
    its offers may be nearer at another store.
    """
    excluded: set[str] = set()
    while True:
        rows, closed = _fetch_live(session, plan, radius, after, want, excluded)
        if not closed:
            return rows
        excluded |= closed


def _fetch_live(
    session: Session,
    plan: _Plan,
    radius: float,
    after: tuple[Any, ...] | None,
    want: int,
    excluded: set[str],
) -> tuple[list[tuple[float, Any]], set[str]]:
    q = plan.query
    dialect = session.get_bind().dialect.name
    values = _binds(dialect, plan, radius)
    values["now"] = plan.now
    if q.kind is not None:
        values["kind"] = q.kind.value
    if plan.stores is not None:
        values["stores"] = list(plan.stores)
    if excluded:
        values["excluded"] = sorted(excluded)
    rows: list[tuple[float, Any]] = []
    while True:
        statement = nearby_sql.page_statement(
            dialect,
            q.sort,
            category=q.category is not None,
            kind=q.kind is not None,
            only_stores=plan.stores is not None,
            excluded=bool(excluded),
            after=after is not None,
        )
        if after is not None:
            if q.sort != "distance":
                values["k_first"] = float(-after[0])
            values["k_d2"], values["k_id"] = float(after[-2]), after[-1]
        values["n"] = want - len(rows)
        batch = list(session.execute(statement, values))
        closed = {r.store_id for r in batch if not (r.store_active and r.merchant_active)}
        if closed:
            return rows, closed
        for row in batch:
            after = _key(q.sort, row)
            if row.total_stock is not None and row.issued_count >= row.total_stock:
                continue
            distance = geo.haversine_m(q.latitude, q.longitude, row.latitude, row.longitude)
            if distance <= radius:  # else within the chord's half-metre margin only
                rows.append((distance, row))
        if len(batch) < values["n"] or len(rows) >= want:
            return rows, set()


def _distance_of(d2: float) -> float:
    """The great-circle distance of a squared chord."""
    return 2 * geo.EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(d2) / 2))


def _radii(query: NearbyQuery, after: tuple[Any, ...] | None, dialect: str) -> list[float]:
    """Sort by distance reads a smaller disc first on SQLite; any other sort needs the whole
    one, and PostgreSQL stops at a full page by itself (`nearby_sql._ordered_page`)."""
    if query.sort != "distance" or dialect == "postgresql":
        return [query.radius_m]
    reached = _distance_of(float(after[0])) if after is not None else 0.0
    first = max(query.radius_m / 4, 2 * reached, 100.0)
    return [first, query.radius_m] if first < query.radius_m / 2 else [query.radius_m]


def search(
    session: Session, *, query: NearbyQuery, now: datetime
) -> tuple[list[NearbyOffer], str | None]:
    """One page of nearby offers in the asked order, and the cursor of the next page."""
    if not -90 <= query.latitude <= 90 or not -180 <= query.longitude <= 180:
        raise InvalidInput("latitude must be within ±90 and longitude within ±180")
    if not 0 < query.radius_m <= MAX_RADIUS_M:
        raise InvalidInput(f"radius_m must be above 0 and at most {MAX_RADIUS_M}")
    after = decode_cursor(query.cursor, query.sort) if query.cursor else None
    stores = None
    if query.open_now is not None:
        stores = _open_stores(session, query, now)
        if not stores:
            return [], None
    plan = _Plan(query, now, geo.unit_vector(query.latitude, query.longitude), stores)
    want = query.limit + 1  # one more than a page: is there a next one?
    for radius in _radii(query, after, session.get_bind().dialect.name):
        rows = _fetch(session, plan, radius, after, want)
        if len(rows) >= want:  # a full page within a smaller disc is the exact page
            break
    page = rows[: query.limit]
    shaped = [_shaped(query.sort, distance, row, now) for distance, row in page]
    next_cursor = encode_cursor(shaped[-1].key) if len(rows) > query.limit else None
    return shaped, next_cursor


def _shaped(sort: Sort, distance: float, row: Any, now: datetime) -> NearbyOffer:
    store = NearbyStore(
        row.store_id,
        row.merchant_id,
        row.store_name,
        row.latitude,
        row.longitude,
        row.timezone,
        row.category,
        distance,
    )
    return NearbyOffer(
        offer=row,
        store=store,
        distance_m=distance,
        open_now=open_now(_hours_of(row.opening_hours), row.timezone, now),
        value=int(row.value),
        rating=row.rating if row.rating >= 0 else None,
        key=_key(sort, row),
    )
