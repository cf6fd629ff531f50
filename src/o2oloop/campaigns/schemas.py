"""Campaign requests and responses."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from o2oloop.analytics.models import Segment, SpendingLevel
from o2oloop.campaigns.models import CampaignState, Channel, TriggerKind
from o2oloop.validation import Instant, JsonBody, given, when

Share = Annotated[float, Field(ge=0, le=1)]


class NearStore(JsonBody):
    model_config = ConfigDict(extra="forbid")
    store_id: str = Field(max_length=32)
    km: float = Field(gt=0, le=50)


class Audience(JsonBody):
    """Who a campaign may reach. Every filter given must hold; marketing consent always does.

    A range whose minimum exceeds its maximum holds for nobody: the audience is empty, as
    the preview's count shows (no schema can compare two fields, so it is not refused)."""

    model_config = ConfigDict(extra="forbid")
    segments: list[Segment] | None = None
    rfm: list[Annotated[str, Field(pattern=r"^[1-5]{3}$")]] | None = None
    r_min: int | None = Field(None, ge=1, le=5)
    f_min: int | None = Field(None, ge=1, le=5)
    m_min: int | None = Field(None, ge=1, le=5)
    clv_min: int | None = Field(None, ge=0, le=10**12)
    clv_max: int | None = Field(None, ge=0, le=10**12)
    spending_levels: list[SpendingLevel] | None = None
    p_alive_min: Share | None = None
    p_alive_max: Share | None = None
    visits_min: int | None = Field(None, ge=0, le=10**6)
    visits_max: int | None = Field(None, ge=0, le=10**6)
    days_since_last_min: float | None = Field(None, ge=0, le=3650)
    days_since_last_max: float | None = Field(None, ge=0, le=3650)
    near_store: NearStore | None = None
    # Exclusions.
    exclude_messaged_days: int | None = Field(None, ge=1, le=365)
    exclude_active_code: bool = True
    exclude_member_ids: list[Annotated[str, Field(max_length=32)]] = Field(
        default_factory=list, max_length=1000
    )


# What each kind of trigger needs; the schema states it (if kind is … then …) from this table.
NEEDS: dict[TriggerKind, tuple[str, ...]] = {
    TriggerKind.SCHEDULE: ("at",),
    TriggerKind.SEGMENT_ENTERED: ("segment",),
    TriggerKind.OVERDUE: ("k",),
    TriggerKind.AFTER_FIRST_VISIT: ("days",),
}


def _needs_in_schema(schema: dict[str, Any]) -> None:
    schema["allOf"] = [when({"kind": kind.value}, given(*fields)) for kind, fields in NEEDS.items()]


