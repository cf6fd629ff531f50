"""analyze(): visits in SQL → fitted models → materialised member scores; store load; API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import pytest
from sqlalchemy import func, insert, select

from analytics_kit import add_pos_member
from factories import PLATFORM, Tenant, bearer, make_tenant, platform_admin_key
from o2oloop import clock
from o2oloop.analytics import segments as seg
from o2oloop.analytics import service as analytics
from o2oloop.analytics.models import FittedModel, MemberScore, Segment
from o2oloop.customers.models import Membership
from o2oloop.db import Database, new_id
from o2oloop.visits.models import Visit, VisitSource

AS_OF = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _member(session, tenant: Tenant) -> tuple[str, str]:
    return add_pos_member(session, tenant.merchant_id, AS_OF)


def _visits(
    session, tenant: Tenant, member: tuple[str, str], days_ago: list[float], amount=5_000, code=None
) -> None:
    consumer_id, member_id = member
    session.execute(
        insert(Visit),
        [
            {
                "id": new_id("vis"),
                "merchant_id": tenant.merchant_id,
                "store_id": tenant.store_id,
                "terminal_id": tenant.terminal_id,
                "consumer_id": consumer_id,
                "member_id": member_id,
                "amount": amount[i] if isinstance(amount, list) else amount,
                "currency": "CNY",
                "occurred_at": AS_OF - timedelta(days=d),
                "source": VisitSource.POS,
                "code": code,
                "items": [],
                "created_at": AS_OF,
            }
            for i, d in enumerate(days_ago)
        ],
    )


def _population(db: Database, tenant: Tenant, n: int, seed: int = 7) -> None:
    """Members whose visits follow a Poisson rate with dropout: enough for an own fit."""
    rng = np.random.default_rng(seed)
    with db.transaction() as session:
        for _ in range(n):
            member = _member(session, tenant)
            first = float(rng.uniform(40, 360))
            rate = float(rng.gamma(2.0, 1 / 30))  # about one visit a fortnight on average
            life = float(rng.exponential(200))
            times, t = [first], first
            while True:
                t -= float(rng.exponential(1 / rate))
                if t <= 0 or first - t > life:
                    break
                times.append(t)
            mean_spend = float(rng.gamma(6.0, 800))
            spends = [max(int(v), 100) for v in rng.gamma(4.0, mean_spend / 4.0, len(times))]
            _visits(session, tenant, member, times, amount=spends)


def _scores(db: Database, merchant_id: str) -> dict[str, MemberScore]:
    with db.transaction() as session:
        rows = session.scalars(select(MemberScore).where(MemberScore.merchant_id == merchant_id))
        return {r.member_id: r for r in rows}


def test_analyze_fits_the_merchant_and_scores_every_member(db: Database) -> None:
    tenant = make_tenant(db)
    _population(db, tenant, 400)
    with db.transaction() as session:
        # Known shapes, placed by hand.
        newcomer = _member(session, tenant)
        _visits(session, tenant, newcomer, [3])
        gone = _member(session, tenant)
        _visits(session, tenant, gone, [300, 290, 280, 270, 260])
        bargain = _member(session, tenant)
        _visits(session, tenant, bargain, [60, 40, 20, 5], code="K7QX-2M9P")
    with db.transaction() as session:
        summary = analytics.analyze(session, as_of=AS_OF)
    assert (summary.merchants, summary.members, summary.platform_fallbacks) == (1, 403, 0)
    scores = _scores(db, tenant.merchant_id)
    assert len(scores) == 403
    with db.transaction() as session:
        model = session.scalar(
            select(FittedModel).where(FittedModel.merchant_id == tenant.merchant_id)
        )
        assert model is not None and not model.platform_fallback and model.bgnbd_converged
    for s in scores.values():
        assert 0.0 <= s.p_alive <= 1.0
        assert s.expected_visits_30d >= 0 and s.clv >= 0
        assert 1 <= s.r_score <= 5 and 1 <= s.f_score <= 5 and 1 <= s.m_score <= 5
        assert s.home_cell is not None and len(s.home_cell) == 15
        assert s.frequency <= s.visits - 1 and s.recency_days <= s.age_days
    assert scores[newcomer[1]].segment is Segment.NEW
    assert scores[gone[1]].segment is Segment.LAPSED
    assert scores[bargain[1]].segment is Segment.COUPON_ONLY
    assert scores[bargain[1]].coupon_share == 1.0
    assert scores[gone[1]].p_alive < scores[bargain[1]].p_alive
    # The regulars who come often are expected back sooner and are worth more.
    regulars = [s for s in scores.values() if s.segment in (Segment.REGULAR, Segment.HIGH_VALUE)]
    assert regulars
    threshold = seg.high_value_threshold([s.clv for s in scores.values()])
    high = [s for s in scores.values() if s.segment is Segment.HIGH_VALUE]
    assert high and all(h.clv >= threshold - 1 for h in high)
    assert all(s.clv <= threshold + 1 for s in regulars if s.segment is Segment.REGULAR)
    assert all(s.expected_next_visit_at is not None for s in regulars)


def test_small_merchants_use_the_platform_model_and_reruns_replace(db: Database) -> None:
    big, small = make_tenant(db), make_tenant(db)
    _population(db, big, 300)
    with db.transaction() as session:
        for days in ([10, 5], [40], [90, 60, 30, 1]):
            _visits(session, small, _member(session, small), days)
    with db.transaction() as session:
        summary = analytics.analyze(session, as_of=AS_OF)
    assert summary.platform_fallbacks == 1
    assert len(_scores(db, small.merchant_id)) == 3
    with db.transaction() as session:
        fitted = {m.merchant_id: m.platform_fallback for m in session.scalars(select(FittedModel))}
    assert fitted == {None: False, big.merchant_id: False, small.merchant_id: True}
    # One merchant alone, again: its rows are replaced, the other's untouched.
    with db.transaction() as session:
        again = analytics.analyze(session, merchant_id=small.merchant_id, as_of=AS_OF)
        assert again.members == 3 and again.platform_fallbacks == 1
        assert session.scalar(select(func.count()).select_from(MemberScore)) == 303


def test_a_fresh_install_scores_with_the_prior(db: Database) -> None:
    tenant = make_tenant(db)
    with db.transaction() as session:
        _visits(session, tenant, _member(session, tenant), [2])
        summary = analytics.analyze(session, as_of=AS_OF)
    assert summary.members == 1
    (only,) = _scores(db, tenant.merchant_id).values()
    assert only.segment is Segment.NEW
    assert only.spending_level.value == "medium"


def test_segment_definitions_are_a_pure_function() -> None:
    common = {"clv_threshold": 1_000.0}
    got = seg.segments(
        visits=[1, 5, 3, 4, 6, 6, 2],
        days_since_last=[2, 200, 10, 40, 7, 7, 20],
        age_days=[2, 400, 100, 100, 100, 100, 60],
        p_alive=[1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9],
        buying_cycle_days=[30, 20, 10, 10, 10, 10, 15],
        coupon_share=[0, 0, 1, 0, 0, 0, 0.5],
        clv=[10, 10, 10, 10, 2_000, 500, 10],
        **common,
    )
    assert got == [
        Segment.NEW,
        Segment.LAPSED,
        Segment.COUPON_ONLY,
        Segment.AT_RISK,
        Segment.HIGH_VALUE,
        Segment.REGULAR,
        Segment.OCCASIONAL,
    ]
    assert seg.spending_codes([100, 200, 300]).tolist() == [0, 1, 2]
    assert seg.spending_codes([5, 5, 5]).tolist() == [1, 1, 1]


def test_store_load_counts_local_hours_against_capacity(db: Database) -> None:
    tenant = make_tenant(db)  # Asia/Shanghai, open 10:00-22:00, 50 per hour
    # Fridays at 19:xx Shanghai time (11:xx UTC), 40 visits a week for 8 weeks: peak.
    friday = datetime(2026, 5, 29, 11, 15, tzinfo=UTC)
    with db.transaction() as session:
        member = _member(session, tenant)
        days = []
        for week in range(8):
            at = friday - timedelta(weeks=week)
            days += [(AS_OF - at).total_seconds() / 86_400] * 40
        _visits(session, tenant, member, days)
        load = analytics.store_load(
            session,
            principal=PLATFORM,
            merchant_id=tenant.merchant_id,
            store_id=tenant.store_id,
            weeks=8,
            until=AS_OF,
        )
    assert load.visits == 320
    slots = {(s.weekday, s.hour): s for s in load.slots}
    peak = slots[("fri", 19)]
    assert (peak.average_visits, peak.capacity, peak.utilisation) == (40.0, 50, 0.8)
    assert peak.open and not peak.off_peak
    assert slots[("fri", 15)].off_peak  # open and empty
    assert not slots[("fri", 3)].open and not slots[("fri", 3)].off_peak
    assert len(load.slots) == 7 * 24


def test_analytics_api_and_tenancy(db: Database, http: httpx.Client, frozen_clock) -> None:
    a, b = make_tenant(db), make_tenant(db)
    for phone, days in (("13800138100", [1]), ("13800138101", [20, 2])):
        for d in days:
            at = (frozen_clock.now() - timedelta(days=d)).isoformat()
            paid = http.post(
                "/v1/terminal/payments",
                json={"amount": 3_000, "phone": phone, "occurred_at": at},
                headers=a.terminal,
            )
            assert paid.status_code == 201, paid.text
    run = http.post(f"/v1/merchants/{a.merchant_id}/analytics/run", headers=a.admin)
    assert run.status_code == 200, run.text
    assert run.json()["members"] == 2
    assert http.post(
        f"/v1/merchants/{a.merchant_id}/analytics/run", headers=a.staff
    ).status_code == (403)
    members = http.get(f"/v1/merchants/{a.merchant_id}/analytics/members", headers=a.staff).json()
    assert len(members["data"]) == 2
    assert {m["segment"] for m in members["data"]} == {"new"}
    new_only = http.get(
        f"/v1/merchants/{a.merchant_id}/analytics/members",
        params={"segment": "lapsed"},
        headers=a.staff,
    ).json()
    assert new_only["data"] == []
    sizes = http.get(f"/v1/merchants/{a.merchant_id}/analytics/segments", headers=a.admin).json()
    assert sizes["total"] == 2
    assert {s["segment"]: s["members"] for s in sizes["segments"]}["new"] == 2
    assert sizes["model"]["platform_fallback"] is True  # two members: too few to fit
    assert http.get("/v1/analytics/segments", headers=a.admin).status_code == 403
    platform = http.get("/v1/analytics/segments", headers=bearer(platform_admin_key(db))).json()
    assert platform["merchant_id"] is None and platform["total"] == 2
    detail = http.get(
        f"/v1/merchants/{a.merchant_id}/members/{members['data'][0]['member_id']}",
        headers=a.admin,
    ).json()
    assert detail["score"]["segment"] == "new"
    load = http.get(
        f"/v1/merchants/{a.merchant_id}/stores/{a.store_id}/load", headers=a.admin
    ).json()
    assert load["visits"] == 3 and len(load["slots"]) == 168
    # Merchant B sees none of it, under its own id or A's.
    assert (
        http.get(f"/v1/merchants/{b.merchant_id}/analytics/members", headers=b.admin).json()["data"]
        == []
    )
    assert (
        http.get(f"/v1/merchants/{b.merchant_id}/analytics/segments", headers=b.admin).json()[
            "total"
        ]
        == 0
    )
    for path in ("analytics/members", "analytics/segments", f"stores/{a.store_id}/load"):
        assert http.get(f"/v1/merchants/{a.merchant_id}/{path}", headers=b.admin).status_code == 404
    foreign_store = http.get(
        f"/v1/merchants/{b.merchant_id}/stores/{a.store_id}/load", headers=b.admin
    )
    assert foreign_store.status_code == 404


def test_erasure_removes_the_score(db: Database, http: httpx.Client) -> None:
    from factories import make_consumer

    tenant = make_tenant(db)
    consumer_id, token = make_consumer(db)
    http.post(
        "/v1/consumers/me/consents",
        json={"merchant_id": tenant.merchant_id, "marketing_consent": True},
        headers=bearer(token),
    )
    with db.transaction() as session:
        membership = session.scalar(select(Membership).where(Membership.consumer_id == consumer_id))
        _visits(session, tenant, (consumer_id, membership.id), [4, 2])
        analytics.analyze(session, as_of=clock.now())
    assert len(_scores(db, tenant.merchant_id)) == 1
    assert http.post("/v1/consumers/me/erase", headers=bearer(token)).status_code == 200
    assert _scores(db, tenant.merchant_id) == {}


@pytest.fixture
def cli_env(tmp_path, monkeypatch: pytest.MonkeyPatch):
    from o2oloop import config

    monkeypatch.setenv("O2O_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("O2O_DATABASE_URL", raising=False)
    config.get_settings.cache_clear()
    yield tmp_path
    config.get_settings.cache_clear()


def test_analyze_command(cli_env) -> None:
    from typer.testing import CliRunner

    from o2oloop.cli import app

    db = Database.from_url(f"sqlite:///{cli_env / 'o2oloop.db'}")
    assert CliRunner().invoke(app, ["db", "upgrade"]).exit_code == 0
    tenant = make_tenant(db)
    with db.transaction() as session:
        _visits(session, tenant, _member(session, tenant), [30, 3])
    result = CliRunner().invoke(app, ["analyze", "--as-of", AS_OF.isoformat(), "--niceness", "0"])
    assert result.exit_code == 0, result.output
    assert "analysed 1 members of 1 merchants" in result.output
    assert len(_scores(db, tenant.merchant_id)) == 1
    bad = CliRunner().invoke(app, ["analyze", "--as-of", "2026-06-01T00:00:00"])
    assert bad.exit_code != 0
    db.dispose()


def test_analysis_in_short_batches_scores_as_one_transaction_does(db: Database) -> None:
    big, small = make_tenant(db), make_tenant(db)
    _population(db, big, 120)
    with db.transaction() as session:
        for days in ([10, 5], [40], [90, 60, 30, 1]):
            _visits(session, small, _member(session, small), days)
    with db.transaction() as session:
        whole = analytics.analyze(session, as_of=AS_OF)
    expected = {
        mid: {
            m: (s.segment, round(s.clv), round(s.p_alive, 9)) for m, s in _scores(db, mid).items()
        }
        for mid in (big.merchant_id, small.merchant_id)
    }
    with db.transaction() as session:  # a score left by an earlier run of a member now gone
        stale = session.get(MemberScore, next(iter(expected[big.merchant_id])))
        assert stale is not None
        session.expunge(stale)
        stale.member_id = "mem_gone"
        session.merge(stale)
    batched = analytics.analyze_in_batches(db, as_of=AS_OF, batch=7)
    assert (batched.members, batched.platform_fallbacks) == (
        whole.members,
        whole.platform_fallbacks,
    )
    for mid, scores in expected.items():
        found = _scores(db, mid)
        assert {m: (s.segment, round(s.clv), round(s.p_alive, 9)) for m, s in found.items()} == (
            scores
        )


def test_the_nightly_job_analyses_in_a_child_process_as_of_the_workers_clock(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker's nightly analysis runs `o2oloop analyze` as a child process: in this
    process the analysis is made to fail, so scores can only come from the child."""
    from factories import TEST_WIRING

    tenant = make_tenant(db)
    with db.transaction() as session:
        _visits(session, tenant, _member(session, tenant), [30, 3])

    def not_here(*args: object, **kwargs: object) -> None:
        raise AssertionError("the nightly analysis ran inside the worker's process")

    monkeypatch.setattr(analytics, "analyze_in_batches", not_here)
    with clock.using(clock.FrozenClock(AS_OF)):
        analysed = TEST_WIRING.periodic["analytics.nightly"].run(db)
    assert analysed == 1
    [score] = _scores(db, tenant.merchant_id).values()
    assert score.as_of == AS_OF
