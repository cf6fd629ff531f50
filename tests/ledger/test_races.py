"""Races decided by PostgreSQL: concurrent spends, settlements and webhook deliveries."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from factories import make_consumer, make_tenant
from money_kit import SECRET, deliver, give_program, react, top_up
from o2oloop import clock
from o2oloop.codes import vouchers
from o2oloop.db import Database
from o2oloop.errors import ProblemError
from o2oloop.ledger import service as ledger
from o2oloop.ledger.models import LedgerTransaction
from o2oloop.money import Money
from o2oloop.payments.provider import deliver_pending_events
from o2oloop.reconciliation import service as reconciliation
from o2oloop.settlement import service as settlement
from o2oloop.settlement.models import SettlementBatch
from o2oloop.stored_value import service as stored_value

pytestmark = pytest.mark.postgres


def _race(threads: int, action: Callable[[int], str]) -> Counter[str]:
    barrier = threading.Barrier(threads)
    results: list[str] = []
    lock = threading.Lock()

    def run(i: int) -> None:
        barrier.wait()
        try:
            outcome = action(i)
        except ProblemError as error:
            outcome = error.slug
        except Exception as error:  # a database-level refusal counts as losing the race
            outcome = type(error).__name__
        with lock:
            results.append(outcome)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return Counter(results)


def test_concurrent_spends_never_overdraw(pg_db: Database) -> None:
    tenant = make_tenant(pg_db)
    consumer_id, _ = make_consumer(pg_db)
    give_program(pg_db, tenant.merchant_id, [])
    top_up(pg_db, consumer_id=consumer_id, merchant_id=tenant.merchant_id, amount=1000)
    deliver(pg_db)

    def spend(_: int) -> str:
        with pg_db.transaction() as session:
            stored_value.spend(
                session,
                merchant_id=tenant.merchant_id,
                consumer_id=consumer_id,
                amount=100,
                reference="race",
            )
        return "spent"

    outcome = _race(32, spend)
    assert outcome == Counter({"spent": 10, "insufficient-funds": 22})
    with pg_db.transaction() as session:
        account = ledger.stored_value_account(
            session, consumer_id=consumer_id, merchant_id=tenant.merchant_id, currency="CNY"
        )
        assert ledger.balance(session, account) == Money(0, "CNY")
        assert reconciliation.report(session) == []


def test_concurrent_settlements_settle_each_entry_once(pg_db: Database) -> None:
    tenant = make_tenant(pg_db)
    consumer_id, _ = make_consumer(pg_db)
    give_program(pg_db, tenant.merchant_id, [])
    top_up(pg_db, consumer_id=consumer_id, merchant_id=tenant.merchant_id, amount=10000)
    deliver(pg_db)
    with pg_db.transaction() as session:
        stored_value.spend(
            session,
            merchant_id=tenant.merchant_id,
            consumer_id=consumer_id,
            amount=10000,
            reference="x",
        )
    cutoff = clock.now()

    def settle(_: int) -> str:
        with pg_db.transaction() as session:
            batch = settlement.settle_merchant(
                session, merchant_id=tenant.merchant_id, cutoff=cutoff
            )
            return "batch" if batch else "nothing due"

    outcome = _race(8, settle)
    assert outcome == Counter({"batch": 1, "nothing due": 7})
    with pg_db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(SettlementBatch)) == 1
        assert reconciliation.report(session) == []


def test_concurrent_deliveries_of_one_event_apply_it_once(pg_db: Database) -> None:
    from o2oloop.payments import service as payments

    tenant = make_tenant(pg_db)
    consumer_id, _ = make_consumer(pg_db)
    give_program(pg_db, tenant.merchant_id, [])
    top_up(pg_db, consumer_id=consumer_id, merchant_id=tenant.merchant_id, amount=1000)
    react(pg_db)  # the provider is asked for the charge
    captured: list[tuple[bytes, dict[str, str]]] = []
    deliver_pending_events(
        pg_db, send=lambda body, headers: captured.append((body, headers)) or 503, secret=SECRET
    )
    body, headers = captured[0]
    send = payments.local_sender(pg_db, SECRET)
    outcome = _race(8, lambda _: str(send(body, headers)))
    assert outcome == Counter({"200": 8})
    react(pg_db)  # the top-up is credited, once
    react(pg_db)
    with pg_db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(LedgerTransaction)) == 1
        assert reconciliation.report(session) == []


def test_closure_refund_racing_spends_moves_every_unit_exactly_once(pg_db: Database) -> None:
    from factories import PLATFORM

    tenant = make_tenant(pg_db)
    consumer_id, _ = make_consumer(pg_db)
    give_program(pg_db, tenant.merchant_id, [])
    top_up(pg_db, consumer_id=consumer_id, merchant_id=tenant.merchant_id, amount=1000)
    deliver(pg_db)
    refunded: list[int] = []

    def act(i: int) -> str:
        with pg_db.transaction() as session:
            if i == 0:
                operations = stored_value.refund_all(
                    session, principal=PLATFORM, merchant_id=tenant.merchant_id
                )
                refunded.extend(op.amount for op in operations)
                return "refund"
            stored_value.spend(
                session,
                merchant_id=tenant.merchant_id,
                consumer_id=consumer_id,
                amount=100,
                reference="race",
            )
            return "spent"

    outcome = _race(16, act)
    assert outcome["refund"] == 1
    assert outcome["spent"] * 100 + sum(refunded) == 1000
    deliver(pg_db)
    with pg_db.transaction() as session:
        assert reconciliation.report(session) == []


def test_release_and_refund_of_the_last_voucher_money_cannot_both_win(pg_db: Database) -> None:
    from o2oloop.payments import service as payments

    tenant = make_tenant(pg_db)
    consumer_id, _ = make_consumer(pg_db)
    # A voucher payment naming no offer: its price waits in voucher escrow, no code issued.
    with pg_db.transaction() as session:
        intent = payments.create_payment_intent(
            session,
            consumer_id=consumer_id,
            merchant_id=tenant.merchant_id,
            amount=Money(8800, "CNY"),
            purpose=payments.VOUCHER,
            reference="ofr_race",
        )
        intent_id = intent.id
    deliver(pg_db)

    def act(i: int) -> str:
        with pg_db.transaction() as session:
            if i % 2:
                ledger.release_voucher_to_merchant(
                    session,
                    merchant_id=tenant.merchant_id,
                    price=Money(8800, "CNY"),
                    commission_bps=500,
                    reference="redeem",
                )
                return "redeemed"
            vouchers.refund_price(
                session,
                merchant_id=tenant.merchant_id,
                price=Money(8800, "CNY"),
                payment_intent_id=intent_id,
                reference="refund",
            )
            return "refunded"

    outcome = _race(8, act)
    assert outcome["redeemed"] + outcome["refunded"] == 1, outcome
    deliver(pg_db)
    with pg_db.transaction() as session:
        assert reconciliation.report(session) == []
