"""The worker on one database: handlers run after commit, failures back off and die with
their last error, expired leases are taken over, periodic jobs run once per slot."""

from __future__ import annotations

import random
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import func, select

from jobs_kit import (
    Probe,
    create_tables,
    make_worker,
    probe_effects,
    probe_runs,
    runs_engine,
    runs_url,
    wiring,
)
from o2oloop import clock, events
from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.jobs import claim as claims
from o2oloop.jobs.models import Job, JobState
from o2oloop.jobs.rows import mark_done
from o2oloop.jobs.run import Backoff


@pytest.fixture
def probes(db: Database, tmp_path: Path):
    create_tables(db)  # the `on` handler's effects live beside the jobs
    return runs_engine(runs_url(db, tmp_path), fresh=True)


def _record(db: Database, *probes: Probe) -> None:
    with db.transaction() as session:
        for probe in probes:
            events.record(session, probe)


def _jobs(db: Database) -> dict[str, Job]:
    with db.reading() as session:
        return {job.handler: job for job in session.scalars(select(Job))}


def _count(engine, table, event_id: str) -> int:
    with engine.connect() as connection:
        return connection.scalar(
            select(func.count()).select_from(table).where(table.c.event_id == event_id)
        )


@given(
    attempts=st.integers(min_value=1, max_value=200),
    base=st.floats(min_value=0, max_value=100),
    cap=st.floats(min_value=0, max_value=10_000),
    seed=st.integers(),
)
def test_backoff_is_full_jitter_under_a_capped_exponential(
    attempts: int, base: float, cap: float, seed: int
) -> None:
    delay = Backoff(base, cap).delay(attempts, random.Random(seed)).total_seconds()
    assert 0 <= delay <= min(cap, base * 2.0 ** (attempts - 1)) + 1e-6


def test_backoff_spreads_retries_rather_than_waiting_the_ceiling() -> None:
    rng = random.Random(1)
    delays = [Backoff(1, 3600).delay(5, rng).total_seconds() for _ in range(2000)]
    assert max(delays) <= 16 and 7 < sum(delays) / len(delays) < 9  # uniform on [0, 16]


def test_a_session_handler_and_an_after_commit_handler_run_once_each(
    db: Database, settings: Settings, probes
) -> None:
    probe = Probe(n=1)
    _record(db, probe)
    outcome = make_worker(db, wiring(settings, probes), "w1").drain()
    assert (outcome.done, outcome.retried, outcome.dead) == (2, 0, 0)
    jobs = _jobs(db)
    assert {h: (j.state, j.attempts) for h, j in jobs.items()} == {
        "probe.on": (JobState.DONE, 1),
        "probe.after": (JobState.DONE, 1),
    }
    assert _count(db.engine, probe_effects, probe.event_id) == 1
    assert _count(probes, probe_runs, probe.event_id) == 2


def test_failures_back_off_then_dead_letter_with_the_last_error(
    db: Database, settings: Settings, probes, frozen_clock
) -> None:
    flaky, hopeless = Probe(n=1, fail_times=2), Probe(n=2, fail_times=99)
    _record(db, flaky, hopeless)
    worker = make_worker(db, wiring(settings, probes, after=False), "w1", backoff=Backoff(10, 60))
    worker.drain()
    with db.reading() as session:
        pending = list(session.scalars(select(Job).order_by(Job.event_id)))
    assert [(j.state, j.attempts) for j in pending] == [(JobState.PENDING, 1)] * 2
    for job in pending:  # full jitter: somewhere in [now, now + 10 s]
        assert clock.now() <= job.run_after <= clock.now() + timedelta(seconds=10)
    for _ in range(4):
        frozen_clock.advance(timedelta(seconds=60))
        worker.drain()
    with db.reading() as session:
        by_event = {job.event_id: job for job in session.scalars(select(Job))}
    done, dead = by_event[flaky.event_id], by_event[hopeless.event_id]
    assert (done.state, done.attempts) == (JobState.DONE, 3)
    assert (dead.state, dead.attempts) == (JobState.DEAD, 3)
    assert "ProbeFailed: on fails run 3" in dead.last_error
    # The failed runs' effects were rolled back with their savepoints: one effect, or none.
    assert _count(db.engine, probe_effects, flaky.event_id) == 1
    assert _count(db.engine, probe_effects, hopeless.event_id) == 0
    assert _count(probes, probe_runs, hopeless.event_id) == 3


