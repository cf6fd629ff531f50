"""The hooks the codes domain calls: voucher payment into escrow, release, undo, refund."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from factories import make_consumer, make_tenant
from money_kit import deliver, voucher_balances
from o2oloop.clock import FrozenClock
from o2oloop.codes import vouchers
from o2oloop.db import Database
from o2oloop.ledger import service as ledger
from o2oloop.money import Money
from o2oloop.payments import service as payments
from o2oloop.payments.models import IntentStatus, PaymentIntent, ProviderOperation
from o2oloop.reconciliation import service as reconciliation


def _buy(db: Database, tenant, consumer_id: str, price: int, behaviour: str = "succeed") -> str:
    with db.transaction() as session:
        intent = payments.create_payment_intent(
            session,
            consumer_id=consumer_id,
            merchant_id=tenant.merchant_id,
            amount=Money(price, "CNY"),
            purpose=payments.VOUCHER,
            reference="ofr_test",
            behaviour=behaviour,
        )
        return intent.id


def _statuses(db: Database, *intent_ids: str) -> list[IntentStatus]:
    with db.transaction() as session:
        return [session.get(PaymentIntent, i).status for i in intent_ids]  # type: ignore[union-attr]


def test_paid_voucher_escrow_redemption_undo_and_refund(
    db: Database, frozen_clock: FrozenClock
) -> None:
    tenant = make_tenant(db, commission_bps=500)
    consumer_id, _ = make_consumer(db)
    paid = _buy(db, tenant, consumer_id, 8800)
    declined = _buy(db, tenant, consumer_id, 8800, behaviour="decline")
    deliver(db)
    assert _statuses(db, paid, declined) == [IntentStatus.SUCCEEDED, IntentStatus.FAILED]
    assert voucher_balances(db, tenant.merchant_id)["voucher_escrow"] == 8800

    with db.transaction() as session:
        redemption = ledger.release_voucher_to_merchant(
            session,
            merchant_id=tenant.merchant_id,
            price=Money(8800, "CNY"),
            commission_bps=500,
            reference="red_1",
        )
        redemption_id = redemption.id
    assert voucher_balances(db, tenant.merchant_id) == {
        "voucher_escrow": 0,
        "merchant_payable": 8360,
        "platform_commission": 440,
        "refunds_in_transit": 0,
    }
    with db.transaction() as session:
        ledger.reverse(session, redemption_id)  # the cashier undoes the redemption
    assert voucher_balances(db, tenant.merchant_id)["voucher_escrow"] == 8800

    with db.transaction() as session:
        vouchers.refund_price(
            session,
            merchant_id=tenant.merchant_id,
            price=Money(8800, "CNY"),
            payment_intent_id=paid,
            reference="code_1",
        )
    assert voucher_balances(db, tenant.merchant_id)["refunds_in_transit"] == 8800
    with db.transaction() as session:
        assert reconciliation.report(session) == []
    deliver(db)
    assert voucher_balances(db, tenant.merchant_id) == {
        "voucher_escrow": 0,
        "merchant_payable": 0,
        "platform_commission": 0,
        "refunds_in_transit": 0,
    }
    with db.transaction() as session:
        operation = session.scalars(select(ProviderOperation)).one()
        assert operation.status is IntentStatus.SUCCEEDED
        intent = session.get(PaymentIntent, paid)
        assert intent is not None and intent.ledger_transaction_id is not None
        assert reconciliation.report(session) == []


def test_a_refund_cannot_exceed_the_payment_or_empty_escrow_twice(
    db: Database, frozen_clock: FrozenClock
) -> None:
    tenant = make_tenant(db)
    consumer_id, _ = make_consumer(db)
    paid = _buy(db, tenant, consumer_id, 1000)
    deliver(db)
    with db.transaction() as session:
        vouchers.refund_price(
            session,
            merchant_id=tenant.merchant_id,
            price=Money(1000, "CNY"),
            payment_intent_id=paid,
            reference="r1",
        )
    with db.transaction() as session, pytest.raises(Exception, match="exceed"):
        vouchers.refund_price(
            session,
            merchant_id=tenant.merchant_id,
            price=Money(1000, "CNY"),
            payment_intent_id=paid,
            reference="r2",
        )
