"""The one place where the product is wired: event type → handlers, periodic jobs, adapters.

`create_app`, the CLI, the worker and the tests call `bootstrap(settings)` and pass the
`Wiring` on. No domain registers itself by being imported: to react to another domain's
event, write a handler in your domain (importing only the other domain's `events` module)
and add one line here.

- `wiring.on(EventType, handler)`: `handler(session, event)`, a reaction that writes, run
  by the worker in its own transaction, which also marks the job done (so its effect
  happens once even if the worker is killed and the job runs again).
- `wiring.after_commit(EventType, handler)`: `handler(event)`, a side effect (network:
  the payment provider, SMS, email, webhooks) that gets no session; at-least-once, so it
  must be idempotent by `event.event_id`.
- `wiring.every(name, interval, job)`: `job(db)` owns its transactions; one run per
  interval across every worker.
- `wiring.in_transaction(EventType, handler)`: `handler(session, event)` run by
  `events.record` in the transaction of the change, for a projection that must be current
  the moment the change commits (a store's place in the nearby index). Installed on a
  database by `wiring.install(db)`, which `bootstrap(settings, db=db)` and `create_app` call.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, TypeVar

from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.analytics.events import MembersScored, SegmentChanged
from o2oloop.campaigns import erasure as campaign_erasure
from o2oloop.campaigns import runner as campaigns
from o2oloop.campaigns import triggers as campaign_triggers
from o2oloop.campaigns.events import CampaignMessageSent
from o2oloop.campaigns.policy import Policy
from o2oloop.channels import claims as channel_claims
from o2oloop.channels import ratings as channel_ratings
from o2oloop.channels import referrals
from o2oloop.channels import stores as channel_stores
from o2oloop.codes import vouchers
from o2oloop.codes.events import CodeClaimed, CodeRedeemed, RedemptionUndone, VoucherRefunded
from o2oloop.codes.service import Keys
from o2oloop.config import Settings
from o2oloop.customers.events import ConsumerErased, MemberEnrolled
from o2oloop.dashboard import hours as dashboard_hours
from o2oloop.db import Database
from o2oloop.events import Event
from o2oloop.idempotency import service as idempotency
from o2oloop.jobs import service as jobs
from o2oloop.merchants.events import MerchantClosed, StoreClosed, StorePlaced
from o2oloop.notify import service as notify
from o2oloop.notify.email import EmailSender, MemorySender, sender_from_settings
from o2oloop.notify.sms import SandboxSmsProvider
from o2oloop.payments import provider as providers
from o2oloop.payments import service as payments
from o2oloop.payments.events import (
    PaymentFailed,
    PaymentRequested,
    PaymentSucceeded,
    PayoutFinished,
    PayoutRequested,
    RefundRequested,
)
from o2oloop.payments.provider import PaymentProvider, SandboxProvider
from o2oloop.payments.requests import ProviderRequests
from o2oloop.people import service as people
from o2oloop.reviews.events import ReviewPosted
from o2oloop.reviews.jobs import sign_checkpoint_if_due
from o2oloop.settlement import service as settlement
from o2oloop.stored_value import service as stored_value
from o2oloop.visits.events import VisitRecorded
from o2oloop.webhooks.jobs import WebhookJobs

E = TypeVar("E", bound=Event)

# The events merchants can subscribe to (`webhooks.catalog` describes them).
WEBHOOK_EVENTS: tuple[type[Event], ...] = (
    CodeClaimed,
    CodeRedeemed,
    RedemptionUndone,
    VoucherRefunded,
    VisitRecorded,
    MemberEnrolled,
    SegmentChanged,
    MembersScored,
    PaymentSucceeded,
    PaymentFailed,
    PayoutFinished,
    CampaignMessageSent,
)


@dataclass(frozen=True)
class Handler:
    """A handler of one event type; `name` is its stable key in the jobs table."""

    name: str
    event: str
    run: Callable[..., Any]
    needs_session: bool

    def __call__(self, session: Session | None, event: Event) -> None:
        if self.needs_session:
            self.run(session, event)
        else:
            self.run(event)


@dataclass(frozen=True)
class Periodic:
    """A job run once per `every` (aligned to the epoch), by whichever worker gets it."""

    name: str
    every: timedelta
    run: Callable[[Database], Any]


@dataclass
class Wiring:
    settings: Settings
    provider: PaymentProvider
    email: EmailSender = field(default_factory=MemorySender)
    handlers: dict[str, list[Handler]] = field(default_factory=dict)
    periodic: dict[str, Periodic] = field(default_factory=dict)
    # Steps another domain adds to a claim, in the claim's own transaction (they may refuse
    # it): `step(session, code=…, token=…, secret=…)`, run by the claim route in order.
    claim_steps: list[Callable[..., None]] = field(default_factory=list)
    # Event name -> reactions in the recording transaction (the event's reacts_in_transaction).
    reactions: dict[str, list[Callable[[Session, Any], None]]] = field(default_factory=dict)

    def _add(self, event_type: type[Event], handler: Handler) -> None:
        known = self.handlers.setdefault(event_type.name, [])
        if any(h.name == handler.name for h in known):
            raise ValueError(f"{handler.name} already handles {event_type.name}")
        known.append(handler)

    def on(
        self,
        event_type: type[E],
        handler: Callable[[Session, E], Any],
        *,
        name: str | None = None,
    ) -> None:
        """A reaction that writes: `handler(session, event)` in the worker's transaction."""
        self._add(event_type, Handler(name or _name_of(handler), event_type.name, handler, True))

    def after_commit(
        self, event_type: type[E], handler: Callable[[E], Any], *, name: str | None = None
    ) -> None:
        """A side effect without a session: `handler(event)`, at least once."""
        self._add(event_type, Handler(name or _name_of(handler), event_type.name, handler, False))

    def in_claim(self, step: Callable[..., None]) -> None:
        """A step of every claim, in its transaction: `step(session, code=, token=, secret=)`."""
        self.claim_steps.append(step)

    def in_transaction(self, event_type: type[E], handler: Callable[[Session, E], Any]) -> None:
        """A reaction that is part of the change: `handler(session, event)` when recorded."""
        if not event_type.reacts_in_transaction:
            raise ValueError(f"{event_type.name} is not marked reacts_in_transaction")
        self.reactions.setdefault(event_type.name, []).append(handler)

    def install(self, db: Database) -> None:
        """Make `db`'s write sessions run this wiring's in-transaction reactions."""
        db.reactions.clear()
        db.reactions.update(self.reactions)

    def every(self, name: str, interval: timedelta, job: Callable[[Database], Any]) -> None:
        if name in self.periodic:
            raise ValueError(f"a periodic job named {name!r} exists already")
        self.periodic[name] = Periodic(name, interval, job)

    def handlers_for(self, event_name: str) -> list[Handler]:
        return self.handlers.get(event_name, [])

    def handler(self, name: str) -> Handler | None:
        for handlers in self.handlers.values():
            for handler in handlers:
                if handler.name == name:
                    return handler
        return None


