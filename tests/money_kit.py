"""Helpers for the money tests: stored value, top-ups, webhook delivery, voucher balances."""

from __future__ import annotations

from factories import Tenant, make_consumer, make_tenant
from o2oloop.bootstrap import Wiring, bootstrap
from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.ledger import service as ledger
from o2oloop.ledger.models import AccountKind
from o2oloop.payments import pending
from o2oloop.payments.provider import DeliveryReport
from o2oloop.stored_value import service as stored_value
from o2oloop.stored_value.models import StoredValueProgram

SECRET = "whsec_tests_" + "s" * 32
# The platform secret of the `settings` fixture: bought vouchers' codes are keyed by it, so
# the app under test verifies them.
CODE_SECRET = "test-secret-" + "x" * 32


def wiring(db: Database, code_secret: str = CODE_SECRET) -> Wiring:
    return bootstrap(Settings(env="test", secret_key=code_secret), db=db)


def react(db: Database, code_secret: str = CODE_SECRET) -> int:
    """Run the payment events' handlers now, as the worker would after the commit."""
    return pending.run_now(db, wiring(db, code_secret).handlers_for)


def deliver(
    db: Database, secret: str = SECRET, *, code_secret: str = CODE_SECRET
) -> DeliveryReport:
    """One round of the sandbox: the provider is asked for what was committed, completes it,
    calls back (signed, to the handler), and the other domains react."""
    return pending.settle_sandbox(db, wiring(db, code_secret).handlers_for, secret=secret)


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


def topped_up(
    db: Database, amount: int, *, tiers: list[dict[str, int]] | None = None
) -> tuple[Tenant, str, str]:
    """A merchant with a stored-value program (`tiers`, or the default bonus tiers) and a
    consumer who asked to top up `amount`, committed and not yet charged: the tenant, the
    consumer's id and the payment intent's id."""
    tenant = make_tenant(db)
    consumer_id, _ = make_consumer(db)
    give_program(db, tenant.merchant_id, tiers)
    intent_id = top_up(db, consumer_id=consumer_id, merchant_id=tenant.merchant_id, amount=amount)
    return tenant, consumer_id, intent_id


def make_settlement(db: Database, merchant_id: str) -> str:
    """A real settlement batch of the merchant (a top-up bonus carried forward); its id."""
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
