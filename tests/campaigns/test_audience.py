"""Audience selection against hand-built members."""

from __future__ import annotations

import h3
import pytest

from campaign_kit import add_member, admin_of
from factories import make_offer, make_tenant
from o2oloop import clock
from o2oloop.analytics.models import Segment, SpendingLevel
from o2oloop.campaigns.audience import audience_query, cells_within
from o2oloop.campaigns.schemas import Audience, NearStore
from o2oloop.campaigns.service import preview
from o2oloop.errors import NotFound
from o2oloop.merchants.models import Store


def _chosen(session, merchant_id, audience, offer_id=None) -> set[str]:
    query = audience_query(
        session, audience=audience, merchant_id=merchant_id, now=clock.now(), offer_id=offer_id
    )
    return {row.member_id for row in session.execute(query)}


def test_each_filter_picks_exactly_the_members_built_to_match(db, frozen_clock) -> None:
    tenant = make_tenant(db)
    other = make_tenant(db)
    with db.transaction() as s:
        m = tenant.merchant_id
        at_risk = add_member(s, m, score={"segment": Segment.AT_RISK, "clv": 90000, "rfm": "155"})
        regular = add_member(s, m, score={"segment": Segment.REGULAR, "p_alive": 0.3})
        high = add_member(
            s, m, score={"spending_level": SpendingLevel.HIGH, "r_score": 5}, visits=12
        )
        no_consent = add_member(s, m, consent=False, score={"segment": Segment.AT_RISK})
        unscored = add_member(s, m, visits=2, last_visit_days=40)
        recent = add_member(s, m, visits=5, last_visit_days=3)
        foreign = add_member(s, other.merchant_id, score={"segment": Segment.AT_RISK})
        cases = [
            (Audience(), {at_risk, regular, high, unscored, recent}),
            (Audience(segments=[Segment.AT_RISK]), {at_risk}),
            (Audience(rfm=["155"]), {at_risk}),
            (Audience(clv_min=60000), {at_risk}),
            (Audience(clv_max=60000), {regular, high}),
            (Audience(p_alive_max=0.5), {regular}),
            (Audience(spending_levels=[SpendingLevel.HIGH]), {high}),
            (Audience(r_min=5), {high}),
            (Audience(visits_min=5), {high, recent}),
            (Audience(days_since_last_min=30), {unscored}),
            (Audience(days_since_last_max=7), {recent}),
            (Audience(exclude_member_ids=[regular[0]], segments=[Segment.REGULAR]), {high}),
        ]
        for audience, expected in cases:
            assert _chosen(s, m, audience) == {x[0] for x in expected}, audience
        assert no_consent[0] not in _chosen(s, m, Audience(segments=[Segment.AT_RISK]))
        assert foreign[0] not in _chosen(s, m, Audience())


def test_home_area_within_a_distance_of_a_store(db, frozen_clock) -> None:
    tenant = make_tenant(db)
    other = make_tenant(db)
    with db.transaction() as s:
        store = s.get(Store, tenant.store_id)
        here = h3.latlng_to_cell(store.latitude, store.longitude, 7)
        far = h3.latlng_to_cell(store.latitude + 0.3, store.longitude, 7)  # ~33 km north
        near = add_member(s, tenant.merchant_id, score={"home_cell": here})
        away = add_member(s, tenant.merchant_id, score={"home_cell": far})
        chosen = _chosen(
            s, tenant.merchant_id, Audience(near_store=NearStore(store_id=store.id, km=3))
        )
        assert chosen == {near[0]}
        assert away[0] in _chosen(
            s, tenant.merchant_id, Audience(near_store=NearStore(store_id=store.id, km=40))
        )
        with pytest.raises(NotFound):
            _chosen(s, other.merchant_id, Audience(near_store=NearStore(store_id=store.id, km=3)))


def test_cells_within_keeps_only_centres_inside_the_radius() -> None:
    cells = cells_within(31.23, 121.47, 5.0)
    assert h3.latlng_to_cell(31.23, 121.47, 7) in cells
    for cell in cells:
        assert h3.great_circle_distance((31.23, 121.47), h3.cell_to_latlng(cell), unit="km") <= 5
    assert len(cells) > 5


def test_holders_of_an_active_code_of_the_offer_are_excluded(db, frozen_clock) -> None:
    from factories import consumer_principal
    from o2oloop.codes import service as codes

    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    with db.transaction() as s:
        holder = add_member(s, tenant.merchant_id)
        plain = add_member(s, tenant.merchant_id)
        codes.claim(
            s,
            principal=consumer_principal(holder[1]),
            offer_id=offer_id,
            keys=codes.Keys.from_secret("k"),
        )
        assert _chosen(s, tenant.merchant_id, Audience(), offer_id) == {plain[0]}
        assert _chosen(s, tenant.merchant_id, Audience(exclude_active_code=False), offer_id) == {
            holder[0],
            plain[0],
        }


def test_preview_says_how_many_and_who(db, frozen_clock) -> None:
    tenant = make_tenant(db)
    with db.transaction() as s:
        for _ in range(30):
            add_member(s, tenant.merchant_id, score={"segment": Segment.AT_RISK})
        result = preview(
            s,
            principal=admin_of(tenant),
            merchant_id=tenant.merchant_id,
            audience=Audience(segments=[Segment.AT_RISK]),
        )
    assert result.count == 30
    assert result.control_estimate == 3 and result.treatment_estimate == 27
    assert len(result.sample) == 20 and all(m.segment == "at_risk" for m in result.sample)
