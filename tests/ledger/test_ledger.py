"""The ledger refuses what does not balance, never edits, and derives balances from entries."""

from __future__ import annotations

import pytest

from factories import make_consumer, make_tenant
from o2oloop.db import Database
from o2oloop.ledger import service as ledger
from o2oloop.ledger.models import AccountKind, LedgerEntry, TransactionKind
from o2oloop.money import Money


def _accounts(session, merchant_id: str, consumer_id: str):
    clearing = ledger.provider_clearing(session, "CNY")
    escrow = ledger.stored_value_account(
        session, consumer_id=consumer_id, merchant_id=merchant_id, currency="CNY"
    )
    payable = ledger.merchant_account(session, AccountKind.MERCHANT_PAYABLE, merchant_id, "CNY")
    return clearing, escrow, payable


def test_balanced_posting_and_derived_balances(db: Database) -> None:
    tenant = make_tenant(db)
    consumer, _ = make_consumer(db)
    with db.transaction() as session:
        clearing, escrow, payable = _accounts(session, tenant.merchant_id, consumer)
        tx = ledger.post(
            session,
            kind=TransactionKind.ADJUSTMENT,
            entries=[
                (clearing, Money(-1000, "CNY")),
                (escrow, Money(900, "CNY")),
                (payable, Money(100, "CNY")),
            ],
            reference="test",
        )
        assert len(ledger.entries_of(session, tx.id)) == 3
    with db.transaction() as session:
        clearing, escrow, payable = _accounts(session, tenant.merchant_id, consumer)
        for account, expected in ((clearing, -1000), (escrow, 900), (payable, 100)):
            assert ledger.balance(session, account) == Money(expected, "CNY")
            assert ledger.cached_balance(session, account) == Money(expected, "CNY")


def test_the_same_account_is_created_once(db: Database) -> None:
    tenant = make_tenant(db)
    with db.transaction() as session:
        a = ledger.merchant_account(
            session, AccountKind.MERCHANT_PAYABLE, tenant.merchant_id, "CNY"
        )
        b = ledger.merchant_account(
            session, AccountKind.MERCHANT_PAYABLE, tenant.merchant_id, "CNY"
        )
        c = ledger.merchant_account(
            session, AccountKind.MERCHANT_PAYABLE, tenant.merchant_id, "USD"
        )
        assert a.id == b.id != c.id


@pytest.mark.parametrize(
    ("amounts", "message"),
    [
        ([], "at least one"),
        ([0, 0], "at least one"),
        ([-100, 99], "sum to -1"),
        ([100], "sum to 100"),
    ],
)
def test_unbalanced_or_empty_is_refused(db: Database, amounts: list[int], message: str) -> None:
    tenant = make_tenant(db)
    consumer, _ = make_consumer(db)
    with db.transaction() as session:
        clearing, _, payable = _accounts(session, tenant.merchant_id, consumer)
        accounts = [clearing, payable]
        with pytest.raises(ledger.UnbalancedTransaction, match=message):
            ledger.post(
                session,
                kind=TransactionKind.ADJUSTMENT,
                entries=[(accounts[i], Money(a, "CNY")) for i, a in enumerate(amounts)],
                reference="bad",
            )
        assert session.query(LedgerEntry).count() == 0


def test_mixed_currencies_are_refused(db: Database) -> None:
    tenant = make_tenant(db)
    with db.transaction() as session:
        cny = ledger.merchant_account(
            session, AccountKind.MERCHANT_PAYABLE, tenant.merchant_id, "CNY"
        )
        usd = ledger.merchant_account(
            session, AccountKind.MERCHANT_PAYABLE, tenant.merchant_id, "USD"
        )
        with pytest.raises(ledger.UnbalancedTransaction, match="one currency"):
            ledger.post(
                session,
                kind=TransactionKind.ADJUSTMENT,
                entries=[(cny, Money(-100, "CNY")), (usd, Money(100, "USD"))],
                reference="bad",
            )
        with pytest.raises(ledger.UnbalancedTransaction, match="USD entry on a CNY account"):
            ledger.post(
                session,
                kind=TransactionKind.ADJUSTMENT,
                entries=[(cny, Money(-100, "USD")), (usd, Money(100, "USD"))],
                reference="bad",
            )


