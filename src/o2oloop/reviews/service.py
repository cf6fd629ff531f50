"""Posting, editing and replying to reviews of verified visits; every change is a log entry.

A review's public facts (merchant, store, rating, kind of visit, time) are in its entry; its
text, author and photos are committed to by a salted hash in the entry, so moderation can
hide them later while the entry, and every proof over it, stays as it was.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.principal import Principal, require_consumer
from o2oloop.campaigns.models import CampaignTarget
from o2oloop.codes.models import Redemption, RedemptionState
from o2oloop.customers.models import Consumer, Membership
from o2oloop.db import new_id
from o2oloop.errors import Conflict, InvalidInput, NotFound
from o2oloop.events import record
from o2oloop.reviews import log, photos, schemas
from o2oloop.reviews.events import ReviewPosted
from o2oloop.reviews.log import LogConfig
from o2oloop.reviews.models import Review, ReviewPhoto, ReviewVersion, content_of
from o2oloop.visits.models import Visit, VisitSource

MAX_VERSIONS = 10
# Fraud signals: this many reviews of one merchant within a day from members who joined in
# the week before, or from one consumer (one phone hash) about this many merchants in a week.
BURST_REVIEWS, BURST_WINDOW, NEW_MEMBER = 5, timedelta(days=1), timedelta(days=7)
SPREAD_MERCHANTS, SPREAD_WINDOW = 5, timedelta(days=7)


@dataclass(frozen=True)
class VerifiedVisit:
    merchant_id: str
    store_id: str
    visit_id: str | None
    redemption_id: str | None
    source: str
    occurred_at: datetime
    code_used: bool
    campaign_code: bool = False


def _from_campaign(session: Session, redemption_id: str | None) -> bool:
    """Whether the visit's redeemed code was issued by a campaign (its target holds it)."""
    if redemption_id is None:
        return False
    code_id = session.scalar(select(Redemption.code_id).where(Redemption.id == redemption_id))
    if code_id is None:
        return False
    issued = select(CampaignTarget.id).where(CampaignTarget.code_id == code_id)
    return bool(session.scalar(select(issued.exists())))


def iso(moment: datetime) -> str:
    return clock.as_utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def commitment(salt: bytes, content: dict[str, Any]) -> str:
    """The content hash an entry carries: SHA-256(salt || canonical content), hex."""
    return hashlib.sha256(salt + log.canonical(content)).hexdigest()


CONSUMERS_ONLY = (
    "reviews are written by consumers about their own visits; merchant, staff and terminal "
    "keys cannot review"
)


def _verified_visit(
    session: Session, consumer_id: str, data: schemas.ReviewCreate, window: timedelta
) -> VerifiedVisit:
    """The consumer's own visit that the counter verified, still inside the window."""
    if data.visit_id is not None:
        visit = session.get(Visit, data.visit_id)
        if visit is None or visit.consumer_id != consumer_id:
            raise NotFound("no visit of yours with this id")
        if visit.terminal_id is None or visit.source is VisitSource.ONLINE:
            raise InvalidInput("only visits verified at a store's counter can be reviewed")
        found = VerifiedVisit(
            visit.merchant_id,
            visit.store_id,
            visit.id,
            visit.redemption_id,
            visit.source.value,
            visit.occurred_at,
            visit.redemption_id is not None or visit.code is not None,
        )
    else:
        redemption = session.get(Redemption, data.redemption_id)
        if redemption is None or redemption.consumer_id != consumer_id:
            raise NotFound("no redemption of yours with this id")
        if redemption.state is not RedemptionState.REDEEMED:
            raise InvalidInput("an undone redemption is no visit to review")
        visit_id = session.scalar(select(Visit.id).where(Visit.redemption_id == redemption.id))
        found = VerifiedVisit(
            redemption.merchant_id,
            redemption.store_id,
            visit_id,
            redemption.id,
            "redemption",
            redemption.redeemed_at,
            True,
        )
    found = dataclasses.replace(found, campaign_code=_from_campaign(session, found.redemption_id))
    if found.occurred_at < clock.now() - window:
        raise InvalidInput(
            f"visits can be reviewed for {window.days} days; this one is older",
            field="visit_id" if data.visit_id else "redemption_id",
        )
    return found


def _refuse_second_review(session: Session, visit: VerifiedVisit) -> None:
    keys = []
    if visit.visit_id is not None:
        keys.append(Review.visit_id == visit.visit_id)
    if visit.redemption_id is not None:
        keys.append(Review.redemption_id == visit.redemption_id)
    existing = session.scalar(select(Review.id).where(or_(*keys)))
    if existing is not None:
        raise Conflict("this visit already has a review; edit it instead", review_id=existing)


def _decoded_photos(encoded: list[str]) -> list[photos.CleanPhoto]:
    cleaned = []
    for position, text in enumerate(encoded):
        try:
            raw = base64.b64decode(text, validate=True)
        except binascii.Error as error:
            raise InvalidInput("a photo must be base64", field=f"photos.{position}") from error
        cleaned.append(photos.clean_photo(raw, position=position))
    return cleaned


