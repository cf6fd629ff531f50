"""Platform admin routes for the worker's jobs: list them, re-drive a dead one."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from o2oloop.http import DB, IDEMPOTENT, Caller, Cursor, Limit, Reading, problems
from o2oloop.jobs import schemas, service
from o2oloop.jobs.models import JobState
from o2oloop.pagination import Page, page_of

router = APIRouter(
    prefix="/v1/admin/jobs", tags=["jobs"], responses=problems(401, 403, 404, 409, 422)
)


@router.get("")
def list_jobs(
    session: Reading,
    caller: Caller,
    state: JobState | None = None,
    handler: Annotated[str | None, Query(max_length=120)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> Page[schemas.JobRead]:
    """Jobs in creation order, by state (`dead` for the dead letters) and handler."""
    rows, next_cursor = service.list_jobs(
        session, principal=caller, state=state, handler=handler, cursor=cursor, limit=limit
    )
    return page_of(schemas.JobRead, rows, next_cursor)


@router.post("/{job_id}/retry", dependencies=IDEMPOTENT)
def retry_job(job_id: str, db: DB, caller: Caller) -> schemas.JobRead:
    """Re-drive a dead job: pending now, with a fresh set of attempts."""
    with db.transaction() as session:
        job = service.retry_job(session, principal=caller, job_id=job_id)
        return schemas.JobRead.model_validate(job)
