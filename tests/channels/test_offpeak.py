"""Off-peak steering: proposals from load, acceptance, slot caps under concurrency, effect."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from factories import consumer_principal, make_consumer, make_tenant
from o2oloop.analytics.service import Slot
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.channels import offpeak
from o2oloop.channels.models import SlotIssuance
from o2oloop.codes import service as codes
from o2oloop.codes.models import Code
from o2oloop.db import new_id
from o2oloop.errors import Conflict, InvalidInput
from o2oloop.visits.models import Visit, VisitSource

KEYS = codes.Keys.from_secret("test-secret-" + "x" * 32)
BUSY = {11, 12, 13, 18, 19, 20, 21}  # store-local hours; the store opens 10:00-22:00


def _admin(tenant) -> Principal:
    return Principal(key_id="t", role=Role.MERCHANT_ADMIN, merchant_id=tenant.merchant_id)


SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 6, 1, tzinfo=SHANGHAI)  # a Monday, midnight at the store


def _visits(db, tenant, first_day: date, days: int, per_hour) -> None:
    """Visits at the store: per_hour(local hour) each open hour of each local day."""
    rows = []
    for day in range(days):
        local_day = first_day + timedelta(days=day)
        for hour in range(10, 22):
            at = datetime.combine(local_day, time(hour, 20), SHANGHAI).astimezone(UTC)
            for _ in range(per_hour(hour)):
                rows.append(
                    Visit(
                        id=new_id("vis"),
                        merchant_id=tenant.merchant_id,
                        store_id=tenant.store_id,
                        amount=5000,
                        currency="CNY",
                        occurred_at=at,
                        source=VisitSource.POS,
                        items=[],
                        created_at=at,
                    )
                )
    with db.transaction() as session:
        session.add_all(rows)


@pytest.fixture
def busy_store(db, frozen_clock):
    frozen_clock.set(NOW)
    tenant = make_tenant(db)
    _visits(db, tenant, date(2026, 5, 18), 14, lambda h: 20 if h in BUSY else 2)
    return db, tenant


def _propose(db, tenant):
    with db.transaction() as session:
        rows = offpeak.propose(
            session,
            principal=_admin(tenant),
            merchant_id=tenant.merchant_id,
            store_id=tenant.store_id,
            below=0.3,
            amount_off=800,
            weeks=2,
        )
        return [(p.id, p.weekday, p.start_hour, p.end_hour, p.per_slot_cap) for p in rows]


def test_quiet_windows_are_runs_below_the_share_sized_to_free_capacity():
    slots = [
        Slot("mon", h, 10 <= h < 22, 50, 20.0 if h in BUSY else 2.0, None, False) for h in range(24)
    ]
    windows = offpeak.quiet_windows(slots, below=0.3)
    assert [(w.weekday, w.start_hour, w.end_hour, w.per_slot_cap) for w in windows] == [
        (0, 10, 11, 13),
        (0, 14, 18, 13),
    ]


def test_proposals_cover_each_days_quiet_hours(busy_store):
    db, tenant = busy_store
    proposals = _propose(db, tenant)
    assert {(d, s, e, cap) for _, d, s, e, cap in proposals} == {
        (d, s, e, 13) for d in range(7) for s, e in ((10, 11), (14, 18))
    }


def _tuesday_afternoon(db, tenant):
    proposal = next(p for p in _propose(db, tenant) if p[1] == 1 and p[2] == 14)
    with db.transaction() as session:
        offer = offpeak.accept(
            session,
            principal=_admin(tenant),
            merchant_id=tenant.merchant_id,
            proposal_id=proposal[0],
        )
        assert offer.weekdays == [1] and offer.time_windows == [{"start": "14:00", "end": "18:00"}]
        assert offer.store_ids == [tenant.store_id]
        return offer.id


def _claim(db, consumer_id, offer_id, slot_start) -> Code:
    with db.transaction() as session:
        return offpeak.claim_slot(
            session,
            principal=consumer_principal(consumer_id),
            offer_id=offer_id,
            slot_start=slot_start,
            keys=KEYS,
        )


def test_an_accepted_proposal_takes_claims_only_for_its_hours(busy_store):
    db, tenant = busy_store
    offer_id = _tuesday_afternoon(db, tenant)
    consumer, _ = make_consumer(db)
    tuesday_3pm = datetime(2026, 6, 2, 7, 0, tzinfo=UTC)  # 15:00 in Shanghai
    code = _claim(db, consumer, offer_id, tuesday_3pm)
    assert code.expires_at == tuesday_3pm + timedelta(hours=1)
    for wrong in (
        datetime(2026, 6, 2, 5, 0, tzinfo=UTC),  # 13:00: outside the window
        datetime(2026, 6, 3, 7, 0, tzinfo=UTC),  # a Wednesday
        datetime(2026, 6, 2, 7, 30, tzinfo=UTC),  # not the start of an hour
        datetime(2026, 5, 26, 7, 0, tzinfo=UTC),  # past
    ):
        with pytest.raises(InvalidInput):
            _claim(db, consumer, offer_id, wrong)
    with db.transaction() as session, pytest.raises(Conflict):
        offpeak.guard_plain_claim(session, offer_id=offer_id)


def test_a_full_hour_refuses_more_claims(busy_store):
    db, tenant = busy_store
    offer_id = _tuesday_afternoon(db, tenant)
    slot = datetime(2026, 6, 2, 8, 0, tzinfo=UTC)
    for _ in range(13):
        _claim(db, make_consumer(db)[0], offer_id, slot)
    with pytest.raises(Conflict):
        _claim(db, make_consumer(db)[0], offer_id, slot)
    _claim(db, make_consumer(db)[0], offer_id, slot + timedelta(hours=1))  # the next hour is free


@pytest.mark.postgres
def test_concurrent_claims_never_exceed_an_hours_cap(pg_db, frozen_clock):
    db = pg_db
    frozen_clock.set(NOW)
    tenant = make_tenant(db)
    _visits(db, tenant, date(2026, 5, 18), 14, lambda h: 20 if h in BUSY else 2)
    offer_id = _tuesday_afternoon(db, tenant)
    slot = datetime(2026, 6, 2, 9, 0, tzinfo=UTC)
    consumers = [make_consumer(db)[0] for _ in range(30)]
    barrier = threading.Barrier(len(consumers))
    outcomes: list[str] = []

    def claim(consumer_id: str) -> None:
        barrier.wait()
        try:
            _claim(db, consumer_id, offer_id, slot)
            outcomes.append("ok")
        except Conflict:
            outcomes.append("full")
        except BaseException as error:  # reported through the assertion below
            outcomes.append(repr(error))

    threads = [threading.Thread(target=claim, args=(c,)) for c in consumers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(set(outcomes)) == ["full", "ok"]
    assert outcomes.count("ok") == 13
    with db.reading() as session:
        assert (
            session.scalar(select(func.count()).select_from(Code).where(Code.offer_id == offer_id))
            == 13
        )
        assert session.scalar(select(SlotIssuance.issued)) == 13


def test_effect_shows_load_before_and_after(busy_store):
    db, tenant = busy_store
    _tuesday_afternoon(db, tenant)
    # The week after: quiet hours fill up to 8 visits an hour.
    _visits(db, tenant, date(2026, 6, 1), 7, lambda h: 20 if h in BUSY else 8)
    with db.reading() as session:
        effect = offpeak.effect(
            session, principal=_admin(tenant), merchant_id=tenant.merchant_id,
            store_id=tenant.store_id, weeks=2,
        )  # fmt: skip
    before, after = effect["before"], effect["after"]
    assert before["off_peak_utilisation"] == pytest.approx(2 / 50, abs=1e-3)
    assert after["off_peak_utilisation"] == pytest.approx(8 / 50, abs=1e-3)
    assert before["peak_overflow_per_week"] == 0
