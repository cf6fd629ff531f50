"""kill -9 of a worker in the middle of a delivery: once its lease runs out the delivery is
sent again by another worker, with the same webhook-id, and nothing is lost. On SQLite and
PostgreSQL, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

from sqlalchemy import select
from standardwebhooks import Webhook

from factories import make_tenant
from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.webhooks import deliveries
from o2oloop.webhooks.models import DeliveryState, WebhookAttempt, WebhookDelivery
from webhook_receiver import Answer, Received, receiving
from webhooks_kit import redeemed, register

WORKER = """
import time

import o2oloop.models  # every table, as the worker has them
from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.webhooks.dispatch import Dispatcher

settings = Settings()
dispatcher = Dispatcher(Database.from_url(settings.effective_database_url), settings)
while True:
    dispatcher.run_due()
    time.sleep(0.05)
"""


def _start_worker(db: Database, settings: Settings) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "O2O_DATABASE_URL": db.engine.url.render_as_string(hide_password=False),
        "O2O_ENV": "development",
        "O2O_SECRET_KEY": settings.secret_key,
        "O2O_WEBHOOKS_ALLOW_PRIVATE": "true",
        "O2O_WEBHOOKS_LEASE_SECONDS": "2",
        "O2O_WEBHOOKS_TIMEOUT_SECONDS": "10",
    }
    return subprocess.Popen([sys.executable, "-c", WORKER], env=env)


def _wait_until_delivered(db: Database) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with db.transaction() as session:
            states = set(session.scalars(select(WebhookDelivery.state)))
        if states == {DeliveryState.DELIVERED}:
            return
        time.sleep(0.05)
    raise AssertionError("the delivery was not recorded as delivered")


def test_a_worker_killed_mid_delivery_leaves_it_to_another(
    db: Database, hook_settings: Settings
) -> None:
    tenant = make_tenant(db)
    first_arrived = threading.Event()

    def policy(got: Received) -> Answer:
        if not first_arrived.is_set():
            first_arrived.set()
            return Answer(hang=30)  # the worker is killed while it waits for this answer
        return Answer(200)

    with receiving(policy) as receiver:
        _, secret = register(db, hook_settings, tenant.merchant_id, receiver.url)
        with db.transaction() as session:
            deliveries.on_domain_event(session, redeemed(tenant.merchant_id))
        doomed = _start_worker(db, hook_settings)
        try:
            assert first_arrived.wait(30), "the first worker never sent the delivery"
        finally:
            os.kill(doomed.pid, signal.SIGKILL)
            doomed.wait(10)
        killed_at = time.monotonic()
        survivor = _start_worker(db, hook_settings)
        try:
            first, second = receiver.wait_for(2, timeout=30)
            _wait_until_delivered(db)
        finally:
            survivor.terminate()
            survivor.wait(10)
    assert second.at - killed_at >= 1.0  # not before the dead worker's lease ran out
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    Webhook(secret).verify(second.body.decode(), second.headers)
    with db.transaction() as session:
        (delivery,) = session.scalars(select(WebhookDelivery)).all()
        attempts = session.scalars(select(WebhookAttempt)).all()
        assert delivery.state is DeliveryState.DELIVERED
        # The killed worker recorded nothing; the attempt that was answered is kept.
        assert [(a.status, a.succeeded) for a in attempts] == [(200, True)]
