"""Helpers for the money tests: stored value, top-ups, webhook delivery, voucher balances."""

from __future__ import annotations

from o2oloop.db import Database
from o2oloop.ledger import service as ledger
from o2oloop.ledger.models import AccountKind
from o2oloop.payments import service as payments
from o2oloop.payments.provider import DeliveryReport, deliver_pending_events
from o2oloop.stored_value import service as stored_value
from o2oloop.stored_value.models import StoredValueProgram

SECRET = "whsec_tests_" + "s" * 32


def deliver(db: Database, secret: str = SECRET) -> DeliveryReport:
    """Let the sandbox provider finish its work and deliver its webhooks to the handler."""
    return deliver_pending_events(db, send=payments.local_sender(db, secret), secret=secret)


def voucher_balances(db: Database, merchant_id: str) -> dict[str, int]:
    """A merchant's voucher money by account: escrow, payable, commission, refunds."""
    with db.transaction() as session:
        return {
            kind.value: ledger.balance(
                session, ledger.merchant_account(session, kind, merchant_id, "CNY")
            ).amount
            for kind in (
                AccountKind.VOUCHER_ESCROW,
                AccountKind.MERCHANT_PAYABLE,
                AccountKind.PLATFORM_COMMISSION,
                AccountKind.REFUNDS_IN_TRANSIT,
            )
        }


def give_program(db: Database, merchant_id: str, tiers: list[dict[str, int]] | None = None) -> None:
    from o2oloop import clock

    with db.transaction() as session:
        session.add(
            StoredValueProgram(
                merchant_id=merchant_id,
                tiers=tiers if tiers is not None else [{"pay": 50000, "bonus": 5000}],
                active=True,
                updated_at=clock.now(),
            )
        )


def top_up(
    db: Database,
    *,
    consumer_id: str,
    merchant_id: str,
    amount: int,
    behaviour: str | None = None,
    bonus: int | None = None,
) -> str:
    with db.transaction() as session:
        intent = stored_value.start_top_up(
            session,
            consumer_id=consumer_id,
            merchant_id=merchant_id,
            amount=amount,
            bonus=bonus,
            behaviour=behaviour,
        )
        return intent.id


def make_settlement(db: Database, merchant_id: str) -> str:
    """A real settlement batch of the merchant (a top-up bonus carried forward); its id."""
    from factories import make_consumer
    from o2oloop import clock
    from o2oloop.settlement import service as settlement

    consumer_id, _ = make_consumer(db)
    give_program(db, merchant_id)
    top_up(db, consumer_id=consumer_id, merchant_id=merchant_id, amount=50000)
    deliver(db)
    with db.transaction() as session:
        batch = settlement.settle_merchant(session, merchant_id=merchant_id, cutoff=clock.now())
        assert batch is not None
        return batch.id
