"""Appends from many threads at once: the tree stays one tree (dense, unique indices; every
checkpoint a prefix of the next), nothing lost or duplicated, one review per visit."""

from __future__ import annotations

import itertools
import json
import threading

from sqlalchemy import select

from factories import consumer_principal, make_tenant
from o2oloop.db import Database
from o2oloop.errors import ProblemError
from o2oloop.reviews import log, merkle, service
from o2oloop.reviews.log import LogConfig
from o2oloop.reviews.models import LogCheckpoint, LogEntry, LogHead
from o2oloop.reviews.schemas import ReviewCreate
from reviews import merkle_reference as ref
from reviews.conftest import make_visitor, pay

THREADS, EACH = 12, 15


def _together(count: int, task) -> list[BaseException | None]:
    barrier = threading.Barrier(count)
    outcomes: list[BaseException | None] = [None] * count

    def run(n: int) -> None:
        barrier.wait()
        try:
            task(n)
        except BaseException as error:  # reported to the test, not swallowed
            outcomes[n] = error

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes


def test_concurrent_appends_keep_one_tree(db: Database, log_config: LogConfig) -> None:
    def appender(n: int) -> None:
        for i in range(EACH):
            with db.transaction() as session:
                log.append(session, [{"kind": "test", "thread": n, "i": i}], log=log_config)

    assert _together(THREADS, appender) == [None] * THREADS
    with db.reading() as session:
        rows = session.execute(select(LogEntry.idx, LogEntry.body).order_by(LogEntry.idx)).all()
        head = session.get(LogHead, log.HEAD)
        head_size, head_root = head.size, head.root
        checkpoints = session.execute(
            select(LogCheckpoint.size, LogCheckpoint.root).order_by(LogCheckpoint.id)
        ).all()
        proofs = {
            (a, b): log.consistency_proof(session, first=a, second=b)
            for (a, _), (b, _) in itertools.pairwise(checkpoints)
        }
    total = THREADS * EACH
    assert [idx for idx, _ in rows] == list(range(total))
    seen = sorted((e["thread"], e["i"]) for e in (json.loads(body) for _, body in rows))
    assert seen == sorted((n, i) for n in range(THREADS) for i in range(EACH))
    bodies = [body for _, body in rows]
    assert head_size == total and head_root == ref.mth(bodies)
    # A checkpoint at least every 4 entries, each the root of that prefix, each extended
    # by the next.
    sizes = [size for size, _ in checkpoints]
    assert sizes == sorted(sizes) and len(sizes) >= total // 4 - 1
    for size, root in checkpoints:
        assert root == ref.mth(bodies[:size])
    for (a, root_a), (b, root_b) in itertools.pairwise(checkpoints):
        merkle.verify_consistency(a, b, root_a, root_b, proofs[(a, b)])


def test_racing_reviews_of_one_visit_post_one(db: Database, log_config: LogConfig) -> None:
    tenant = make_tenant(db)
    visitor = make_visitor(db)
    visit_id = pay(db, tenant, visitor)

    def post(n: int) -> None:
        with db.transaction() as session:
            service.post_review(
                session,
                principal=consumer_principal(visitor.consumer_id),
                data=ReviewCreate(visit_id=visit_id, rating=1 + n % 5),
                log_config=log_config,
            )

    outcomes = _together(8, post)
    assert outcomes.count(None) == 1
    assert all(isinstance(o, ProblemError) for o in outcomes if o is not None)
    with db.reading() as session:
        assert log.size(session) == 1
