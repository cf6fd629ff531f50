"""The worker inside `o2oloop serve` and `up` on SQLite, so a newcomer needs no second command.

With `serve --workers N` every server process starts one of these, and the one that holds
the lock file beside the database (`o2oloop.db-worker.lock`) runs the pool; the others
wait and take over if that process dies (the kernel drops its lock). The pool keeps to
`jobs_in_process_share` of the time while its process is answering requests.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path
from typing import Any

from o2oloop.db import Database
from o2oloop.jobs.pace import Activity, Pace
from o2oloop.jobs.worker import Config, Pool

log = logging.getLogger("o2oloop.jobs")
TAKE_OVER_SECONDS = 5.0
# The server answers first: the worker (and the periodic slots due at start) begins after.
START_AFTER_SECONDS = 10.0


def lock_path(db: Database) -> Path | None:
    """The lock file beside a SQLite file; None for a database without one."""
    path = db.engine.url.database if db.dialect == "sqlite" else None
    if not path or path == ":memory:" or path.startswith("file:"):
        return None
    return Path(f"{path}-worker.lock")


class InProcessWorker:
    def __init__(self, db: Database, wiring: Any, settings: Any, activity: Activity) -> None:
        self.db, self.wiring, self.settings, self.activity = db, wiring, settings, activity
        self.path = lock_path(db)
        self.pool: Pool | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self.path is None:
            return
        self._thread = threading.Thread(target=self._run, name="o2oloop-worker-lock", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        assert self.path is not None
        if self._stop.wait(START_AFTER_SECONDS):
            return
        descriptor = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            while not self._stop.is_set():
                try:
                    fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # another server process runs the worker
                    self._stop.wait(TAKE_OVER_SECONDS)
                    continue
                self._serve()
                fcntl.flock(descriptor, fcntl.LOCK_UN)
        finally:
            os.close(descriptor)

    def _serve(self) -> None:
        pace = Pace(self.settings.jobs_in_process_share, self.activity.busy)
        self.pool = Pool(
            self.db, self.wiring, config=Config.from_settings(self.settings), pace=pace
        )
        self.pool.start()
        log.info("this server process runs the worker (pid %d)", os.getpid())
        self._stop.wait()
        self.pool.shutdown()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(35)
