"""The funnel per offer and channel on hand-built codes, redemptions and visits: claims →
redemptions → revenue → repeat visits within 30 and 90 days of the redemption."""

from __future__ import annotations

from datetime import timedelta

from campaign_kit import add_code, add_redemption, add_visit, admin_of
from factories import make_consumer, make_offer, make_tenant
from o2oloop import clock
from o2oloop.campaigns import results, schemas, service
from o2oloop.campaigns.models import CampaignTarget


def _visit(s, tenant, consumer_id, at) -> None:
    add_visit(
        s,
        merchant_id=tenant.merchant_id,
        store_id=tenant.store_id,
        consumer_id=consumer_id,
        at=at,
    )


def test_funnel_counts_each_offer_and_channel_with_repeat_visits(db, frozen_clock) -> None:
    tenant = make_tenant(db)
    other = make_tenant(db)
    dinner = make_offer(db, tenant)
    lunch = make_offer(db, tenant, title="5 off lunch", amount_off=500)
    foreign = make_offer(db, other)
    people = [make_consumer(db)[0] for _ in range(7)]
    a, b, c, d, e, f, g = people
    t = clock.now() - timedelta(days=120)
    with db.transaction() as s:
        campaign = service.create_campaign(
            s,
            principal=admin_of(tenant),
            merchant_id=tenant.merchant_id,
            data=schemas.CampaignCreate(name="Win-back", offer_id=dinner, channel="sms"),
        ).id
        sent = {}
        for consumer in (a, b, c):  # dinner through the campaign's SMS
            sent[consumer] = add_code(s, tenant, dinner, consumer, t)
            s.add(
                CampaignTarget(
                    campaign_id=campaign,
                    merchant_id=tenant.merchant_id,
                    consumer_id=consumer,
                    occurrence="launch",
                    arm="treatment",
                    state="sent",
                    targeted_at=t,
                    measure_until=t + timedelta(days=30),
                    code_id=sent[consumer],
                )
            )
        # a: redeemed, back after 10 days (within 30 and 90); b: back after 60 days (90 only);
        # c: never redeemed.
        add_redemption(s, tenant, dinner, sent[a], a, t + timedelta(days=1), 10_000)
        _visit(s, tenant, a, t + timedelta(days=11))
        add_redemption(s, tenant, dinner, sent[b], b, t + timedelta(days=2), 5_000)
        _visit(s, tenant, b, t + timedelta(days=62))
        # dinner claimed directly: d redeemed, back only after 100 days (neither window);
        # e's redemption was undone (not a redemption, no revenue).
        d_code = add_code(s, tenant, dinner, d, t)
        add_redemption(s, tenant, dinner, d_code, d, t + timedelta(days=3), 8_000)
        _visit(s, tenant, d, t + timedelta(days=103, hours=1))
        e_code = add_code(s, tenant, dinner, e, t)
        add_redemption(s, tenant, dinner, e_code, e, t + timedelta(days=3), 7_000, undone=True)
        _visit(s, tenant, e, t + timedelta(days=4))
        # lunch claimed directly by f, redeemed, back after 31 days (within 90 only).
        f_code = add_code(s, tenant, lunch, f, t)
        add_redemption(s, tenant, lunch, f_code, f, t + timedelta(days=5), 3_000)
        _visit(s, tenant, f, t + timedelta(days=36))
        # Another merchant's offer claimed and redeemed by g: never in this merchant's funnel.
        g_code = add_code(s, other, foreign, g, t)
        add_redemption(s, other, foreign, g_code, g, t + timedelta(days=1), 9_000)
    with db.reading() as s:
        rows = results.offer_funnel(s, merchant_id=tenant.merchant_id)
        only_dinner = results.offer_funnel(s, merchant_id=tenant.merchant_id, offer_id=dinner)
    got = {(r["offer_id"], r["channel"]): r for r in rows}
    assert set(got) == {(dinner, "sms"), (dinner, "direct"), (lunch, "direct")}
    fields = ("claims", "redemptions", "revenue", "repeat_30d", "repeat_90d")
    assert [got[dinner, "sms"][k] for k in fields] == [3, 2, 15_000, 1, 2]
    assert [got[dinner, "direct"][k] for k in fields] == [2, 1, 8_000, 0, 0]
    assert [got[lunch, "direct"][k] for k in fields] == [1, 1, 3_000, 0, 1]
    assert {(r["offer_id"], r["channel"]) for r in only_dinner} == {
        (dinner, "sms"),
        (dinner, "direct"),
    }


def test_funnel_of_a_merchant_without_codes_is_empty(db) -> None:
    tenant = make_tenant(db)
    make_offer(db, tenant)
    with db.reading() as s:
        assert results.offer_funnel(s, merchant_id=tenant.merchant_id) == []
