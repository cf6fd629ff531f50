"""What the admin API shows of a job."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from o2oloop.jobs.models import JobState


class JobRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    key: str
    handler: str
    event_id: str | None
    state: JobState
    attempts: int
    max_attempts: int
    run_after: datetime
    lease_until: datetime | None
    worker: str | None
    last_error: str | None
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
