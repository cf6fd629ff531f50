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
THREADS = 64


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
