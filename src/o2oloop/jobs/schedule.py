"""Periodic jobs: one job row per slot of a job's interval, whichever worker writes it first.

Slots are aligned to the epoch, so every worker computes the same slot start, and the key
(name and slot start) lets only one row, hence one run, exist per slot across every worker.
A worker writes the slots only when one begins that it has not written yet.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from o2oloop.jobs.rows import new_job

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class Scheduled(Protocol):
    name: str
    every: timedelta


def slot_start(now: datetime, every: timedelta) -> datetime:
    """The start of the slot of length `every` that holds `now` (aligned to the epoch)."""
    slots = (now - EPOCH) // every
    return EPOCH + slots * every


def slot_key(name: str, start: datetime) -> str:
    return f"{name}@{start.astimezone(UTC).isoformat()}"


class Slots:
    """This process's memory of the slots it has written (shared by its worker threads)."""

    def __init__(self, periodic: Iterable[Scheduled], *, max_attempts: int) -> None:
        self.periodic = list(periodic)
        self.max_attempts = max_attempts
        self._written: dict[str, datetime] = {}
        self._lock = threading.Lock()

    def due(self, now: datetime) -> list[dict[str, Any]]:
        """Job rows of the slots begun since this process last wrote them."""
        rows = []
        with self._lock:
            for job in self.periodic:
                start = slot_start(now, job.every)
                if self._written.get(job.name) == start:
                    continue
                rows.append(
                    new_job(
                        key=slot_key(job.name, start),
                        handler=job.name,
                        event_id=None,
                        max_attempts=self.max_attempts,
                        run_after=start,
                        now=now,
                    )
                )
        return rows

    def written(self, rows: Iterable[dict[str, Any]]) -> None:
        """Remember slots once their insert has committed."""
        with self._lock:
            for row in rows:
                self._written[row["handler"]] = row["run_after"]
