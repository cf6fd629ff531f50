"""The worker: rounds of schedule, fan out, claim and run, in threads that share one lease
heartbeat. `o2oloop worker` runs a pool; `serve` and `up` run one in-process on SQLite.

A round that finds nothing to do costs one read (no writer's turn on SQLite); a round with
work writes periodic slots, fans out the outbox and claims a batch in one transaction, then
runs the batch (see `run`). Any number of pools, on any number of machines, share a
PostgreSQL database.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select

from o2oloop import clock
from o2oloop.db import Database
from o2oloop.jobs import claim as claims
from o2oloop.jobs.fanout import fan_out
from o2oloop.jobs.models import OutboxEntry
from o2oloop.jobs.pace import Doorbell, Pace
from o2oloop.jobs.rows import insert_new
from o2oloop.jobs.run import Backoff, Outcome, Runner
from o2oloop.jobs.schedule import Slots

log = logging.getLogger("o2oloop.jobs")
outbox = OutboxEntry.__table__
PERIODIC_ATTEMPTS = 3  # a periodic job's next slot comes soon anyway
BURY_EVERY_SECONDS = 10.0
DEFAULT_BACKOFF = Backoff(2.0, 3600.0)


@dataclass(frozen=True)
class Config:
    batch: int = 100
    fan_out: int = 500
    lease: timedelta = timedelta(seconds=60)
    poll_seconds: float = 0.25
    max_attempts: int = 8
    backoff: Backoff = DEFAULT_BACKOFF

    @classmethod
    def from_settings(cls, settings: Any) -> Config:
        return cls(
            batch=settings.jobs_batch,
            fan_out=max(settings.jobs_batch, 500),
            lease=timedelta(seconds=settings.jobs_lease_seconds),
            poll_seconds=settings.jobs_poll_seconds,
            max_attempts=settings.jobs_max_attempts,
            backoff=Backoff(settings.jobs_backoff_base_seconds, settings.jobs_backoff_cap_seconds),
        )


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def handlers_by_name(wiring: Any) -> dict[str, Any]:
    return {h.name: h for handlers in wiring.handlers.values() for h in handlers}


class Worker:
    """One loop of rounds; `name` is what its job rows show as their worker."""

    def __init__(
        self,
        db: Database,
        wiring: Any,
        *,
        name: str,
        config: Config,
        slots: Slots,
        pace: Pace | None = None,
        doorbell: Doorbell | None = None,
    ) -> None:
        self.db, self.wiring, self.name, self.config = db, wiring, name, config
        self.slots = slots
        self.pace = pace or Pace()
        self.doorbell = doorbell or Doorbell()
        self.runner = Runner(db, handlers_by_name(wiring), wiring.periodic, name, config.backoff)
        self.outcome = Outcome()
        self._buried_at = float("-inf")

    def step(self) -> int:
        """One round; how much it did (events fanned out plus jobs run), 0 when idle."""
        now = clock.now()
        slots = self.slots.due(now)
        if not slots:
            with self.db.reading() as session:
                if not claims.work_waiting(session, now=now):
                    return 0
        gentle = self.pace.gentle
        with self.db.transaction() as session:
            insert_new(session, slots)
            fanned = fan_out(
                session,
                handlers_for=self.wiring.handlers_for,
                max_attempts=self.config.max_attempts,
                now=now,
                limit=self.config.batch if gentle else self.config.fan_out,
            )
            if time.monotonic() - self._buried_at > BURY_EVERY_SECONDS:
                self._buried_at = time.monotonic()
                self.outcome.dead += claims.bury_expired(session, now=now)
            claimed = claims.claim(
                session,
                worker=self.name,
                limit=self.config.batch,
                lease=self.config.lease,
                now=now,
            )
            payloads = _payloads(session, [job.event_id for job in claimed if job.event_id])
        self.slots.written(slots)
        if claimed:
            self.outcome.add(self.runner.run(claimed, payloads))
        return fanned.events + len(claimed)

    def drain(self, *, max_rounds: int = 1_000_000) -> Outcome:
        """Rounds until one finds nothing due (`--once`, tests); retries not yet due wait."""
        for _ in range(max_rounds):
            if self.step() == 0:
                break
        return self.outcome

    def run(self, stop: threading.Event) -> None:
        """Rounds until `stop`; an idle worker waits for a commit, its poll or the next due."""
        self.doorbell.quiet()
        while not stop.is_set():
            started = time.monotonic()
            try:
                did = self.step()
            except Exception:
                log.exception("a worker round failed; trying again shortly")
                stop.wait(self.config.poll_seconds)
                continue
            if did:
                self.pace.rest(time.monotonic() - started, stop)
            else:
                self.doorbell.wait(self.config.poll_seconds)


def _payloads(session: Any, event_ids: list[str]) -> dict[str, tuple[str, str]]:
    if not event_ids:
        return {}
    rows = session.execute(
        select(outbox.c.event_id, outbox.c.type, outbox.c.payload).where(
            outbox.c.event_id.in_(event_ids)
        )
    )
    return {event_id: (kind, payload) for event_id, kind, payload in rows}


class Pool:
    """`concurrency` workers in threads of this process and the heartbeat of their leases."""

    def __init__(
        self,
        db: Database,
        wiring: Any,
        *,
        config: Config,
        concurrency: int = 1,
        pace: Pace | None = None,
        name: str | None = None,
    ) -> None:
        self.db, self.config = db, config
        self.doorbell = Doorbell()
        self.doorbell.listen(db.engine)
        slots = Slots(wiring.periodic.values(), max_attempts=PERIODIC_ATTEMPTS)
        base = name or process_name()
        self.workers = [
            Worker(
                db,
                wiring,
                name=base if concurrency == 1 else f"{base}/{n}",
                config=config,
                slots=slots,
                pace=pace,
                doorbell=self.doorbell,
            )
            for n in range(concurrency)
        ]
        self.stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for worker in self.workers:
            thread = threading.Thread(
                target=worker.run, args=(self.stop,), name=f"o2oloop-{worker.name}", daemon=True
            )
            thread.start()
            self._threads.append(thread)
        beat = threading.Thread(target=self._heartbeat, name="o2oloop-leases", daemon=True)
        beat.start()
        self._threads.append(beat)

    def _heartbeat(self) -> None:
        """Renew the leases of jobs still running, every third of a lease."""
        every = self.config.lease.total_seconds() / 3
        while not self.stop.wait(every):
            held = [(w.name, w.runner.in_flight.ids()) for w in self.workers]
            held = [(name, ids) for name, ids in held if ids]
            if not held:
                continue
            try:
                with self.db.transaction() as session:
                    until = clock.now() + self.config.lease
                    for name, ids in held:
                        claims.renew(session, worker=name, job_ids=ids, until=until)
            except Exception:
                log.exception("renewing leases failed; trying again at the next beat")

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop after the jobs in hand (their leases cover a worker that never returns)."""
        self.stop.set()
        self.doorbell.ring()
        for thread in self._threads:
            thread.join(timeout)

    def outcome(self) -> Outcome:
        total = Outcome()
        for worker in self.workers:
            total.add(worker.outcome)
        return total
