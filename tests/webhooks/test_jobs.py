"""The wiring: bootstrap's handler queues deliveries in the worker's transaction and the
first attempt leaves only after that transaction commits; the periodic sweep retries."""

from __future__ import annotations

import time
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select, update
from standardwebhooks import Webhook

from factories import make_tenant
from o2oloop import clock
from o2oloop.bootstrap import WEBHOOK_EVENTS, bootstrap
from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.webhooks import deliveries
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


def test_the_first_attempt_leaves_after_the_commit_of_a_job_run_in_a_savepoint(
    db: Database, hook_settings: Settings
) -> None:
    """The worker runs each job in a savepoint of a shared transaction: the release of the
    savepoint is not the commit (a claim then found nothing, and the delivery waited for
    the sweep)."""
    tenant = make_tenant(db)
    handler = _queue_handler(bootstrap(hook_settings))
    with receiving() as receiver:
        register(db, hook_settings, tenant.merchant_id, receiver.url)
        with db.transaction() as session:
            with session.begin_nested():
                handler(session, redeemed(tenant.merchant_id))
            time.sleep(0.3)
            assert receiver.received == []
        (got,) = receiver.wait_for(1)
    assert got.headers["webhook-id"]


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


def _queued_without_a_sender(db: Database, merchant_id: str) -> str:
    """A delivery queued as the outbox handler queues it, but with no after-commit sender
    (as if its process died right after the commit); its id."""
    with db.transaction() as session:
        (delivery,) = deliveries.on_domain_event(session, redeemed(merchant_id))
        return delivery.id


def _age(db: Database, **columns: datetime) -> None:
    with db.transaction() as session:
        session.execute(update(WebhookDelivery).values(**columns))


def test_the_sweep_leaves_a_fresh_first_attempt_to_its_sender(
    db: Database, hook_settings: Settings
) -> None:
    """Else every event's job would wait behind a sweep sending what the after-commit
    senders are about to send; a first attempt nobody took within a lease is swept."""
    tenant = make_tenant(db)
    sweep = bootstrap(hook_settings).periodic["webhooks.deliver_due"]
    with receiving() as receiver:
        register(db, hook_settings, tenant.merchant_id, receiver.url)
        delivery_id = _queued_without_a_sender(db, tenant.merchant_id)
        sweep.run(db)
        time.sleep(0.3)
        assert receiver.received == []
        lease = timedelta(seconds=hook_settings.webhooks_lease_seconds)
        _age(db, next_attempt_at=clock.now() - lease - timedelta(seconds=1))
        sweep.run(db)
        (got,) = receiver.wait_for(1)
    assert got.headers["webhook-id"] == delivery_id


def test_the_sweep_takes_a_delivery_whose_sender_died_holding_its_lease(
    db: Database, hook_settings: Settings
) -> None:
    tenant = make_tenant(db)
    sweep = bootstrap(hook_settings).periodic["webhooks.deliver_due"]
    with receiving() as receiver:
        register(db, hook_settings, tenant.merchant_id, receiver.url)
        delivery_id = _queued_without_a_sender(db, tenant.merchant_id)
        (claim,) = deliveries.claim_due(db, settings=hook_settings, limit=1)  # then it dies
        sweep.run(db)  # the lease still runs: not the sweep's
        time.sleep(0.3)
        assert receiver.received == []
        _age(db, leased_until=clock.now() - timedelta(seconds=1))
        sweep.run(db)
        (got,) = receiver.wait_for(1)
    assert claim.delivery_id == got.headers["webhook-id"] == delivery_id
    with db.reading() as session:
        delivery = session.get(WebhookDelivery, delivery_id)
        assert delivery is not None and delivery.state is DeliveryState.DELIVERED
        assert delivery.attempts == 1
