"""Posting to the ledger: balanced, single-currency, immutable transactions.

Every money movement in the product is one call to `post`. Corrections are new transactions
(`reverse`), never edits. Balances are the sum of entries; each account also carries a cached
balance, bumped in the same database transaction by a conditional UPDATE, so an escrow
account can never go below zero even under concurrent spends (the database decides, not a
Python lock). Accounts are updated in id order, so concurrent postings cannot deadlock.

Commission rounding rule (documented once, used everywhere): the platform's commission is
`amount.share_bps(commission_bps)`, rounded half up to a whole minor unit; the merchant gets
`amount - commission`, so any rounding remainder stays with the merchant.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.orm import Session, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from o2oloop import clock
from o2oloop.db import new_id
from o2oloop.errors import Conflict, ProblemError
from o2oloop.ledger.models import (
    NON_NEGATIVE,
    AccountKind,
    LedgerAccount,
    LedgerEntry,
    LedgerTransaction,
    TransactionKind,
)
from o2oloop.money import Money
from o2oloop.prepared import dialect_insert


class UnbalancedTransaction(ProblemError):
    """A programming error surfaced as a problem: the ledger refused a posting."""

    status, slug, title = 422, "unbalanced-transaction", "The ledger refused this posting"


class InsufficientFunds(Conflict):
    slug, title = "insufficient-funds", "Not enough money in the account"


class AlreadyReversed(Conflict):
    slug, title = "already-reversed", "This transaction was already reversed"


Posting = tuple[LedgerAccount, Money]

# ---- accounts ----------------------------------------------------------------------------


def account_key(
    kind: AccountKind, currency: str, merchant_id: str | None, consumer_id: str | None
) -> str:
    return f"{kind.value}:{merchant_id or ''}:{consumer_id or ''}:{currency}"


_ACCOUNT_BY_KEY = select(LedgerAccount).where(LedgerAccount.key == bindparam("key"))


def get_account(
    session: Session,
    kind: AccountKind,
    currency: str,
    *,
    merchant_id: str | None = None,
    consumer_id: str | None = None,
) -> LedgerAccount:
    """The one account for (kind, merchant, consumer, currency), created on first use.

    Creation is an INSERT … ON CONFLICT DO NOTHING on the unique key, so two transactions
    creating the same account at once both end up with the same row.
    """
    Money.zero(currency)  # validates the currency
    key = account_key(kind, currency, merchant_id, consumer_id)
    found = session.scalar(_ACCOUNT_BY_KEY, {"key": key})
    if found is not None:
        return found
    values = {
        "id": new_id("acc"),
        "key": key,
        "kind": kind,
        "currency": currency,
        "merchant_id": merchant_id,
        "consumer_id": consumer_id,
        "balance": 0,
        "created_at": clock.now(),
    }
    insert_or_ignore(session, LedgerAccount.__table__, values, key="key")
    return session.scalars(select(LedgerAccount).where(LedgerAccount.key == key)).one()


def insert_or_ignore(session: Session, table: Any, values: dict[str, Any], *, key: str) -> bool:
    """INSERT … ON CONFLICT (key) DO NOTHING on either backend; True when a row went in."""
    statement = (
        dialect_insert(session.get_bind().dialect.name)(table)
        .values(values)
        .on_conflict_do_nothing(index_elements=[key])
        .returning(table.c[key])
    )
    return session.execute(statement).first() is not None


def provider_clearing(session: Session, currency: str) -> LedgerAccount:
    return get_account(session, AccountKind.PROVIDER_CLEARING, currency)


def merchant_account(
    session: Session, kind: AccountKind, merchant_id: str, currency: str
) -> LedgerAccount:
    return get_account(session, kind, currency, merchant_id=merchant_id)


def merchant_accounts(
    session: Session, merchant_id: str, currency: str, *kinds: AccountKind
) -> list[LedgerAccount]:
    """Several accounts of one merchant in one query (created where missing)."""
    keys = [account_key(kind, currency, merchant_id, None) for kind in kinds]
    found = {
        account.key: account
        for account in session.scalars(select(LedgerAccount).where(LedgerAccount.key.in_(keys)))
    }
    return [
        found.get(key) or merchant_account(session, kind, merchant_id, currency)
        for key, kind in zip(keys, kinds, strict=True)
    ]


def stored_value_account(
    session: Session, *, consumer_id: str, merchant_id: str, currency: str
) -> LedgerAccount:
    return get_account(
        session,
        AccountKind.STORED_VALUE_ESCROW,
        currency,
        merchant_id=merchant_id,
        consumer_id=consumer_id,
    )


# ---- posting -----------------------------------------------------------------------------


def post(
    session: Session,
    *,
    kind: TransactionKind,
    entries: Sequence[Posting],
    reference: str,
    memo: str = "",
    reverses_id: str | None = None,
) -> LedgerTransaction:
    """Post one balanced transaction; refuse empty, unbalanced or mixed-currency ones.

    Zero-amount entries are dropped (a 0 % commission is no entry at all). Raises
    InsufficientFunds, and changes nothing, if an escrow-like account would go negative.
    """
    deltas: dict[str, int] = {}
    accounts: dict[str, LedgerAccount] = {}
    currencies: set[str] = set()
    for account, money in entries:
        if not isinstance(money, Money):
            raise TypeError("ledger entries take Money amounts")
        if money.currency != account.currency:
            raise UnbalancedTransaction(
                f"{money.currency} entry on a {account.currency} account ({account.kind.value})"
            )
        currencies.add(money.currency)
        if money.amount == 0:
            continue
        deltas[account.id] = deltas.get(account.id, 0) + money.amount
        accounts[account.id] = account
    if len(currencies) > 1:
        raise UnbalancedTransaction(
            "a transaction moves one currency; got " + ", ".join(sorted(currencies))
        )
    lines = [(account, money) for account, money in entries if money.amount != 0]
    if not lines:
        raise UnbalancedTransaction("a transaction needs at least one non-zero entry")
    total = sum(money.amount for _, money in lines)
    if total != 0:
        raise UnbalancedTransaction(f"entries sum to {total}, not zero")

    _apply_deltas(session, accounts, deltas)
    now = clock.now()
    values = {
        "id": new_id("ltx"),
        "kind": kind,
        "reference": reference,
        "memo": memo,
        "reverses_id": reverses_id,
        "created_at": now,
    }
    # Core INSERTs (no unit-of-work bookkeeping): postings are the ledger's hot path.
    session.execute(_INSERT_TRANSACTION, values)
    transaction = LedgerTransaction(**values)
    make_transient_to_detached(transaction)
    session.add(transaction)
    session.execute(
        _INSERT_ENTRIES,
        [
            {
                "transaction_id": transaction.id,
                "account_id": account.id,
                "amount": money.amount,
                "currency": money.currency,
                "created_at": now,
            }
            for account, money in lines
        ],
    )
    return transaction


_ACCOUNTS = LedgerAccount.__table__
# Built once: statements with bound parameters skip SQLAlchemy's per-call construction.
_BUMP = (
    update(_ACCOUNTS)
    .where(_ACCOUNTS.c.id == bindparam("account_id"))
    .values(balance=_ACCOUNTS.c.balance + bindparam("delta"))
    .returning(_ACCOUNTS.c.balance)
)
_BUMP_GUARDED = _BUMP.where(_ACCOUNTS.c.balance + bindparam("delta") >= 0)
_INSERT_TRANSACTION = insert(LedgerTransaction.__table__)
_INSERT_ENTRIES = insert(LedgerEntry.__table__)


def _apply_deltas(
    session: Session, accounts: dict[str, LedgerAccount], deltas: dict[str, int]
) -> None:
    """Bump cached balances in id order; a guarded account refuses to go below zero."""
    applied: list[tuple[str, int]] = []
    for account_id in sorted(deltas):
        delta = deltas[account_id]
        if delta == 0:
            continue
        account = accounts[account_id]
        guarded = delta < 0 and account.kind in NON_NEGATIVE
        new_balance = session.execute(
            _BUMP_GUARDED if guarded else _BUMP, {"account_id": account_id, "delta": delta}
        ).scalar()
        if new_balance is None:
            for undo_id, undo in applied:  # leave the transaction as we found it
                session.execute(_BUMP, {"account_id": undo_id, "delta": -undo})
            raise InsufficientFunds(
                f"the {account.kind.value.replace('_', ' ')} account does not hold "
                f"{Money(-delta, account.currency)}",
                account_id=account.id,
            )
        applied.append((account_id, delta))
        set_committed_value(account, "balance", new_balance)


def reverse(
    session: Session,
    transaction_id: str,
    *,
    memo: str = "",
) -> LedgerTransaction:
    """Post the exact negation of a transaction (at most once, enforced by a unique key)."""
    original = session.get(LedgerTransaction, transaction_id)
    if original is None:
        raise UnbalancedTransaction(f"no ledger transaction {transaction_id}")
    if original.kind is TransactionKind.REVERSAL:
        raise UnbalancedTransaction("a reversal is not reversed; post a new transaction")
    existing = session.scalar(
        select(LedgerTransaction.id).where(LedgerTransaction.reverses_id == transaction_id)
    )
    if existing is not None:
        raise AlreadyReversed(f"{transaction_id} was reversed by {existing}")
    rows = session.execute(
        select(LedgerAccount, LedgerEntry.amount)
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerEntry.transaction_id == transaction_id)
    ).all()
    return post(
        session,
        kind=TransactionKind.REVERSAL,
        entries=[(account, Money(-amount, account.currency)) for account, amount in rows],
        reference=original.reference,
        memo=memo or f"reversal of {transaction_id}",
        reverses_id=transaction_id,
    )


# ---- balances ----------------------------------------------------------------------------


def balance(session: Session, account: LedgerAccount, *, until: datetime | None = None) -> Money:
    """The balance derived from entries (the truth the cached column must agree with)."""
    query = select(func.coalesce(func.sum(LedgerEntry.amount), 0)).where(
        LedgerEntry.account_id == account.id
    )
    if until is not None:
        query = query.where(LedgerEntry.created_at <= until)
    return Money(int(session.scalar(query) or 0), account.currency)


def cached_balance(session: Session, account: LedgerAccount) -> Money:
    value = session.scalar(select(LedgerAccount.balance).where(LedgerAccount.id == account.id))
    return Money(int(value or 0), account.currency)


def entries_of(session: Session, transaction_id: str) -> list[tuple[LedgerAccount, Money]]:
    rows = session.execute(
        select(LedgerAccount, LedgerEntry.amount)
        .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
        .where(LedgerEntry.transaction_id == transaction_id)
        .order_by(LedgerEntry.id)
    ).all()
    return [(account, Money(amount, account.currency)) for account, amount in rows]


# ---- commission --------------------------------------------------------------------------


def split_commission(amount: Money, commission_bps: int) -> tuple[Money, Money]:
    """(merchant's share, platform's commission); the rounding remainder goes to the merchant."""
    commission = amount.share_bps(commission_bps)
    return amount - commission, commission


def pay_merchant_from(
    session: Session,
    *,
    kind: TransactionKind,
    source: LedgerAccount,
    merchant_id: str,
    amount: Money,
    commission_bps: int,
    reference: str,
    memo: str = "",
) -> LedgerTransaction:
    """Escrow → merchant payable, less the platform's commission."""
    if amount.amount <= 0:
        raise UnbalancedTransaction("amount must be positive")
    merchant_share, commission = split_commission(amount, commission_bps)
    payable, revenue = merchant_accounts(
        session,
        merchant_id,
        amount.currency,
        AccountKind.MERCHANT_PAYABLE,
        AccountKind.PLATFORM_COMMISSION,
    )
    return post(
        session,
        kind=kind,
        entries=[(source, -amount), (payable, merchant_share), (revenue, commission)],
        reference=reference,
        memo=memo,
    )


