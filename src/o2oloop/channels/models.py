"""Tables of the channels domain: the nearby index, links and their counts, shares, referrals."""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import BigInteger, Date, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from o2oloop.db import Base, UTCDateTime, str_enum


class StoreCell(Base):
    """The H3 cell holding a store at one indexed resolution (`geo.RESOLUTIONS`).

    A nearby search asks for the stores of a few dozen cells of one resolution; the cell id
    encodes its resolution, so one index on `cell` serves every level. The store's merchant
    (which never changes) and its point on the unit sphere (x, y, z) ride along in that
    index, so the database ranks the stores within the radius (by squared chord) without
    reading the stores table; whether a store and its merchant are active is read from
    their own rows, for the rows of the page.
    """

    __tablename__ = "store_cells"
    __table_args__ = (
        Index("ix_store_cells_cell_point", "cell", "merchant_id", "store_id", "x", "y", "z"),
    )

    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), primary_key=True, index=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    x: Mapped[float] = mapped_column(Float)
    y: Mapped[float] = mapped_column(Float)
    z: Mapped[float] = mapped_column(Float)


class StoreRating(Base):
    """A store's average published review rating, for sort=rating; kept by
    `channels.ratings` from the reviews domain's events."""

    __tablename__ = "store_ratings"

    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), primary_key=True)
    average: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class StoreReviewRating(Base):
    """The latest rating of each published review, as its events told: what `StoreRating`
    is summed from, so a redelivered or late event of an older version changes nothing."""

    __tablename__ = "store_review_ratings"

    review_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    rating: Mapped[int] = mapped_column(Integer)


class Channel(enum.StrEnum):
    IN_APP = "in_app"
    WEB = "web"
    MAP_APP = "map_app"
    SOCIAL = "social"
    SMS = "sms"
    PARTNER = "partner"
    POSTER = "poster"  # a printed QR poster
    SHARE = "share"  # a consumer's own share link (not published by the merchant)
    DIRECT = "direct"  # claimed with no link at all


PUBLISHABLE = tuple(c for c in Channel if c not in (Channel.SHARE, Channel.DIRECT))


class Publication(Base):
    """An offer published to one channel: one tracking link, its UTM parameters."""

    __tablename__ = "publications"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"), index=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel))
    label: Mapped[str] = mapped_column(String(120), default="")
    utm_source: Mapped[str] = mapped_column(String(80))
    utm_medium: Mapped[str] = mapped_column(String(80))
    utm_campaign: Mapped[str] = mapped_column(String(120))
    utm_content: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ChannelDaily(Base):
    """Impressions and clicks per offer, channel, link and day, bumped by batched counters."""

    __tablename__ = "channel_daily"

    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"), primary_key=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel), primary_key=True)
    # The publication or share whose link was opened; "" for impressions in listings.
    link_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    impressions: Mapped[int] = mapped_column(Integer, default=0)
    clicks: Mapped[int] = mapped_column(Integer, default=0)


