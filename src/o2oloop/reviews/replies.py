"""The merchant's one public reply to a review, appended to the review log like the review."""

from __future__ import annotations

import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal, require_merchant
from o2oloop.db import new_id
from o2oloop.errors import Conflict, Forbidden
from o2oloop.events import record
from o2oloop.reviews import log, schemas
from o2oloop.reviews.events import ReviewReplied
from o2oloop.reviews.log import LogConfig
from o2oloop.reviews.models import ReviewReply, content_of
from o2oloop.reviews.reading import get_review
from o2oloop.reviews.service import commitment, iso


def reply(
    session: Session,
    *,
    principal: Principal,
    review_id: str,
    data: schemas.ReplyCreate,
    log_config: LogConfig,
) -> ReviewReply:
    """The merchant's one reply to a review of one of its stores."""
    review = get_review(session, review_id)
    require_merchant(principal, review.merchant_id, "review")
    if principal.role not in (Role.MERCHANT_ADMIN, Role.MERCHANT_STAFF):
        raise Forbidden("replies are written by the merchant's admins and staff")
    log.lock(session)
    existing = session.scalar(select(ReviewReply.id).where(ReviewReply.review_id == review.id))
    if existing is not None:
        raise Conflict("this review already has the merchant's reply", reply_id=existing)
    salt = secrets.token_bytes(16)
    row = ReviewReply(
        id=new_id("rpl"),
        review_id=review.id,
        merchant_id=review.merchant_id,
        text=data.text,
        salt=salt,
        created_at=clock.now(),
    )
    entry = {
        "v": 1,
        "kind": "reply",
        "review": review.id,
        "merchant": review.merchant_id,
        "by": principal.role.value,
        "content": commitment(salt, content_of(row)),
        "at": iso(row.created_at),
    }
    (row.entry,) = log.append(session, [entry], log=log_config)
    session.add(row)
    session.flush()
    record(
        session,
        ReviewReplied(merchant_id=review.merchant_id, review_id=review.id, log_entry=row.entry),
    )
    return row
