"""Audience selection: one set-based SELECT of (member, consumer) from memberships and scores.

Filters on learned scores (segment, RFM, CLV, spending level, P(alive)) read `member_scores`
and so leave out members `analyze` has not scored yet; filters on visits and recency read
the membership's live summary. Marketing consent and a not-erased consumer always hold.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import h3
from sqlalchemy import Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from o2oloop.analytics.models import MemberScore
from o2oloop.campaigns.models import CampaignTarget, TargetState
from o2oloop.campaigns.schemas import Audience
from o2oloop.codes.models import Code, CodeState
from o2oloop.customers.models import Consumer, Membership
from o2oloop.errors import NotFound
from o2oloop.merchants.models import Store

HOME_RESOLUTION = 7  # the resolution analytics stores home cells at


def cells_within(latitude: float, longitude: float, km: float) -> list[str]:
    """Resolution-7 H3 cells whose centre lies within `km` of the point."""
    origin = h3.latlng_to_cell(latitude, longitude, HOME_RESOLUTION)
    spacing = h3.average_hexagon_edge_length(HOME_RESOLUTION, unit="km") * math.sqrt(3)
    ring = max(1, math.ceil(km / spacing) + 1)
    return sorted(
        cell
        for cell in h3.grid_disk(origin, ring)
        if h3.great_circle_distance((latitude, longitude), h3.cell_to_latlng(cell), unit="km") <= km
    )


def _scored(audience: Audience) -> bool:
    return any(
        value is not None
        for value in (
            audience.segments,
            audience.rfm,
            audience.r_min,
            audience.f_min,
            audience.m_min,
            audience.clv_min,
            audience.clv_max,
            audience.spending_levels,
            audience.p_alive_min,
            audience.p_alive_max,
            audience.near_store,
        )
    )


def _score_filters(audience: Audience) -> list:
    s = MemberScore
    where: list = []
    if audience.segments:
        where.append(s.segment.in_(audience.segments))
    if audience.rfm:
        where.append(s.rfm.in_(audience.rfm))
    for column, low in ((s.r_score, audience.r_min), (s.f_score, audience.f_min)):
        if low is not None:
            where.append(column >= low)
    if audience.m_min is not None:
        where.append(s.m_score >= audience.m_min)
    if audience.clv_min is not None:
        where.append(s.clv >= audience.clv_min)
    if audience.clv_max is not None:
        where.append(s.clv <= audience.clv_max)
    if audience.spending_levels:
        where.append(s.spending_level.in_(audience.spending_levels))
    if audience.p_alive_min is not None:
        where.append(s.p_alive >= audience.p_alive_min)
    if audience.p_alive_max is not None:
        where.append(s.p_alive <= audience.p_alive_max)
    return where


def _membership_filters(audience: Audience, now: datetime) -> list:
    m = Membership
    where: list = []
    if audience.visits_min is not None:
        where.append(m.visit_count >= audience.visits_min)
    if audience.visits_max is not None:
        where.append(m.visit_count <= audience.visits_max)
    if audience.days_since_last_min is not None:
        where.append(m.last_visit_at <= now - timedelta(days=audience.days_since_last_min))
    if audience.days_since_last_max is not None:
        where.append(m.last_visit_at >= now - timedelta(days=audience.days_since_last_max))
    if audience.exclude_member_ids:
        where.append(m.id.not_in(audience.exclude_member_ids))
    return where


def near_store_of(session: Session, audience: Audience, merchant_id: str | None) -> Store | None:
    """The store an audience's home area is measured from; 404 for another merchant's."""
    near = audience.near_store
    if near is None:
        return None
    store = session.get(Store, near.store_id)
    if store is None or (merchant_id is not None and store.merchant_id != merchant_id):
        raise NotFound("near_store: no store of this merchant with this id", field="audience")
    return store


def _near_store(session: Session, audience: Audience, merchant_id: str | None) -> list:
    store = near_store_of(session, audience, merchant_id)
    if store is None or audience.near_store is None:
        return []
    cells = cells_within(store.latitude, store.longitude, audience.near_store.km)
    return [MemberScore.home_cell.in_(cells)]


def audience_query(
    session: Session,
    *,
    audience: Audience,
    merchant_id: str | None,
    now: datetime,
    offer_id: str | None = None,
    campaign_id: str | None = None,
) -> Select:
    """SELECT member_id, consumer_id of everyone the audience reaches, one row per consumer.

    With `campaign_id`, consumers still inside an attribution window of that campaign (in
    either arm) are left out: one window per consumer at a time, whatever the arm, so a
    treated member's new code never makes them less likely to be targeted than a control."""
    m, c = Membership, Consumer
    where = [m.marketing_consent.is_(True), c.erased_at.is_(None)]
    if merchant_id is not None:
        where.append(m.merchant_id == merchant_id)
    where += _membership_filters(audience, now)
    score_where = _score_filters(audience) + _near_store(session, audience, merchant_id)
    if audience.exclude_messaged_days is not None:
        t = CampaignTarget
        recent = [
            t.consumer_id == m.consumer_id,
            # Control targets count as "would have been messaged": the exclusion must not
            # depend on the arm, or the arms stop being comparable.
            t.state.in_([TargetState.SENT, TargetState.HELD_OUT]),
            t.targeted_at >= now - timedelta(days=audience.exclude_messaged_days),
        ]
        if merchant_id is not None:
            recent.append(t.merchant_id == merchant_id)
        where.append(~exists().where(and_(*recent)))
    if offer_id is not None and audience.exclude_active_code:
        where.append(
            ~exists().where(
                Code.offer_id == offer_id,
                Code.consumer_id == m.consumer_id,
                Code.state == CodeState.ACTIVE,
                or_(Code.expires_at.is_(None), Code.expires_at > now),
            )
        )
    if campaign_id is not None:
        t = CampaignTarget
        where.append(
            ~exists().where(
                t.campaign_id == campaign_id,
                t.consumer_id == m.consumer_id,
                t.measure_until > now,
            )
        )
    query = select(m.id.label("member_id"), m.consumer_id.label("consumer_id")).join(
        c, c.id == m.consumer_id
    )
    if _scored(audience):
        query = query.join(MemberScore, MemberScore.member_id == m.id).where(*score_where)
    query = query.where(*where)
    if merchant_id is None:  # a platform campaign reaches a consumer once, whatever members
        members = query.subquery()
        query = select(
            func.min(members.c.member_id).label("member_id"),
            members.c.consumer_id.label("consumer_id"),
        ).group_by(members.c.consumer_id)
    return query
