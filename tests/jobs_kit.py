"""Probe events and handlers for the worker's tests, importable by worker subprocesses.

A `Probe` says how many times each of its handlers fails before it succeeds
(`fail_times`) and how long the `on` handler's run takes (`sleep_ms`, on its first attempt
only, so a killed worker's job finishes quickly the second time and the `after` handler
never waits). Every run is recorded in `probe_runs` on a
connection of its own (committed at once, whatever the job's transaction does): the test
reads who ran what, when, and whether two runs of one job overlapped. The `on` handler's
effect goes to `probe_effects` inside the job's transaction, so it exists once or never.
"""

from __future__ import annotations

import dataclasses
import os
import time
import traceback
from datetime import timedelta
from typing import Any

from sqlalchemy import (
    Column,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    select,
)
from sqlalchemy.engine import Engine

from o2oloop import events
from o2oloop.bootstrap import Wiring
from o2oloop.config import Settings
from o2oloop.db import Database, make_engine
from o2oloop.jobs.models import Job, JobState, OutboxEntry
from o2oloop.jobs.run import Backoff
from o2oloop.jobs.schedule import Slots
from o2oloop.jobs.worker import Config, Worker
from o2oloop.payments.provider import SandboxProvider

probes = MetaData()
probe_runs = Table(
    "probe_runs",
    probes,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(40), index=True),
    Column("handler", String(20)),
    Column("pid", Integer),
    Column("started", Float),
    Column("ended", Float),
)
probe_hangs = Table(
    "probe_hangs",
    probes,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(40)),
    Column("handler", String(20)),
)
probe_effects = Table(
    "probe_effects",
    probes,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(40), index=True),
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Probe(events.Event):
    name = "test.probe"
    n: int
    fail_times: int = 0
    sleep_ms: int = 0


class ProbeFailed(Exception):
    pass


class Probes:
    """The handlers, recording runs through `runs` (an engine of their own)."""

    def __init__(self, runs: Engine) -> None:
        self.runs = runs

    def _run(self, event: Probe, handler: str) -> None:
        started = time.time()
        with self.runs.connect() as connection:
            earlier = connection.scalar(
                select(func.count())
                .select_from(probe_runs)
                .where(probe_runs.c.event_id == event.event_id, probe_runs.c.handler == handler)
            )
            connection.rollback()
        if event.sleep_ms and handler == "on" and self._first_to_hang(event, handler):
            time.sleep(event.sleep_ms / 1000)
        ended = time.time()
        with self.runs.begin() as connection:
            connection.execute(
                insert(probe_runs).values(
                    event_id=event.event_id,
                    handler=handler,
                    pid=os.getpid(),
                    started=started,
                    ended=ended,
                )
            )
        if earlier < event.fail_times:
            raise ProbeFailed(f"{handler} fails run {earlier + 1} of {event.event_id}")

    def _first_to_hang(self, event: Probe, handler: str) -> bool:
        """Only a job's first run hangs, and it says so first (the kill test waits for it)."""
        with self.runs.begin() as connection:
            hung = connection.scalar(
                select(func.count())
                .select_from(probe_hangs)
                .where(probe_hangs.c.event_id == event.event_id, probe_hangs.c.handler == handler)
            )
            if not hung:
                connection.execute(
                    insert(probe_hangs).values(event_id=event.event_id, handler=handler)
                )
        return not hung

    def on(self, session: Any, event: Probe) -> None:
        session.execute(insert(probe_effects).values(event_id=event.event_id))
        self._run(event, "on")

    def after(self, event: Probe) -> None:
        self._run(event, "after")


def wiring(settings: Settings, runs: Engine, *, after: bool = True) -> Wiring:
    probes_ = Probes(runs)
    wired = Wiring(settings=settings, provider=SandboxProvider())
    wired.on(Probe, probes_.on, name="probe.on")
    if after:
        wired.after_commit(Probe, probes_.after, name="probe.after")
    return wired


def runs_url(db: Database, directory: Any) -> str:
    """Where runs are recorded: the database itself on PostgreSQL; on SQLite a file of its
    own, since the job's transaction holds the one writer's lock while its handler runs."""
    if db.dialect == "postgresql":
        return db.engine.url.render_as_string(hide_password=False)
    return f"sqlite:///{directory}/probe_runs.db"


def runs_engine(url: str, *, fresh: bool = False) -> Engine:
    """The engine runs are recorded with; `fresh` empties the probe tables (a test's start:
    PostgreSQL's per-test clean-up knows only the product's tables)."""
    engine = make_engine(url)
    if fresh:
        probes.drop_all(engine)
    probes.create_all(engine)
    return engine


def create_tables(db: Database) -> None:
    probes.drop_all(db.engine)
    probes.create_all(db.engine)


def test_config(**overrides: Any) -> Config:
    values: dict[str, Any] = {
        "batch": 50,
        "lease": timedelta(seconds=30),
        "poll_seconds": 0.05,
        "max_attempts": 3,
        "backoff": Backoff(0.0, 0.0),
    }
    values.update(overrides)
    return Config(**values)


def make_worker(db: Database, wired: Wiring, name: str, **config: Any) -> Worker:
    cfg = test_config(**config)
    slots = Slots(wired.periodic.values(), max_attempts=cfg.max_attempts)
    return Worker(db, wired, name=name, config=cfg, slots=slots)


def unfinished(db: Database) -> int:
    with db.reading() as session:
        jobs = session.scalar(
            select(func.count())
            .select_from(Job)
            .where(Job.state.in_([JobState.PENDING, JobState.RUNNING]))
        )
        events_ = session.scalar(
            select(func.count()).select_from(OutboxEntry).where(OutboxEntry.dispatched_at.is_(None))
        )
    return (jobs or 0) + (events_ or 0)


def main(url: str, runs: str, name: str, lease_seconds: float, until_empty: bool) -> None:
    """A worker process: rounds until no job is left (or forever, to be killed)."""
    db = Database.from_url(url)
    settings = Settings(env="test", secret_key="test-secret-" + "x" * 32)
    lease = timedelta(seconds=lease_seconds)
    worker = make_worker(db, wiring(settings, runs_engine(runs)), name, lease=lease)
    deadline = time.monotonic() + 360
    while time.monotonic() < deadline:
        if worker.step() == 0:
            if until_empty and unfinished(db) == 0:
                break
            time.sleep(0.01)
    db.dispose()


def worker_process(
    url: str, runs: str, name: str, lease_seconds: float, until_empty: bool, errors: str
) -> None:
    """`main` in a process forked from a server that imported this module already (so a
    worker starts in milliseconds, not an interpreter's start-up and the product's imports);
    what it raised is left in the file `errors` for the test to show."""
    # The claims are under test, not the disk: commits need not wait for the WAL's fsync.
    os.environ["PGOPTIONS"] = "-c synchronous_commit=off"
    try:
        main(url, runs, name, lease_seconds, until_empty)
    except BaseException:
        with open(errors, "w") as out:
            out.write(traceback.format_exc())
        raise