def _signals(
    session: Session, *, merchant_id: str, consumer_id: str, since: datetime | None
) -> list[str]:
    now = clock.now()
    flags = []
    if since is not None and since >= now - NEW_MEMBER:
        recent = session.scalar(
            select(func.count())
            .select_from(Review)
            .where(
                Review.merchant_id == merchant_id,
                Review.posted_at >= now - BURST_WINDOW,
                Review.member_since >= now - BURST_WINDOW - NEW_MEMBER,
            )
        )
        if recent + 1 >= BURST_REVIEWS:
            flags.append("new_member_burst")
    others = session.scalar(
        select(func.count(func.distinct(Review.merchant_id))).where(
            Review.consumer_id == consumer_id,
            Review.posted_at >= now - SPREAD_WINDOW,
            Review.merchant_id != merchant_id,
        )
    )
    if others + 1 >= SPREAD_MERCHANTS:
        flags.append("one_phone_many_merchants")
    return flags


def _add_version(
    session: Session,
    review: Review,
    *,
    rating: int,
    text: str,
    author: str,
    cleaned: list[photos.CleanPhoto],
    log_config: LogConfig,
    supersedes: int | None,
) -> ReviewVersion:
    salt = secrets.token_bytes(16)
    version = ReviewVersion(
        id=new_id("rvv"),
        review_id=review.id,
        version=review.version,
        rating=rating,
        text=text,
        author=author,
        photos=[photo.sha256 for photo in cleaned],
        salt=salt,
        created_at=clock.now(),
    )
    entry: dict[str, Any] = {
        "v": 1,
        "kind": "review",
        "review": review.id,
        "version": review.version,
        "merchant": review.merchant_id,
        "store": review.store_id,
        "rating": rating,
        "visit": {
            "source": review.visit_source,
            "date": clock.as_utc(review.visited_at).date().isoformat(),
            "code": review.code_used,
            "campaign": review.campaign_code,
        },
        "content": commitment(salt, content_of(version)),
        "at": iso(version.created_at),
    }
    if supersedes is not None:
        entry["supersedes"] = supersedes
    (version.entry,) = log.append(session, [entry], log=log_config)
    review.latest_entry = version.entry
    if review.version == 1:
        review.first_entry = version.entry
    session.add(review)
    session.flush()
    session.add(version)
    session.flush()
    record(
        session,
        ReviewPosted(
            merchant_id=review.merchant_id,
            store_id=review.store_id,
            review_id=review.id,
            version=review.version,
            rating=rating,
            log_entry=version.entry,
            campaign_code=review.campaign_code,
            flags=list(review.flags),
        ),
    )
    for position, photo in enumerate(cleaned):
        session.add(
            ReviewPhoto(
                id=new_id("rph"),
                version_id=version.id,
                position=position,
                media_type=photo.media_type,
                sha256=photo.sha256,
                width=photo.width,
                height=photo.height,
                data=photo.data,
            )
        )
    return version


def post_review(
    session: Session,
    *,
    principal: Principal,
    data: schemas.ReviewCreate,
    log_config: LogConfig,
    window_days: int = 30,
) -> Review:
    """A consumer reviews a visit of theirs the counter verified, once, within the window."""
    consumer_id = require_consumer(principal, CONSUMERS_ONLY)
    visit = _verified_visit(session, consumer_id, data, timedelta(days=window_days))
    cleaned = _decoded_photos(data.photos)
    log.lock(session)  # one review per visit holds under concurrent posts
    _refuse_second_review(session, visit)
    consumer = session.get(Consumer, consumer_id)
    member_since = session.scalar(
        select(Membership.created_at).where(
            Membership.merchant_id == visit.merchant_id, Membership.consumer_id == consumer_id
        )
    )
    now = clock.now()
    flags = _signals(
        session, merchant_id=visit.merchant_id, consumer_id=consumer_id, since=member_since
    )
    review = Review(
        id=new_id("rev"),
        merchant_id=visit.merchant_id,
        store_id=visit.store_id,
        visit_id=visit.visit_id,
        redemption_id=visit.redemption_id,
        consumer_id=consumer_id,
        visit_source=visit.source,
        visited_at=visit.occurred_at,
        campaign_code=visit.campaign_code,
        code_used=visit.code_used,
        member_since=member_since,
        rating=data.rating,
        version=1,
        flags=flags,
        flagged=bool(flags),
        posted_at=now,
        updated_at=now,
    )
    author = (consumer.display_name if consumer else "") or "Verified visitor"
    _add_version(
        session,
        review,
        rating=data.rating,
        text=data.text,
        author=author,
        cleaned=cleaned,
        log_config=log_config,
        supersedes=None,
    )
    return review


def edit_review(
    session: Session,
    *,
    principal: Principal,
    review_id: str,
    data: schemas.ReviewUpdate,
    log_config: LogConfig,
) -> Review:
    """A new version of the consumer's own review; the old one stays in the log."""
    consumer_id = require_consumer(principal, CONSUMERS_ONLY)
    cleaned = _decoded_photos(data.photos)
    log.lock(session)
    review = session.get(Review, review_id, populate_existing=True)
    if review is None or review.consumer_id != consumer_id:
        raise NotFound("no review of yours with this id")
    if review.version >= MAX_VERSIONS:
        raise Conflict(f"a review can have at most {MAX_VERSIONS} versions")
    consumer = session.get(Consumer, consumer_id)
    review.version += 1
    _add_version(
        session,
        review,
        rating=data.rating,
        text=data.text,
        author=(consumer.display_name if consumer else "") or "Verified visitor",
        cleaned=cleaned,
        log_config=log_config,
        supersedes=review.latest_entry,
    )
    review.rating = data.rating
    review.updated_at = clock.now()
    session.flush()
    return review
