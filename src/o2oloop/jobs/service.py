"""The platform admin's view of the worker: jobs by state and handler, re-driving dead ones,
and the clean-up of finished jobs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth.principal import Principal
from o2oloop.db import Database
from o2oloop.errors import Conflict, Forbidden, NotFound
from o2oloop.jobs.models import Job, JobState
from o2oloop.pagination import paginate


def _require_platform(principal: Principal) -> None:
    if not principal.is_platform:
        raise Forbidden("the worker's jobs are for platform admins")


def list_jobs(
    session: Session,
    *,
    principal: Principal,
    state: JobState | None = None,
    handler: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[Job], str | None]:
    """Jobs in id (creation) order, optionally of one state and one handler."""
    _require_platform(principal)
    query = select(Job)
    if state is not None:
        query = query.where(Job.state == state)
    if handler:
        query = query.where(Job.handler == handler)
    return paginate(session, query, Job.id, cursor=cursor, limit=limit)


def counts(session: Session, *, principal: Principal) -> dict[str, int]:
    _require_platform(principal)
    rows = session.execute(select(Job.state, func.count()).group_by(Job.state)).all()
    found = {JobState(state).value: count for state, count in rows}
    return {state.value: found.get(state.value, 0) for state in JobState}


def retry_job(session: Session, *, principal: Principal, job_id: str) -> Job:
    """Re-drive a dead job: pending again now, with a fresh set of attempts.

    Its last error stays for the record until the next attempt writes its own.
    """
    _require_platform(principal)
    job = session.get(Job, job_id, with_for_update=True)
    if job is None:
        raise NotFound("no job with this id")
    if job.state is not JobState.DEAD:
        raise Conflict(f"only a dead job can be retried; this one is {job.state.value}")
    now = clock.now()
    job.state = JobState.PENDING
    job.attempts = 0
    job.run_after = now
    job.lease_until = None
    job.finished_at = None
    job.updated_at = now
    session.flush()
    return job


def purge_done(db: Database, *, older_than: timedelta = timedelta(days=7)) -> int:
    """Finished jobs leave the table after a week (their events stay in the outbox)."""
    cutoff = clock.now() - older_than
    with db.transaction() as session:
        result = session.execute(
            delete(Job).where(Job.state == JobState.DONE, Job.finished_at < cutoff)
        )
    return max(result.rowcount, 0)


def describe(job: Job) -> dict[str, Any]:
    """A job as the CLI prints it."""
    return {
        "id": job.id,
        "handler": job.handler,
        "state": job.state.value,
        "attempts": f"{job.attempts}/{job.max_attempts}",
        "run_after": job.run_after.isoformat(timespec="seconds"),
        "last_error": (job.last_error or "").strip().splitlines()[-1:] or [""],
    }
