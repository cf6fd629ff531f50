"""Reconciliation: every way the books can disagree, listed line by line.

An empty report means: every transaction balances in one currency; every cached balance
equals the sum of its entries; no escrow or in-transit account is negative; money in transit
equals the provider operations still pending; each merchant's payable equals what its last
settlement carried forward plus its unsettled entries; provider clearing matches, object by
object, what the payment provider itself recorded; and each merchant's voucher escrow equals
the prices of its unused paid codes (stored-value escrow *is* the balances, account by
account).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from o2oloop.codes.models import Code, CodeState
from o2oloop.ledger.models import (
    NON_NEGATIVE,
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
)
from o2oloop.payments.models import IntentStatus, ProviderOperation, SandboxRecord
from o2oloop.settlement.models import SettlementBatch, SettlementLine


@dataclass(frozen=True)
class Difference:
    check: str
    subject: str
    expected: int
    actual: int
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


Check = Callable[[Session], list[Difference]]


def _unbalanced(session: Session) -> list[Difference]:
    rows = session.execute(
        select(
            LedgerEntry.transaction_id,
            func.sum(LedgerEntry.amount),
            func.count(func.distinct(LedgerEntry.currency)),
        )
        .group_by(LedgerEntry.transaction_id)
        .having(
            (func.sum(LedgerEntry.amount) != 0)
            | (func.count(func.distinct(LedgerEntry.currency)) > 1)
        )
    ).all()
    return [
        Difference("transaction_balances", tx, 0, int(total), f"{currencies} currencies")
        for tx, total, currencies in rows
    ]


def _cached_balances(session: Session) -> list[Difference]:
    derived = (
        select(LedgerEntry.account_id, func.sum(LedgerEntry.amount).label("total"))
        .group_by(LedgerEntry.account_id)
        .subquery()
    )
    total = func.coalesce(derived.c.total, 0)
    rows = session.execute(
        select(LedgerAccount.id, LedgerAccount.balance, total)
        .outerjoin(derived, derived.c.account_id == LedgerAccount.id)
        .where(LedgerAccount.balance != total)
    ).all()
    return [
        Difference("cached_balance", account, int(derived_total), int(cached), "cached ≠ entries")
        for account, cached, derived_total in rows
    ]


def _negative(session: Session) -> list[Difference]:
    rows = session.execute(
        select(LedgerAccount.id, LedgerAccount.kind, LedgerAccount.balance).where(
            LedgerAccount.kind.in_(sorted(NON_NEGATIVE)), LedgerAccount.balance < 0
        )
    ).all()
    return [
        Difference("non_negative", account, 0, int(value), f"{kind.value} below zero")
        for account, kind, value in rows
    ]


def _in_transit(session: Session) -> list[Difference]:
    pending = dict(
        session.execute(
            select(ProviderOperation.transit_account_id, func.sum(ProviderOperation.amount))
            .where(ProviderOperation.status == IntentStatus.PENDING)
            .group_by(ProviderOperation.transit_account_id)
        ).all()
    )
    accounts = dict(
        session.execute(
            select(LedgerAccount.id, LedgerAccount.balance).where(
                LedgerAccount.kind.in_(
                    [AccountKind.PAYOUTS_IN_TRANSIT, AccountKind.REFUNDS_IN_TRANSIT]
                )
            )
        ).all()
    )
    out = []
    for account in sorted(set(pending) | set(accounts)):
        expected, actual = int(pending.get(account) or 0), int(accounts.get(account) or 0)
        if expected != actual:
            out.append(
                Difference("in_transit", account, expected, actual, "pending provider operations")
            )
    return out


def _settlement(session: Session) -> list[Difference]:
    unsettled = (
        select(LedgerEntry.account_id, func.sum(LedgerEntry.amount).label("total"))
        .outerjoin(SettlementLine, SettlementLine.entry_id == LedgerEntry.id)
        .where(SettlementLine.entry_id.is_(None))
        .group_by(LedgerEntry.account_id)
        .subquery()
    )
    last = (
        select(SettlementBatch.merchant_id, func.max(SettlementBatch.sequence).label("sequence"))
        .group_by(SettlementBatch.merchant_id)
        .subquery()
    )
    carried = (
        select(SettlementBatch.merchant_id, SettlementBatch.carried_out)
        .join(
            last,
            (last.c.merchant_id == SettlementBatch.merchant_id)
            & (last.c.sequence == SettlementBatch.sequence),
        )
        .subquery()
    )
    rows = session.execute(
        select(
            LedgerAccount.id,
            LedgerAccount.balance,
            func.coalesce(unsettled.c.total, 0),
            func.coalesce(carried.c.carried_out, 0),
        )
        .outerjoin(unsettled, unsettled.c.account_id == LedgerAccount.id)
        .outerjoin(carried, carried.c.merchant_id == LedgerAccount.merchant_id)
        .where(LedgerAccount.kind == AccountKind.MERCHANT_PAYABLE)
    ).all()
    return [
        Difference(
            "settlement",
            account,
            int(open_total) + int(carried_out),
            int(value),
            "payable ≠ carried forward + unsettled entries",
        )
        for account, value, open_total, carried_out in rows
        if int(value) != int(open_total) + int(carried_out)
    ]


def _provider(session: Session) -> list[Difference]:
    """Provider clearing, object by object, against the provider's own records."""
    expected: dict[tuple[str, str], int] = {}
    for record_id, obj, amount, currency in session.execute(
        select(
            SandboxRecord.id, SandboxRecord.object, SandboxRecord.amount, SandboxRecord.currency
        ).where(SandboxRecord.status == "succeeded")
    ):
        # Money in at the provider is a debit (negative) on clearing; money out a credit.
        expected[(record_id, currency)] = -int(amount) if obj == "charge" else int(amount)
    actual: dict[tuple[str, str], int] = {}
    for reference, currency, total in session.execute(
        select(LedgerTransaction.reference, LedgerEntry.currency, func.sum(LedgerEntry.amount))
        .join(LedgerEntry, LedgerEntry.transaction_id == LedgerTransaction.id)
        .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
        .where(LedgerAccount.kind == AccountKind.PROVIDER_CLEARING)
        .group_by(LedgerTransaction.reference, LedgerEntry.currency)
    ):
        actual[(reference, currency)] = int(total)
    out = []
    for key in sorted(set(expected) | set(actual)):
        want, have = expected.get(key, 0), actual.get(key, 0)
        if want != have:
            detail = (
                "provider recorded it, the ledger did not"
                if key not in actual
                else "the ledger recorded it, the provider did not"
                if key not in expected
                else "amounts differ"
            )
            out.append(Difference("provider_clearing", f"{key[0]} {key[1]}", want, have, detail))
    return out


