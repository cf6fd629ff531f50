"""Double-entry ledger: accounts and immutable transactions of balanced entries.

Sign convention: an entry's amount is what flows *into* an account, in signed integer minor
units. Liabilities the platform holds for someone (escrow, merchant payable, commission
revenue) have positive balances; the money the platform has at the payment provider
(`provider_clearing`) is an asset, so its balance is negative while money sits there. The
entries of every transaction sum to zero per currency, so all balances together sum to zero.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, String
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
