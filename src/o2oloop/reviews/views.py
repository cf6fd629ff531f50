"""What the public sees of reviews and log entries: content while shown, and in its place
"hidden by moderation: reason" once a moderation entry hid it."""

from __future__ import annotations

import base64

from sqlalchemy import select
from sqlalchemy.orm import Session

from o2oloop.reviews import log, merkle, schemas
from o2oloop.reviews.models import (
    HideReason,
    Review,
    ReviewPhoto,
    ReviewReply,
    ReviewVersion,
    content_of,
)

NOTICES = {
    HideReason.ILLEGAL_CONTENT: "hidden by moderation: illegal content",
    HideReason.PERSONAL_DATA: "hidden by moderation: personal data",
    HideReason.ERASURE_REQUEST: "hidden by moderation: the author's erasure request",
}


def hidden_read(row: ReviewVersion | ReviewReply) -> schemas.HiddenRead | None:
    if row.hidden_reason is None or row.hidden_by is None or row.hidden_entry is None:
        return None
    return schemas.HiddenRead(
        reason=row.hidden_reason,
        by=row.hidden_by,
        entry=row.hidden_entry,
        notice=NOTICES[row.hidden_reason],
    )


def photo_url(photo_id: str) -> str:
    return f"/v1/reviews/photos/{photo_id}"


def review_read(session: Session, review: Review) -> schemas.ReviewRead:
    versions = list(
        session.scalars(
            select(ReviewVersion)
            .where(ReviewVersion.review_id == review.id)
            .order_by(ReviewVersion.version)
        )
    )
    latest = versions[-1]
    pictures = list(
        session.scalars(
            select(ReviewPhoto)
            .where(ReviewPhoto.version_id == latest.id, ReviewPhoto.data.is_not(None))
            .order_by(ReviewPhoto.position)
        )
    )
    reply_row = session.scalar(select(ReviewReply).where(ReviewReply.review_id == review.id))
    reply = None
    moderation = {v.hidden_entry for v in versions if v.hidden_entry is not None}
    if reply_row is not None:
        reply = schemas.ReplyRead(
            text=reply_row.text,
            created_at=reply_row.created_at,
            entry=reply_row.entry,
            hidden=hidden_read(reply_row),
        )
        if reply_row.hidden_entry is not None:
            moderation.add(reply_row.hidden_entry)
    return schemas.ReviewRead(
        id=review.id,
        merchant_id=review.merchant_id,
        store_id=review.store_id,
        rating=review.rating,
        version=review.version,
        text=latest.text,
        author=latest.author,
        photos=[
            schemas.PhotoRead(
                id=p.id,
                url=photo_url(p.id),
                media_type=p.media_type,
                width=p.width,
                height=p.height,
                sha256=p.sha256,
            )
            for p in pictures
        ],
        hidden=hidden_read(latest),
        verified_visit="redemption" if review.visit_source == "redemption" else "pos",
        visited_on=review.visited_at.date(),
        code_used=review.code_used,
        campaign_code=review.campaign_code,
        posted_at=review.posted_at,
        updated_at=review.updated_at,
        reply=reply,
        entries=schemas.ReviewEntries(
            versions=[v.entry for v in versions],
            reply=reply_row.entry if reply_row is not None else None,
            moderation=sorted(moderation),
        ),
    )


def entry_read(session: Session, index: int) -> schemas.EntryRead:
    """One log entry: its exact bytes, and the content it commits to unless hidden."""
    row = log.entry(session, index)
    owner: ReviewVersion | ReviewReply | None = session.scalar(
        select(ReviewVersion).where(ReviewVersion.entry == index)
    ) or session.scalar(select(ReviewReply).where(ReviewReply.entry == index))
    content = salt = hidden = None
    if owner is not None:
        hidden = hidden_read(owner)
        if hidden is None and owner.salt is not None:
            content, salt = content_of(owner), owner.salt.hex()
    return schemas.EntryRead(
        index=index,
        leaf_hash=base64.b64encode(merkle.leaf_hash(row.body)).decode(),
        body=base64.b64encode(row.body).decode(),
        content=content,
        salt=salt,
        hidden=hidden,
    )


def photo(session: Session, photo_id: str) -> ReviewPhoto | None:
    """A shown photo; None when it does not exist or was hidden."""
    row = session.get(ReviewPhoto, photo_id)
    return row if row is not None and row.data is not None else None
