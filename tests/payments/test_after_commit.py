"""The provider is asked after the commit, by the wiring's handlers, keyed by the intent.

A rolled-back intent asks for nothing; a committed one is asked for by a job that may run
again (a crash between the commit and the call, or after the call and before the job was
marked): the sandbox dedupes by the key, so there is one charge, one webhook, one credit.
"""

from __future__ import annotations

import inspect

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from factories import make_consumer, make_tenant
from money_kit import SECRET, deliver, give_program, react, topped_up, wiring
from o2oloop.clock import FrozenClock
from o2oloop.db import Database
from o2oloop.events import from_json
from o2oloop.jobs.models import OutboxEntry
from o2oloop.ledger.models import LedgerTransaction, TransactionKind
from o2oloop.money import Money
from o2oloop.payments import pending
from o2oloop.payments import service as payments
from o2oloop.payments.events import PaymentRequested, PaymentSucceeded
from o2oloop.payments.models import IntentStatus, PaymentIntent, SandboxRecord
from o2oloop.payments.provider import (
    IdempotencyKeyReused,
    PaymentProvider,
    SandboxProvider,
    deliver_pending_events,
)
from o2oloop.reconciliation import service as reconciliation


def _count(db: Database, model: type) -> int:
    with db.reading() as session:
        return session.scalar(select(func.count()).select_from(model)) or 0


def _requested(db: Database) -> PaymentRequested:
    with db.reading() as session:
        (entry,) = session.scalars(
            select(OutboxEntry).where(OutboxEntry.type == PaymentRequested.name)
        ).all()
        event = from_json(entry.type, entry.payload)
    assert isinstance(event, PaymentRequested)
    return event


def test_the_provider_adapter_never_gets_a_session(db: Database) -> None:
    for method in ("create_charge", "create_refund", "create_payout"):
        parameters = inspect.signature(getattr(PaymentProvider, method)).parameters
        assert "session" not in parameters
        assert all(p.annotation not in (Session, "Session") for p in parameters.values())
    wired = wiring(db)
    for name in ("payments.request_charge", "payments.request_refund", "payments.request_payout"):
        handler = wired.handler(name)
        assert handler is not None and handler.needs_session is False, name


def test_a_rolled_back_intent_asks_the_provider_for_nothing(
    db: Database, frozen_clock: FrozenClock
) -> None:
    tenant = make_tenant(db)
    consumer_id, _ = make_consumer(db)
    give_program(db, tenant.merchant_id)
    events_before = _count(db, OutboxEntry)  # the setup's own (the store placed)
    with pytest.raises(RuntimeError), db.transaction() as session:
        payments.create_payment_intent(
            session,
            consumer_id=consumer_id,
            merchant_id=tenant.merchant_id,
            amount=Money(50000, "CNY"),
            purpose=payments.STORED_VALUE_TOP_UP,
            reference="x",
        )
        raise RuntimeError("the entry point's transaction failed")
    assert deliver(db).completed == 0
    assert _count(db, OutboxEntry) == events_before
    assert (_count(db, PaymentIntent), _count(db, SandboxRecord)) == (0, 0)


def test_the_committed_intent_is_charged_by_the_job_not_by_the_use_case(
    db: Database, frozen_clock: FrozenClock
) -> None:
    _, _, intent_id = topped_up(db, 50000)
    assert _count(db, SandboxRecord) == 0  # committed, and the provider has heard nothing
    event = _requested(db)
    assert (event.payment_intent_id, event.amount, event.currency) == (intent_id, 50000, "CNY")
    assert react(db) >= 1
    with db.reading() as session:
        (record,) = session.scalars(select(SandboxRecord)).all()
        assert (record.object, record.reference, record.status) == ("charge", intent_id, "pending")
        assert session.get(PaymentIntent, intent_id).provider_charge_id is None  # type: ignore[union-attr]


