"""The demo city leaves a review log worth verifying: reviews of verified visits, replies,
one moderation hide, and a checkpoint of the whole tree that the verifier accepts."""

from __future__ import annotations

from sqlalchemy import func, select

from city_kit import City
from o2oloop.api import create_app
from o2oloop.config import Settings
from o2oloop.reviews import log
from o2oloop.reviews.models import Review, ReviewVersion
from o2oloop.reviews.verify import verify


def test_the_city_reviews_replies_moderates_and_checkpoints(
    city: City, frozen_clock, tmp_path
) -> None:
    from conftest import LiveServer

    settings = Settings(env="test", data_dir=tmp_path, secret_key="s" * 40)
    report, db = city.report, city.db
    assert report.reviews > 5 and report.review_replies > 0 and report.reviews_hidden == 1
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Review)) == report.reviews
        hidden = session.scalar(
            select(func.count())
            .select_from(ReviewVersion)
            .where(ReviewVersion.hidden_entry.is_not(None))
        )
        size = log.size(session)
        latest = log.latest_checkpoint(session)
        latest_size = latest.size if latest is not None else None
        some = list(session.scalars(select(Review.id).limit(5)))
    assert hidden == 1 and latest_size == size
    with LiveServer(create_app(settings, db)) as server:
        checked = verify(server.url, state_path=tmp_path / "state.json", review_ids=some)
    assert checked.ok, checked.errors
    assert checked.checkpoint.size == size
