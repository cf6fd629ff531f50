"""The worker's side of webhooks: claim due deliveries, send them concurrently, record them.

Each request runs in a thread of a small pool, so a receiver that hangs for the whole
timeout holds one thread, not the batch; nothing here runs inside a database transaction.
"""

from __future__ import annotations

import logging
import ssl
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.webhooks.deliveries import Claim, claim_due, record_attempt, record_attempts, send
from o2oloop.webhooks.outbound import Outcome, Sender

log = logging.getLogger("o2oloop.webhooks")


class Dispatcher:
    """Sends due deliveries for one worker process. Reuse one: it keeps connections alive."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        concurrency: int = 8,
        verify: ssl.SSLContext | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.concurrency = concurrency
        self.sender = Sender(
            timeout=settings.webhooks_timeout_seconds,
            allow_private=settings.webhooks_allow_private,
            verify=verify,
        )
        # Two pools, so a claim never waits in a queue while its lease runs: the sweep's
        # batch is exactly as large as its pool, and first attempts claim one at a time.
        self.pool = ThreadPoolExecutor(concurrency, thread_name_prefix="webhooks-sweep")
        self.first_attempts = ThreadPoolExecutor(concurrency, thread_name_prefix="webhooks")

    def run_due(self, *, event_id: str | None = None, left_behind: bool = False) -> int:
        """Send one batch of due deliveries (of one event, if given; only those the
        after-commit senders left behind, for the sweep); how many were tried."""
        claims = claim_due(
            self.db,
            settings=self.settings,
            limit=self.concurrency,
            event_id=event_id,
            left_behind=left_behind,
        )
        if not claims:
            return 0
        results = list(self.pool.map(self._send, claims))
        try:
            record_attempts(self.db, results, settings=self.settings)
        except Exception:
            # Their leases run out and they are sent again (same webhook-ids).
            log.exception("could not record a batch of %d webhook attempts", len(results))
        return len(claims)

    def _send(self, claim: Claim) -> tuple[Claim, datetime, Outcome]:
        attempted_at, outcome = send(claim, self.sender.post)
        return claim, attempted_at, outcome

    def drain(self, *, event_id: str | None = None, max_batches: int = 1000) -> int:
        """Batches until nothing is due; how many deliveries were tried."""
        total = 0
        for _ in range(max_batches):
            tried = self.run_due(event_id=event_id)
            total += tried
            if tried == 0:
                break
        return total

    def send_soon(self, *, event_id: str) -> None:
        """Start the first attempts of one event's deliveries on a sending thread; the
        caller (a commit hook) does not wait for them."""
        self.first_attempts.submit(self._send_event, event_id)

    def _send_event(self, event_id: str) -> None:
        """One claim at a time, each just before its request, until none is left."""
        while True:
            try:
                claims = claim_due(self.db, settings=self.settings, limit=1, event_id=event_id)
            except Exception:
                # The sweep will find them: their next attempt is due now.
                log.exception("could not claim the deliveries of event %s", event_id)
                return
            if not claims:
                return
            self._deliver(claims[0])

    def _deliver(self, claim: Claim) -> None:
        attempted_at, outcome = send(claim, self.sender.post)
        try:
            record_attempt(
                self.db,
                claim=claim,
                attempted_at=attempted_at,
                outcome=outcome,
                settings=self.settings,
            )
        except Exception:
            # The lease runs out and the delivery is sent again (same webhook-id).
            log.exception("could not record webhook attempt for %s", claim.delivery_id)

    def close(self) -> None:
        self.first_attempts.shutdown(wait=True)
        self.pool.shutdown(wait=True)
        self.sender.close()
