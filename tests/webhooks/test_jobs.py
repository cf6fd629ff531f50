"""The wiring: bootstrap's handler queues deliveries in the worker's transaction and the
first attempt leaves only after that transaction commits; the periodic sweep retries."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select
from standardwebhooks import Webhook

from factories import make_tenant
from o2oloop.bootstrap import WEBHOOK_EVENTS, bootstrap
from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.webhooks.catalog import EVENT_TYPES
from o2oloop.webhooks.models import DeliveryState, WebhookDelivery
from webhook_receiver import Answer, receiving
from webhooks_kit import redeemed, register


def _queue_handler(wiring):
    (handler,) = [h for h in wiring.handlers_for("code.redeemed") if h.name == "webhooks.queue"]
    return handler


def test_every_event_type_in_the_catalogue_is_wired_and_no_other(hook_settings: Settings) -> None:
    wiring = bootstrap(hook_settings)
    wired = {
        name
        for name, handlers in wiring.handlers.items()
        if any(h.name == "webhooks.queue" for h in handlers)
    }
    assert wired == set(EVENT_TYPES) == {event.name for event in WEBHOOK_EVENTS}
    assert "webhooks.deliver_due" in wiring.periodic


def test_the_first_attempt_leaves_only_after_the_commit(
    db: Database, hook_settings: Settings
) -> None:
    tenant = make_tenant(db)
    handler = _queue_handler(bootstrap(hook_settings))
    with receiving() as receiver:
        _, secret = register(db, hook_settings, tenant.merchant_id, receiver.url)
        with db.transaction() as session:
            handler(session, redeemed(tenant.merchant_id))
            time.sleep(0.3)
            assert receiver.received == []  # nothing on the wire inside the transaction
        (got,) = receiver.wait_for(1)
    Webhook(secret).verify(got.body.decode(), got.headers)


def test_a_rolled_back_handler_queues_and_sends_nothing(
    db: Database, hook_settings: Settings
) -> None:
    tenant = make_tenant(db)
    handler = _queue_handler(bootstrap(hook_settings))
    with receiving() as receiver:
        register(db, hook_settings, tenant.merchant_id, receiver.url)
        with pytest.raises(RuntimeError), db.transaction() as session:
            handler(session, redeemed(tenant.merchant_id))
            raise RuntimeError("the worker's transaction failed")
        time.sleep(0.3)
        assert receiver.received == []
    with db.transaction() as session:
        assert session.scalar(select(func.count()).select_from(WebhookDelivery)) == 0


def _wait_for_attempts(db: Database, count: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with db.transaction() as session:
            if session.scalar(select(func.sum(WebhookDelivery.attempts))) == count:
                return
        time.sleep(0.02)
    raise AssertionError(f"not {count} attempts recorded")


def test_the_periodic_sweep_sends_the_retries(db: Database, hook_settings: Settings) -> None:
    tenant = make_tenant(db)
    wiring = bootstrap(hook_settings)
    answers = iter([Answer(500), Answer(200)])
    with receiving(lambda _r: next(answers)) as receiver:
        register(db, hook_settings, tenant.merchant_id, receiver.url)
        with db.transaction() as session:
            _queue_handler(wiring)(session, redeemed(tenant.merchant_id))
        receiver.wait_for(1)
        _wait_for_attempts(db, 1)
        time.sleep(0.1)  # the retry is due 50 ms after the failure
        wiring.periodic["webhooks.deliver_due"].run(db)
        first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    with db.transaction() as session:
        (delivery,) = session.scalars(select(WebhookDelivery)).all()
        assert delivery.state is DeliveryState.DELIVERED and delivery.attempts == 2
