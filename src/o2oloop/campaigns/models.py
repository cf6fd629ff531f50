"""Campaigns, who each one targeted (both arms), and the contact windows behind frequency caps."""

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
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from o2oloop.db import Base, UTCDateTime, str_enum

# SQLite's rowid alias must be INTEGER; PostgreSQL gets a 64-bit identity.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class CampaignState(enum.StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    PAUSED = "paused"
    FINISHED = "finished"


class Channel(enum.StrEnum):
    INBOX = "inbox"
    SMS = "sms"
    EMAIL = "email"
    WEBHOOK = "webhook"


class TriggerKind(enum.StrEnum):
    NOW = "now"
    SCHEDULE = "schedule"
    SEGMENT_ENTERED = "segment_entered"
    OVERDUE = "overdue"
    AFTER_FIRST_VISIT = "after_first_visit"
    BIRTHDAY = "birthday"
    QUIET_SLOT = "quiet_slot"


class Arm(enum.StrEnum):
    TREATMENT = "treatment"
    CONTROL = "control"
    GLOBAL_CONTROL = "global_control"  # the platform-wide bucket: no campaign reaches it


class TargetState(enum.StrEnum):
    PENDING = "pending"  # treatment, not yet sent
    SENT = "sent"
    SKIPPED = "skipped"  # treatment that was not sent; `skip_reason` says why
    HELD_OUT = "held_out"  # control: recorded as "would have been sent", gets nothing


class Campaign(Base):
    """A merchant's campaign (or, with no merchant, a platform brand campaign)."""

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    name: Mapped[str] = mapped_column(String(120))
    state: Mapped[CampaignState] = mapped_column(str_enum(CampaignState), index=True)
    audience: Mapped[dict[str, Any]] = mapped_column(JSON)
    trigger: Mapped[dict[str, Any]] = mapped_column(JSON)
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"))
    code_valid_days: Mapped[int | None] = mapped_column(Integer)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel))
    message_subject: Mapped[str] = mapped_column(String(200), default="")
    message_body: Mapped[str] = mapped_column(Text)
    # Share of each occurrence's audience held out, in basis points; 0 only when
    # `measured` is off.
    holdout_bps: Mapped[int] = mapped_column(Integer)
    measured: Mapped[bool] = mapped_column(Boolean, default=True)
    use_global_control: Mapped[bool] = mapped_column(Boolean, default=True)
    # At most one message of this merchant per consumer per this many days (0: no cap).
    cap_days: Mapped[int] = mapped_column(Integer)
    budget_codes: Mapped[int | None] = mapped_column(Integer)
    budget_discount: Mapped[int | None] = mapped_column(Integer)  # minor units
    codes_issued: Mapped[int] = mapped_column(Integer, default=0)
    # The most the issued codes can cost in discounts: what a money budget is held against.
    discount_committed: Mapped[int] = mapped_column(Integer, default=0)
    gross_margin_bps: Mapped[int] = mapped_column(Integer)
    attribution_days: Mapped[int] = mapped_column(Integer)
    pre_period_days: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    launched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finish_reason: Mapped[str | None] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CampaignTarget(Base):
    """One consumer targeted by one occurrence of a campaign, in either arm.

    The unique (campaign, consumer, occurrence) makes targeting, code issuance and sending
    idempotent: a retry or a second worker finds the row and does nothing twice.
    """

    __tablename__ = "campaign_targets"
    __table_args__ = (
        UniqueConstraint("campaign_id", "consumer_id", "occurrence"),
        # The id last: a send batch reads the next pending targets in id order (no sort).
        Index("ix_campaign_targets_campaign_state", "campaign_id", "state", "id"),
        Index("ix_campaign_targets_consumer_sent", "consumer_id", "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    merchant_id: Mapped[str | None] = mapped_column(String(32))
    consumer_id: Mapped[str] = mapped_column(ForeignKey("consumers.id"))
    member_id: Mapped[str | None] = mapped_column(String(32))
    occurrence: Mapped[str] = mapped_column(String(80))
    arm: Mapped[Arm] = mapped_column(str_enum(Arm, 16))
    state: Mapped[TargetState] = mapped_column(str_enum(TargetState, 10))
    skip_reason: Mapped[str | None] = mapped_column(String(40))
    targeted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The end of the attribution window: visits before it count for this target.
    measure_until: Mapped[datetime] = mapped_column(UTCDateTime())
    # The CUPED covariates: visits and spend in the pre-period, as of targeting.
    pre_visits: Mapped[int] = mapped_column(Integer, default=0)
    pre_spend: Mapped[int] = mapped_column(Integer, default=0)
    # A quiet-slot occurrence: the store whose free capacity it fills.
    store_id: Mapped[str | None] = mapped_column(String(32))
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    code_id: Mapped[str | None] = mapped_column(String(32), index=True)
    message_id: Mapped[str | None] = mapped_column(String(32))


class ContactWindow(Base):
    """When a consumer was last messaged, per merchant (scope = merchant id) and platform-wide
    (scope = ""): frequency caps are decided on these rows, locked in key order."""

    __tablename__ = "contact_windows"

    consumer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    scope: Mapped[str] = mapped_column(String(32), primary_key=True)
    last_contacted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
