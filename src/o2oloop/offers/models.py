"""Offers of a merchant: what a consumer may claim or buy, and the rules for using it."""

from __future__ import annotations

import enum
import zlib
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    func,
    select,
    text,
)
from sqlalchemy.orm import Mapped, column_property, mapped_column

from o2oloop.db import Base, UTCDateTime, str_enum


class OfferKind(enum.StrEnum):
    COUPON = "coupon"  # amount or percent off a bill
    VOUCHER = "voucher"  # prepaid set package: pay 88 for a 128 set
    STORED_VALUE = "stored_value"  # a card topped up in tiers, with a bonus
    MEMBERSHIP = "membership"  # a membership card


class DiscountKind(enum.StrEnum):
    AMOUNT_OFF = "amount_off"
    PERCENT_OFF = "percent_off"


class OfferState(enum.StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    PAUSED = "paused"
    ENDED = "ended"


# What nearby search ranks a merchant's offers by, in one index: it reads no offer row but
# the page's (see `channels.nearby_sql`). JSON cannot be an index key on PostgreSQL, so the
# offers limited to some stores (few) have their own partial index.
NEARBY_COLUMNS = (
    "merchant_id", "state", "kind", "valid_from", "valid_until", "id", "discount_kind",
    "amount_off", "discount_cap", "min_spend", "percent_off_bps", "face_value", "price",
)  # fmt: skip


class Offer(Base):
    __tablename__ = "offers"
    __table_args__ = (
        Index("ix_offers_nearby", *NEARBY_COLUMNS),
        Index(
            "ix_offers_limited_to_stores",
            "merchant_id",
            "id",
            sqlite_where=text("json_type(store_ids) = 'array'"),
            postgresql_where=text("json_typeof(store_ids) = 'array'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    kind: Mapped[OfferKind] = mapped_column(str_enum(OfferKind))
    state: Mapped[OfferState] = mapped_column(str_enum(OfferState), index=True)
    title: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(Text, default="")
    currency: Mapped[str] = mapped_column(String(3))
    # coupon
    discount_kind: Mapped[DiscountKind | None] = mapped_column(str_enum(DiscountKind))
    amount_off: Mapped[int | None] = mapped_column(Integer)
    percent_off_bps: Mapped[int | None] = mapped_column(Integer)
    discount_cap: Mapped[int | None] = mapped_column(Integer)
    # voucher / set package / membership: what the consumer pays and what it is worth
    price: Mapped[int | None] = mapped_column(Integer)
    face_value: Mapped[int | None] = mapped_column(Integer)
    includes: Mapped[str] = mapped_column(Text, default="")
    # stored value: [{"pay": 50000, "bonus": 5000}]
    topup_tiers: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    # rules (see offers.rules.OfferRules)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime())
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    valid_days_after_claim: Mapped[int | None] = mapped_column(Integer)
    weekdays: Mapped[list[int] | None] = mapped_column(JSON)
    time_windows: Mapped[list[dict[str, str]]] = mapped_column(JSON, default=list)
    store_ids: Mapped[list[str] | None] = mapped_column(JSON)
    per_customer_limit: Mapped[int | None] = mapped_column(Integer)
    total_stock: Mapped[int | None] = mapped_column(Integer)
    new_customers_only: Mapped[bool] = mapped_column(Boolean, default=False)
    min_spend: Mapped[int | None] = mapped_column(Integer)
    # counters, bumped with conditional UPDATEs
    issued_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


STORE_COUNT_SHARDS = 16


def store_count_shard(terminal_id: str) -> int:
    """The shard of a store's count that this till bumps (the same for its undo)."""
    return zlib.crc32(terminal_id.encode()) % STORE_COUNT_SHARDS


class OfferStoreRedemptions(Base):
    """How many codes of an offer each store has redeemed (net of undone redemptions), in
    up to `STORE_COUNT_SHARDS` rows per store: the store's count is their sum.

    Every redemption bumps a row and holds it until its commit (through the WAL flush), so
    the tills that share a row take turns at the rate of the flushes: one counter on the
    offer's row made every store of a brand campaign wait, one per store made a busy
    store's tills wait; a shard per group of tills (`store_count_shard`) lets them commit
    together.
    """

    __tablename__ = "offer_store_redemptions"

    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"), primary_key=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), primary_key=True)
    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=0)
    redeemed: Mapped[int] = mapped_column(Integer, default=0)


# Loaded with the offer: the sum over at most one row per store.
Offer.redeemed_count = column_property(  # type: ignore[attr-defined]
    select(func.coalesce(func.sum(OfferStoreRedemptions.redeemed), 0))
    .where(OfferStoreRedemptions.offer_id == Offer.id)
    .correlate_except(OfferStoreRedemptions)
    .scalar_subquery()
)
