"""Each store's average review rating for nearby's sort=rating, kept from review events.

The reviews domain publishes `ReviewPosted` for every review and each new version of it.
The handler keeps the latest version's rating per review (a redelivered event, or an older
version arriving late, changes nothing) and rewrites the store's average from those: the
same mean over every review's current rating that the reviews domain shows, hidden text
included (moderation hides words, not the visit's rating).
"""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.channels.models import StoreRating, StoreReviewRating
from o2oloop.reviews.events import ReviewPosted


def on_review_posted(session: Session, event: ReviewPosted) -> None:
    """Take the review's rating if this version is newer, then the store's new average."""
    known = session.get(StoreReviewRating, event.review_id, with_for_update=True)
    if known is not None and known.version >= event.version:
        return
    if known is None:
        session.add(
            StoreReviewRating(
                review_id=event.review_id,
                store_id=event.store_id,
                version=event.version,
                rating=event.rating,
            )
        )
    else:
        known.version, known.rating = event.version, event.rating
    session.flush()
    count, average = session.execute(
        select(func.count(), func.avg(StoreReviewRating.rating)).where(
            StoreReviewRating.store_id == event.store_id
        )
    ).one()
    row = session.get(StoreRating, event.store_id, with_for_update=True)
    if row is None:
        row = StoreRating(store_id=event.store_id)
        session.add(row)
    row.count, row.average, row.updated_at = int(count), float(average), clock.now()
    session.flush()
