"""The per-merchant score summary: what the dashboard reads instead of every member's score."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, insert, select

from analytics_kit import add_pos_member
from factories import make_tenant
from o2oloop import migrations
from o2oloop.analytics import summary
from o2oloop.analytics.models import MemberScore, ScoreSummary, Segment, SpendingLevel
from o2oloop.db import Database, new_id
from o2oloop.visits.models import Visit, VisitSource

AS_OF = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def _score(merchant_id: str, segment: Segment, clv: int, p_alive: float) -> dict[str, object]:
    return {
        "member_id": new_id("mem"),
        "merchant_id": merchant_id,
        "consumer_id": new_id("csm"),
        "as_of": AS_OF,
        "visits": 1,
        "frequency": 0,
        "recency_days": 0.0,
        "age_days": 10.0,
        "days_since_last": 10.0,
        "total_spent": 0,
        "average_spend": 0,
        "coupon_share": 0.0,
        "r_score": 1,
        "f_score": 1,
        "m_score": 1,
        "rfm": "111",
        "p_alive": p_alive,
        "expected_visits_30d": 0.0,
        "buying_cycle_days": None,
        "expected_next_visit_at": None,
        "expected_average_spend": 0,
        "clv": clv,
        "segment": segment,
        "spending_level": SpendingLevel.LOW,
        "home_cell": None,
        "computed_at": AS_OF,
    }


def _population(db: Database, merchant_id: str, store_id: str, n: int) -> None:
    """Members with one to eight visits over the last year, spending 20 to 300 yuan."""
    rng = np.random.default_rng(3)
    with db.transaction() as session:
        for _ in range(n):
            consumer_id, member_id = add_pos_member(session, merchant_id, AS_OF)
            session.execute(
                insert(Visit),
                [
                    {
                        "id": new_id("vis"),
                        "merchant_id": merchant_id,
                        "store_id": store_id,
                        "consumer_id": consumer_id,
                        "member_id": member_id,
                        "amount": int(rng.integers(2_000, 30_000)),
                        "currency": "CNY",
                        "occurred_at": AS_OF - timedelta(days=float(days)),
                        "source": VisitSource.POS,
                        "items": [],
                        "created_at": AS_OF,
                    }
                    for days in rng.uniform(1, 360, int(rng.integers(1, 9)))
                ],
            )


def _expected_bands(clvs: list[int], edges: list[int]) -> list[int]:
    counts = Counter(int(np.searchsorted(edges, clv, side="right")) - 1 for clv in clvs)
    return [counts.get(i, 0) for i in range(len(edges))]


# Values around every band edge in both currencies (yuan in fen, yen without minor units).
_CLV = st.one_of(
    st.integers(min_value=0, max_value=1_000_000),
    st.sampled_from([e + d for e in (5_000, 50, 500_000, 5_000) for d in (-1, 0, 1)]),
)
_Row = tuple[Segment, int, float]
_ROWS = st.lists(
    st.tuples(st.sampled_from(list(Segment)), _CLV, st.floats(min_value=0, max_value=1)),
    max_size=40,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(yuan=_ROWS, yen=_ROWS)
def test_summary_counts_every_score_once_by_segment_and_band(
    sqlite_db: Database, yuan: list[_Row], yen: list[_Row]
) -> None:
    """Whatever the scores, the summary's segment sizes, averages and CLV bands are those of
    the merchant's own rows, and the platform's are the sum of both merchants'."""
    cny, jpy = make_tenant(sqlite_db), make_tenant(sqlite_db, currency="JPY")
    with sqlite_db.transaction() as session:
        for tenant, rows in ((cny, yuan), (jpy, yen)):
            if rows:
                session.execute(
                    insert(MemberScore), [_score(tenant.merchant_id, *row) for row in rows]
                )
            summary.refresh(session, tenant.merchant_id)
    with sqlite_db.reading() as session:
        for tenant, rows, currency in ((cny, yuan, "CNY"), (jpy, yen, "JPY")):
            as_of, sizes = summary.segment_sizes(session, tenant.merchant_id)
            assert as_of == (AS_OF if rows else None)
            for size in sizes:
                mine = [(clv, p) for s, clv, p in rows if s == size.segment]
                assert size.members == len(mine)
                if mine:
                    assert size.average_clv == round(sum(c for c, _ in mine) / len(mine))
                    assert abs(size.average_p_alive - sum(p for _, p in mine) / len(mine)) < 1e-9
            bands = summary.clv_bands(session, tenant.merchant_id, currency)
            edges = summary.band_edges(currency)
            assert [b.low for b in bands] == edges
            assert [b.members for b in bands] == _expected_bands([c for _, c, _ in rows], edges)
        _, platform = summary.segment_sizes(session, None)
        everyone = session.scalar(select(func.count()).select_from(MemberScore))
        assert sum(s.members for s in platform) == everyone


