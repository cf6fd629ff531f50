"""Request and response shapes for reviews, replies, moderation, ratings and the log."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic.json_schema import SkipJsonSchema

from o2oloop.reviews.models import HideReason, ModeratorRole
from o2oloop.validation import JsonBody

MAX_TEXT = 2000
Id = Annotated[str, Field(min_length=1, max_length=40)]
Rating = Annotated[int, Field(ge=1, le=5)]
Text = Annotated[str, Field(max_length=MAX_TEXT)]
# Base64 of one photo (JPEG, PNG or WebP, at most 5 MB).
Photo = Annotated[str, Field(max_length=7_000_000)]
Photos = Annotated[list[Photo], Field(max_length=4)]


class ReviewCreate(JsonBody):
    """A review of one verified visit: give the visit's id, or the redemption's."""

    # The schema states the rule: exactly one of the two ids, each a string when given.
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"oneOf": [{"required": ["visit_id"]}, {"required": ["redemption_id"]}]},
    )

    visit_id: Id | SkipJsonSchema[None] = None
    redemption_id: Id | SkipJsonSchema[None] = None
    rating: Rating
    text: Text = ""
    photos: Photos = Field(default_factory=list, description="Base64 images, at most 4")

    @model_validator(mode="before")
    @classmethod
    def _ids_are_strings(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("visit_id", "redemption_id"):
                if key in data and data[key] is None:
                    raise ValueError(f"{key} is an id when given; leave it out instead of null")
        return data

    @model_validator(mode="after")
    def _one_visit(self) -> ReviewCreate:
        if (self.visit_id is None) == (self.redemption_id is None):
            raise ValueError("give exactly one of visit_id and redemption_id")
        return self


class ReviewUpdate(JsonBody):
    """A new version of one's review; the old version stays in the log."""

    model_config = ConfigDict(extra="forbid")

    rating: Rating
    text: Text = ""
    photos: Photos = Field(default_factory=list)


class ReplyCreate(JsonBody):
    model_config = ConfigDict(extra="forbid")

    text: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]


class HideCreate(JsonBody):
    """A moderator hides a review's content or its reply, for one of the fixed reasons."""

    model_config = ConfigDict(extra="forbid")

    target: Literal["review", "reply"] = "review"
    reason: Literal[HideReason.ILLEGAL_CONTENT, HideReason.PERSONAL_DATA]


class HiddenRead(BaseModel):
    reason: HideReason
    by: ModeratorRole
    entry: int = Field(description="The moderation entry in the log")
    notice: str = Field(description="What the public sees instead of the content")


class PhotoRead(BaseModel):
    id: str
    url: str
    media_type: str
    width: int
    height: int
    sha256: str


class ReplyRead(BaseModel):
    text: str | None
    created_at: datetime
    entry: int
    hidden: HiddenRead | None = None


class ReviewEntries(BaseModel):
    versions: list[int] = Field(description="Log entries of every version, oldest first")
    reply: int | None = None
    moderation: list[int] = Field(default_factory=list)


class ReviewRead(BaseModel):
    id: str
    merchant_id: str
    store_id: str
    rating: int
    version: int
    text: str | None
    author: str | None
    photos: list[PhotoRead]
    hidden: HiddenRead | None = None
    verified_visit: Literal["pos", "redemption"]
    visited_on: date
    code_used: bool = Field(description="The visit used an offer's code")
    campaign_code: bool = Field(description="That code was issued by a campaign")
    posted_at: datetime
    updated_at: datetime
    reply: ReplyRead | None = None
    entries: ReviewEntries


class ReviewSignalRead(BaseModel):
    review_id: str
    store_id: str
    rating: int
    posted_at: datetime
    flags: list[str]


class ReviewableVisitRead(BaseModel):
    visit_id: str | None
    redemption_id: str | None
    merchant_id: str
    store_id: str
    occurred_at: datetime
    review_until: datetime


class MonthRead(BaseModel):
    month: str
    count: int
    mean: float | None


class RatingSummary(BaseModel):
    count: int
    mean: float | None
    bayesian: float = Field(description="Shrunk towards the category's mean")
    distribution: dict[str, int]
    trend: list[MonthRead] = Field(description="The last six months, oldest first")


class PriorRead(BaseModel):
    category: str
    mean: float
    weight: int = Field(description="How many reviews the prior counts as")


class RatingsRead(BaseModel):
    merchant_id: str
    store_id: str | None
    prior: PriorRead
    all: RatingSummary
    without_campaign_codes: RatingSummary


class LogKeyRead(BaseModel):
    origin: str
    vkey: str = Field(description="C2SP verifier key: name+hex(key id)+base64(0x01 || key)")


class EntryRead(BaseModel):
    index: int
    leaf_hash: str = Field(description="Base64 SHA-256(0x00 || body)")
    body: str = Field(description="Base64 of the exact bytes that were hashed")
    content: dict[str, object] | None = Field(
        default=None, description="What the entry's content hash commits to, while shown"
    )
    salt: str | None = Field(default=None, description="Hex; content hash = SHA-256(salt || c)")
    hidden: HiddenRead | None = None


class InclusionProofRead(BaseModel):
    index: int
    tree_size: int
    proof: list[str]


class ConsistencyProofRead(BaseModel):
    first: int
    second: int
    proof: list[str]
