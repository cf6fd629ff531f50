"""The campaigns job: evaluate triggers, send in batches, dispatch messages, take reports.

An entry point (the worker's periodic job, `o2oloop campaigns run`): each step is its own
transaction, so a crash loses at most the batch in flight, and that batch is found pending
again and sent once by the next run.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from o2oloop import clock
from o2oloop.campaigns.policy import Policy
from o2oloop.campaigns.send import SendReport, send_pending
from o2oloop.campaigns.triggers import RunReport, run_due_campaigns
from o2oloop.db import Database
from o2oloop.errors import ProblemError
from o2oloop.notify import dispatch as notify_dispatch
from o2oloop.notify.email import EmailSender
from o2oloop.notify.sms import SmsProvider, deliver_reports, report_secret


@dataclass
class CampaignRun:
    triggers: RunReport = field(default_factory=RunReport)
    sends: SendReport = field(default_factory=SendReport)
    dispatched: notify_dispatch.Dispatched = field(default_factory=notify_dispatch.Dispatched)
    reports: int = 0

    def summary(self) -> dict[str, Any]:
        return {
            "campaigns_evaluated": self.triggers.evaluated,
            "targeted": self.triggers.targeted,
            "sent": self.sends.sent,
            "skipped": self.sends.skipped,
            "messages_dispatched": self.dispatched.sent,
            "delivery_reports": self.reports,
        }


# Senders side by side on PostgreSQL: while one holds the campaign's budget lock and writes
# its batch, the other reads, claims and drafts the next (SKIP LOCKED gives each its own).
SENDERS = 2


def send_all(
    db: Database, *, policy: Policy, now: datetime | None = None, senders: int | None = None
) -> SendReport:
    """Every pending target, one batch per transaction, each past the targets taken before.

    On PostgreSQL `SENDERS` threads send at once, so the database writes one batch while
    Python drafts another (alone, each waited for the other); SQLite
    has one writer, so one sender."""
    count = senders or (SENDERS if db.dialect == "postgresql" else 1)
    total = SendReport()
    lock = threading.Lock()

    def sender() -> None:
        while True:
            with lock:
                after = dict(total.reached)
            with db.transaction() as session:
                batch = send_pending(session, now=now or clock.now(), policy=policy, after=after)
            with lock:
                total.add(batch)
            if batch.sent + sum(batch.skipped.values()) == 0:
                return

    if count == 1:
        sender()
        return total
    with ThreadPoolExecutor(count, thread_name_prefix="campaign-sender") as pool:
        running = [pool.submit(sender) for _ in range(count)]
    for done in running:
        done.result()
    return total


def local_report_post(db: Database, secret: str) -> notify_dispatch.ReportPost:
    """Delivery reports straight to the receiver (workers and tests without a server)."""

    def post(body: bytes, headers: dict[str, str]) -> int:
        try:
            with db.transaction() as session:
                notify_dispatch.receive_sms_report(
                    session, payload=body, signature=headers.get("O2O-Signature"), secret=secret
                )
        except ProblemError as error:
            return error.status
        return 200

    return post


def run_campaigns(
    db: Database,
    *,
    policy: Policy,
    sms: SmsProvider,
    email: EmailSender,
    now: datetime | None = None,
) -> CampaignRun:
    run = CampaignRun()
    with db.transaction() as session:
        run.triggers = run_due_campaigns(session, now=now or clock.now(), policy=policy)
    run.sends = send_all(db, policy=policy, now=now)
    while True:
        round_ = notify_dispatch.dispatch(db, sms=sms, email=email)
        run.dispatched.sent += round_.sent
        run.dispatched.retried += round_.retried
        run.dispatched.failed += round_.failed
        if round_.sent + round_.retried + round_.failed == 0:
            break
    secret = report_secret(policy.secret_key)
    run.reports = deliver_reports(db, post=local_report_post(db, secret), secret=secret)
    return run
