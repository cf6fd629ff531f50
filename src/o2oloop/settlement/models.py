"""Settlement batches: per merchant, the payable entries up to a cutoff, paid out once.

The ledger knows nothing of batches: a batch only points at ledger entries (`settlement_lines`).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from o2oloop.db import Base, UTCDateTime, str_enum


class SettlementStatus(enum.StrEnum):
    PAYOUT_PENDING = "payout_pending"  # payout requested from the provider
    PAID = "paid"  # the provider confirmed the payout
    PAYOUT_FAILED = "payout_failed"  # the provider refused: the money went back to payable
    CARRIED_FORWARD = "carried_forward"  # nothing (or a negative amount) to pay this time


class SettlementBatch(Base):
    __tablename__ = "settlement_batches"
    # One sequence per merchant: two concurrent settlements cannot both be batch n.
    __table_args__ = (UniqueConstraint("merchant_id", "sequence"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    sequence: Mapped[int] = mapped_column(Integer)
    currency: Mapped[str] = mapped_column(String(3))
    cutoff: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[SettlementStatus] = mapped_column(str_enum(SettlementStatus, 20))
    # carried_in (from the previous batch) + net (this batch's lines) = payout + carried_out
    carried_in: Mapped[int] = mapped_column(BigInteger)
    net: Mapped[int] = mapped_column(BigInteger)
    payout_amount: Mapped[int] = mapped_column(BigInteger)
    carried_out: Mapped[int] = mapped_column(BigInteger)
    line_count: Mapped[int] = mapped_column(Integer)
    payout_operation_id: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SettlementLine(Base):
    """One merchant-payable entry taken into one batch; an entry can be settled only once."""

    __tablename__ = "settlement_lines"

    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id"), primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("settlement_batches.id"), index=True)
