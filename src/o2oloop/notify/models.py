"""Messages to consumers (the in-app inbox and what leaves by SMS, email or webhook), and the
sandbox SMS provider's own books."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from o2oloop.db import Base, UTCDateTime, str_enum


class MessageState(enum.StrEnum):
    QUEUED = "queued"  # waiting for the dispatcher (and for the end of quiet hours)
    SENDING = "sending"  # claimed by a dispatcher until `lease_until`
    SENT = "sent"  # accepted by the provider; a delivery report will follow
    DELIVERED = "delivered"
    FAILED = "failed"


class Message(Base):
    __tablename__ = "notify_messages"
    __table_args__ = (
        Index("ix_notify_messages_state_not_before", "state", "not_before"),
        Index("ix_notify_messages_consumer_channel", "consumer_id", "channel"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    consumer_id: Mapped[str] = mapped_column(ForeignKey("consumers.id"))
    merchant_id: Mapped[str | None] = mapped_column(String(32))
    campaign_id: Mapped[str | None] = mapped_column(String(32), index=True)
    channel: Mapped[str] = mapped_column(String(10))
    to_address: Mapped[str | None] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200), default="")
    body: Mapped[str] = mapped_column(Text)
    # Membership the unsubscribe link withdraws consent from.
    member_id: Mapped[str | None] = mapped_column(String(32))
    state: Mapped[MessageState] = mapped_column(str_enum(MessageState, 10))
    not_before: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    provider_id: Mapped[str | None] = mapped_column(String(40), index=True)
    error: Mapped[str | None] = mapped_column(String(300))
    cost: Mapped[int] = mapped_column(Integer, default=0)  # minor units
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SandboxSms(Base):
    """What the sandbox SMS provider accepted; `reference` (our message id) is unique, so a
    resend after a crash is recognised and not delivered twice."""

    __tablename__ = "sms_sandbox_messages"

    provider_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    reference: Mapped[str] = mapped_column(String(40), unique=True)
    to: Mapped[str] = mapped_column(String(20))
    body: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(12))  # accepted, delivered, failed
    # What will become of it, decided on acceptance and told by the delivery report.
    fate: Mapped[str] = mapped_column(String(12), server_default="delivered")
    report_due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reported: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
