"""Domain events and the outbox: an event exists if and only if its change committed.

On an ORM session, on a lean driver transaction, and in the counter's group commit (a batch
of savepoints in one transaction), on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select

from factories import consumer_principal, make_consumer, make_offer, make_tenant
from o2oloop import events
from o2oloop.codes import service
from o2oloop.codes.events import CodeClaimed, CodeRedeemed
from o2oloop.codes.models import Code
from o2oloop.db import Database
from o2oloop.jobs.models import OutboxEntry
from o2oloop.prepared import DriverTransaction
from o2oloop.visits.events import VisitRecorded

KEYS = service.Keys.from_secret("events-secret-" + "x" * 32)


class Boom(Exception):
    pass


def _outbox(db: Database) -> list[tuple[str, str]]:
    with db.reading() as session:
        rows = session.execute(select(OutboxEntry.type, OutboxEntry.payload)).all()
    return [(kind, payload) for kind, payload in rows]


def _claimed(code_id: str = "cod_1") -> CodeClaimed:
    return CodeClaimed(merchant_id="mer_1", offer_id="ofr_1", code_id=code_id, consumer_id=None)


def test_an_event_round_trips_through_json_by_its_wire_name() -> None:
    visit = VisitRecorded(
        merchant_id="mer_1",
        store_id="sto_1",
        visit_id="vis_1",
        member_id=None,
        amount=1200,
        currency="CNY",
        visited_at=datetime(2026, 6, 1, 12, 30, tzinfo=UTC),
        redemption_id=None,
    )
    again = events.from_json(visit.name, visit.to_json())
    assert again == visit
    assert isinstance(again.occurred_at, datetime) and again.occurred_at.tzinfo is not None
    assert visit.event_id.startswith("evt_") and visit.merchant == "mer_1"
    with pytest.raises(dataclasses.FrozenInstanceError):
        visit.amount = 1  # type: ignore[misc]


def test_an_event_without_a_wire_name_is_refused() -> None:
    with pytest.raises(TypeError):

        class Nameless(events.Event):
            pass


def test_a_use_case_that_raises_after_recording_leaves_no_event(db: Database) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    consumer_id, _ = make_consumer(db)
    before = _outbox(db)  # the setup's own events (the store placed)
    with pytest.raises(Boom), db.transaction() as session:
        service.claim(
            session, principal=consumer_principal(consumer_id), offer_id=offer_id, keys=KEYS
        )
        raise Boom
    assert _outbox(db) == before
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Code)) == 0


def test_a_committed_change_always_has_its_events(db: Database) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    consumer_id, _ = make_consumer(db)
    with db.transaction() as session:
        code = service.claim(
            session, principal=consumer_principal(consumer_id), offer_id=offer_id, keys=KEYS
        )
    claimed = [events.from_json(kind, payload) for kind, payload in _outbox(db)]
    claimed = [event for event in claimed if isinstance(event, CodeClaimed)]
    assert [(e.code_id, e.offer_id, e.consumer_id) for e in claimed] == [
        (code.id, offer_id, consumer_id)
    ]


def test_a_lean_transaction_writes_its_events_with_its_commit(db: Database) -> None:
    with pytest.raises(Boom), db.lean(write=True) as tx:
        events.record(tx, _claimed("cod_lost"))
        raise Boom
    with db.lean(write=True) as tx:
        events.record(tx, _claimed("cod_a"))
        events.record(tx, _claimed("cod_b"))
    assert sorted(p for _, p in _outbox(db) if "cod_lost" in p) == []
    assert len(_outbox(db)) == 2


def test_in_a_group_commit_a_failed_piece_of_work_drops_only_its_own_events(
    db: Database,
) -> None:
    def good(code_id: str):
        def work(tx: DriverTransaction) -> str:
            events.record(tx, _claimed(code_id))
            return code_id

        return work

    def bad(tx: DriverTransaction) -> None:
        events.record(tx, _claimed("cod_bad"))
        raise Boom

    async def batch() -> list[object]:
        works = [good("cod_1"), bad, good("cod_2"), good("cod_3")]
        return await asyncio.gather(
            *(db.run_transaction(work) for work in works), return_exceptions=True
        )

    outcomes = asyncio.run(batch())
    assert isinstance(outcomes[1], Boom) and outcomes[0] == "cod_1"
    stored = sorted(events.from_json(k, p).code_id for k, p in _outbox(db))  # type: ignore[attr-defined]
    assert stored == ["cod_1", "cod_2", "cod_3"]


def test_a_redemption_at_the_counter_records_code_redeemed(db: Database) -> None:
    from factories import terminal_principal

    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    consumer_id, _ = make_consumer(db)
    with db.transaction() as session:
        code = service.claim(
            session, principal=consumer_principal(consumer_id), offer_id=offer_id, keys=KEYS
        )
    with db.reading() as session:
        checked = service.check_redemption(
            session,
            principal=terminal_principal(tenant),
            code=KEYS.code_text(code.id),
            bill_amount=8800,
            keys=KEYS,
            rate_per_minute=1000,
        )
    with db.lean(write=True) as tx:
        redeemed = service.complete_redemption(tx, checked)
    found = [
        events.from_json(kind, payload) for kind, payload in _outbox(db) if kind == "code.redeemed"
    ]
    assert len(found) == 1
    event = found[0]
    assert isinstance(event, CodeRedeemed)
    assert (event.redemption_id, event.code_id, event.store_id, event.discount_amount) == (
        redeemed.redemption.id,
        code.id,
        tenant.store_id,
        1000,
    )
    assert event.occurred_at == redeemed.redemption.redeemed_at
