"""Visits: one row per consumption recorded at a store (a POS payment, a redemption)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from o2oloop.db import Base, UTCDateTime, str_enum


class VisitSource(enum.StrEnum):
    POS = "pos"
    REDEMPTION = "redemption"
    ONLINE = "online"


class Visit(Base):
    """A consumption fact. After a consumer's erasure it stays, anonymous, for aggregates."""

    __tablename__ = "visits"
    __table_args__ = (
        Index("ix_visits_merchant_occurred", "merchant_id", "occurred_at"),
        Index("ix_visits_store_occurred", "store_id", "occurred_at"),
        Index("ix_visits_merchant_consumer", "merchant_id", "consumer_id"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"))
    terminal_id: Mapped[str | None] = mapped_column(ForeignKey("terminals.id"))
    consumer_id: Mapped[str | None] = mapped_column(ForeignKey("consumers.id"), index=True)
    member_id: Mapped[str | None] = mapped_column(ForeignKey("memberships.id"), index=True)
    amount: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    source: Mapped[VisitSource] = mapped_column(str_enum(VisitSource, 12))
    # The code the cashier scanned, as typed; linked to its redemption once codes land.
    code: Mapped[str | None] = mapped_column(String(64))
    # At most one visit per redemption.
    redemption_id: Mapped[str | None] = mapped_column(String(32), index=True, unique=True)
    # [{"name": "Latte", "quantity": 2, "amount": 3600}]: line totals in minor units.
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
