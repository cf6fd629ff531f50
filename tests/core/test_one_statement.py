"""A unit of work as two statements on PostgreSQL (`o2oloop.combined.OneStatement`): the
reads sent ahead answer as each would alone, the writes go as one statement at the end,
kept only if the take wins, and a new row whose key was taken fails the whole of it."""

from __future__ import annotations

from contextlib import nullcontext
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.exc import MultipleResultsFound

from factories import make_offer, make_tenant
from o2oloop.auth.models import ApiKey
from o2oloop.db import Database, new_id
from o2oloop.jobs.models import OutboxEntry
from o2oloop.offers.models import Offer
from o2oloop.prepared import Prepared

_offers, _keys, _outbox = Offer.__table__, ApiKey.__table__, OutboxEntry.__table__

OFFER = Prepared(select(_offers).where(_offers.c.id == bindparam("offer_id")))
KEY = Prepared(select(_keys).where(_keys.c.id == bindparam("key_id")))
OFFERS_OF = Prepared(select(_offers.c.id).where(_offers.c.merchant_id == bindparam("of")))
RETITLE = Prepared(  # a take: only from the title it had
    update(_offers)
    .where(_offers.c.id == bindparam("offer_id"), _offers.c.title == bindparam("was"))
    .values(title=bindparam("to"))
)
EVENT = Prepared(
    insert(_outbox).values({c.key: bindparam(c.key) for c in _outbox.columns if c.key != "id"})
)


class Lost(Exception):
    pass


class Taken(Exception):
    pass


def _marker() -> str:
    """A merchant id of the test's events alone (making a tenant records events of its own)."""
    return new_id("mer")


def _event(merchant_id: str, event_id: str | None = None) -> dict[str, Any]:
    return {
        "event_id": event_id or new_id("evt"),
        "type": "test.happened",
        "merchant_id": merchant_id,
        "payload": "{}",
        "occurred_at": datetime.now(UTC),
        "dispatched_at": None,
    }


def _events(db: Database, merchant_id: str) -> int:
    with db.reading() as session:
        return session.scalar(
            select(func.count()).select_from(_outbox).where(_outbox.c.merchant_id == merchant_id)
        )


def _title(db: Database, offer_id: str) -> str:
    with db.reading() as session:
        return session.scalar(select(_offers.c.title).where(_offers.c.id == offer_id))


def test_reads_sent_ahead_answer_as_each_reads_alone(pg_db: Database) -> None:
    tenant = make_tenant(pg_db)
    offer_id = make_offer(pg_db, tenant)
    key_id = tenant.admin_key_id
    with pg_db.lean(write=False) as alone:
        expected = alone.one(OFFER, offer_id=offer_id), alone.one(KEY, key_id=key_id)
    with pg_db.one_statement() as together:
        together.ahead(OFFER, offer_id=offer_id)
        together.ahead(KEY, key_id=key_id)
        together.ahead(OFFER, offer_id="ofr_none")
        assert together.has_ahead(KEY, key_id=key_id)
        assert not together.has_ahead(KEY, key_id="key_other")
        key = together.one(KEY, key_id=key_id)  # asked in another order than sent
        offer = together.one(OFFER, offer_id=offer_id)
        assert together.one_or_none(OFFER, offer_id="ofr_none") is None
        assert together.one_or_none(OFFER, offer_id="ofr_never_sent") is None
    for row, want in zip((offer, key), expected, strict=True):
        assert row._fields == want._fields
        assert tuple(row) == tuple(want)
        assert [type(value) for value in row] == [type(value) for value in want]


def test_a_read_ahead_finding_more_than_one_row_is_an_error_as_alone(pg_db: Database) -> None:
    tenant = make_tenant(pg_db)
    offer_id = make_offer(pg_db, tenant)
    make_offer(pg_db, tenant)
    with pg_db.one_statement() as together:
        together.ahead(OFFER, offer_id=offer_id)
        together.ahead(OFFERS_OF, of=tenant.merchant_id)
        assert together.one(OFFER, offer_id=offer_id).id == offer_id
        with pytest.raises(MultipleResultsFound):
            together.one_or_none(OFFERS_OF, of=tenant.merchant_id)


def test_a_write_whose_answer_is_read_is_refused(pg_db: Database) -> None:
    tenant = make_tenant(pg_db)
    offer_id = make_offer(pg_db, tenant)
    with pg_db.one_statement() as together, pytest.raises(RuntimeError):
        together.execute(RETITLE, offer_id=offer_id, was="x", to="y")


@pytest.mark.parametrize("wins", [True, False])
def test_the_writes_go_at_the_end_and_only_if_the_take_wins(pg_db: Database, wins: bool) -> None:
    marker = _marker()
    tenant = make_tenant(pg_db)
    offer_id = make_offer(pg_db, tenant)
    title = _title(pg_db, offer_id)
    with pytest.raises(Lost) if not wins else nullcontext(), pg_db.one_statement() as work:
        work.take(RETITLE, Lost, offer_id=offer_id, was=title if wins else "other", to="Taken")
        work.send(EVENT, **_event(marker))
        work.defer(EVENT, _event(marker))
        assert _events(pg_db, marker) == 0  # nothing is written before the end
    assert _title(pg_db, offer_id) == ("Taken" if wins else title)
    assert _events(pg_db, marker) == (2 if wins else 0)


def test_writes_without_a_take_go_together(pg_db: Database) -> None:
    marker = _marker()
    with pg_db.one_statement() as work:
        work.send(EVENT, **_event(marker))
        work.send(EVENT, **_event(marker))
    assert _events(pg_db, marker) == 2


def test_a_new_row_whose_key_was_taken_fails_the_whole_statement(pg_db: Database) -> None:
    marker = _marker()
    tenant = make_tenant(pg_db)
    offer_id = make_offer(pg_db, tenant)
    title = _title(pg_db, offer_id)
    taken = _event(marker)
    with pg_db.one_statement() as first:
        first.send(EVENT, **taken)
    with pytest.raises(Taken), pg_db.one_statement() as work:
        work.take(RETITLE, Lost, offer_id=offer_id, was=title, to="Taken")
        work.send(EVENT, **_event(marker))
        work.insert_new(EVENT, Taken, **taken)
    assert _title(pg_db, offer_id) == title
    assert _events(pg_db, marker) == 1
