"""Triggers: the pure decisions, and run_due_campaigns over hand-built members."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from sqlalchemy import select

from campaign_kit import POLICY, add_member, add_visit, admin_of
from factories import make_offer, make_tenant
from o2oloop import clock
from o2oloop.analytics.events import SegmentChanged
from o2oloop.analytics.service import Slot
from o2oloop.campaigns import launch, schemas, service, triggers
from o2oloop.campaigns.models import CampaignTarget
from o2oloop.campaigns.schemas import Trigger
from o2oloop.customers.models import Consumer


def test_schedule_is_due_once_its_local_time_has_come_on_its_weekdays() -> None:
    trigger = Trigger(kind="schedule", at="09:30", weekdays=[0, 2])
    monday = datetime(2026, 6, 1, 9, 29)
    assert triggers.schedule_occurrence(trigger, monday) is None
    assert triggers.schedule_occurrence(trigger, monday.replace(minute=31)) == "schedule:2026-06-01"
    assert triggers.schedule_occurrence(trigger, datetime(2026, 6, 2, 10, 0)) is None


def test_overdue_against_the_members_own_cycle() -> None:
    assert triggers.is_overdue(31, 14, 2.0)
    assert not triggers.is_overdue(27, 14, 2.0)
    assert not triggers.is_overdue(300, None, 2.0)


def test_first_visit_follow_up_window() -> None:
    now = datetime(2026, 6, 10, tzinfo=UTC)
    assert triggers.first_visit_due(now - timedelta(days=3), now, 3)
    assert not triggers.first_visit_due(now - timedelta(days=2), now, 3)
    assert not triggers.first_visit_due(now - timedelta(days=11), now, 3)


def test_birthdays_including_the_29th_of_february() -> None:
    assert triggers.is_birthday(date(1990, 6, 10), date(2026, 6, 10))
    assert triggers.is_birthday(date(2000, 2, 29), date(2026, 2, 28))
    assert triggers.is_birthday(date(2000, 2, 29), date(2028, 2, 29))
    assert not triggers.is_birthday(date(2000, 2, 29), date(2028, 2, 28))
    assert not triggers.is_birthday(None, date(2026, 6, 10))


def test_quiet_slot_finds_the_next_open_hour_below_the_threshold_and_its_free_capacity() -> None:
    slots = [
        Slot(
            weekday=d,
            hour=h,
            open=8 <= h < 22,
            capacity=40,
            average_visits=30.0,
            utilisation=0.75,
            off_peak=False,
        )
        for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        for h in range(24)
    ]
    quiet = next(i for i, s in enumerate(slots) if s.weekday == "mon" and s.hour == 15)
    slots[quiet] = Slot("mon", 15, True, 40, 6.0, 0.15, True)
    found = triggers.quiet_slot(slots, datetime(2026, 6, 1, 11, 20), hours_ahead=6, below=0.3)
    assert found is not None and found.starts_local.hour == 15 and found.free == 34
    assert triggers.quiet_slot(slots, datetime(2026, 6, 1, 16, 0), hours_ahead=6, below=0.3) is None


def _campaign(db, tenant, offer_id, trigger, **extra):
    data = {"name": "t", "offer_id": offer_id, "trigger": trigger, "holdout_share": 0.1} | extra
    with db.transaction() as s:
        cid = service.create_campaign(
            s,
            principal=admin_of(tenant),
            merchant_id=tenant.merchant_id,
            data=schemas.CampaignCreate.model_validate(data),
        ).id
        launch.transition(
            s,
            principal=admin_of(tenant),
            merchant_id=tenant.merchant_id,
            campaign_id=cid,
            action="launch",
            policy=POLICY,
        )
    return cid


def _targets(db, cid):
    with db.reading() as s:
        return s.execute(
            select(CampaignTarget.member_id, CampaignTarget.occurrence).where(
                CampaignTarget.campaign_id == cid
            )
        ).all()


def _run(db):
    with db.transaction() as s:
        return triggers.run_due_campaigns(s, now=clock.now(), policy=POLICY)


def test_overdue_regulars_are_targeted_once_per_lapse(db, frozen_clock) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    with db.transaction() as s:
        late = add_member(
            s, tenant.merchant_id, last_visit_days=40, score={"buying_cycle_days": 10}
        )
        fine = add_member(s, tenant.merchant_id, last_visit_days=5, score={"buying_cycle_days": 10})
        add_member(s, tenant.merchant_id, last_visit_days=90, score={"buying_cycle_days": None})
    cid = _campaign(db, tenant, offer_id, {"kind": "overdue", "k": 2.0})
    _run(db)
    _run(db)
    rows = _targets(db, cid)
    assert [r.member_id for r in rows] == [late[0]]
    assert rows[0].occurrence.startswith("overdue:") and fine[0] not in {r.member_id for r in rows}


def test_first_visit_follow_up_and_birthday(db, frozen_clock) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    with db.transaction() as s:
        newcomer = add_member(s, tenant.merchant_id, last_visit_days=0)
        s.execute(CampaignTarget.__table__.select().limit(0))
        from o2oloop.customers.models import Membership

        s.get(Membership, newcomer[0]).first_visit_at = clock.now() - timedelta(days=3, hours=1)
        old = add_member(s, tenant.merchant_id, last_visit_days=60)
        celebrant = add_member(s, tenant.merchant_id)
        s.get(Consumer, celebrant[1]).birthday = date(1990, 6, 1)
        add_member(s, tenant.merchant_id, consent=False)
    follow = _campaign(db, tenant, offer_id, {"kind": "after_first_visit", "days": 3})
    birthday = _campaign(db, tenant, offer_id, {"kind": "birthday"})
    _run(db)
    assert {r.member_id for r in _targets(db, follow)} == {newcomer[0]}
    assert old[0] not in {r.member_id for r in _targets(db, follow)}
    assert [(r.member_id, r.occurrence) for r in _targets(db, birthday)] == [
        (celebrant[0], "birthday:2026")
    ]


def test_entering_a_segment_targets_the_member_once_per_event(db, frozen_clock) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    with db.transaction() as s:
        member = add_member(s, tenant.merchant_id, score={"segment": "at_risk"})
    cid = _campaign(db, tenant, offer_id, {"kind": "segment_entered", "segment": "at_risk"})
    event = SegmentChanged(
        merchant_id=tenant.merchant_id, member_id=member[0], before="regular", after="at_risk"
    )
    for _ in range(2):  # the worker may run a handler twice
        with db.transaction() as s:
            triggers.on_segment_changed(s, event, policy=POLICY)
    with db.transaction() as s:
        other = SegmentChanged(
            merchant_id=tenant.merchant_id, member_id=member[0], before=None, after="lapsed"
        )
        triggers.on_segment_changed(s, other, policy=POLICY)
    assert _targets(db, cid) == [(member[0], f"segment:{event.event_id}")]


def test_a_quiet_slot_offer_goes_to_members_near_the_store_capped_to_free_capacity(
    db, frozen_clock
) -> None:
    import h3

    from o2oloop.merchants.models import Store

    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    with db.transaction() as s:
        store = s.get(Store, tenant.store_id)
        store.capacity_per_hour = 4
        store.opening_hours = {
            d: [{"open": "00:00", "close": "23:59"}]
            for d in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
        }
        home = h3.latlng_to_cell(store.latitude, store.longitude, 7)
        near = [add_member(s, tenant.merchant_id, score={"home_cell": home}) for _ in range(40)]
        add_visit(
            s,
            merchant_id=tenant.merchant_id,
            store_id=store.id,
            consumer_id=near[0][1],
            at=clock.now() - timedelta(days=7, hours=-1),
        )
    cid = _campaign(
        db,
        tenant,
        offer_id,
        {"kind": "quiet_slot", "below": 0.5, "hours_ahead": 3, "km": 2},
        holdout_share=0.1,
    )
    _run(db)
    _run(db)
    rows = _targets(db, cid)
    with db.reading() as s:
        arms = [
            a
            for (a,) in s.execute(
                select(CampaignTarget.arm).where(CampaignTarget.campaign_id == cid)
            )
        ]
    assert 0 < sum(a.value == "treatment" for a in arms) <= 4
    assert len({r.occurrence for r in rows}) == 1 and rows[0].occurrence.startswith("slot:")
