"""Consumers are platform-wide; memberships of merchants are scoped to each merchant."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from o2oloop.db import Base, UTCDateTime


class Consumer(Base):
    __tablename__ = "consumers"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(80), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
