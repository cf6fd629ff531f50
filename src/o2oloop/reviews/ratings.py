"""Ratings people can trust: counts, means, a Bayesian average shrunk towards the category's
mean (so three 5-star reviews do not outrank three hundred 4.8s), the distribution, a
six-month trend, with and without reviews from visits that used an offer's code; and the
fraud signals raised when reviews were posted.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.principal import Principal, require_merchant_staff
from o2oloop.errors import NotFound
from o2oloop.merchants.models import Merchant, Store
from o2oloop.pagination import paginate
from o2oloop.reviews import schemas
from o2oloop.reviews.models import Review

# The prior counts as this many reviews at the category's mean.
PRIOR_WEIGHT = 10
# With no reviews in the category yet, the prior is the middle of the scale.
NEUTRAL = 3.0
TREND_MONTHS = 6


def _months(now: datetime) -> list[str]:
    year, month = now.year, now.month
    keys = []
    for _ in range(TREND_MONTHS):
        keys.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return keys[::-1]


def summarise(rows: Iterable[tuple[int, datetime]], prior: float) -> schemas.RatingSummary:
    """One summary of (rating, posted_at) rows."""
    ratings, months = [], {key: [] for key in _months(clock.now())}
    for rating, posted_at in rows:
        ratings.append(rating)
        key = clock.as_utc(posted_at).strftime("%Y-%m")
        if key in months:
            months[key].append(rating)
    count, total = len(ratings), sum(ratings)
    return schemas.RatingSummary(
        count=count,
        mean=round(total / count, 3) if count else None,
        bayesian=round((PRIOR_WEIGHT * prior + total) / (PRIOR_WEIGHT + count), 3),
        distribution={str(star): ratings.count(star) for star in range(1, 6)},
        trend=[
            schemas.MonthRead(
                month=key,
                count=len(values),
                mean=round(sum(values) / len(values), 3) if values else None,
            )
            for key, values in months.items()
        ],
    )


def category_mean(session: Session, merchant: Merchant) -> float:
    mean = session.scalar(
        select(func.avg(Review.rating))
        .join(Merchant, Merchant.id == Review.merchant_id)
        .where(Merchant.category == merchant.category)
    )
    return float(mean) if mean is not None else NEUTRAL


def ratings(
    session: Session, *, merchant_id: str, store_id: str | None = None
) -> schemas.RatingsRead:
    """Ratings of a merchant, or of one of its stores (public)."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        raise NotFound("no merchant with this id")
    query = select(Review.rating, Review.posted_at, Review.campaign_code).where(
        Review.merchant_id == merchant_id
    )
    if store_id is not None:
        store = session.get(Store, store_id)
        if store is None or store.merchant_id != merchant_id:
            raise NotFound("no store with this id")
        query = query.where(Review.store_id == store_id)
    rows = session.execute(query).tuples().all()
    prior = category_mean(session, merchant)
    return schemas.RatingsRead(
        merchant_id=merchant_id,
        store_id=store_id,
        prior=schemas.PriorRead(
            category=merchant.category.value, mean=round(prior, 3), weight=PRIOR_WEIGHT
        ),
        all=summarise(((r, at) for r, at, _ in rows), prior),
        without_campaign_codes=summarise(((r, at) for r, at, code in rows if not code), prior),
    )


def flagged_reviews(
    session: Session, *, principal: Principal, merchant_id: str, cursor: str | None, limit: int
) -> tuple[list[Review], str | None]:
    """The merchant's reviews that raised a fraud signal, for its staff and the platform."""
    require_merchant_staff(principal, merchant_id)
    query = select(Review).where(Review.merchant_id == merchant_id, Review.flagged.is_(True))
    return paginate(session, query, Review.id, cursor=cursor, limit=limit)