def _name_of(handler: Callable[..., Any]) -> str:
    module = getattr(handler, "__module__", None)
    qualname = getattr(handler, "__qualname__", None)
    if not module or not qualname or "<" in qualname:
        raise ValueError("give a lambda or partial handler an explicit name=")
    return f"{module.removeprefix('o2oloop.')}.{qualname}"


# ---- periodic jobs: entry points, so each owns its transactions -------------------------


def purge_web_sessions(db: Database) -> int:
    """Expired sign-in sessions and reset links leave the database."""
    with db.transaction() as session:
        return people.purge_expired(session)


def refund_expired_vouchers(db: Database) -> int:
    """Refund every unused paid voucher past its expiry, each in its own transaction."""
    refunded = 0
    while True:
        with db.reading() as session:
            due = vouchers.expired_unused(session)
        for code_id in due:
            with db.transaction() as session:
                refunded += vouchers.refund_expired(session, code_id=code_id)
        if len(due) < 500:
            return refunded


def analyze_members(db: Database) -> int:
    """The nightly analysis, as `o2oloop analyze` in a child process at lower priority.

    At a million members it holds about 1.7 GiB and minutes of CPU; run in a thread of the
    server's in-process worker it would share the tills' process, memory and interpreter
    lock. The child analyses as of this process's clock and its output is kept on failure.
    """
    url = db.engine.url.render_as_string(hide_password=False)
    command = [sys.executable, "-m", "o2oloop", "analyze", "--as-of", clock.now().isoformat()]
    done = subprocess.run(
        command, env={**os.environ, "O2O_DATABASE_URL": url}, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"o2oloop analyze exited {done.returncode}: {done.stderr[-2000:]}")
    counted = re.search(r"analysed ([\d,]+) members", done.stdout)
    return int(counted.group(1).replace(",", "")) if counted else 0


