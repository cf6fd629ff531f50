"""Shapes of the channels API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from o2oloop.channels.models import Channel, RewardKind
from o2oloop.offers.models import DiscountKind, OfferKind
from o2oloop.validation import Instant, JsonBody, given, when


class NearbyStoreRead(BaseModel):
    id: str
    merchant_id: str
    name: str
    latitude: float
    longitude: float
    category: str
    open_now: bool
    rating: float | None


class NearbyOfferRead(BaseModel):
    offer_id: str
    merchant_id: str
    kind: OfferKind
    title: str
    currency: str
    discount_kind: DiscountKind | None
    amount_off: int | None
    percent_off_bps: int | None
    price: int | None
    face_value: int | None
    value: int
    distance_m: float
    store: NearbyStoreRead


class NearbyPage(BaseModel):
    data: list[NearbyOfferRead]
    next_cursor: str | None = None


class PublicationCreate(JsonBody):
    channel: Channel
    label: Annotated[str, Field(max_length=120)] = ""
    utm_source: Annotated[str, Field(max_length=80, pattern=r"^[A-Za-z0-9._-]*$")] = ""
    utm_campaign: Annotated[str, Field(max_length=120, pattern=r"^[A-Za-z0-9._-]*$")] = ""
    utm_content: Annotated[str, Field(max_length=120, pattern=r"^[A-Za-z0-9._-]*$")] = ""


class PublicationRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    merchant_id: str
    offer_id: str
    channel: Channel
    label: str
    utm_source: str
    utm_medium: str
    utm_campaign: str
    utm_content: str
    created_at: datetime
    token: str = ""
    short_url: str = ""
    landing_url: str = ""
    qr_png_url: str = ""


class FunnelRow(BaseModel):
    channel: Channel
    link_id: str = Field(description="publication or share id; empty for the channel as a whole")
    impressions: int
    clicks: int
    claims: int
    redemptions: int
    revenue: int = Field(description="minor units: the visits that used these codes")
    click_through_rate: float | None = Field(description="clicks / impressions")
    claim_rate: float | None = Field(description="claims / clicks")
    redemption_rate: float | None = Field(description="redemptions / claims")


class Funnel(BaseModel):
    offer_id: str | None
    model: Literal["first_touch", "last_touch"]
    currency: str
    rows: list[FunnelRow]


class ShareCreate(JsonBody):
    note: Annotated[str, Field(max_length=1000, description="your own words about the offer")] = ""


class ShareRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    offer_id: str
    merchant_id: str
    note: str
    created_at: datetime
    token: str = ""
    short_url: str = ""


def _reward_needs(schema: dict[str, Any]) -> None:
    schema["allOf"] = [
        when({"reward_kind": RewardKind.COUPON}, given("reward_offer_id")),
        when({"reward_kind": RewardKind.STORED_VALUE}, given("reward_amount")),
    ]


class ReferralProgramIn(JsonBody):
    """A coupon reward names the coupon; a stored-value reward its amount."""

    model_config = ConfigDict(json_schema_extra=_reward_needs)

    reward_kind: RewardKind
    reward_offer_id: Annotated[str, Field(max_length=40)] | None = None
    reward_amount: Annotated[int, Field(gt=0, le=10**9)] | None = None
    cap_per_period: Annotated[int, Field(ge=0, le=10_000)] = 5
    period_days: Annotated[int, Field(ge=1, le=366)] = 30
    active: bool = True

    @model_validator(mode="after")
    def _reward_given(self) -> ReferralProgramIn:
        if self.reward_kind is RewardKind.COUPON and self.reward_offer_id is None:
            raise ValueError("reward_offer_id: a coupon reward names one of your coupons")
        if self.reward_kind is RewardKind.STORED_VALUE and self.reward_amount is None:
            raise ValueError("reward_amount: a stored-value reward needs an amount above 0")
        return self


class ReferralProgramRead(ReferralProgramIn):
    model_config = ConfigDict(from_attributes=True, json_schema_extra=None)

    merchant_id: str
    updated_at: datetime


class TopSharer(BaseModel):
    sharer_id: str
    display_name: str
    friends_claimed: int
    friends_redeemed: int
    revenue: int
    rewards: int
    rewards_value: int


class ProposalsCreate(JsonBody):
    below: Annotated[float, Field(gt=0, le=1, description="share of capacity")] = 0.5
    amount_off: Annotated[int, Field(gt=0, le=10**9)] = 1000
    weeks: Annotated[int, Field(ge=1, le=52, description="weeks of load to read")] = 8


class ProposalRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    merchant_id: str
    store_id: str
    weekday: int
    start_hour: int
    end_hour: int
    per_slot_cap: int
    amount_off: int
    average_utilisation: float
    state: str
    offer_id: str | None
    created_at: datetime
    accepted_at: datetime | None


class ProposalAccept(JsonBody):
    weeks: Annotated[int, Field(ge=1, le=26)] = 4


class SlotClaimCreate(JsonBody):
    slot_start: Instant


class LoadSummary(BaseModel):
    since: datetime
    until: datetime
    visits_per_week: float
    peak_overflow_per_week: float
    off_peak_utilisation: float | None
    slots: list[dict]


class SteeringEffect(BaseModel):
    store_id: str
    accepted_at: datetime
    before: LoadSummary
    after: LoadSummary
