"""Claiming jobs with a lease: a batch per transaction, each job held until `lease_until`.

A due job is pending with `run_after` passed, or running with its lease run out (its worker
died: the job runs again, at least once). The claim takes a batch in one statement; on
PostgreSQL the batch is picked `FOR UPDATE SKIP LOCKED`, so any number of workers take
different jobs without waiting on each other, and a job whose handler is running in a
transaction (its row locked) is skipped even past its lease. On SQLite the one writer makes
the conditional UPDATE a claim by itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.orm import Session

from o2oloop.jobs.models import JobState, OutboxEntry
from o2oloop.jobs.rows import jobs

outbox = OutboxEntry.__table__
EXPIRED = "the lease ran out on every attempt: the worker running it stopped or hung"


@dataclass(frozen=True)
class Claimed:
    """A job this worker holds for one attempt (`attempts` counts this one)."""

    id: str
    key: str
    handler: str
    event_id: str | None
    attempts: int
    max_attempts: int


def _due(now: datetime) -> object:
    return or_(
        and_(jobs.c.state == JobState.PENDING.value, jobs.c.run_after <= now),
        and_(
            jobs.c.state == JobState.RUNNING.value,
            jobs.c.lease_until < now,
            jobs.c.attempts < jobs.c.max_attempts,
        ),
    )


def _skip_locked(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def claim(
    session: Session, *, worker: str, limit: int, lease: timedelta, now: datetime
) -> list[Claimed]:
    """Take up to `limit` due jobs, oldest due first, for this worker."""
    pick = select(jobs.c.id).where(_due(now)).order_by(jobs.c.run_after).limit(limit)
    if _skip_locked(session):
        pick = pick.with_for_update(skip_locked=True)
    rows = session.execute(
        update(jobs)
        .where(jobs.c.id.in_(pick.scalar_subquery()))
        .values(
            state=JobState.RUNNING.value,
            attempts=jobs.c.attempts + 1,
            lease_until=now + lease,
            worker=worker,
            updated_at=now,
        )
        .returning(
            jobs.c.id,
            jobs.c.key,
            jobs.c.handler,
            jobs.c.event_id,
            jobs.c.attempts,
            jobs.c.max_attempts,
        )
    ).all()
    claimed = [Claimed(*row) for row in rows]
    return sorted(claimed, key=lambda job: job.key)


def bury_expired(session: Session, *, now: datetime) -> int:
    """Dead-letter running jobs whose lease ran out on their last attempt."""
    pick = select(jobs.c.id).where(
        jobs.c.state == JobState.RUNNING.value,
        jobs.c.lease_until < now,
        jobs.c.attempts >= jobs.c.max_attempts,
    )
    if _skip_locked(session):
        pick = pick.with_for_update(skip_locked=True)
    result = session.execute(
        update(jobs)
        .where(jobs.c.id.in_(pick.scalar_subquery()))
        .values(
            state=JobState.DEAD.value,
            lease_until=None,
            last_error=EXPIRED,
            updated_at=now,
            finished_at=now,
        )
    )
    return max(result.rowcount, 0)


def renew(session: Session, *, worker: str, job_ids: list[str], until: datetime) -> int:
    """Extend this worker's leases on jobs it is still running (a long job's heartbeat)."""
    if not job_ids:
        return 0
    pick = select(jobs.c.id).where(
        jobs.c.id.in_(job_ids),
        jobs.c.worker == worker,
        jobs.c.state == JobState.RUNNING.value,
    )
    if _skip_locked(session):
        pick = pick.with_for_update(skip_locked=True)  # a row locked is ours, mid-handler
    result = session.execute(
        update(jobs).where(jobs.c.id.in_(pick.scalar_subquery())).values(lease_until=until)
    )
    return max(result.rowcount, 0)


def work_waiting(session: Session, *, now: datetime) -> bool:
    """Whether there is anything to fan out or claim: a read, so an idle worker takes no
    writer's turn on SQLite."""
    undispatched = exists().where(outbox.c.dispatched_at.is_(None))
    due = exists().where(_due(now))
    return bool(session.scalar(select(or_(undispatched, due))))


def next_due(session: Session) -> datetime | None:
    """When the earliest pending job comes due (to sleep until then rather than poll)."""
    return session.scalar(
        select(func.min(jobs.c.run_after)).where(jobs.c.state == JobState.PENDING.value)
    )