def _wire_payments(wiring: Wiring, code_keys: Keys) -> None:
    """The provider is asked after commit; the other domains react to what it answered."""
    requests = ProviderRequests(wiring.provider)
    wiring.after_commit(PaymentRequested, requests.charge, name="payments.request_charge")
    wiring.after_commit(RefundRequested, requests.refund, name="payments.request_refund")
    wiring.after_commit(PayoutRequested, requests.payout, name="payments.request_payout")
    wiring.on(
        PaymentSucceeded,
        functools.partial(vouchers.issue_paid_voucher, keys=code_keys),
        name="codes.issue_paid_voucher",
    )
    wiring.on(PaymentFailed, vouchers.release_unpaid_voucher, name="codes.release_unpaid_voucher")
    wiring.on(PaymentSucceeded, stored_value.credit_top_up, name="stored_value.credit_top_up")
    wiring.on(PayoutFinished, settlement.payout_finished, name="settlement.payout_finished")


def bootstrap(
    settings: Settings,
    *,
    db: Database | None = None,
    provider: PaymentProvider | None = None,
    email: EmailSender | None = None,
) -> Wiring:
    """Wire every handler and periodic job; the one call every entry point makes.

    `db` is where the sandbox provider keeps its books (by default the database the
    settings name, opened on the provider's first request); the in-transaction reactions
    are installed on it.
    """
    books = db or functools.partial(Database.from_url, settings.effective_database_url)
    wiring = Wiring(
        settings=settings,
        provider=provider or SandboxProvider(books),
        email=email or sender_from_settings(settings),
    )
    ttl = timedelta(hours=settings.idempotency_ttl_hours)

    wiring.every("vouchers.refund_expired", timedelta(minutes=5), refund_expired_vouchers)
    wiring.every(
        "idempotency.purge", timedelta(hours=1), lambda db: idempotency.purge_expired(db, ttl=ttl)
    )
    wiring.every("analytics.nightly", timedelta(days=1), analyze_members)
    wiring.every("people.purge_sessions", timedelta(hours=1), purge_web_sessions)
    wiring.every("jobs.purge_done", timedelta(hours=1), jobs.purge_done)
    provider_secret = providers.webhook_secret(settings.secret_key)
    wiring.every(
        "payments.deliver_provider_events",
        timedelta(seconds=5),
        lambda db: providers.deliver_pending_events(
            db, send=payments.local_sender(db, provider_secret), secret=provider_secret
        ),
    )

    code_keys = Keys.from_secret(settings.secret_key)
    _wire_payments(wiring, code_keys)
    wiring.on(
        CodeRedeemed,
        functools.partial(referrals.on_code_redeemed, keys=code_keys),
        name="channels.reward_referral",
    )
    wiring.in_claim(channel_claims.after_claim)
    wiring.in_transaction(StorePlaced, channel_stores.on_store_placed)
    wiring.in_transaction(StoreClosed, channel_stores.on_store_closed)
    wiring.in_transaction(MerchantClosed, channel_stores.on_merchant_closed)
    wiring.on(ReviewPosted, channel_ratings.on_review_posted, name="channels.store_rating")
    wiring.every(
        "channels.referral_sweep",
        timedelta(minutes=5),
        lambda db: referrals.sweep(db, keys=code_keys),
    )

    # The dashboard's hourly aggregate: each handler recounts the hour it touches.
    wiring.on(VisitRecorded, dashboard_hours.on_visit_recorded, name="dashboard.count_visit")
    wiring.on(CodeRedeemed, dashboard_hours.on_code_redeemed, name="dashboard.count_redemption")
    wiring.on(RedemptionUndone, dashboard_hours.on_redemption_undone, name="dashboard.count_undo")

    policy = Policy.from_settings(settings)
    wiring.on(
        SegmentChanged,
        functools.partial(campaign_triggers.on_segment_changed, policy=policy),
        name="campaigns.on_segment_changed",
    )
    wiring.every(
        "campaigns.run",
        timedelta(minutes=1),
        lambda db: campaigns.run_campaigns(
            db, policy=policy, sms=SandboxSmsProvider(db), email=wiring.email
        ).summary(),
    )

    wiring.on(ConsumerErased, notify.on_consumer_erased, name="notify.erase_messages")
    wiring.on(
        ConsumerErased, campaign_erasure.on_consumer_erased, name="campaigns.erase_message_events"
    )

    webhooks = WebhookJobs(settings)
    for event_type in WEBHOOK_EVENTS:
        wiring.on(event_type, webhooks.on_event, name="webhooks.queue")
    wiring.every(
        "webhooks.deliver_due",
        timedelta(seconds=settings.webhooks_sweep_seconds),
        webhooks.deliver_due,
    )
    wiring.every(
        "reviews.checkpoint",
        timedelta(minutes=settings.reviews_checkpoint_every_minutes),
        lambda db: sign_checkpoint_if_due(db, settings),
    )
    if db is not None:
        wiring.install(db)
    return wiring
