"""Fan-out: each committed event becomes one job per handler wired to its type.

A job's key is the event id and the handler's name, so fanning an event out twice (two
workers, or a worker killed between the insert and marking the entry) inserts nothing new.
Many events go in one transaction: one multi-row insert and one update, a single writer's
turn on SQLite however many events a burst of redemptions left.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from o2oloop.jobs.models import OutboxEntry
from o2oloop.jobs.rows import insert_new, new_job

outbox = OutboxEntry.__table__


class Named(Protocol):
    name: str


HandlersFor = Callable[[str], Sequence[Named]]


def job_key(event_id: str, handler: str) -> str:
    return f"{event_id}/{handler}"


@dataclass(frozen=True)
class FanOut:
    events: int
    jobs: int


def fan_out(
    session: Session,
    *,
    handlers_for: HandlersFor,
    max_attempts: int,
    now: datetime,
    limit: int = 500,
) -> FanOut:
    """Turn up to `limit` undispatched outbox entries, oldest first, into jobs."""
    query = (
        select(outbox.c.event_id, outbox.c.type)
        .where(outbox.c.dispatched_at.is_(None))
        .order_by(outbox.c.event_id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        # Workers fanning out at once take different entries instead of queueing.
        query = query.with_for_update(skip_locked=True)
    entries = session.execute(query).all()
    if not entries:
        return FanOut(0, 0)
    rows = [
        new_job(
            key=job_key(event_id, handler.name),
            handler=handler.name,
            event_id=event_id,
            max_attempts=max_attempts,
            run_after=now,
        )
        for event_id, kind in entries
        for handler in handlers_for(kind)
    ]
    inserted = insert_new(session, rows)
    session.execute(
        update(outbox)
        .where(outbox.c.event_id.in_([event_id for event_id, _ in entries]))
        .values(dispatched_at=now)
    )
    return FanOut(len(entries), inserted)
