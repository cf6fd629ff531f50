"""API keys: stored only as hashes, each bound to a role and, where it applies, a tenant."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from o2oloop.db import Base, UTCDateTime, str_enum


class Role(enum.StrEnum):
    PLATFORM_ADMIN = "platform_admin"
    MERCHANT_ADMIN = "merchant_admin"
    MERCHANT_STAFF = "merchant_staff"
    TERMINAL = "terminal"
    CONSUMER = "consumer"


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    role: Mapped[Role] = mapped_column(str_enum(Role, 20))
    label: Mapped[str] = mapped_column(String(120), default="")
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    store_id: Mapped[str | None] = mapped_column(ForeignKey("stores.id"))
    staff_id: Mapped[str | None] = mapped_column(ForeignKey("staff.id"), index=True)
    terminal_id: Mapped[str | None] = mapped_column(ForeignKey("terminals.id"), index=True)
    consumer_id: Mapped[str | None] = mapped_column(ForeignKey("consumers.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
