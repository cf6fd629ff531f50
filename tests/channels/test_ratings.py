"""Store ratings for nearby's sort=rating, kept from the reviews domain's events by the
handler bootstrap wires (run here as the worker would: in its own transaction)."""

from __future__ import annotations

from sqlalchemy import select

from factories import make_offer, make_tenant
from o2oloop import clock
from o2oloop.bootstrap import bootstrap
from o2oloop.channels import nearby
from o2oloop.channels.models import StoreRating
from o2oloop.reviews.events import ReviewPosted


def _posted(tenant, review_id: str, rating: int, version: int = 1) -> ReviewPosted:
    return ReviewPosted(
        merchant_id=tenant.merchant_id,
        store_id=tenant.store_id,
        review_id=review_id,
        version=version,
        rating=rating,
        log_entry=0,
        campaign_code=False,
        flags=[],
    )


def _deliver(db, settings, *events: ReviewPosted) -> None:
    handler = bootstrap(settings).handler("channels.store_rating")
    assert handler is not None
    for event in events:
        with db.transaction() as session:
            handler(session, event)


def _ratings(db) -> dict[str, tuple[float, int]]:
    with db.reading() as session:
        rows = session.execute(select(StoreRating.store_id, StoreRating.average, StoreRating.count))
        return {store: (round(average, 3), count) for store, average, count in rows}


def test_reviews_fill_the_store_rating_once_each_and_edits_replace(db, settings, frozen_clock):
    tenant = make_tenant(db)
    first, second = _posted(tenant, "rev_a", 5), _posted(tenant, "rev_b", 2)
    _deliver(db, settings, first, second, first)  # at least once: the repeat counts nothing
    assert _ratings(db) == {tenant.store_id: (3.5, 2)}
    edited, stale = _posted(tenant, "rev_b", 4, version=2), _posted(tenant, "rev_b", 1)
    _deliver(db, settings, edited, stale)  # an older version arriving late changes nothing
    assert _ratings(db) == {tenant.store_id: (4.5, 2)}


def test_sort_by_rating_reads_the_ratings_the_reviews_gave(db, settings, frozen_clock):
    liked, plain, unrated = make_tenant(db), make_tenant(db), make_tenant(db)
    offers = {t.merchant_id: make_offer(db, t) for t in (liked, plain, unrated)}
    _deliver(db, settings, _posted(liked, "rev_1", 5), _posted(plain, "rev_2", 3))
    with db.reading() as session:
        found, _ = nearby.search(
            session,
            query=nearby.NearbyQuery(
                latitude=31.23, longitude=121.47, radius_m=1_000, sort="rating"
            ),
            now=clock.now(),
        )
    assert [f.offer.id for f in found] == [
        offers[liked.merchant_id], offers[plain.merchant_id], offers[unrated.merchant_id]
    ]  # fmt: skip
    assert [f.rating for f in found] == [5.0, 3.0, None]