def test_analysis_writes_the_summary_of_the_scores_it_writes(db: Database) -> None:
    """Both ways of analysing leave a summary equal to a count of the scores themselves."""
    from o2oloop.analytics import service as analytics

    tenant = make_tenant(db)
    _population(db, tenant.merchant_id, tenant.store_id, 60)
    for run in (
        lambda: analytics.analyze_in_batches(db, as_of=AS_OF, batch=25),
        lambda: _in_one_transaction(db, analytics),
    ):
        run()
        with db.reading() as session:
            counted = dict(
                session.execute(
                    select(MemberScore.segment, func.count())
                    .where(MemberScore.merchant_id == tenant.merchant_id)
                    .group_by(MemberScore.segment)
                ).all()
            )
            clvs = session.scalars(
                select(MemberScore.clv).where(MemberScore.merchant_id == tenant.merchant_id)
            ).all()
            as_of, sizes = summary.segment_sizes(session, tenant.merchant_id)
            bands = summary.clv_bands(session, tenant.merchant_id, "CNY")
        assert sum(counted.values()) == 60
        assert {s.segment: s.members for s in sizes if s.members} == counted
        assert as_of == AS_OF
        edges = summary.band_edges("CNY")
        assert [b.members for b in bands] == _expected_bands(list(clvs), edges)


def _in_one_transaction(db: Database, analytics) -> None:
    with db.transaction() as session:
        analytics.analyze(session, as_of=AS_OF)


def test_the_migration_counts_the_scores_already_there(sqlite_db: Database) -> None:
    tenant = make_tenant(sqlite_db)
    rows = [_score(tenant.merchant_id, Segment.REGULAR, clv, 0.5) for clv in (0, 4_999, 5_000)]
    with sqlite_db.transaction() as session:
        session.execute(insert(MemberScore), rows)
    command.downgrade(migrations.alembic_config(sqlite_db), "0052")
    migrations.upgrade(sqlite_db)
    with sqlite_db.reading() as session:
        found = session.execute(
            select(ScoreSummary.segment, ScoreSummary.band, ScoreSummary.members).order_by(
                ScoreSummary.band
            )
        ).all()
    assert found == [(Segment.REGULAR, 0, 2), (Segment.REGULAR, 1, 1)]


def test_erasing_a_consumer_recounts_the_summaries_that_counted_them(db: Database) -> None:
    a, b = make_tenant(db), make_tenant(db)
    erased = _score(a.merchant_id, Segment.NEW, 100, 0.9)
    kept = _score(a.merchant_id, Segment.NEW, 50, 0.5)
    elsewhere = _score(b.merchant_id, Segment.LAPSED, 10, 0.1)
    elsewhere["consumer_id"] = erased["consumer_id"]
    with db.transaction() as session:
        session.execute(insert(MemberScore), [erased, kept, elsewhere])
        summary.refresh(session, a.merchant_id)
        summary.refresh(session, b.merchant_id)
    with db.transaction() as session:
        assert summary.erase_scores(session, str(erased["consumer_id"])) == 2
    with db.reading() as session:
        sizes_a = {s.segment: s for s in summary.segment_sizes(session, a.merchant_id)[1]}
        sizes_b = {s.segment: s.members for s in summary.segment_sizes(session, b.merchant_id)[1]}
    assert (sizes_a[Segment.NEW].members, sizes_a[Segment.NEW].average_clv) == (1, 50)
    assert sum(sizes_b.values()) == 0
