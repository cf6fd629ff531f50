"""Consumers are platform-wide; memberships of merchants are scoped to each merchant.

Personal data is kept to what the loop needs: a phone number is stored as a keyed hash
(HMAC-SHA256) so the same consumer is found again at any merchant, and the plain number
only while the consumer has marketing consent with at least one merchant.
"""

from __future__ import annotations

import enum
from datetime import date, datetime

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from o2oloop.db import Base, UTCDateTime, str_enum


class Consumer(Base):
    __tablename__ = "consumers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # HMAC-SHA256 of the E.164 number under the platform secret: lookup without the number.
    phone_hash: Mapped[str | None] = mapped_column(String(64), unique=True, index=True)
    # The plain E.164 number, kept only while some merchant has the consumer's consent.
    phone_e164: Mapped[str | None] = mapped_column(String(20))
    # Set when the consumer had their personal data erased; the row stays as a tombstone.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Given by the consumer themselves (so with their consent): messages and campaigns use them.
    email: Mapped[str | None] = mapped_column(String(254))
    timezone: Mapped[str | None] = mapped_column(String(64))
    birthday: Mapped[date | None] = mapped_column(Date)


class MemberSource(enum.StrEnum):
    POS = "pos"
    CLAIM = "claim"
    ONLINE = "online"


class Membership(Base):
    """A consumer as a member of one merchant: how they joined, consent, visit summary."""

    __tablename__ = "memberships"
    __table_args__ = (
        UniqueConstraint("merchant_id", "consumer_id"),
        UniqueConstraint("merchant_id", "member_card"),
        Index("ix_memberships_merchant_last_visit", "merchant_id", "last_visit_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    consumer_id: Mapped[str] = mapped_column(ForeignKey("consumers.id"), index=True)
    source: Mapped[MemberSource] = mapped_column(str_enum(MemberSource, 10))
    member_card: Mapped[str | None] = mapped_column(String(40))
    marketing_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    consent_given_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    consent_withdrawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Who recorded the latest consent decision: "consumer", "terminal:trm_…", "key:key_…".
    consent_recorded_by: Mapped[str | None] = mapped_column(String(60))
    first_visit_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_visit_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    visit_count: Mapped[int] = mapped_column(Integer, default=0)
    total_spent: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ConsentEvent(Base):
    """Append-only record of every consent decision, so a merchant can show when and how."""

    __tablename__ = "consent_events"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    membership_id: Mapped[str] = mapped_column(ForeignKey("memberships.id"), index=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    consumer_id: Mapped[str] = mapped_column(ForeignKey("consumers.id"), index=True)
    marketing_consent: Mapped[bool] = mapped_column(Boolean)
    recorded_by: Mapped[str] = mapped_column(String(60))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
