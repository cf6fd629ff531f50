"""Running claimed jobs, and what each outcome writes.

- A `wiring.on` handler runs inside the transaction that marks its job done: its effect
  and the mark commit together or not at all, so a worker killed halfway leaves neither and
  the job's next run is its only effect. Several such jobs share one transaction, each in a
  savepoint (one failing undoes only itself), for a few milliseconds at a time: short
  turns of SQLite's single writer.
- A `wiring.after_commit` handler (a network call) and a periodic job run outside any
  transaction; their job is marked done afterwards, so a crash in between runs them again.
- A failure puts the job back with exponential backoff and full jitter (a delay drawn
  between zero and base·2^(attempt-1), capped), or dead-letters it with the last error
  once its attempts are spent.
"""

from __future__ import annotations

import logging
import random
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.db import Database
from o2oloop.events import Event, from_json
from o2oloop.jobs.claim import Claimed
from o2oloop.jobs.rows import mark_done, mark_failed

log = logging.getLogger("o2oloop.jobs")


@dataclass(frozen=True)
class Backoff:
    base_seconds: float
    cap_seconds: float

    def delay(self, attempts: int, rng: random.Random | None = None) -> timedelta:
        """Full jitter: uniform between zero and the capped exponential ceiling."""
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0 ** max(attempts - 1, 0))
        return timedelta(seconds=(rng or random).uniform(0, ceiling))


class InFlight:
    """The jobs this process is running, whose leases its heartbeat renews."""

    def __init__(self) -> None:
        self._ids: set[str] = set()
        self._lock = threading.Lock()

    @contextmanager
    def holding(self, job_ids: list[str]) -> Iterator[None]:
        with self._lock:
            self._ids.update(job_ids)
        try:
            yield
        finally:
            with self._lock:
                self._ids.difference_update(job_ids)

    def ids(self) -> list[str]:
        with self._lock:
            return sorted(self._ids)


@dataclass
class Outcome:
    done: int = 0
    retried: int = 0
    dead: int = 0
    lost: int = 0  # another worker took the job over: this run wrote nothing

    def add(self, other: Outcome) -> None:
        self.done += other.done
        self.retried += other.retried
        self.dead += other.dead
        self.lost += other.lost


def _error_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)).strip()


@dataclass
class Runner:
    """Runs one worker's claimed jobs with the wiring's handlers."""

    db: Database
    handlers: dict[str, Any]
    periodic: dict[str, Any]
    worker: str
    backoff: Backoff
    in_flight: InFlight = field(default_factory=InFlight)
    turn_seconds: float = 0.005  # SQLite's one writer; PostgreSQL takes `pg_turn_seconds`
    pg_turn_seconds: float = 0.1

    def run(self, claimed: list[Claimed], payloads: dict[str, tuple[str, str]]) -> Outcome:
        outcome = Outcome()
        in_session, outside = [], []
        for job in claimed:
            handler = self.handlers.get(job.handler) if job.event_id else None
            (in_session if handler is not None and handler.needs_session else outside).append(job)
        with self.in_flight.holding([job.id for job in claimed]):
            while in_session:
                in_session = self._in_transaction(in_session, payloads, outcome)
            results: list[tuple[Claimed, BaseException | None]] = []
            for job in outside:
                results.append((job, self._call(job, payloads, None)))
                if job.event_id is None:  # a periodic job may be long: mark it at once
                    self._finish(results, outcome)
                    results = []
            if results:
                self._finish(results, outcome)
        return outcome

    def _resolve(self, job: Claimed, payloads: dict[str, tuple[str, str]]) -> Callable[..., Any]:
        if job.event_id is None:
            periodic = self.periodic.get(job.handler)
            if periodic is None:
                raise LookupError(f"no periodic job named {job.handler!r} in this wiring")
            return lambda _session: periodic.run(self.db)
        handler = self.handlers.get(job.handler)
        if handler is None:
            raise LookupError(f"no handler named {job.handler!r} in this wiring")
        found = payloads.get(job.event_id)
        if found is None:
            raise LookupError(f"event {job.event_id} is not in the outbox")
        event: Event = from_json(*found)
        return lambda session: handler(session, event)

    def _call(
        self, job: Claimed, payloads: dict[str, tuple[str, str]], session: Session | None
    ) -> BaseException | None:
        try:
            self._resolve(job, payloads)(session)
        except Exception as error:
            log.warning("job %s (%s) failed on attempt %d", job.id, job.handler, job.attempts)
            return error
        return None

    def _in_transaction(
        self, jobs: list[Claimed], payloads: dict[str, tuple[str, str]], outcome: Outcome
    ) -> list[Claimed]:
        """Run jobs in one transaction for about `turn_seconds`; the rest are returned."""
        started = time.perf_counter()
        budget = self.turn_seconds if self.db.dialect == "sqlite" else self.pg_turn_seconds
        taken: list[Claimed] = []
        failed: list[tuple[Claimed, BaseException]] = []
        part = Outcome()
        try:
            with self.db.transaction() as session:
                for job in jobs:
                    if taken and time.perf_counter() - started > budget:
                        break
                    taken.append(job)
                    error = self._in_savepoint(session, job, payloads, part)
                    if error is not None:
                        failed.append((job, error))
                self._record(session, failed, part)
        except Exception as error:  # the commit itself failed: nothing of it was kept
            log.warning("a transaction of %d jobs failed to commit", len(taken), exc_info=True)
            self._finish([(job, error) for job in taken], outcome)
            return jobs[len(taken) :]
        outcome.add(part)
        return jobs[len(taken) :]

    def _in_savepoint(
        self,
        session: Session,
        job: Claimed,
        payloads: dict[str, tuple[str, str]],
        part: Outcome,
    ) -> BaseException | None:
        try:
            with session.begin_nested():
                if not mark_done(
                    session,
                    job_id=job.id,
                    worker=self.worker,
                    attempts=job.attempts,
                    now=clock.now(),
                ):
                    part.lost += 1
                    return None
                self._resolve(job, payloads)(session)
        except Exception as error:
            log.warning("job %s (%s) failed on attempt %d", job.id, job.handler, job.attempts)
            return error
        part.done += 1
        return None

    def _record(
        self, session: Session, failed: list[tuple[Claimed, BaseException]], outcome: Outcome
    ) -> None:
        now = clock.now()
        for job, error in failed:
            state = mark_failed(
                session,
                job_id=job.id,
                worker=self.worker,
                attempts=job.attempts,
                max_attempts=job.max_attempts,
                error=_error_text(error),
                retry_at=now + self.backoff.delay(job.attempts),
                now=now,
            )
            if state is None:
                outcome.lost += 1
            elif state.value == "dead":
                outcome.dead += 1
            else:
                outcome.retried += 1

    def _finish(
        self, results: list[tuple[Claimed, BaseException | None]], outcome: Outcome
    ) -> None:
        """Mark jobs that ran outside a transaction: done, retried later, or dead."""
        part = Outcome()
        with self.db.transaction() as session:
            now = clock.now()
            for job, error in results:
                if error is None:
                    kept = mark_done(
                        session, job_id=job.id, worker=self.worker, attempts=job.attempts, now=now
                    )
                    part.done += kept
                    part.lost += not kept
            self._record(session, [(job, e) for job, e in results if e is not None], part)
        outcome.add(part)
