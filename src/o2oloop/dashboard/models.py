"""One row per store and store-local hour: what the dashboard reads instead of every visit."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer
from sqlalchemy.orm import Mapped, mapped_column

from o2oloop.db import Base, UTCDateTime


class StoreHour(Base):
    """Visits, revenue, redemptions and visiting members of one store in one local hour.

    A derived table: every row can be recounted from `visits` and `redemptions` at any
    time (`dashboard.hours.recount`), so a handler that runs twice does no harm.
    `new_members` and `returning_members` count each member once per merchant-local week,
    in the hour of their first visit of that week (so an hour's figures add up to a week's).
    """

    __tablename__ = "store_hours"
    __table_args__ = (Index("ix_store_hours_merchant_starts", "merchant_id", "starts_at"),)

    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), primary_key=True)
    # The UTC instant the store-local hour begins.
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"))
    local_date: Mapped[date] = mapped_column(Date)
    weekday: Mapped[int] = mapped_column(Integer)  # Monday = 0, store-local
    hour: Mapped[int] = mapped_column(Integer)  # 0-23, store-local
    visits: Mapped[int] = mapped_column(Integer, default=0)
    revenue: Mapped[int] = mapped_column(Integer, default=0)  # minor units
    redemptions: Mapped[int] = mapped_column(Integer, default=0)
    new_members: Mapped[int] = mapped_column(Integer, default=0)
    returning_members: Mapped[int] = mapped_column(Integer, default=0)
