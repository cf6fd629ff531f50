"""What the worker runs for webhooks, as `bootstrap` wires it.

- `on_event(session, event)`: the outbox handler (one for every type in the catalogue). In
  the worker's transaction it queues a delivery per subscribed endpoint; once that
  transaction has committed, and only then, the first attempts start on this process's
  sending threads, so the worker's loop never waits on a merchant's server.
- `deliver_due(db)`: the periodic sweep: retries and replays whose time has come, and
  deliveries whose sender died (their lease ran out, or none took them within a lease's
  length; same webhook-id). Fresh first attempts are left to the after-commit senders.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import event as orm_event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.events import Event
from o2oloop.webhooks.deliveries import on_domain_event
from o2oloop.webhooks.dispatch import Dispatcher


class WebhookJobs:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._dispatchers: dict[Engine, Dispatcher] = {}
        self._lock = threading.Lock()

    def dispatcher(self, engine: Engine, db: Database | None = None) -> Dispatcher:
        """This process's dispatcher for a database (one pool of connections and threads)."""
        with self._lock:
            found = self._dispatchers.get(engine)
            if found is None:
                found = Dispatcher(
                    db or Database(engine),
                    self.settings,
                    concurrency=self.settings.webhooks_concurrency,
                )
                self._dispatchers[engine] = found
            return found

    def on_event(self, session: Session, event: Event) -> None:
        queued = on_domain_event(session, event)
        if not queued:
            return
        engine = session.get_bind()
        assert isinstance(engine, Engine)
        event_id = event.event_id

        sent = False

        def _send_after_commit(committed: Session) -> None:
            # after_commit fires when a savepoint is released too (the worker runs each job
            # in one): the deliveries are not committed yet, and a claim would find none.
            nonlocal sent
            if sent or committed.in_nested_transaction():
                return
            sent = True
            self.dispatcher(engine).send_soon(event_id=event_id)

        orm_event.listen(session, "after_commit", _send_after_commit)

    def deliver_due(self, db: Database) -> int:
        """Send what is due, for at most about one sweep interval; how many were tried."""
        dispatcher = self.dispatcher(db.engine, db)
        deadline = time.monotonic() + self.settings.webhooks_sweep_seconds
        total = 0
        while time.monotonic() < deadline:
            tried = dispatcher.run_due(left_behind=True)
            total += tried
            if tried == 0:
                break
        return total

    def close(self) -> None:
        with self._lock:
            dispatchers, self._dispatchers = list(self._dispatchers.values()), {}
        for dispatcher in dispatchers:
            dispatcher.close()
