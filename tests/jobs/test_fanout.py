"""Fan-out: one job per (event, handler), however often the outbox is fanned out."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select, update

from jobs_kit import Probe
from o2oloop import clock, events
from o2oloop.db import Database
from o2oloop.jobs.fanout import fan_out, job_key
from o2oloop.jobs.models import Job, JobState, OutboxEntry


class Named:
    def __init__(self, name: str) -> None:
        self.name = name


def _fan_out(db: Database, handlers: dict[str, list[str]], limit: int = 500):
    with db.transaction() as session:
        return fan_out(
            session,
            handlers_for=lambda kind: [Named(n) for n in handlers.get(kind, [])],
            max_attempts=3,
            now=clock.now(),
            limit=limit,
        )


def _record(db: Database, count: int) -> list[Probe]:
    probes = [Probe(n=n) for n in range(count)]
    with db.transaction() as session:
        for probe in probes:
            events.record(session, probe)
    return probes


def _keys(db: Database) -> set[str]:
    with db.reading() as session:
        return set(session.scalars(select(Job.key)))


def test_each_event_becomes_one_job_per_handler_and_a_second_fan_out_adds_none(
    db: Database,
) -> None:
    probes = _record(db, 7)
    handlers = {"test.probe": ["a", "b"]}
    first = _fan_out(db, handlers, limit=5)
    rest = _fan_out(db, handlers)
    assert (first.events, first.jobs, rest.events, rest.jobs) == (5, 10, 2, 4)
    expected = {job_key(p.event_id, h) for p in probes for h in ("a", "b")}
    assert _keys(db) == expected
    # A worker killed after inserting jobs but before marking its entries: the next one
    # finds the entries again and inserts nothing.
    with db.transaction() as session:
        session.execute(update(OutboxEntry).values(dispatched_at=None))
    again = _fan_out(db, handlers)
    assert (again.events, again.jobs) == (7, 0)
    assert _keys(db) == expected
    with db.reading() as session:
        states = set(session.scalars(select(Job.state)))
        undispatched = session.scalar(
            select(func.count()).select_from(OutboxEntry).where(OutboxEntry.dispatched_at.is_(None))
        )
    assert states == {JobState.PENDING} and undispatched == 0


def test_an_event_no_handler_wants_is_dispatched_without_jobs(db: Database) -> None:
    _record(db, 3)
    done = _fan_out(db, {})
    assert (done.events, done.jobs) == (3, 0)
    assert _fan_out(db, {}).events == 0


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rounds=st.lists(st.integers(min_value=1, max_value=6), min_size=1, max_size=4),
    handlers=st.lists(st.sampled_from(["a", "b", "c"]), unique=True, max_size=3),
    resets=st.lists(st.booleans(), min_size=4, max_size=4),
)
def test_jobs_are_exactly_the_event_handler_pairs(
    sqlite_db: Database, rounds: list[int], handlers: list[str], resets: list[bool]
) -> None:
    """Whatever the sizes of the fan-outs and however often entries come back (crashes),
    the jobs are exactly one per event and handler."""
    with sqlite_db.transaction() as session:
        session.execute(Job.__table__.delete())
        session.execute(OutboxEntry.__table__.delete())
    probes = _record(sqlite_db, 9)
    wiring = {"test.probe": handlers}
    for size, reset in zip(rounds, resets, strict=False):
        _fan_out(sqlite_db, wiring, limit=size)
        if reset:
            with sqlite_db.transaction() as session:
                session.execute(update(OutboxEntry).values(dispatched_at=None))
    while _fan_out(sqlite_db, wiring).events:
        pass
    assert _keys(sqlite_db) == {job_key(p.event_id, h) for p in probes for h in handlers}


def test_slots_are_aligned_to_the_epoch() -> None:
    from datetime import timedelta

    from o2oloop.jobs.schedule import slot_key, slot_start

    at = datetime(2026, 6, 1, 12, 34, 56, tzinfo=UTC)
    assert slot_start(at, timedelta(minutes=5)) == datetime(2026, 6, 1, 12, 30, tzinfo=UTC)
    assert slot_start(at, timedelta(days=1)) == datetime(2026, 6, 1, tzinfo=UTC)
    assert slot_key("x", slot_start(at, timedelta(hours=1))) == "x@2026-06-01T12:00:00+00:00"
