"""What happens to reviews: posted (or a new version), replied to, hidden by moderation."""

from __future__ import annotations

from dataclasses import dataclass

from o2oloop.events import Event


@dataclass(frozen=True, kw_only=True)
class ReviewPosted(Event):
    """A review of a verified visit, or a new version of it, is in the log."""

    name = "review.posted"
    merchant_id: str
    store_id: str
    review_id: str
    version: int
    rating: int
    log_entry: int
    campaign_code: bool
    flags: list[str]


@dataclass(frozen=True, kw_only=True)
class ReviewReplied(Event):
    name = "review.replied"
    merchant_id: str
    review_id: str
    log_entry: int


@dataclass(frozen=True, kw_only=True)
class ReviewHidden(Event):
    """Content was hidden by a moderation entry (by role, for one of the fixed reasons)."""

    name = "review.hidden"
    merchant_id: str
    review_id: str
    reason: str
    by: str
    log_entry: int