class Trigger(JsonBody):
    """When a campaign reaches its audience; which fields apply depends on `kind`."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_needs_in_schema)
    kind: TriggerKind = TriggerKind.NOW
    # schedule: local time of day and weekdays (0 = Monday) in the merchant's timezone
    at: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$")
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] | None = None
    # segment_entered
    segment: Segment | None = None
    # overdue: days since the last visit > k × the member's expected inter-visit time
    k: float | None = Field(None, gt=0, le=20)
    # after_first_visit
    days: int | None = Field(None, ge=0, le=365)
    # quiet_slot: a store slot whose forecast load is below `below` of its capacity, within
    # the next `hours_ahead` hours; members living within `km` of that store
    store_id: str | None = Field(None, max_length=32)
    below: float | None = Field(None, gt=0, lt=1)
    hours_ahead: int | None = Field(None, ge=1, le=72)
    km: float | None = Field(None, gt=0, le=50)

    @model_validator(mode="after")
    def _needs(self) -> Trigger:
        needed = NEEDS.get(self.kind, ())
        missing = [name for name in needed if getattr(self, name) is None]
        if missing:
            raise ValueError(f"a {self.kind.value} trigger needs {', '.join(missing)}")
        return self


def _measured_keeps_a_holdout(schema: dict[str, Any]) -> None:
    schema["if"] = {"properties": {"measured": {"const": False}}, "required": ["measured"]}
    schema["else"] = {"properties": {"holdout_share": {"exclusiveMinimum": 0}}}


class CampaignCreate(JsonBody):
    """A campaign; a measured one (the default) keeps a holdout above 0 as its control."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_measured_keeps_a_holdout)
    name: str = Field(min_length=1, max_length=120)
    audience: Audience = Field(default_factory=Audience)
    trigger: Trigger = Field(default_factory=Trigger)
    offer_id: str = Field(min_length=1, max_length=32, description="the coupon it gives")
    code_valid_days: int | None = Field(None, ge=1, le=365)
    channel: Channel = Channel.INBOX
    message_subject: str = Field("", max_length=200)
    message_body: str = Field(
        "Hi {name}, {merchant} has something for you: {offer}. Your code {code} works until "
        "{expiry}.",
        min_length=1,
        max_length=2000,
    )
    holdout_share: float = Field(0.10, ge=0, le=0.5)
    measured: bool = True
    use_global_control: bool = True
    cap_days: int = Field(7, ge=0, le=365)
    budget_codes: int | None = Field(None, ge=1, le=10_000_000)
    budget_discount: int | None = Field(None, ge=1, le=2_000_000_000)
    gross_margin_share: float = Field(0.6, ge=0, le=1)
    attribution_days: int = Field(30, ge=1, le=365)
    pre_period_days: int = Field(90, ge=1, le=730)
    starts_at: Instant | None = None
    ends_at: Instant | None = None

    @model_validator(mode="after")
    def _holdout_if_measured(self) -> CampaignCreate:
        if self.measured and self.holdout_share == 0:
            raise ValueError(
                "holdout_share is 0: a measured campaign keeps a control group "
                "(turn measurement off explicitly with measured=false)"
            )
        return self


class CampaignUpdate(JsonBody):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=120)
    audience: Audience | None = None
    trigger: Trigger | None = None
    offer_id: str | None = Field(None, max_length=32)
    channel: Channel | None = None
    message_subject: str | None = Field(None, max_length=200)
    message_body: str | None = Field(None, min_length=1, max_length=2000)
    holdout_share: float | None = Field(None, ge=0, le=0.5)
    measured: bool | None = None
    budget_codes: int | None = Field(None, ge=1, le=10_000_000)
    budget_discount: int | None = Field(None, ge=1, le=2_000_000_000)
    ends_at: Instant | None = None


class CampaignRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    merchant_id: str | None
    name: str
    state: CampaignState
    audience: dict[str, Any]
    trigger: dict[str, Any]
    offer_id: str
    code_valid_days: int | None
    channel: Channel
    message_subject: str
    message_body: str
    holdout_bps: int
    measured: bool
    use_global_control: bool
    cap_days: int
    budget_codes: int | None
    budget_discount: int | None
    codes_issued: int
    discount_committed: int
    gross_margin_bps: int
    attribution_days: int
    pre_period_days: int
    currency: str
    starts_at: datetime | None
    ends_at: datetime | None
    launched_at: datetime | None
    finished_at: datetime | None
    finish_reason: str | None
    created_at: datetime
    updated_at: datetime


class PreviewMember(BaseModel):
    member_id: str | None
    consumer_id: str
    segment: str | None
    visits: int
    days_since_last: float | None
    clv: int | None
    p_alive: float | None


class Preview(BaseModel):
    count: int
    treatment_estimate: int
    control_estimate: int
    sample: list[PreviewMember]


class PreviewRequest(JsonBody):
    model_config = ConfigDict(extra="forbid")
    audience: Audience = Field(default_factory=Audience)
    offer_id: str | None = Field(None, max_length=32)
    holdout_share: float = Field(0.10, ge=0, le=0.5)


class Transition(JsonBody):
    model_config = ConfigDict(extra="forbid")
    action: Literal["launch", "pause", "resume", "finish"]
