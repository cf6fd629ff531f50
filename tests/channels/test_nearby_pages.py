"""Every page of every sort is the exact slice of a ranking computed the slow way.

The database ranks with shortcuts (PostgreSQL probes merchants in page order and stops at
a full page; SQLite reads a small disc first when sorting by distance); this checks each
page against every offer, store and rating read back and ranked in Python.
"""

from __future__ import annotations

import dataclasses
import json
import random
from datetime import datetime
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from channels.geo_points import destination
from factories import make_offer, make_tenant
from o2oloop import clock
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.channels import geo, nearby
from o2oloop.channels.models import StoreRating
from o2oloop.merchants import schemas as merchant_schemas
from o2oloop.merchants import service as merchants
from o2oloop.merchants.models import Merchant, Store
from o2oloop.offers.models import Offer, OfferState

CENTRE = (31.23, 121.47)


def _admin(tenant) -> Principal:
    return Principal(key_id="t", role=Role.MERCHANT_ADMIN, merchant_id=tenant.merchant_id)


def _offer_terms(rng: random.Random, stores: list[str]) -> dict[str, Any]:
    terms: dict[str, Any] = rng.choice(
        [
            {"amount_off": rng.choice([500, 1000, 1500])},
            {"discount_kind": "percent_off", "amount_off": None, "percent_off_bps": 1000,
             "discount_cap": rng.choice([500, 2000])},
            {"kind": "voucher", "discount_kind": None, "amount_off": None, "price": 8800,
             "face_value": rng.choice([9800, 12_800]), "includes": "Set for two"},
        ]
    )  # fmt: skip
    if len(stores) > 1 and rng.random() < 0.25:
        terms["store_ids"] = rng.sample(stores, rng.randint(1, len(stores) - 1))
    if rng.random() < 0.1:
        terms["total_stock"] = 0
    return terms


@pytest.fixture
def city(db, frozen_clock):
    """About 30 merchants with 1-3 stores within 3 km, offers of several values (a few
    limited to some stores, a few sold out or paused), ratings with ties, a closed store."""
    rng = random.Random(5)
    for i in range(30):
        tenant = make_tenant(db)
        stores = [tenant.store_id]
        with db.transaction() as session:
            for _ in range(rng.randint(0, 2)):
                lat, lng = destination(*CENTRE, rng.uniform(0, 360), rng.uniform(0, 3_000))
                stores.append(
                    merchants.create_store(
                        session,
                        principal=_admin(tenant),
                        merchant_id=tenant.merchant_id,
                        data=merchant_schemas.StoreCreate(name="Shop", latitude=lat, longitude=lng),
                    ).id
                )
        for _ in range(rng.randint(1, 4)):
            make_offer(db, tenant, **_offer_terms(rng, stores))
        with db.transaction() as session:
            for store_id in stores:
                if rng.random() < 0.7:
                    average = rng.choice([3.0, 4.0, 4.5])
                    session.add(
                        StoreRating(
                            store_id=store_id, average=average, count=3, updated_at=clock.now()
                        )
                    )
            if i == 0:
                session.query(Offer).filter(Offer.merchant_id == tenant.merchant_id).update(
                    {"state": OfferState.PAUSED}
                )
            if i == 1:
                merchants.deactivate_store(
                    session,
                    principal=_admin(tenant),
                    merchant_id=tenant.merchant_id,
                    store_id=stores[0],
                )
    return db


def _expected(db, query: nearby.NearbyQuery, now: datetime) -> list[tuple[str, str]]:
    """Every live offer at its nearest allowed store in the radius, ranked as asked."""
    with db.reading() as session:
        stores = session.scalars(select(Store).join(Merchant).where(Store.active, Merchant.active))
        ratings = {r.store_id: r.average for r in session.scalars(select(StoreRating))}
        by_merchant: dict[str, list[tuple[float, str]]] = {}
        for s in stores:
            d = geo.haversine_m(query.latitude, query.longitude, s.latitude, s.longitude)
            if d <= query.radius_m:
                by_merchant.setdefault(s.merchant_id, []).append((d, s.id))
        ranked = []
        for o in session.scalars(select(Offer).where(Offer.state == OfferState.PUBLISHED)):
            if o.total_stock is not None and o.issued_count >= o.total_stock:
                continue
            allowed = [p for p in by_merchant.get(o.merchant_id, []) if o.store_ids is None
                       or p[1] in o.store_ids]  # fmt: skip
            if not allowed:
                continue
            d, store_id = min(allowed)
            value = nearby.value_of(
                SimpleNamespace(**{**o.__dict__, "topup_tiers": json.dumps(o.topup_tiers)})
            )
            first = {"distance": 0, "value": -value, "rating": -ratings.get(store_id, -1.0)}
            ranked.append(((first[query.sort], d, o.id), (o.id, store_id)))
    return [pair for _, pair in sorted(ranked)]


def _paged(db, query: nearby.NearbyQuery, now: datetime) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    cursor = None
    with db.reading() as session:
        while True:
            page, cursor = nearby.search(
                session,
                query=dataclasses.replace(query, cursor=cursor),
                now=now,
            )
            seen += [(f.offer.id, f.store.id) for f in page]
            if cursor is None:
                return seen
            assert len(page) == query.limit


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    bearing=st.floats(0, 360),
    offset=st.floats(0, 3_000),
    radius=st.floats(50, 5_000),
    sort=st.sampled_from(["distance", "value", "rating"]),
    limit=st.integers(1, 12),
)
def test_every_page_is_the_exact_slice_of_the_full_ranking(
    city, bearing, offset, radius, sort, limit
):
    lat, lng = destination(*CENTRE, bearing, offset)
    query = nearby.NearbyQuery(latitude=lat, longitude=lng, radius_m=radius, sort=sort, limit=limit)
    now = clock.now()
    assert _paged(city, query, now) == _expected(city, query, now)