class ConsumerTouch(Base):
    """A consumer's first link to an offer: the first touch of every later claim of it."""

    __tablename__ = "consumer_touches"

    consumer_id: Mapped[str] = mapped_column(ForeignKey("consumers.id"), primary_key=True)
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"), primary_key=True)
    channel: Mapped[Channel] = mapped_column(str_enum(Channel))
    link_id: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class CodeAttribution(Base):
    """Which channel brought a code, first-touch and last-touch (the token of its claim)."""

    __tablename__ = "code_attributions"
    __table_args__ = (
        Index("ix_code_attributions_offer_first", "offer_id", "first_channel"),
        Index("ix_code_attributions_offer_last", "offer_id", "last_channel"),
    )

    code_id: Mapped[str] = mapped_column(ForeignKey("codes.id"), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"))
    first_channel: Mapped[Channel] = mapped_column(str_enum(Channel))
    first_link_id: Mapped[str] = mapped_column(String(32))
    last_channel: Mapped[Channel] = mapped_column(str_enum(Channel))
    last_link_id: Mapped[str] = mapped_column(String(32))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Share(Base):
    """A consumer's own link to an offer, with an optional note of their own."""

    __tablename__ = "shares"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"), index=True)
    consumer_id: Mapped[str] = mapped_column(ForeignKey("consumers.id"), index=True)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RewardKind(enum.StrEnum):
    COUPON = "coupon"  # a code of one of the merchant's coupons
    STORED_VALUE = "stored_value"  # credit on the sharer's stored-value card, via the ledger


class ReferralProgram(Base):
    """What a merchant gives a sharer for each friend's verified visit, and how often."""

    __tablename__ = "referral_programs"

    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    reward_kind: Mapped[RewardKind] = mapped_column(str_enum(RewardKind))
    reward_offer_id: Mapped[str | None] = mapped_column(ForeignKey("offers.id"))
    reward_amount: Mapped[int | None] = mapped_column(Integer)
    cap_per_period: Mapped[int] = mapped_column(Integer)
    period_days: Mapped[int] = mapped_column(Integer)
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReferralState(enum.StrEnum):
    PENDING = "pending"  # the friend claimed; waiting for a verified visit
    REWARDED = "rewarded"
    CAPPED = "capped"  # redeemed, but the sharer had reached the period's cap
    REFUSED = "refused"  # self-referral or a loop, found at redemption


class Referral(Base):
    """A friend's code claimed through a share: at most one per code."""

    __tablename__ = "referrals"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    share_id: Mapped[str] = mapped_column(ForeignKey("shares.id"), index=True)
    sharer_id: Mapped[str] = mapped_column(ForeignKey("consumers.id"), index=True)
    friend_id: Mapped[str] = mapped_column(ForeignKey("consumers.id"), index=True)
    code_id: Mapped[str] = mapped_column(ForeignKey("codes.id"), unique=True)
    state: Mapped[ReferralState] = mapped_column(str_enum(ReferralState), index=True)
    reason: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    settled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SharerPeriod(Base):
    """Rewards a sharer earned at a merchant in one period: bumped only below the cap."""

    __tablename__ = "sharer_periods"

    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    sharer_id: Mapped[str] = mapped_column(ForeignKey("consumers.id"), primary_key=True)
    period_start: Mapped[date] = mapped_column(Date, primary_key=True)
    rewarded: Mapped[int] = mapped_column(Integer, default=0)


class ReferralReward(Base):
    """One reward, unique by the redemption that earned it."""

    __tablename__ = "referral_rewards"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id"), unique=True)
    redemption_id: Mapped[str] = mapped_column(ForeignKey("redemptions.id"), unique=True)
    sharer_id: Mapped[str] = mapped_column(ForeignKey("consumers.id"), index=True)
    kind: Mapped[RewardKind] = mapped_column(str_enum(RewardKind))
    code_id: Mapped[str | None] = mapped_column(ForeignKey("codes.id"))
    ledger_transaction_id: Mapped[str | None] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProposalState(enum.StrEnum):
    PROPOSED = "proposed"
    ACCEPTED = "accepted"


class OffPeakProposal(Base):
    """A windowed offer the platform suggests for a store's quiet hours, sized to them."""

    __tablename__ = "offpeak_proposals"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), index=True)
    weekday: Mapped[int] = mapped_column(Integer)  # 0 = Monday
    start_hour: Mapped[int] = mapped_column(Integer)
    end_hour: Mapped[int] = mapped_column(Integer)  # exclusive; 24 = midnight
    per_slot_cap: Mapped[int] = mapped_column(Integer)
    amount_off: Mapped[int] = mapped_column(Integer)
    average_utilisation: Mapped[float] = mapped_column(Float)
    state: Mapped[ProposalState] = mapped_column(str_enum(ProposalState))
    offer_id: Mapped[str | None] = mapped_column(ForeignKey("offers.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SlotIssuance(Base):
    """Codes of a steering offer issued for one hour of one day: never above `cap`."""

    __tablename__ = "slot_issuance"

    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"), primary_key=True)
    slot_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    cap: Mapped[int] = mapped_column(Integer)
    issued: Mapped[int] = mapped_column(Integer, default=0)
