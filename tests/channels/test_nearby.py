"""Nearby offers on a real database: the radius, open-now, sorting, paging, bad input."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from channels.geo_points import destination
from factories import PLATFORM, bearer, make_consumer, make_offer, make_tenant
from o2oloop import clock
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.channels import geo, nearby
from o2oloop.channels.models import StoreCell
from o2oloop.merchants import schemas as merchant_schemas
from o2oloop.merchants import service as merchants
from o2oloop.merchants.models import Store
from o2oloop.offers.models import Offer

# Places where naive longitude/latitude boxes break, and one ordinary city.
PLACES = [(0.0, 179.99), (0.3, -179.95), (89.95, 40.0), (-89.97, -120.0), (31.23, 121.47)]


def _admin(tenant) -> Principal:
    return Principal(key_id="t", role=Role.MERCHANT_ADMIN, merchant_id=tenant.merchant_id)


def _store(db, tenant, lat, lng, **extra) -> str:
    with db.transaction() as session:
        store = merchants.create_store(
            session,
            principal=_admin(tenant),
            merchant_id=tenant.merchant_id,
            data=merchant_schemas.StoreCreate(name="Shop", latitude=lat, longitude=lng, **extra),
        )
        return store.id


@pytest.fixture
def scattered(db):
    """About 250 stores of one merchant around each place, up to 60 km out, one offer."""
    tenant = make_tenant(db)
    rng = random.Random(7)
    points = {}
    with db.transaction() as session:
        for lat, lng in PLACES:
            for _ in range(50):
                distance = rng.choice([rng.uniform(0, 2_000), rng.uniform(0, 60_000)])
                p_lat, p_lng = destination(lat, lng, rng.uniform(0, 360), distance)
                store = merchants.create_store(
                    session,
                    principal=_admin(tenant),
                    merchant_id=tenant.merchant_id,
                    data=merchant_schemas.StoreCreate(name="Shop", latitude=p_lat, longitude=p_lng),
                )
                points[store.id] = (p_lat, p_lng)
    points[tenant.store_id] = (31.23, 121.47)
    make_offer(db, tenant)
    return db, points


def _stores_found(db, lat, lng, radius) -> set[str]:
    """Every store of the merchant in the radius, through one offer per store."""
    with db.reading() as session:
        query = nearby.NearbyQuery(latitude=lat, longitude=lng, radius_m=radius)
        return {row.id for _, row in nearby.stores_within(session, query)}


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    place=st.sampled_from(PLACES),
    bearing=st.floats(0, 360),
    offset=st.floats(0, 20_000),
    radius=st.floats(1, 50_000),
)
def test_radius_is_exact_nothing_outside_nothing_inside_missed(
    scattered, place, bearing, offset, radius
):
    db, points = scattered
    lat, lng = destination(*place, bearing, offset)
    expected = {
        store_id
        for store_id, (p_lat, p_lng) in points.items()
        if geo.haversine_m(lat, lng, p_lat, p_lng) <= radius
    }
    assert _stores_found(db, lat, lng, radius) == expected


def test_search_returns_each_offer_once_with_its_nearest_store(db, frozen_clock):
    tenant = make_tenant(db)
    near = _store(db, tenant, 31.2401, 121.4801)
    offer_id = make_offer(db, tenant)
    with db.reading() as session:
        found, cursor = nearby.search(
            session,
            query=nearby.NearbyQuery(latitude=31.2400, longitude=121.4800, radius_m=500),
            now=clock.now(),
        )
    assert [(f.offer.id, f.store.id) for f in found] == [(offer_id, near)]
    assert cursor is None
    assert found[0].distance_m == pytest.approx(14.3, abs=1)


def test_offers_limited_to_other_stores_and_sold_out_offers_are_not_listed(db, frozen_clock):
    tenant = make_tenant(db)
    far = _store(db, tenant, 31.5, 121.9)
    make_offer(db, tenant, store_ids=[far])
    make_offer(db, tenant, total_stock=0)
    with db.reading() as session:
        found, _ = nearby.search(
            session,
            query=nearby.NearbyQuery(latitude=31.23, longitude=121.47, radius_m=1_000),
            now=clock.now(),
        )
    assert found == []


def test_moving_a_store_moves_it_in_the_index(db):
    tenant = make_tenant(db)
    with db.transaction() as session:
        merchants.update_store(
            session,
            principal=_admin(tenant),
            merchant_id=tenant.merchant_id,
            store_id=tenant.store_id,
            data=merchant_schemas.StoreUpdate(latitude=-33.86, longitude=151.21),
        )
    assert _stores_found(db, -33.86, 151.21, 100) == {tenant.store_id}
    assert _stores_found(db, 31.23, 121.47, 10_000) == set()
    with db.reading() as session:
        cells = session.scalars(select(StoreCell.cell).where(StoreCell.store_id == tenant.store_id))
        assert len(list(cells)) == len(geo.RESOLUTIONS)


LATE = {
    day: [{"open": "18:00", "close": "02:00"}]
    for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
}


def _open_now(db, store_id, at: datetime) -> bool:
    with db.reading() as session:
        row = session.get(Store, store_id)
        assert row is not None
        return nearby.open_now(row.opening_hours, row.timezone, at)


def test_a_closed_store_leaves_the_index_even_when_moved_and_so_do_a_closed_merchants(db):
    tenant = make_tenant(db)
    other = _store(db, tenant, 31.24, 121.48)
    with db.transaction() as session:
        merchants.deactivate_store(
            session, principal=_admin(tenant), merchant_id=tenant.merchant_id, store_id=other
        )
        merchants.update_store(
            session,
            principal=_admin(tenant),
            merchant_id=tenant.merchant_id,
            store_id=other,
            data=merchant_schemas.StoreUpdate(latitude=31.25, longitude=121.49),
        )
    with db.reading() as session:
        indexed = set(session.scalars(select(StoreCell.store_id)))
    assert indexed == {tenant.store_id}
    with db.transaction() as session:
        merchants.deactivate_merchant(
            session,
            principal=PLATFORM,
            merchant_id=tenant.merchant_id,
        )
    with db.reading() as session:
        assert session.scalars(select(StoreCell.store_id)).all() == []


def test_open_now_across_midnight_in_the_store_timezone(db):
    tenant = make_tenant(db)
    store_id = _store(db, tenant, 31.23, 121.47, timezone="Asia/Shanghai", opening_hours=LATE)
    # 01:30 in Shanghai (UTC+8) is still Saturday night's opening; 02:30 is closed.
    assert _open_now(db, store_id, datetime(2026, 6, 6, 17, 30, tzinfo=UTC))
    assert not _open_now(db, store_id, datetime(2026, 6, 6, 18, 30, tzinfo=UTC))
    assert not _open_now(db, store_id, datetime(2026, 6, 6, 9, 59, tzinfo=UTC))
    assert _open_now(db, store_id, datetime(2026, 6, 6, 10, 0, tzinfo=UTC))


def test_open_now_across_a_dst_change(db):
    tenant = make_tenant(db, timezone="America/New_York")
    store_id = _store(
        db,
        tenant,
        40.71,
        -74.0,
        timezone="America/New_York",
        opening_hours={"sun": [{"open": "09:00", "close": "17:00"}]},
    )
    # 8 March 2026 clocks go forward at 02:00: 09:00 local is 13:00 UTC, not 14:00.
    assert _open_now(db, store_id, datetime(2026, 3, 8, 13, 0, tzinfo=UTC))
    assert not _open_now(db, store_id, datetime(2026, 3, 8, 12, 59, tzinfo=UTC))
    # The Sunday before, still on standard time, 09:00 local was 14:00 UTC.
    assert not _open_now(db, store_id, datetime(2026, 3, 1, 13, 30, tzinfo=UTC))
    assert _open_now(db, store_id, datetime(2026, 3, 1, 14, 0, tzinfo=UTC))
    # 1 November 2026 clocks go back: 17:00 local is 22:00 UTC.
    assert _open_now(db, store_id, datetime(2026, 11, 1, 21, 59, tzinfo=UTC))
    assert not _open_now(db, store_id, datetime(2026, 11, 1, 22, 0, tzinfo=UTC))


def test_open_now_filter(db):
    tenant = make_tenant(db)
    late = _store(db, tenant, 31.2301, 121.4701, opening_hours=LATE)
    make_offer(db, tenant)
    query = {"latitude": 31.23, "longitude": 121.47, "radius_m": 1_000}
    with db.reading() as session:
        found, _ = nearby.search(
            session,
            query=nearby.NearbyQuery(**query, open_now=True),
            now=datetime(2026, 6, 1, 15, 0, tzinfo=UTC),
        )
    # 23:00 in Shanghai: only the late store is open, so the offer shows with it.
    assert [f.store.id for f in found] == [late]
    assert found[0].open_now


def test_sort_by_value_and_cursor_paging_visit_every_offer_once(db, frozen_clock):
    tenant = make_tenant(db)
    offers = [make_offer(db, tenant, amount_off=100 * (i + 1)) for i in range(7)]
    seen: list[str] = []
    cursor = None
    with db.reading() as session:
        while True:
            found, cursor = nearby.search(
                session,
                query=nearby.NearbyQuery(
                    latitude=31.23,
                    longitude=121.47,
                    radius_m=1_000,
                    sort="value",
                    cursor=cursor,
                    limit=3,
                ),
                now=clock.now(),
            )
            seen += [f.offer.id for f in found]
            if cursor is None:
                break
    assert seen == list(reversed(offers))


def test_distance_paging_over_many_merchants_matches_one_big_page(db, frozen_clock):
    """Nearest-first reading stops early; every page must still be exactly the right slice."""
    rng = random.Random(3)
    for _ in range(30):
        tenant = make_tenant(db)
        for _ in range(rng.randint(0, 2)):
            lat, lng = destination(31.23, 121.47, rng.uniform(0, 360), rng.uniform(0, 3_000))
            _store(db, tenant, lat, lng)
        for _ in range(rng.randint(1, 3)):
            make_offer(db, tenant)
    query = {"latitude": 31.231, "longitude": 121.471, "radius_m": 2_500}
    with db.reading() as session:
        everything, _ = nearby.search(
            session, query=nearby.NearbyQuery(**query, limit=100), now=clock.now()
        )
        paged: list = []
        cursor = None
        while True:
            found, cursor = nearby.search(
                session,
                query=nearby.NearbyQuery(**query, limit=7, cursor=cursor),
                now=clock.now(),
            )
            paged += found
            if cursor is None:
                break
    assert [(f.offer.id, f.store.id) for f in paged] == [
        (f.offer.id, f.store.id) for f in everything
    ]
    distances = [f.distance_m for f in everything]
    assert distances == sorted(distances) and len(everything) >= 30


def test_api_answers_and_converts_gcj02(db, http, frozen_clock):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    _, key = make_consumer(db)
    g_lat, g_lng = geo.wgs84_to_gcj02(31.23, 121.47)
    answer = http.get(
        "/v1/offers/nearby",
        params={"lat": g_lat, "lng": g_lng, "radius_m": 50, "coords": "gcj02"},
        headers=bearer(key),
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert [o["offer_id"] for o in body["data"]] == [offer_id]
    assert body["data"][0]["distance_m"] < 1
    # Unconverted, the same numbers are hundreds of metres off.
    answer = http.get(
        "/v1/offers/nearby",
        params={"lat": g_lat, "lng": g_lng, "radius_m": 50},
        headers=bearer(key),
    )
    assert answer.json()["data"] == []


@pytest.mark.parametrize(
    "params",
    [
        {"lat": 90.5, "lng": 0, "radius_m": 100},
        {"lat": -91, "lng": 0, "radius_m": 100},
        {"lat": "nan", "lng": 0, "radius_m": 100},
        {"lat": 0, "lng": 181, "radius_m": 100},
        {"lat": 0, "lng": 0, "radius_m": 0},
        {"lat": 0, "lng": 0, "radius_m": -5},
        {"lat": 0, "lng": 0, "radius_m": nearby.MAX_RADIUS_M + 1},
        {"lat": 0, "lng": 0, "radius_m": 100, "sort": "price"},
        {"lat": 0, "lng": 0, "radius_m": 100, "coords": "bd09"},
        {"lat": 0, "lng": 0, "radius_m": 100, "cursor": "not-a-cursor"},
        {"lat": 0, "lng": 0, "radius_m": 100, "cursor": "WzEsMiwzXQ"},
    ],
)
def test_bad_input_is_a_clear_422(db, http, params):
    _, key = make_consumer(db)
    answer = http.get("/v1/offers/nearby", params=params, headers=bearer(key))
    assert answer.status_code == 422, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")


def test_search_needs_a_key(http):
    assert (
        http.get("/v1/offers/nearby", params={"lat": 0, "lng": 0, "radius_m": 1}).status_code == 401
    )


def _search(db, **query):
    with db.reading() as session:
        found, _ = nearby.search(
            session,
            query=nearby.NearbyQuery(latitude=31.23, longitude=121.47, radius_m=2_000, **query),
            now=clock.now(),
        )
    return found


def test_an_offer_limited_to_some_stores_shows_at_its_nearest_allowed_one(db, frozen_clock):
    tenant = make_tenant(db)  # its first store sits at the search's centre
    allowed = _store(db, tenant, 31.235, 121.47)  # ~550 m north
    _store(db, tenant, 31.232, 121.47)  # nearer, but not one the offer names
    offer_id = make_offer(db, tenant, store_ids=[allowed])
    assert [(f.offer.id, f.store.id) for f in _search(db)] == [(offer_id, allowed)]


def test_a_closed_store_gives_way_to_the_next_one_and_sold_out_offers_leave(db, frozen_clock):
    tenant = make_tenant(db)
    farther = _store(db, tenant, 31.235, 121.47)
    offer_id = make_offer(db, tenant)
    with db.transaction() as session:
        merchants.deactivate_store(
            session, principal=_admin(tenant), merchant_id=tenant.merchant_id,
            store_id=tenant.store_id,
        )  # fmt: skip
    assert [(f.offer.id, f.store.id) for f in _search(db)] == [(offer_id, farther)]
    with db.transaction() as session:
        merchants.deactivate_store(
            session, principal=_admin(tenant), merchant_id=tenant.merchant_id, store_id=farther
        )
    assert _search(db) == []


@pytest.mark.parametrize(
    "terms",
    [
        {"amount_off": 700},
        {"discount_kind": "percent_off", "amount_off": None, "percent_off_bps": 1500,
         "discount_cap": 2000},
        {"discount_kind": "percent_off", "amount_off": None, "percent_off_bps": 1000,
         "min_spend": 12_345},
        {"kind": "voucher", "discount_kind": None, "amount_off": None, "price": 8800,
         "face_value": 12_800, "includes": "Set for two"},
        {"kind": "stored_value", "discount_kind": None, "amount_off": None,
         "topup_tiers": [{"pay": 10_000, "bonus": 1500}, {"pay": 30_000, "bonus": 6000}]},
    ],
)  # fmt: skip
def test_the_database_values_an_offer_as_value_of_does(db, frozen_clock, terms):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant, **terms)
    with db.reading() as session:
        offer = session.get(Offer, offer_id)
        expected = nearby.value_of(
            SimpleNamespace(**{**offer.__dict__, "topup_tiers": json.dumps(offer.topup_tiers)})
        )
    assert expected > 0
    assert [f.value for f in _search(db, sort="value")] == [expected]
