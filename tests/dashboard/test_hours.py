"""The hourly aggregate: handlers recount the hours they touch, so any order and any number
of runs of them end where the one-pass backfill does; the worker's wiring calls them."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, insert, select

from factories import make_tenant, terminal_principal
from o2oloop import clock
from o2oloop.bootstrap import bootstrap
from o2oloop.config import Settings
from o2oloop.customers.models import Consumer, Membership, MemberSource
from o2oloop.dashboard import backfill, hours
from o2oloop.dashboard.models import StoreHour
from o2oloop.db import Database, new_id
from o2oloop.events import from_json
from o2oloop.jobs.models import OutboxEntry
from o2oloop.visits import schemas
from o2oloop.visits import service as visits
from o2oloop.visits.events import VisitRecorded
from o2oloop.visits.models import Visit, VisitSource

START = datetime(2026, 5, 31, 16, 0, tzinfo=UTC)  # Monday 00:00 in Shanghai
SECRET = "test-secret-" + "x" * 32


def _members(db: Database, merchant_id: str, n: int) -> list[str]:
    ids = []
    with db.transaction() as session:
        for _ in range(n):
            consumer_id, member_id = new_id("con"), new_id("mem")
            session.execute(
                insert(Consumer), [{"id": consumer_id, "display_name": "", "created_at": START}]
            )
            session.execute(
                insert(Membership),
                [
                    {
                        "id": member_id,
                        "merchant_id": merchant_id,
                        "consumer_id": consumer_id,
                        "source": MemberSource.POS,
                        "marketing_consent": False,
                        "first_visit_at": START,
                        "last_visit_at": START,
                        "visit_count": 1,
                        "total_spent": 0,
                        "created_at": START,
                        "updated_at": START,
                    }
                ],
            )
            ids.append(member_id)
    return ids


def _table(db: Database, merchant_id: str) -> dict[tuple[str, datetime], tuple[int, ...]]:
    with db.reading() as session:
        rows = session.scalars(select(StoreHour).where(StoreHour.merchant_id == merchant_id))
        return {
            (r.store_id, r.starts_at): (
                r.visits,
                r.revenue,
                r.redemptions,
                r.new_members,
                r.returning_members,
            )
            for r in rows
        }


visit_strategy = st.lists(
    st.tuples(
        st.integers(min_value=0, max_value=21 * 24 * 60),  # minutes into three weeks
        st.one_of(st.none(), st.integers(min_value=0, max_value=4)),  # which member
        st.integers(min_value=100, max_value=50_000),
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(drawn=visit_strategy, seed=st.integers(0, 1000))
def test_handlers_in_any_order_and_repeated_end_where_the_backfill_does(
    sqlite_db: Database, drawn: list[tuple[int, int | None, int]], seed: int
) -> None:
    db = sqlite_db
    tenant = make_tenant(db)
    members = _members(db, tenant.merchant_id, 5)
    events = []
    with db.transaction() as session:
        for minute, member, amount in drawn:
            at = START + timedelta(minutes=minute)
            visit_id = new_id("vis")
            member_id = None if member is None else members[member]
            session.execute(
                insert(Visit),
                [
                    {
                        "id": visit_id,
                        "merchant_id": tenant.merchant_id,
                        "store_id": tenant.store_id,
                        "member_id": member_id,
                        "amount": amount,
                        "currency": "CNY",
                        "occurred_at": at,
                        "source": VisitSource.POS,
                        "items": [],
                        "created_at": at,
                    }
                ],
            )
            events.append(
                VisitRecorded(
                    merchant_id=tenant.merchant_id,
                    store_id=tenant.store_id,
                    visit_id=visit_id,
                    member_id=member_id,
                    amount=amount,
                    currency="CNY",
                    visited_at=at,
                    redemption_id=None,
                )
            )
    rng = random.Random(seed)
    runs = events + rng.sample(events, k=len(events) // 2)  # some twice (at-least-once)
    rng.shuffle(runs)
    for event in runs:
        with db.transaction() as session:
            hours.on_visit_recorded(session, event)
    by_handlers = _table(db, tenant.merchant_id)

    with db.transaction() as session:
        backfill.rebuild(session, merchant_id=tenant.merchant_id)
    assert _table(db, tenant.merchant_id) == by_handlers

    counted = list(by_handlers.values())
    assert sum(c[0] for c in counted) == len(drawn)
    assert sum(c[1] for c in counted) == sum(amount for _, _, amount in drawn)
    # Each member counts once per week they visited, as new only in the first of them.
    weeks = {(m, minute // (7 * 24 * 60)) for minute, m, _ in drawn if m is not None}
    assert sum(c[3] + c[4] for c in counted) == len(weeks)
    assert sum(c[3] for c in counted) == len({m for m, _ in weeks})

    with db.transaction() as session:  # a backfill from a later week keeps the earlier ones
        backfill.rebuild(session, merchant_id=tenant.merchant_id, since=START + timedelta(days=9))
    assert _table(db, tenant.merchant_id) == by_handlers
    with db.transaction() as session:
        session.execute(delete(Visit).where(Visit.merchant_id == tenant.merchant_id))
        session.execute(delete(StoreHour).where(StoreHour.merchant_id == tenant.merchant_id))


def test_the_wired_handler_counts_a_recorded_payment_once(db: Database) -> None:
    tenant = make_tenant(db)
    wiring = bootstrap(Settings(env="test", secret_key=SECRET))
    (handler,) = [
        h for h in wiring.handlers_for("visit.recorded") if h.name.startswith("dashboard")
    ]
    assert handler.name == "dashboard.count_visit"
    assert {h.name for h in wiring.handlers_for("code.redeemed")} >= {"dashboard.count_redemption"}
    assert {h.name for h in wiring.handlers_for("redemption.undone")} == {
        "dashboard.count_undo",
        "webhooks.queue",
    }
    frozen = clock.FrozenClock(datetime(2026, 6, 3, 12, 30, tzinfo=UTC))  # 20:30 local
    with clock.using(frozen):
        for phone in ("+8613800138001", "+8613800138001", "+8613800138002"):
            with db.transaction() as session:
                visits.record_payment(
                    session,
                    principal=terminal_principal(tenant),
                    data=schemas.PaymentCreate(amount=2500, phone=phone),
                    secret_key=SECRET,
                )
    with db.reading() as session:
        recorded = [
            from_json(row.type, row.payload)
            for row in session.scalars(
                select(OutboxEntry).where(
                    OutboxEntry.type == "visit.recorded",
                    OutboxEntry.merchant_id == tenant.merchant_id,
                )
            )
        ]
    assert len(recorded) == 3
    for event in recorded + recorded:  # the worker runs each job; a retry runs it again
        with db.transaction() as session:
            handler(session, event)
    hour = datetime(2026, 6, 3, 12, 0, tzinfo=UTC)
    assert _table(db, tenant.merchant_id) == {(tenant.store_id, hour): (3, 7500, 0, 2, 0)}
    with db.reading() as session:
        row = session.get(StoreHour, (tenant.store_id, hour))
        assert row is not None
        assert (row.local_date.isoformat(), row.weekday, row.hour) == ("2026-06-03", 2, 20)
