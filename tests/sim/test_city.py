"""The demo city runs the loop through the real services and is reproducible."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from city_kit import City
from o2oloop.analytics import service as analytics
from o2oloop.analytics.models import MemberScore, Segment
from o2oloop.codes.models import Code, CodeState, Redemption
from o2oloop.customers.models import Membership
from o2oloop.db import Database
from o2oloop.merchants.models import Merchant, Store
from o2oloop.settlement.models import SettlementBatch
from o2oloop.sim.city import build_city
from o2oloop.visits.models import Visit


def _count(db: Database, model: type, *where) -> int:
    with db.transaction() as session:
        return session.scalar(select(func.count()).select_from(model).where(*where))


def test_small_city_runs_the_loop(city: City) -> None:
    db, report = city.db, city.report
    assert _count(db, Merchant) == 6
    assert _count(db, Store) == 12
    assert _count(db, Visit) == report.visits > 600
    assert _count(db, Redemption) == report.redemptions > 0
    # Every relationship makes a member; friends brought by shares become members too.
    assert _count(db, Membership) >= report.relationships
    with db.transaction() as session:
        first, last = session.execute(
            select(func.min(Visit.occurred_at), func.max(Visit.occurred_at))
        ).one()
    assert (last - first).days >= 75
    assert set(report.keys) >= {"platform_admin", "merchant_admin", "terminal", "consumer"}
    # Every login existed before the first visit, so people can sign in while it runs.
    assert city.logins_seen == [(report.keys, 0)]


def test_the_city_fills_every_kind_of_money_and_member(city: City, frozen_clock) -> None:
    db, report = city.db, city.report
    assert report.vouchers_bought > 0 and report.vouchers_used > 0
    assert report.vouchers_refunded > 0 and report.vouchers_expired > 0
    assert report.top_ups > 0 and report.stored_value_spends > 0
    assert _count(db, SettlementBatch) == report.settlements > 0
    assert _count(db, Code, Code.state == CodeState.REFUNDED) == (
        report.vouchers_refunded + report.vouchers_expired
    )
    # New members arrive throughout: some first visits fall into the last 30 days.
    with db.transaction() as session:
        recent = frozen_clock.now() - timedelta(days=30)
        assert session.scalar(
            select(func.count()).select_from(Membership).where(Membership.first_visit_at >= recent)
        )
        analytics.analyze(session)
        segments = set(session.scalars(select(MemberScore.segment).distinct()))
    assert Segment.NEW in segments


def test_the_demo_consumer_holds_active_codes(city: City) -> None:
    from o2oloop.auth.models import ApiKey, Role

    assert city.report.keys["consumer"]
    with city.db.transaction() as session:
        consumer_id = session.scalar(select(ApiKey.consumer_id).where(ApiKey.role == Role.CONSUMER))
        active = session.scalar(
            select(func.count())
            .select_from(Code)
            .where(Code.consumer_id == consumer_id, Code.state == CodeState.ACTIVE)
        )
    assert active >= 2


def test_same_seed_same_city(sqlite_template, tmp_path, frozen_clock) -> None:
    """Ids, holdout buckets and id-ordered pages included: the same seed, the same visits."""
    import shutil

    cities = []
    for run in ("a", "b"):
        path = tmp_path / f"{run}.db"
        shutil.copy(sqlite_template, path)
        db = Database.from_url(f"sqlite:///{path}")
        report = build_city(
            db, secret_key="s" * 40, seed=11, merchants_count=4, consumers=150, days=30
        )
        with db.transaction() as session:
            visits = session.execute(
                select(Visit.id, Visit.store_id, Visit.amount, Visit.occurred_at).order_by(Visit.id)
            ).all()
        cities.append(
            (
                report.visits,
                report.claims,
                report.redemptions,
                report.relationships,
                report.vouchers_bought,
                report.top_ups,
                report.campaign_extra_visits,
                [tuple(row) for row in visits],
            )
        )
        db.dispose()
    assert cities[0][:-1] == cities[1][:-1]
    assert cities[0][-1] == cities[1][-1]


def test_the_city_shows_channels_shares_nearby_and_steering(city: City) -> None:
    from o2oloop.channels.models import CodeAttribution, Publication, Referral, ReferralReward

    db, figures = city.db, city.report.channels
    assert figures["publications"] == _count(db, Publication) == 24
    assert figures["channel_claims"] > 0 and figures["share_claims"] > 0
    assert _count(db, CodeAttribution) == figures["channel_claims"] + figures["share_claims"]
    assert _count(db, Referral) > 0
    assert figures["rewards"] == _count(db, ReferralReward) > 0
    assert figures["nearby_searches"] == 100 and figures["nearby_results"] > 0
    assert figures["offpeak_proposals"] > 0 and figures["slot_claims"] > 0
