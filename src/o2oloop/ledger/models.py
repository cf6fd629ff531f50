"""Double-entry ledger: accounts, immutable transactions of balanced entries, settlement batches.

Sign convention: an entry's amount is what flows *into* an account, in signed integer minor
units. Liabilities the platform holds for someone (escrow, merchant payable, commission
revenue) have positive balances; the money the platform has at the payment provider
(`provider_clearing`) is an asset, so its balance is negative while money sits there. The
entries of every transaction sum to zero per currency, so all balances together sum to zero.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from o2oloop.db import Base, UTCDateTime, str_enum

# Integer primary keys that autoincrement on both backends (SQLite needs plain INTEGER).
BigId = BigInteger().with_variant(Integer(), "sqlite")


class AccountKind(enum.StrEnum):
    # Money the platform has at the payment provider (an asset: negative balance).
    PROVIDER_CLEARING = "provider_clearing"
    # Paid, unused vouchers of one merchant.
    VOUCHER_ESCROW = "voucher_escrow"
    # One consumer's stored-value balance at one merchant.
    STORED_VALUE_ESCROW = "stored_value_escrow"
    # What the platform owes one merchant (may go negative: carried into the next batch).
    MERCHANT_PAYABLE = "merchant_payable"
    # The platform's commission revenue earned from one merchant.
    PLATFORM_COMMISSION = "platform_commission"
    # A payout to one merchant requested from the provider and not yet confirmed.
    PAYOUTS_IN_TRANSIT = "payouts_in_transit"
    # Refunds to consumers requested from the provider and not yet confirmed (per merchant).
    REFUNDS_IN_TRANSIT = "refunds_in_transit"


# Accounts whose balance may never drop below zero: checked by a conditional UPDATE.
NON_NEGATIVE = frozenset(
    {
        AccountKind.VOUCHER_ESCROW,
        AccountKind.STORED_VALUE_ESCROW,
        AccountKind.PAYOUTS_IN_TRANSIT,
        AccountKind.REFUNDS_IN_TRANSIT,
    }
)


class TransactionKind(enum.StrEnum):
    VOUCHER_PAYMENT = "voucher_payment"  # provider clearing → voucher escrow
    VOUCHER_REDEMPTION = "voucher_redemption"  # escrow → merchant payable + commission
    VOUCHER_REFUND = "voucher_refund"  # escrow → refunds in transit
    STORED_VALUE_TOP_UP = "stored_value_top_up"  # clearing (+ merchant bonus) → escrow
    STORED_VALUE_SPEND = "stored_value_spend"  # escrow → merchant payable + commission
    STORED_VALUE_REFUND = "stored_value_refund"  # escrow → refunds in transit (closure)
    REFUND_COMPLETED = "refund_completed"  # refunds in transit → provider clearing
    REFUND_FAILED = "refund_failed"  # refunds in transit → back where it came from
    PAYOUT_REQUESTED = "payout_requested"  # merchant payable → payouts in transit
    PAYOUT_PAID = "payout_paid"  # payouts in transit → provider clearing
    PAYOUT_FAILED = "payout_failed"  # payouts in transit → merchant payable
    REVERSAL = "reversal"  # the exact negation of an earlier transaction
    REFERRAL_REWARD = "referral_reward"  # merchant payable → a sharer's stored-value escrow
    ADJUSTMENT = "adjustment"  # anything else (tests, benchmarks, manual corrections)


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # "kind:merchant:consumer:currency" — unique, because NULLs never collide in UNIQUE.
    key: Mapped[str] = mapped_column(String(120), unique=True)
    kind: Mapped[AccountKind] = mapped_column(str_enum(AccountKind, 30))
    currency: Mapped[str] = mapped_column(String(3))
    merchant_id: Mapped[str | None] = mapped_column(ForeignKey("merchants.id"), index=True)
    consumer_id: Mapped[str | None] = mapped_column(ForeignKey("consumers.id"), index=True)
    # Cached sum of this account's entries, bumped in the posting's own transaction.
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LedgerTransaction(Base):
    __tablename__ = "ledger_transactions"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[TransactionKind] = mapped_column(str_enum(TransactionKind, 30))
    reference: Mapped[str] = mapped_column(String(120), index=True)
    memo: Mapped[str] = mapped_column(String(300), default="")
    # A transaction is reversed at most once: the database refuses a second reversal.
    reverses_id: Mapped[str | None] = mapped_column(
        ForeignKey("ledger_transactions.id"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (Index("ix_ledger_entries_account_created", "account_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    transaction_id: Mapped[str] = mapped_column(ForeignKey("ledger_transactions.id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("ledger_accounts.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(3))
    # Copied from the transaction so settlement can select by account and time alone.
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


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
