"""Frequency caps and budgets under concurrent triggers, on PostgreSQL with threads."""

from __future__ import annotations

import threading
from collections import Counter

import pytest
from sqlalchemy import func, select

from campaign_kit import POLICY, add_member, admin_of
from factories import make_offer, make_tenant
from o2oloop import clock
from o2oloop.campaigns import launch, schemas, send, service
from o2oloop.campaigns.models import Campaign
from o2oloop.codes.models import Code
from o2oloop.notify.models import Message

pytestmark = pytest.mark.postgres


def _launched(db, tenant, offer_id, **extra) -> str:
    data = {"name": "c", "offer_id": offer_id, "holdout_share": 0.1} | extra
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


def _hammer(db, campaign_ids, threads=8):
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def work(n: int) -> None:
        try:
            start.wait()
            while True:
                with db.transaction() as s:
                    done = send.send_pending(
                        s, now=clock.now(), policy=POLICY, campaign_id=campaign_ids[n % 2], limit=7
                    )
                with db.transaction() as s:
                    other = send.send_pending(
                        s, now=clock.now(), policy=POLICY, campaign_id=campaign_ids[-1], limit=7
                    )
                if (
                    done.sent
                    + sum(done.skipped.values())
                    + other.sent
                    + sum(other.skipped.values())
                    == 0
                ):
                    return
        except BaseException as error:
            errors.append(error)

    pool = [threading.Thread(target=work, args=(n,)) for n in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert not errors, errors


def test_caps_and_budgets_hold_under_concurrent_sends(pg_db, frozen_clock) -> None:
    db = pg_db
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    with db.transaction() as s:
        for _ in range(150):
            add_member(s, tenant.merchant_id)
    audience = {"exclude_active_code": False}
    first = _launched(db, tenant, offer_id, budget_codes=60, audience=audience, cap_days=7)
    second = _launched(db, tenant, offer_id, budget_discount=40 * 1000, audience=audience)
    _hammer(db, [first, second])
    with db.reading() as s:
        per_consumer = Counter(s.scalars(select(Message.consumer_id)))
        assert per_consumer and max(per_consumer.values()) == 1  # the merchant's cap held
        issued = {c.id: c.codes_issued for c in s.scalars(select(Campaign))}
        assert issued[first] == 60 and issued[second] == 40
        assert s.scalar(select(func.count()).select_from(Code)) == 100
        assert s.scalar(select(func.count()).select_from(Message)) == 100


def test_a_budget_is_exact_when_many_workers_send_one_campaign(pg_db, frozen_clock) -> None:
    db = pg_db
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant, total_stock=1000)
    with db.transaction() as s:
        for _ in range(120):
            add_member(s, tenant.merchant_id)
    cid = _launched(db, tenant, offer_id, budget_codes=33)
    _hammer(db, [cid, cid])
    with db.reading() as s:
        assert s.get(Campaign, cid).codes_issued == 33
        assert s.scalar(select(func.count()).select_from(Code)) == 33
        consumers = list(s.scalars(select(Message.consumer_id)))
        assert len(consumers) == len(set(consumers)) == 33
