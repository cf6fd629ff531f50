"""Materialised analytics: one score row per member, and the model fitted per merchant."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from o2oloop.db import Base, UTCDateTime, str_enum


class Segment(enum.StrEnum):
    NEW = "new"
    REGULAR = "regular"
    AT_RISK = "at_risk"
    LAPSED = "lapsed"
    HIGH_VALUE = "high_value"
    COUPON_ONLY = "coupon_only"
    OCCASIONAL = "occasional"


class SpendingLevel(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


class MemberScore(Base):
    """What the platform has learned about one member, as of the last `analyze` run.

    A derived table that `analyze` rebuilds per merchant: it carries no foreign keys, so a
    million rows load by COPY at full speed (checking three keys per row tripled the time).
    Erasure deletes a consumer's rows explicitly.
    """

    __tablename__ = "member_scores"
    __table_args__ = (
        Index("ix_member_scores_merchant_segment", "merchant_id", "segment"),
        # The console's members table pages by value; the dashboard buckets CLV.
        Index("ix_member_scores_merchant_clv", "merchant_id", "clv"),
    )

    member_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(String(32))
    consumer_id: Mapped[str] = mapped_column(String(32), index=True)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    visits: Mapped[int] = mapped_column(Integer)
    frequency: Mapped[int] = mapped_column(Integer)  # repeat visits (x)
    recency_days: Mapped[float] = mapped_column(Float)  # first to last visit (t_x)
    age_days: Mapped[float] = mapped_column(Float)  # first visit to as_of (T)
    days_since_last: Mapped[float] = mapped_column(Float)
    total_spent: Mapped[int] = mapped_column(Integer)
    average_spend: Mapped[int] = mapped_column(Integer)
    coupon_share: Mapped[float] = mapped_column(Float)
    r_score: Mapped[int] = mapped_column(Integer)
    f_score: Mapped[int] = mapped_column(Integer)
    m_score: Mapped[int] = mapped_column(Integer)
    rfm: Mapped[str] = mapped_column(String(3))
    p_alive: Mapped[float] = mapped_column(Float)
    expected_visits_30d: Mapped[float] = mapped_column(Float)
    buying_cycle_days: Mapped[float | None] = mapped_column(Float)
    expected_next_visit_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    expected_average_spend: Mapped[int] = mapped_column(Integer)
    clv: Mapped[int] = mapped_column(Integer)  # minor units, discounted
    segment: Mapped[Segment] = mapped_column(str_enum(Segment, 20))
    spending_level: Mapped[SpendingLevel] = mapped_column(str_enum(SpendingLevel, 10))
    home_cell: Mapped[str | None] = mapped_column(String(16))
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ScoreSummary(Base):
    """A merchant's scores counted by segment and CLV band, as of the last analysis.

    Written with the scores (`analytics.summary.refresh`), so the dashboard and the segment
    sizes read a few dozen rows instead of walking every member's score on each load.
    """

    __tablename__ = "score_summaries"

    merchant_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    segment: Mapped[Segment] = mapped_column(str_enum(Segment, 20), primary_key=True)
    band: Mapped[int] = mapped_column(Integer, primary_key=True)  # index into CLV_EDGES
    members: Mapped[int] = mapped_column(Integer)
    clv_sum: Mapped[int] = mapped_column(BigInteger)  # minor units
    p_alive_sum: Mapped[float] = mapped_column(Float)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())


class FittedModel(Base):
    """The BG/NBD and Gamma-Gamma parameters behind a merchant's (or the platform's) scores."""

    __tablename__ = "fitted_models"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # None: the platform-wide model, used for merchants with too few members to fit their own.
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    as_of: Mapped[datetime] = mapped_column(UTCDateTime())
    customers: Mapped[int] = mapped_column(Integer)
    platform_fallback: Mapped[bool] = mapped_column(Boolean)
    bgnbd_r: Mapped[float] = mapped_column(Float)
    bgnbd_alpha: Mapped[float] = mapped_column(Float)
    bgnbd_a: Mapped[float] = mapped_column(Float)
    bgnbd_b: Mapped[float] = mapped_column(Float)
    bgnbd_converged: Mapped[bool] = mapped_column(Boolean)
    gg_p: Mapped[float | None] = mapped_column(Float)
    gg_q: Mapped[float | None] = mapped_column(Float)
    gg_v: Mapped[float | None] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())
