"""Hiding content without deleting history: a moderation entry says what was hidden, by
which role and for which of a fixed list of reasons; the hidden entries stay in the log
(their hashes are what proofs are made of) and the public sees the notice instead.

A consumer's erasure request hides the text, author and photos of all their reviews the
same way and unlinks the reviews from them; ratings keep counting, so they stay honest.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.principal import Principal, require_platform
from o2oloop.errors import Conflict, NotFound
from o2oloop.events import record
from o2oloop.reviews import log, schemas
from o2oloop.reviews.events import ReviewHidden
from o2oloop.reviews.log import LogConfig
from o2oloop.reviews.models import (
    HideReason,
    ModeratorRole,
    Review,
    ReviewPhoto,
    ReviewReply,
    ReviewVersion,
)
from o2oloop.reviews.reading import get_review
from o2oloop.reviews.service import iso


def _hide(
    session: Session,
    review: Review,
    rows: list[ReviewVersion] | list[ReviewReply],
    *,
    reason: HideReason,
    by: ModeratorRole,
    log_config: LogConfig | None,
) -> int:
    """Append the moderation entry, then drop the content it names."""
    entry = {
        "v": 1,
        "kind": "moderation",
        "action": "hide",
        "entries": sorted(row.entry for row in rows),
        "reason": reason.value,
        "by": by.value,
        "at": iso(clock.now()),
    }
    (index,) = log.append(session, [entry], log=log_config)
    for row in rows:
        row.text = None
        row.salt = None
        row.hidden_reason, row.hidden_by, row.hidden_entry = reason, by, index
        if isinstance(row, ReviewVersion):
            row.author = None
            session.execute(
                update(ReviewPhoto).where(ReviewPhoto.version_id == row.id).values(data=None)
            )
    session.flush()
    record(
        session,
        ReviewHidden(
            merchant_id=review.merchant_id,
            review_id=review.id,
            reason=reason.value,
            by=by.value,
            log_entry=index,
        ),
    )
    return index


def _shown_versions(session: Session, review_id: str) -> list[ReviewVersion]:
    return list(
        session.scalars(
            select(ReviewVersion)
            .where(ReviewVersion.review_id == review_id, ReviewVersion.hidden_entry.is_(None))
            .order_by(ReviewVersion.version)
        )
    )


def hide(
    session: Session,
    *,
    principal: Principal,
    review_id: str,
    data: schemas.HideCreate,
    log_config: LogConfig,
) -> Review:
    """A platform moderator hides a review's content (every version) or its reply."""
    require_platform(principal)
    review = get_review(session, review_id)
    log.lock(session)
    rows: list[ReviewVersion] | list[ReviewReply]
    if data.target == "review":
        rows = _shown_versions(session, review.id)
    else:
        reply = session.scalar(select(ReviewReply).where(ReviewReply.review_id == review.id))
        if reply is None:
            raise NotFound("this review has no reply")
        rows = [reply] if reply.hidden_entry is None else []
    if not rows:
        raise Conflict(f"this {data.target} is already hidden")
    _hide(
        session,
        review,
        rows,
        reason=HideReason(data.reason),
        by=ModeratorRole.PLATFORM_MODERATOR,
        log_config=log_config,
    )
    return review


def erase_consumer_reviews(session: Session, *, consumer_id: str) -> int:
    """The erasure of a consumer: hide what their reviews said and who wrote them.

    Called by the consumer erasure (privacy.service) in its transaction; it signs no
    checkpoint itself (the next append or the periodic checkpoint covers its entries).
    """
    reviews = list(session.scalars(select(Review).where(Review.consumer_id == consumer_id)))
    for review in reviews:
        rows = _shown_versions(session, review.id)
        if rows:
            _hide(
                session,
                review,
                rows,
                reason=HideReason.ERASURE_REQUEST,
                by=ModeratorRole.DATA_SUBJECT,
                log_config=None,
            )
        review.consumer_id = None
        review.member_since = None
    session.flush()
    return len(reviews)


def export_consumer_reviews(session: Session, *, consumer_id: str) -> list[dict[str, Any]]:
    """A consumer's reviews for their data export: every version as they wrote it."""
    out = []
    for review in session.scalars(
        select(Review).where(Review.consumer_id == consumer_id).order_by(Review.id)
    ):
        versions = session.scalars(
            select(ReviewVersion)
            .where(ReviewVersion.review_id == review.id)
            .order_by(ReviewVersion.version)
        )
        out.append(
            {
                "review_id": review.id,
                "merchant_id": review.merchant_id,
                "store_id": review.store_id,
                "visit_id": review.visit_id,
                "redemption_id": review.redemption_id,
                "posted_at": iso(review.posted_at),
                "versions": [
                    {
                        "version": v.version,
                        "rating": v.rating,
                        "text": v.text,
                        "author": v.author,
                        "log_entry": v.entry,
                        "hidden_reason": v.hidden_reason.value if v.hidden_reason else None,
                    }
                    for v in versions
                ],
            }
        )
    return out
