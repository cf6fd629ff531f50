"""Payment intents and provider operations (the platform's side) and the sandbox provider's
own books (what a real provider would keep on its side, used for reconciliation)."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from o2oloop.db import Base, UTCDateTime, str_enum


class IntentStatus(enum.StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class PaymentIntent(Base):
    """A consumer paying the platform for something (a voucher, a stored-value top-up)."""

    __tablename__ = "payment_intents"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    consumer_id: Mapped[str] = mapped_column(ForeignKey("consumers.id"), index=True)
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    # "voucher", "stored_value_top_up", or another domain's purpose (it reacts to the events).
    purpose: Mapped[str] = mapped_column(String(40))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # Merchant-funded extra value (stored-value bonus); never charged, never platform money.
    bonus: Mapped[int] = mapped_column(BigInteger, default=0)
    reference: Mapped[str] = mapped_column(String(120), index=True)
    status: Mapped[IntentStatus] = mapped_column(str_enum(IntentStatus, 12))
    failure_reason: Mapped[str | None] = mapped_column(String(60))
    provider: Mapped[str] = mapped_column(String(20))
    # Set by the provider's webhook: the charge is asked for after the intent is committed.
    provider_charge_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    ledger_transaction_id: Mapped[str | None] = mapped_column(String(32))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OperationKind(enum.StrEnum):
    REFUND = "refund"
    PAYOUT = "payout"


class ProviderOperation(Base):
    """A refund or payout the platform asked the provider for; money waits in transit."""

    __tablename__ = "provider_operations"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[OperationKind] = mapped_column(str_enum(OperationKind, 10))
    status: Mapped[IntentStatus] = mapped_column(str_enum(IntentStatus, 12))
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    consumer_id: Mapped[str | None] = mapped_column(ForeignKey("consumers.id"), index=True)
    payment_intent_id: Mapped[str | None] = mapped_column(ForeignKey("payment_intents.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # Where the money waits, and where it goes back if the provider refuses.
    transit_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    source_account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    reference: Mapped[str] = mapped_column(String(120), index=True)
    provider_object_id: Mapped[str | None] = mapped_column(String(40), unique=True)
    failure_reason: Mapped[str | None] = mapped_column(String(60))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ProcessedWebhookEvent(Base):
    """Provider event ids already handled: the primary key makes a replay a no-op."""

    __tablename__ = "processed_webhook_events"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(20))
    type: Mapped[str] = mapped_column(String(40))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())


# ---- the sandbox provider's own books ----------------------------------------------------


class SandboxRecord(Base):
    """A charge, refund or payout as the sandbox provider records it.

    `reference` is the platform's idempotency key (the intent's or operation's id): one
    object per key, however often it is asked for.
    """

    __tablename__ = "sandbox_provider_records"
    __table_args__ = (Index("ix_sandbox_provider_records_key", "object", "reference", unique=True),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    object: Mapped[str] = mapped_column(String(10))  # charge | refund | payout
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    reference: Mapped[str] = mapped_column(String(120))
    charge_id: Mapped[str | None] = mapped_column(String(40))  # what a refund refunds
    destination: Mapped[str | None] = mapped_column(String(60))  # who a payout pays
    behaviour: Mapped[str] = mapped_column(String(12))
    status: Mapped[str] = mapped_column(String(12), index=True)  # pending|succeeded|failed
    failure_code: Mapped[str | None] = mapped_column(String(40))
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class SandboxEvent(Base):
    """A webhook event the sandbox owes the platform, with its delivery attempts."""

    __tablename__ = "sandbox_provider_events"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    record_id: Mapped[str] = mapped_column(ForeignKey("sandbox_provider_records.id"), index=True)
    type: Mapped[str] = mapped_column(String(40))
    payload: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_status: Mapped[int | None] = mapped_column(Integer)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
