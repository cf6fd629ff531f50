"""The outbox (every committed domain event) and the jobs the worker runs from it.

An event is written to `outbox` in the transaction of the change it describes. The worker
fans each event out into one `jobs` row per handler (`key` = event id and handler name, so a
second fan-out inserts nothing), and periodic work lands in `jobs` too, one row per slot.
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from o2oloop.db import Base, UTCDateTime, str_enum


class OutboxEntry(Base):
    """One domain event, committed with its change; `dispatched_at` once fanned out."""

    __tablename__ = "outbox"

    event_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    type: Mapped[str] = mapped_column(String(60))
    merchant_id: Mapped[str | None] = mapped_column(String(32), index=True)
    payload: Mapped[str] = mapped_column(Text)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (
        # Only the events still to fan out: the worker's scan stays small however long the log.
        Index(
            "ix_outbox_undispatched",
            "event_id",
            sqlite_where=text("dispatched_at IS NULL"),
            postgresql_where=text("dispatched_at IS NULL"),
        ),
    )


class JobState(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    DEAD = "dead"


class Job(Base):
    """A handler to run for one event, or one slot of a periodic job."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    handler: Mapped[str] = mapped_column(String(120))
    event_id: Mapped[str | None] = mapped_column(String(32), index=True)
    state: Mapped[JobState] = mapped_column(str_enum(JobState, 10))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer)
    run_after: Mapped[datetime] = mapped_column(UTCDateTime())
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    worker: Mapped[str | None] = mapped_column(String(100))
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_jobs_state_run_after", "state", "run_after"),)