def _voucher_escrow(session: Session) -> list[Difference]:
    """Each merchant's voucher escrow holds exactly the price of its unused paid codes."""
    unused = dict(
        session.execute(
            select(Code.merchant_id, func.sum(Code.price_paid))
            .where(Code.state == CodeState.ACTIVE, Code.price_paid > 0)
            .group_by(Code.merchant_id)
        ).all()
    )
    escrow = dict(
        session.execute(
            select(LedgerAccount.merchant_id, func.sum(LedgerAccount.balance))
            .where(LedgerAccount.kind == AccountKind.VOUCHER_ESCROW)
            .group_by(LedgerAccount.merchant_id)
        ).all()
    )
    out = []
    for merchant_id in sorted(set(unused) | set(escrow)):
        expected, actual = int(unused.get(merchant_id) or 0), int(escrow.get(merchant_id) or 0)
        if expected != actual:
            out.append(
                Difference(
                    "voucher_escrow", merchant_id, expected, actual, "escrow ≠ unused paid codes"
                )
            )
    return out


CHECKS: tuple[Check, ...] = (
    _unbalanced,
    _cached_balances,
    _negative,
    _in_transit,
    _settlement,
    _provider,
    _voucher_escrow,
)


def report(session: Session) -> list[Difference]:
    """Every difference found; empty when the books agree."""
    differences: list[Difference] = []
    for check in CHECKS:
        differences.extend(check(session))
    return differences