def test_a_crash_between_commit_and_provider_call_loses_nothing(
    db: Database, frozen_clock: FrozenClock
) -> None:
    _, _, intent_id = topped_up(db, 50000, tiers=[])
    wired = wiring(db)
    charge = wired.handler("payments.request_charge")
    assert charge is not None

    # The worker dies after the commit, before calling the provider: nothing was sent.
    assert deliver_pending_events(db, send=lambda b, h: 200, secret=SECRET).completed == 0
    # The job runs again; then the worker dies after the call, before marking the job
    # done, so it runs a third time: the provider answers with the charge it already has.
    first = charge.run(_requested(db))
    again = charge.run(_requested(db))
    assert first == again and _count(db, SandboxRecord) == 1
    deliver(db)  # the worker's own run of the job, the webhook, the credit
    deliver(db)
    with db.reading() as session:
        intent = session.get(PaymentIntent, intent_id)
        assert intent is not None and intent.status is IntentStatus.SUCCEEDED
        assert intent.provider_charge_id == first.id
        credits = session.scalars(
            select(LedgerTransaction).where(
                LedgerTransaction.kind == TransactionKind.STORED_VALUE_TOP_UP
            )
        ).all()
        assert [c.reference for c in credits] == [first.id]
        assert reconciliation.report(session) == []


def test_a_provider_that_is_down_is_asked_again_and_charges_once(
    db: Database, frozen_clock: FrozenClock
) -> None:
    _, _, intent_id = topped_up(db, 700, tiers=[])
    wired = wiring(db)
    real = wired.handler("payments.request_charge")
    assert real is not None

    class Down:
        name, needs_session = real.name, False

        def __call__(self, session, event) -> None:
            raise ConnectionError("the provider did not answer")

    def handlers_for(name: str):
        return [Down() if h.name == real.name else h for h in wired.handlers_for(name)]

    with pytest.raises(ConnectionError):
        pending.run_now(db, handlers_for)
    assert _count(db, SandboxRecord) == 0
    deliver(db)  # the next run asks again: the job was never marked done
    with db.reading() as session:
        assert session.get(PaymentIntent, intent_id).status is IntentStatus.SUCCEEDED  # type: ignore[union-attr]
        assert reconciliation.report(session) == []


def test_a_reaction_runs_once_however_often_the_outbox_is_drained(
    db: Database, frozen_clock: FrozenClock
) -> None:
    topped_up(db, 900, tiers=[])
    deliver(db)
    assert react(db) == 0  # every (event, handler) pair is taken already
    with db.reading() as session:
        (entry,) = session.scalars(
            select(OutboxEntry).where(OutboxEntry.type == PaymentSucceeded.name)
        ).all()
        succeeded = from_json(entry.type, entry.payload)
    credit = wiring(db).handler("stored_value.credit_top_up")
    assert credit is not None
    with db.transaction() as session:  # a worker running the handler again anyway
        credit(session, succeeded)
    assert _count(db, LedgerTransaction) == 1


def test_the_sandbox_dedupes_by_idempotency_key(db: Database, frozen_clock: FrozenClock) -> None:
    provider = SandboxProvider(db)
    one = provider.create_charge(amount=Money(100, "CNY"), idempotency_key="pay_1", metadata={})
    two = provider.create_charge(amount=Money(100, "CNY"), idempotency_key="pay_1", metadata={})
    other = provider.create_charge(amount=Money(100, "CNY"), idempotency_key="pay_2", metadata={})
    assert one.id == two.id != other.id
    payout = provider.create_payout(
        amount=Money(100, "CNY"), destination="mer_1", idempotency_key="pay_1", metadata={}
    )
    assert payout.id != one.id  # one key per kind of object
    with pytest.raises(IdempotencyKeyReused):
        provider.create_charge(amount=Money(999, "CNY"), idempotency_key="pay_1", metadata={})
    assert _count(db, SandboxRecord) == 3


def test_the_sandbox_refuses_to_refund_a_charge_it_did_not_complete(db: Database) -> None:
    provider = SandboxProvider(db)
    charge = provider.create_charge(amount=Money(100, "CNY"), idempotency_key="k", metadata={})
    with pytest.raises(ValueError, match="succeeded charges"):
        provider.create_refund(
            charge_id=charge.id, amount=Money(100, "CNY"), idempotency_key="r", metadata={}
        )
    with pytest.raises(RuntimeError, match="needs its database"):
        SandboxProvider().create_charge(amount=Money(1, "CNY"), idempotency_key="k", metadata={})
