"""Results from the database: the sums the database adds up give what the per-member arrays
give, inside each target's window only, on both backends."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest

from campaign_kit import add_code, add_redemption, add_visit, admin_of
from factories import make_offer, make_tenant
from o2oloop import clock
from o2oloop.campaigns import results, schemas, service
from o2oloop.campaigns.models import Campaign, CampaignTarget
from o2oloop.customers import service as customers
from o2oloop.notify.models import Message


def test_results_from_the_database_match_the_per_member_arrays(db, frozen_clock) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    rng = np.random.default_rng(7)
    n = 240
    arms = np.where(rng.random(n) < 0.25, "control", "treatment")
    pre_visits = rng.poisson(3, n)
    pre_spend = pre_visits * rng.integers(1_000, 90_000, n)
    window = rng.poisson(np.where(arms == "treatment", 1.6, 1.0))
    amounts = rng.integers(500, 2_000_000, (n, int(window.max()) + 1))
    now = clock.now()
    targeted, until = now - timedelta(days=10), now + timedelta(days=20)
    with db.transaction() as s:
        cid = service.create_campaign(
            s,
            principal=admin_of(tenant),
            merchant_id=tenant.merchant_id,
            data=schemas.CampaignCreate(name="Sums", offer_id=offer_id, holdout_share=0.25),
        ).id
        for i in range(n):
            consumer, _ = customers.sign_up(s, display_name="")
            s.add(
                CampaignTarget(
                    campaign_id=cid,
                    merchant_id=tenant.merchant_id,
                    consumer_id=consumer.id,
                    occurrence="launch",
                    arm=arms[i],
                    state="sent" if arms[i] == "treatment" else "held_out",
                    targeted_at=targeted,
                    measure_until=until,
                    pre_visits=int(pre_visits[i]),
                    pre_spend=int(pre_spend[i]),
                )
            )
            for k in range(int(window[i])):
                add_visit(
                    s,
                    merchant_id=tenant.merchant_id,
                    store_id=tenant.store_id,
                    consumer_id=consumer.id,
                    at=targeted + timedelta(hours=5 + k),
                    amount=int(amounts[i, k]),
                )
            # Outside the window: before targeting and after its end; neither counts.
            for at in (targeted - timedelta(hours=1), until + timedelta(hours=1)):
                add_visit(
                    s,
                    merchant_id=tenant.merchant_id,
                    store_id=tenant.store_id,
                    consumer_id=consumer.id,
                    at=at,
                    amount=999_999,
                )
    revenue = np.array([amounts[i, : window[i]].sum() for i in range(n)], dtype=float)
    expected = results.measure(
        results.Outcomes(
            arm=arms,
            pre_visits=pre_visits.astype(float),
            pre_spend=pre_spend.astype(float),
            visits=window.astype(float),
            revenue=revenue,
        ),
        control_share=0.25,
        gross_margin_share=0.6,
    )
    with db.reading() as s:
        got = results.campaign_results(s, campaign=s.get(Campaign, cid))
    assert got["audience"] == n
    treated = arms == "treatment"
    arm_rows = {a["arm"]: a for a in got["arms"]}
    assert arm_rows["treatment"]["visits"] == int(window[treated].sum())
    assert arm_rows["control"]["revenue"] == int(revenue[~treated].sum())
    for outcome in ("visits", "revenue"):
        for kind in ("raw", "cuped"):
            for key in ("difference_per_member", "standard_error", "p_value"):
                assert got[outcome][kind][key] == pytest.approx(
                    expected[outcome][kind][key], rel=1e-9
                ), (outcome, kind, key)
        assert got[outcome]["variance_reduction"] == pytest.approx(
            expected[outcome]["variance_reduction"], rel=1e-9, abs=1e-12
        )
    assert got["srm"] == pytest.approx(expected["srm"])


def test_costs_count_the_campaigns_codes_redemptions_and_messages(db, frozen_clock) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    now = clock.now()
    with db.transaction() as s:
        cid = service.create_campaign(
            s,
            principal=admin_of(tenant),
            merchant_id=tenant.merchant_id,
            data=schemas.CampaignCreate(name="Costs", offer_id=offer_id),
        ).id
        people = [customers.sign_up(s, display_name="")[0].id for _ in range(5)]
        codes = {}
        for consumer, state in zip(people[:3], ("redeemed", "active", "active"), strict=True):
            codes[consumer] = add_code(s, tenant, offer_id, consumer, now, state=state)
        for i, consumer in enumerate(people[:4]):
            s.add(
                CampaignTarget(
                    campaign_id=cid,
                    merchant_id=tenant.merchant_id,
                    consumer_id=consumer,
                    occurrence="launch",
                    arm="treatment" if i < 3 else "control",
                    state="sent" if i < 3 else "held_out",
                    targeted_at=now,
                    measure_until=now + timedelta(days=30),
                    code_id=codes.get(consumer),
                )
            )
        a, b, _, _, stranger = people
        add_redemption(s, tenant, offer_id, codes[a], a, now, 9_000)
        # b's redemption was undone (its code is active again); a stranger's own code, not
        # the campaign's, was redeemed too: neither is the campaign's cost.
        add_redemption(s, tenant, offer_id, codes[b], b, now, 7_000, undone=True)
        own = add_code(s, tenant, offer_id, stranger, now, state="redeemed")
        add_redemption(s, tenant, offer_id, own, stranger, now, 5_000)
        for i, (channel, state, cost) in enumerate(
            [("inbox", "delivered", 0), ("sms", "sent", 5), ("sms", "failed", 5)]
        ):
            s.add(
                Message(
                    id=f"msg_costs{i}",
                    consumer_id=people[i],
                    merchant_id=tenant.merchant_id,
                    campaign_id=cid,
                    channel=channel,
                    body="",
                    state=state,
                    not_before=now,
                    cost=cost,
                    created_at=now,
                )
            )
    with db.reading() as s:
        got = results.campaign_results(s, campaign=s.get(Campaign, cid))
    assert {k: got[k] for k in ("claimed", "redeemed", "active_codes", "discount_cost")} == {
        "claimed": 3,
        "redeemed": 1,
        "active_codes": 2,
        "discount_cost": 1_000,
    }
    assert (got["messages"], got["delivered"], got["message_cost"]) == (2, 1, 5)
