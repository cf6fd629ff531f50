"""Response shapes for members' scores, segment sizes and store load."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from o2oloop.analytics.models import Segment, SpendingLevel


class MemberScoreRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    member_id: str
    merchant_id: str
    as_of: datetime
    visits: int
    frequency: int = Field(description="Repeat visits (BG/NBD x)")
    recency_days: float = Field(description="Days from first to last visit (BG/NBD t_x)")
    age_days: float = Field(description="Days from first visit to as_of (BG/NBD T)")
    days_since_last: float
    total_spent: int
    average_spend: int
    coupon_share: float
    r_score: int
    f_score: int
    m_score: int
    rfm: str
    p_alive: float
    expected_visits_30d: float
    buying_cycle_days: float | None
    expected_next_visit_at: datetime | None
    expected_average_spend: int
    clv: int = Field(description="Discounted customer lifetime value, minor units")
    segment: Segment
    spending_level: SpendingLevel
    home_cell: str | None = Field(description="H3 cell (res 7) of the most visited store")
    computed_at: datetime


class SegmentSize(BaseModel):
    segment: Segment
    members: int
    average_clv: int
    average_p_alive: float


class FittedModelRead(BaseModel):
    """The models behind the scores; `platform_fallback` when the merchant had too little
    history of its own and the platform-wide fit was used."""

    model_config = ConfigDict(from_attributes=True)

    merchant_id: str | None
    as_of: datetime
    customers: int
    platform_fallback: bool
    bgnbd_r: float
    bgnbd_alpha: float = Field(description="Days")
    bgnbd_a: float
    bgnbd_b: float
    bgnbd_converged: bool
    gg_p: float | None
    gg_q: float | None
    gg_v: float | None = Field(description="Minor units")


class SegmentSizes(BaseModel):
    merchant_id: str | None = Field(description="None for the whole platform")
    as_of: datetime | None
    total: int
    segments: list[SegmentSize]
    model: FittedModelRead | None


class LoadSlot(BaseModel):
    weekday: str
    hour: int
    open: bool
    capacity: int
    average_visits: float
    utilisation: float | None
    off_peak: bool


class StoreLoad(BaseModel):
    store_id: str
    timezone: str
    since: datetime
    until: datetime
    weeks: float
    visits: int
    off_peak_threshold: float
    slots: list[LoadSlot]


class AnalysisRun(BaseModel):
    merchants: int
    members: int
    platform_fallbacks: int
    as_of: datetime
    seconds: float
