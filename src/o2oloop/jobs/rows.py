"""Writing job rows: new ones without duplicates, and the conditional moves between states.

Every move is an `UPDATE … WHERE` on the state, the worker and the attempt it expects, so a
worker whose lease ran out (another one took the job over) changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from o2oloop.db import new_id
from o2oloop.jobs.models import Job, JobState

jobs = Job.__table__
LAST_ERROR_CHARS = 4000


def new_job(
    *,
    key: str,
    handler: str,
    event_id: str | None,
    max_attempts: int,
    run_after: datetime,
    now: datetime | None = None,
) -> dict[str, Any]:
    created = now or run_after
    return {
        "id": new_id("job"),
        "key": key,
        "handler": handler,
        "event_id": event_id,
        "state": JobState.PENDING.value,
        "attempts": 0,
        "max_attempts": max_attempts,
        "run_after": run_after,
        "lease_until": None,
        "worker": None,
        "last_error": None,
        "created_at": created,
        "updated_at": created,
        "finished_at": None,
    }


def insert_new(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert the rows whose key is new; a key that exists already is left as it is."""
    if not rows:
        return 0
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = insert(jobs).on_conflict_do_nothing(index_elements=["key"]).returning(jobs.c.id)
    return len(session.execute(statement, list(rows)).all())


def _held(job_id: str, worker: str, attempts: int) -> Any:
    return and_(
        jobs.c.id == job_id,
        jobs.c.state == JobState.RUNNING.value,
        jobs.c.worker == worker,
        jobs.c.attempts == attempts,
    )


def mark_done(session: Session, *, job_id: str, worker: str, attempts: int, now: datetime) -> bool:
    """Done, if this worker still holds this attempt; False when the lease was lost."""
    result = session.execute(
        update(jobs)
        .where(_held(job_id, worker, attempts))
        .values(state=JobState.DONE.value, lease_until=None, finished_at=now, updated_at=now)
    )
    return result.rowcount == 1


def mark_failed(
    session: Session,
    *,
    job_id: str,
    worker: str,
    attempts: int,
    max_attempts: int,
    error: str,
    retry_at: datetime,
    now: datetime,
) -> JobState | None:
    """Back to pending until `retry_at`, or dead once every attempt is spent."""
    state = JobState.DEAD if attempts >= max_attempts else JobState.PENDING
    result = session.execute(
        update(jobs)
        .where(_held(job_id, worker, attempts))
        .values(
            state=state.value,
            run_after=now if state is JobState.DEAD else retry_at,
            lease_until=None,
            last_error=error[-LAST_ERROR_CHARS:],
            updated_at=now,
            finished_at=now if state is JobState.DEAD else None,
        )
    )
    return state if result.rowcount == 1 else None
