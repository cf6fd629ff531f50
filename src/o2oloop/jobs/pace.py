"""How a worker waits and how much it takes: woken by commits, gentle beside a busy server.

- `Doorbell`: an ORM commit in this process rings it, so an idle worker looks for work at
  once instead of at its next poll (commits of other processes are found by the poll, a
  read that takes no writer's turn).
- `Activity` and `ActivityMiddleware`: when this process last served a request.
- `Pace`: while the server is busy, a worker in its process rests after each round so it is
  at work for at most `share` of the time; once the requests stop it runs flat out and
  catches up. On SQLite the writer's turn is the scarce thing, and the counter needs it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine


class Doorbell:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._quiet: set[int] = set()  # threads whose own commits do not ring (the workers)

    def ring(self) -> None:
        self._event.set()

    def wait(self, seconds: float) -> None:
        self._event.wait(seconds)
        self._event.clear()

    def quiet(self) -> None:
        """Commits of the calling thread do not ring (a worker's own)."""
        self._quiet.add(threading.get_ident())

    def listen(self, engine: Engine) -> None:
        def _committed(_connection: Any) -> None:
            if threading.get_ident() not in self._quiet:
                self._event.set()

        event.listen(engine, "commit", _committed)


class Activity:
    """When this process last began answering a request."""

    def __init__(self, quiet_seconds: float = 1.0) -> None:
        self.quiet_seconds = quiet_seconds
        self.last = float("-inf")

    def touch(self) -> None:
        self.last = time.monotonic()

    def busy(self) -> bool:
        return time.monotonic() - self.last < self.quiet_seconds


class ActivityMiddleware:
    """Pure ASGI: one clock read per request, so the worker knows the server is busy."""

    def __init__(self, app: Any, activity: Activity) -> None:
        self.app = app
        self.activity = activity

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            self.activity.touch()
        await self.app(scope, receive, send)


class Pace:
    def __init__(self, share: float = 1.0, busy: Callable[[], bool] | None = None) -> None:
        if not 0 < share <= 1:
            raise ValueError("share is a fraction of the time, in (0, 1]")
        self.share = share
        self.busy = busy or (lambda: False)

    @property
    def gentle(self) -> bool:
        return self.share < 1 and self.busy()

    def rest(self, worked_seconds: float, stop: threading.Event) -> None:
        """After a round of `worked_seconds`, rest long enough to keep to the share."""
        if self.gentle:
            stop.wait(worked_seconds * (1 / self.share - 1))
