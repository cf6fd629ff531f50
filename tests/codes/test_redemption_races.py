"""Many terminals at the same instant: the database lets exactly one redemption through,
and never more claims than the stock. Run on SQLite and on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sqlalchemy import func, select

from factories import (
    consumer_principal,
    make_consumer,
    make_offer,
    make_tenant,
    terminal_principal,
)
from o2oloop.codes import service
from o2oloop.codes.models import Code, Redemption
from o2oloop.db import Database
from o2oloop.errors import ProblemError

KEYS = service.Keys.from_secret("race-secret-" + "x" * 32)
# Each thread holds a connection at the barrier: 32 keeps one test, beside the other xdist
# worker's tests, under PostgreSQL's default 100 connections (64 ran out of them).
THREADS = 32


def _hammer(task: Callable[[], object]) -> tuple[int, int]:
    """Run `task` in 64 threads released together; (successes, refusals)."""
    barrier = threading.Barrier(THREADS)
    outcomes: list[bool] = []
    lock = threading.Lock()

    def run() -> None:
        barrier.wait()
        try:
            task()
            ok = True
        except (service.Refused, ProblemError):
            ok = False
        with lock:
            outcomes.append(ok)

    threads = [threading.Thread(target=run) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes.count(True), outcomes.count(False)


def test_64_concurrent_redemptions_of_one_code_succeed_once(db: Database) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    consumer_id, _ = make_consumer(db)
    with db.transaction() as session:
        code = service.claim(
            session, principal=consumer_principal(consumer_id), offer_id=offer_id, keys=KEYS
        )
    text = KEYS.code_text(code.id)
    terminal = terminal_principal(tenant)

    def redeem() -> None:
        with db.transaction() as session:
            service.redeem(
                session,
                principal=terminal,
                code=text,
                bill_amount=5000,
                keys=KEYS,
                rate_per_minute=10_000,
            )

    successes, refusals = _hammer(redeem)
    assert (successes, refusals) == (1, THREADS - 1)
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Redemption)) == 1


def test_64_concurrent_claims_of_stock_10_issue_10_codes(db: Database) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant, total_stock=10)
    consumers = [make_consumer(db)[0] for _ in range(THREADS)]
    turn = iter(consumers)
    turn_lock = threading.Lock()

    def claim() -> None:
        with turn_lock:
            consumer_id = next(turn)
        with db.transaction() as session:
            service.claim(
                session, principal=consumer_principal(consumer_id), offer_id=offer_id, keys=KEYS
            )

    successes, refusals = _hammer(claim)
    assert (successes, refusals) == (10, THREADS - 10)
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Code)) == 10


def test_one_consumer_racing_a_limit_of_2_gets_2_codes(db: Database) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant, per_customer_limit=2)
    consumer_id, _ = make_consumer(db)

    def claim() -> None:
        with db.transaction() as session:
            service.claim(
                session, principal=consumer_principal(consumer_id), offer_id=offer_id, keys=KEYS
            )

    successes, _ = _hammer(claim)
    assert successes == 2


def test_concurrent_batch_issuances_of_different_offers_all_succeed(db: Database) -> None:
    from factories import PLATFORM

    tenant = make_tenant(db)
    offers = [make_offer(db, tenant) for _ in range(8)]
    barrier = threading.Barrier(len(offers))
    numbers: list[int] = []
    failures: list[BaseException] = []

    def issue(offer_id: str) -> None:
        barrier.wait()
        try:
            with db.transaction() as session:
                batch = service.issue_batch(
                    session,
                    principal=PLATFORM,
                    merchant_id=tenant.merchant_id,
                    offer_id=offer_id,
                    count=10,
                )
                numbers.append(batch.batch_no)
        except BaseException as error:
            failures.append(error)

    threads = [threading.Thread(target=issue, args=(o,)) for o in offers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert sorted(numbers) == list(range(1, len(offers) + 1))


def test_concurrent_undos_take_a_redemption_back_once(db: Database) -> None:
    from datetime import timedelta

    from o2oloop.offers.models import OfferStoreRedemptions, store_count_shard

    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    consumer_id, _ = make_consumer(db)
    with db.transaction() as session:
        code = service.claim(
            session, principal=consumer_principal(consumer_id), offer_id=offer_id, keys=KEYS
        )
    terminal = terminal_principal(tenant)
    with db.transaction() as session:
        redeemed = service.redeem(
            session,
            principal=terminal,
            code=KEYS.code_text(code.id),
            bill_amount=None,
            keys=KEYS,
            rate_per_minute=1000,
        )

    def undo() -> None:
        with db.transaction() as session:
            service.undo(
                session,
                principal=terminal,
                redemption_id=redeemed.redemption.id,
                grace=timedelta(minutes=10),
            )

    assert _hammer(undo) == (1, THREADS - 1)
    with db.reading() as session:
        shard = store_count_shard(tenant.terminal_id)
        count = session.get(OfferStoreRedemptions, (offer_id, tenant.store_id, shard))
        assert count is not None and count.redeemed == 0