def test_an_expired_lease_is_taken_over_and_the_late_worker_writes_nothing(
    db: Database, frozen_clock
) -> None:
    _record(db, Probe(n=1))
    from o2oloop.jobs.fanout import fan_out

    lease = timedelta(seconds=30)
    with db.transaction() as session:
        fan_out(
            session,
            handlers_for=lambda _kind: [type("H", (), {"name": "probe.on"})()],
            max_attempts=3,
            now=clock.now(),
        )
        (first,) = claims.claim(session, worker="a", limit=10, lease=lease, now=clock.now())
    with db.transaction() as session:  # still leased: nobody else gets it
        assert claims.claim(session, worker="b", limit=10, lease=lease, now=clock.now()) == []
    frozen_clock.advance(lease + timedelta(seconds=1))
    with db.transaction() as session:
        (second,) = claims.claim(session, worker="b", limit=10, lease=lease, now=clock.now())
    assert (first.id, first.attempts, second.attempts) == (second.id, 1, 2)
    with db.transaction() as session:
        assert not mark_done(session, job_id=first.id, worker="a", attempts=1, now=clock.now())
        assert mark_done(session, job_id=second.id, worker="b", attempts=2, now=clock.now())


def test_a_lease_that_runs_out_on_the_last_attempt_dead_letters_the_job(
    db: Database, frozen_clock
) -> None:
    from o2oloop.jobs.rows import insert_new, new_job

    with db.transaction() as session:
        insert_new(
            session,
            [new_job(key="k", handler="h", event_id=None, max_attempts=1, run_after=clock.now())],
        )
        claims.claim(session, worker="a", limit=1, lease=timedelta(seconds=5), now=clock.now())
    frozen_clock.advance(timedelta(seconds=6))
    with db.transaction() as session:
        assert (
            claims.claim(session, worker="b", limit=1, lease=timedelta(seconds=5), now=clock.now())
            == []
        )
        assert claims.bury_expired(session, now=clock.now()) == 1
    with db.reading() as session:
        job = session.scalar(select(Job))
    assert job.state is JobState.DEAD and "lease ran out" in job.last_error


def test_a_periodic_job_runs_once_per_slot_across_two_workers(
    db: Database, settings: Settings, probes, frozen_clock
) -> None:
    ran: list[str] = []
    wired = wiring(settings, probes)
    wired.every("test.tick", timedelta(hours=1), lambda _db: ran.append("tick"))
    one, two = make_worker(db, wired, "one"), make_worker(db, wired, "two")
    for _ in range(3):
        one.drain()
        two.drain()
    assert ran == ["tick"]
    frozen_clock.advance(timedelta(hours=1))
    two.drain()
    one.drain()
    assert ran == ["tick", "tick"]
    with db.reading() as session:
        keys = sorted(session.scalars(select(Job.key).where(Job.handler == "test.tick")))
    assert keys == ["test.tick@2026-06-01T12:00:00+00:00", "test.tick@2026-06-01T13:00:00+00:00"]


def test_a_job_for_a_handler_no_longer_wired_dies_with_a_reason(
    db: Database, settings: Settings, probes
) -> None:
    _record(db, Probe(n=1))
    make_worker(db, wiring(settings, probes), "w").step()  # fan out and run
    from o2oloop.jobs.rows import insert_new, new_job

    with db.transaction() as session:
        insert_new(
            session,
            [
                new_job(
                    key="gone",
                    handler="gone.away",
                    event_id="evt_x",
                    max_attempts=1,
                    run_after=clock.now(),
                )
            ],
        )
    make_worker(db, wiring(settings, probes), "w").drain()
    with db.reading() as session:
        gone = session.scalar(select(Job).where(Job.key == "gone"))
    assert gone.state is JobState.DEAD and "no handler named 'gone.away'" in gone.last_error
