"""Reviews of verified visits, merchants' replies, and the append-only log they live in.

The log tables hold the public record: each entry's exact bytes, the hash of every perfect
subtree (so any proof is a few index reads), one head row that appends take turns on, and
the signed checkpoints. The review tables hold what the entries commit to (text, author,
photos) so it can be shown, and hidden again by moderation without touching the log.
"""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from o2oloop.db import Base, UTCDateTime, str_enum


class HideReason(enum.StrEnum):
    """Why content may be hidden: a fixed list, so moderation cannot be arbitrary."""

    ILLEGAL_CONTENT = "illegal_content"
    PERSONAL_DATA = "personal_data"
    ERASURE_REQUEST = "erasure_request"


class ModeratorRole(enum.StrEnum):
    """Who hid it, by role and never by person."""

    PLATFORM_MODERATOR = "platform_moderator"
    DATA_SUBJECT = "data_subject"


class LogHead(Base):
    """The one row appends lock: the tree's size, its peaks and its root."""

    __tablename__ = "review_log_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    size: Mapped[int] = mapped_column(BigInteger)
    # The hashes of the perfect subtrees the tree is made of, largest first, concatenated.
    peaks: Mapped[bytes] = mapped_column(LargeBinary)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    # The size of the latest signed checkpoint: the next is due `checkpoint_every` later.
    signed_size: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LogEntry(Base):
    """One leaf: the canonical bytes that were hashed, never changed once written."""

    __tablename__ = "review_log_entries"

    # On SQLite an INTEGER primary key is the rowid itself: no second index of leaf numbers.
    idx: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=False
    )
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LogNode(Base):
    """The hash of the perfect subtree of 2**level leaves starting at leaf idx * 2**level."""

    __tablename__ = "review_log_nodes"

    level: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    idx: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    hash: Mapped[bytes] = mapped_column(LargeBinary(32))


class LogCheckpoint(Base):
    """A signed checkpoint (C2SP signed note), as published."""

    __tablename__ = "review_checkpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    size: Mapped[int] = mapped_column(BigInteger, index=True)
    root: Mapped[bytes] = mapped_column(LargeBinary(32))
    note: Mapped[str] = mapped_column(Text)
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class Review(Base):
    """A consumer's review of one verified visit; its versions and reply hang off it."""

    __tablename__ = "reviews"
    __table_args__ = (
        Index("ix_reviews_merchant_posted", "merchant_id", "posted_at"),
        Index("ix_reviews_store_posted", "store_id", "posted_at"),
        Index("ix_reviews_consumer_posted", "consumer_id", "posted_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"))
    # The verified consumption: a visit, a redemption, or both when they are linked.
    visit_id: Mapped[str | None] = mapped_column(ForeignKey("visits.id"), unique=True)
    redemption_id: Mapped[str | None] = mapped_column(ForeignKey("redemptions.id"), unique=True)
    # None once the consumer had their data erased; the rating stays in the counts.
    consumer_id: Mapped[str | None] = mapped_column(ForeignKey("consumers.id"))
    visit_source: Mapped[str] = mapped_column(String(12))
    visited_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The visit used an offer's code; and that code was issued by a campaign.
    code_used: Mapped[bool] = mapped_column(Boolean, default=False)
    campaign_code: Mapped[bool] = mapped_column(Boolean, default=False)
    # When the reviewer became a member of the merchant: the new-member burst signal.
    member_since: Mapped[datetime | None] = mapped_column(UTCDateTime())
    rating: Mapped[int] = mapped_column(SmallInteger)
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Fraud signals raised when it was posted, e.g. ["new_member_burst"].
    flags: Mapped[list[str]] = mapped_column(JSON)
    flagged: Mapped[bool] = mapped_column(Boolean, default=False)
    first_entry: Mapped[int] = mapped_column(BigInteger)
    latest_entry: Mapped[int] = mapped_column(BigInteger)
    posted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReviewVersion(Base):
    """One version of a review as logged; hiding drops its content, never its entry."""

    __tablename__ = "review_versions"
    __table_args__ = (UniqueConstraint("review_id", "version"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    review_id: Mapped[str] = mapped_column(ForeignKey("reviews.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    rating: Mapped[int] = mapped_column(SmallInteger)
    entry: Mapped[int] = mapped_column(BigInteger, unique=True)
    # What the entry's content hash commits to: SHA-256(salt || canonical content).
    text: Mapped[str | None] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(80))
    photos: Mapped[list[str] | None] = mapped_column(JSON)  # SHA-256 hex of each photo
    salt: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    hidden_reason: Mapped[HideReason | None] = mapped_column(str_enum(HideReason, 20))
    hidden_by: Mapped[ModeratorRole | None] = mapped_column(str_enum(ModeratorRole, 20))
    hidden_entry: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReviewReply(Base):
    """The merchant's one reply to a review, logged like the review."""

    __tablename__ = "review_replies"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    review_id: Mapped[str] = mapped_column(ForeignKey("reviews.id"), unique=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    entry: Mapped[int] = mapped_column(BigInteger, unique=True)
    text: Mapped[str | None] = mapped_column(Text)
    salt: Mapped[bytes | None] = mapped_column(LargeBinary(16))
    hidden_reason: Mapped[HideReason | None] = mapped_column(str_enum(HideReason, 20))
    hidden_by: Mapped[ModeratorRole | None] = mapped_column(str_enum(ModeratorRole, 20))
    hidden_entry: Mapped[int | None] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReviewPhoto(Base):
    """A photo of a review version, re-encoded without its metadata."""

    __tablename__ = "review_photos"
    __table_args__ = (UniqueConstraint("version_id", "position"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    version_id: Mapped[str] = mapped_column(ForeignKey("review_versions.id"), index=True)
    position: Mapped[int] = mapped_column(SmallInteger)
    media_type: Mapped[str] = mapped_column(String(20))
    sha256: Mapped[str] = mapped_column(String(64))
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    # None once hidden: the digest stays (the log commits to it), the picture goes.
    data: Mapped[bytes | None] = mapped_column(LargeBinary)


def content_of(row: Any) -> dict[str, Any]:
    """What a version's or reply's content hash commits to."""
    if isinstance(row, ReviewVersion):
        return {"author": row.author, "photos": row.photos or [], "text": row.text}
    return {"text": row.text}