# ---- vouchers (the hooks the codes domain calls) -----------------------------------------


def escrow_voucher_payment(
    session: Session, *, merchant_id: str, price: Money, reference: str
) -> LedgerTransaction:
    """A voucher's price, paid through the provider, enters the merchant's voucher escrow.

    Payment intents of purpose "voucher" call this on the provider's success; `reference`
    is the provider's charge id so reconciliation can match it line by line.
    """
    escrow = merchant_account(session, AccountKind.VOUCHER_ESCROW, merchant_id, price.currency)
    return post(
        session,
        kind=TransactionKind.VOUCHER_PAYMENT,
        entries=[(provider_clearing(session, price.currency), -price), (escrow, price)],
        reference=reference,
    )


def release_voucher_to_merchant(
    session: Session, *, merchant_id: str, price: Money, commission_bps: int, reference: str
) -> LedgerTransaction:
    """On redemption: the price leaves escrow for the merchant, less commission.

    Undo of the redemption is `reverse(session, <this transaction's id>)`.
    """
    escrow = merchant_account(session, AccountKind.VOUCHER_ESCROW, merchant_id, price.currency)
    return pay_merchant_from(
        session,
        kind=TransactionKind.VOUCHER_REDEMPTION,
        source=escrow,
        merchant_id=merchant_id,
        amount=price,
        commission_bps=commission_bps,
        reference=reference,
    )


def balances_by_kind(
    session: Session, *, merchant_id: str, currency: str
) -> dict[AccountKind, int]:
    """A merchant's balances in one currency, summed by account kind (stored value over all
    of its consumers)."""
    rows = session.execute(
        select(LedgerAccount.kind, func.sum(LedgerAccount.balance))
        .where(LedgerAccount.merchant_id == merchant_id, LedgerAccount.currency == currency)
        .group_by(LedgerAccount.kind)
    ).all()
    return {kind: int(total or 0) for kind, total in rows}
