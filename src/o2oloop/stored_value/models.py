"""A merchant's stored-value program; the balances themselves are ledger escrow accounts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey
from sqlalchemy.orm import Mapped, mapped_column

from o2oloop.db import Base, UTCDateTime


class StoredValueProgram(Base):
    """A merchant's stored-value card: top-up tiers with a merchant-funded bonus.

    tiers: [{"pay": 50000, "bonus": 5000}] — pay 500.00, get 550.00. A top-up earns the bonus
    of the largest tier whose `pay` it reaches.
    """

    __tablename__ = "stored_value_programs"

    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), primary_key=True)
    tiers: Mapped[list[dict[str, int]]] = mapped_column(JSON)
    active: Mapped[bool] = mapped_column(default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