def test_escrow_never_goes_negative_and_a_refusal_changes_nothing(db: Database) -> None:
    tenant = make_tenant(db)
    consumer, _ = make_consumer(db)
    with db.transaction() as session:
        clearing, escrow, payable = _accounts(session, tenant.merchant_id, consumer)
        ledger.post(
            session,
            kind=TransactionKind.ADJUSTMENT,
            entries=[(clearing, Money(-500, "CNY")), (escrow, Money(500, "CNY"))],
            reference="fund",
        )
    with db.transaction() as session:
        clearing, escrow, payable = _accounts(session, tenant.merchant_id, consumer)
        with pytest.raises(ledger.InsufficientFunds):
            # The payable is updated first or last depending on ids: either way nothing sticks.
            ledger.post(
                session,
                kind=TransactionKind.ADJUSTMENT,
                entries=[(escrow, Money(-501, "CNY")), (payable, Money(501, "CNY"))],
                reference="overdraw",
            )
        assert ledger.cached_balance(session, escrow) == Money(500, "CNY")
        assert ledger.cached_balance(session, payable) == Money(0, "CNY")
    # The merchant payable, by contrast, may go negative (carried into the next settlement).
    with db.transaction() as session:
        clearing, escrow, payable = _accounts(session, tenant.merchant_id, consumer)
        ledger.post(
            session,
            kind=TransactionKind.ADJUSTMENT,
            entries=[(payable, Money(-50, "CNY")), (escrow, Money(50, "CNY"))],
            reference="bonus",
        )
        assert ledger.balance(session, payable) == Money(-50, "CNY")


def test_reversal_negates_exactly_once(db: Database) -> None:
    tenant = make_tenant(db)
    consumer, _ = make_consumer(db)
    with db.transaction() as session:
        clearing, escrow, payable = _accounts(session, tenant.merchant_id, consumer)
        ledger.post(
            session,
            kind=TransactionKind.ADJUSTMENT,
            entries=[(clearing, Money(-1000, "CNY")), (escrow, Money(1000, "CNY"))],
            reference="fund",
        )
        spend = ledger.pay_merchant_from(
            session,
            kind=TransactionKind.STORED_VALUE_SPEND,
            source=escrow,
            merchant_id=tenant.merchant_id,
            amount=Money(333, "CNY"),
            commission_bps=500,
            reference="spend",
        )
        spend_id = spend.id
    with db.transaction() as session:
        reversal = ledger.reverse(session, spend_id)
        assert reversal.reverses_id == spend_id
        original = {a.id: m.amount for a, m in ledger.entries_of(session, spend_id)}
        negated = {a.id: -m.amount for a, m in ledger.entries_of(session, reversal.id)}
        assert original == negated
    with db.transaction() as session:
        with pytest.raises(ledger.AlreadyReversed):
            ledger.reverse(session, spend_id)
        clearing, escrow, payable = _accounts(session, tenant.merchant_id, consumer)
        assert ledger.balance(session, escrow) == Money(1000, "CNY")
        assert ledger.balance(session, payable) == Money(0, "CNY")


@pytest.mark.parametrize(
    ("amount", "bps", "merchant", "commission"),
    [(333, 500, 316, 17), (10, 500, 9, 1), (9, 500, 9, 0), (100, 0, 100, 0), (101, 10000, 0, 101)],
)
def test_commission_rounds_half_up_and_the_remainder_goes_to_the_merchant(
    amount: int, bps: int, merchant: int, commission: int
) -> None:
    share, fee = ledger.split_commission(Money(amount, "CNY"), bps)
    assert (share.amount, fee.amount) == (merchant, commission)
    assert share + fee == Money(amount, "CNY")
