"""Codes (claimed or bought rights), bulk batches, redemptions and the attempt log."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, text
from sqlalchemy.orm import Mapped, mapped_column

from o2oloop.db import Base, UTCDateTime, str_enum


class CodeState(enum.StrEnum):
    ACTIVE = "active"
    REDEEMED = "redeemed"
    REFUNDED = "refunded"
    VOID = "void"


class RedemptionState(enum.StrEnum):
    REDEEMED = "redeemed"
    UNDONE = "undone"


class Code(Base):
    """One exclusive right of one consumer. Only a keyed digest of the code is stored."""

    __tablename__ = "codes"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"), index=True)
    consumer_id: Mapped[str | None] = mapped_column(ForeignKey("consumers.id"), index=True)
    digest: Mapped[bytes] = mapped_column(LargeBinary(16), unique=True)
    state: Mapped[CodeState] = mapped_column(str_enum(CodeState))
    claimed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), index=True)
    redeemed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # What the consumer paid for a prepaid voucher (0 for a free claim), and the payment.
    price_paid: Mapped[int] = mapped_column(Integer, default=0)
    payment_intent_id: Mapped[str | None] = mapped_column(String(32))

    __table_args__ = (
        # One code per paid voucher, however often its PaymentSucceeded handler runs.
        Index(
            "ix_codes_payment_intent",
            "payment_intent_id",
            unique=True,
            sqlite_where=text("payment_intent_id IS NOT NULL"),
            postgresql_where=text("payment_intent_id IS NOT NULL"),
        ),
    )


class CodeBatch(Base):
    """A brand campaign's bulk codes: derived from (batch_no, index), no row per code."""

    __tablename__ = "code_batches"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"), index=True)
    batch_no: Mapped[int] = mapped_column(Integer, unique=True)
    count: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class BatchCodeUse(Base):
    """A used batch code: the primary key makes a second use impossible."""

    __tablename__ = "batch_code_uses"

    batch_id: Mapped[str] = mapped_column(ForeignKey("code_batches.id"), primary_key=True)
    code_index: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    redemption_id: Mapped[str] = mapped_column(String(32))


class OfferClaim(Base):
    """How many codes of an offer a consumer has claimed; bumped under its limit."""

    __tablename__ = "offer_claims"

    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"), primary_key=True)
    consumer_id: Mapped[str] = mapped_column(ForeignKey("consumers.id"), primary_key=True)
    claimed: Mapped[int] = mapped_column(Integer, default=0)


class Redemption(Base):
    __tablename__ = "redemptions"
    # A customer's redemptions at a merchant, of an offer: the new-customer and
    # per-customer-limit rules read exactly this at the counter.
    __table_args__ = (
        Index("ix_redemptions_consumer_merchant_offer", "consumer_id", "merchant_id", "offer_id"),
        # The dashboard's hourly aggregate recounts one store's hour from this.
        Index("ix_redemptions_store_redeemed_at", "store_id", "redeemed_at"),
    )

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), index=True)
    terminal_id: Mapped[str] = mapped_column(ForeignKey("terminals.id"))
    offer_id: Mapped[str] = mapped_column(ForeignKey("offers.id"), index=True)
    code_id: Mapped[str | None] = mapped_column(ForeignKey("codes.id"), index=True)
    batch_id: Mapped[str | None] = mapped_column(ForeignKey("code_batches.id"))
    code_index: Mapped[int | None] = mapped_column(Integer)
    consumer_id: Mapped[str | None] = mapped_column(ForeignKey("consumers.id"))
    bill_amount: Mapped[int | None] = mapped_column(Integer)
    discount_amount: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[RedemptionState] = mapped_column(str_enum(RedemptionState))
    # The escrow release of a paid voucher; undo reverses exactly this posting.
    ledger_transaction_id: Mapped[str | None] = mapped_column(String(32))
    redeemed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class RedemptionAttempt(Base):
    """Every scan or typed code at a terminal, with the precise reason, for the merchant."""

    __tablename__ = "redemption_attempts"
    # The rate limit counts a terminal's rejected attempts of the last minute: with `accepted`
    # in the key that is a few index entries, not every accepted attempt of the minute.
    __table_args__ = (
        Index("ix_redemption_attempts_terminal_accepted_at", "terminal_id", "accepted", "at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    merchant_id: Mapped[str] = mapped_column(ForeignKey("merchants.id"), index=True)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"))
    terminal_id: Mapped[str] = mapped_column(ForeignKey("terminals.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    accepted: Mapped[bool] = mapped_column(default=False)
    reason: Mapped[str] = mapped_column(String(500))
    redemption_id: Mapped[str | None] = mapped_column(String(32))
