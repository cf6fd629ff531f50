"""Reading reviews: a merchant's list, one review, and the visits a consumer may still review."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.principal import Principal, require_consumer
from o2oloop.codes.models import Redemption, RedemptionState
from o2oloop.errors import NotFound
from o2oloop.pagination import paginate
from o2oloop.reviews import schemas
from o2oloop.reviews.models import Review
from o2oloop.reviews.service import CONSUMERS_ONLY
from o2oloop.visits.models import Visit, VisitSource


def list_reviews(
    session: Session,
    *,
    merchant_id: str,
    store_id: str | None = None,
    cursor: str | None,
    limit: int,
) -> tuple[list[Review], str | None]:
    """A merchant's reviews (public), oldest first by id."""
    query = select(Review).where(Review.merchant_id == merchant_id)
    if store_id is not None:
        query = query.where(Review.store_id == store_id)
    return paginate(session, query, Review.id, cursor=cursor, limit=limit)


def recent_reviews(session: Session, *, merchant_id: str, limit: int) -> list[Review]:
    """A merchant's latest reviews, newest first (the console's list)."""
    return list(
        session.scalars(
            select(Review)
            .where(Review.merchant_id == merchant_id)
            .order_by(Review.id.desc())
            .limit(limit)
        )
    )


def get_review(session: Session, review_id: str) -> Review:
    review = session.get(Review, review_id)
    if review is None:
        raise NotFound("no review with this id")
    return review


def reviewable_visits(
    session: Session, *, principal: Principal, window_days: int = 30, limit: int = 50
) -> list[schemas.ReviewableVisitRead]:
    """The consumer's verified visits still open to a review, newest first."""
    consumer_id = require_consumer(principal, CONSUMERS_ONLY)
    window = timedelta(days=window_days)
    since = clock.now() - window
    reviewed = select(Review.id).where(
        or_(Review.visit_id == Visit.id, Review.redemption_id == Visit.redemption_id)
    )
    visits = session.scalars(
        select(Visit)
        .where(
            Visit.consumer_id == consumer_id,
            Visit.occurred_at >= since,
            Visit.terminal_id.is_not(None),
            Visit.source != VisitSource.ONLINE,
            ~reviewed.exists(),
        )
        .order_by(Visit.occurred_at.desc())
        .limit(limit)
    )
    found = [
        schemas.ReviewableVisitRead(
            visit_id=v.id,
            redemption_id=v.redemption_id,
            merchant_id=v.merchant_id,
            store_id=v.store_id,
            occurred_at=v.occurred_at,
            review_until=v.occurred_at + window,
        )
        for v in visits
    ]
    redemptions = session.scalars(
        select(Redemption)
        .where(
            Redemption.consumer_id == consumer_id,
            Redemption.state == RedemptionState.REDEEMED,
            Redemption.redeemed_at >= since,
            ~select(Visit.id).where(Visit.redemption_id == Redemption.id).exists(),
            ~select(Review.id).where(Review.redemption_id == Redemption.id).exists(),
        )
        .order_by(Redemption.redeemed_at.desc())
        .limit(limit)
    )
    found.extend(
        schemas.ReviewableVisitRead(
            visit_id=None,
            redemption_id=r.id,
            merchant_id=r.merchant_id,
            store_id=r.store_id,
            occurred_at=r.redeemed_at,
            review_until=r.redeemed_at + window,
        )
        for r in redemptions
    )
    return sorted(found, key=lambda v: v.occurred_at, reverse=True)[:limit]
