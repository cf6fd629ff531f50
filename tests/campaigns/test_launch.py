"""Launch and send: targets in both arms, one code and one message per treated member, once."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from campaign_kit import POLICY, add_member, admin_of
from factories import make_offer, make_tenant
from o2oloop import clock
from o2oloop.campaigns import launch, runner, schemas, service
from o2oloop.campaigns.models import (
    Arm,
    Campaign,
    CampaignState,
    CampaignTarget,
    ContactWindow,
    TargetState,
)
from o2oloop.codes.models import Code
from o2oloop.customers import service as customers
from o2oloop.customers.models import Membership
from o2oloop.errors import Conflict
from o2oloop.notify.models import Message
from o2oloop.offers import service as offers


def _campaign(db, tenant, offer_id, **overrides):
    data = {"name": "Win back", "offer_id": offer_id, "holdout_share": 0.2} | overrides
    with db.transaction() as s:
        return service.create_campaign(
            s,
            principal=admin_of(tenant),
            merchant_id=tenant.merchant_id,
            data=schemas.CampaignCreate.model_validate(data),
        ).id


def _launch(db, tenant, campaign_id):
    _transition(db, tenant, campaign_id, "launch")


def _transition(db, tenant, campaign_id, action):
    with db.transaction() as s:
        launch.transition(
            s,
            principal=admin_of(tenant),
            merchant_id=tenant.merchant_id,
            campaign_id=campaign_id,
            action=action,
            policy=POLICY,
        )


def _send_all(db):
    return runner.send_all(db, policy=POLICY)


def test_a_launch_targets_both_arms_and_sends_each_treated_member_one_code(db, frozen_clock):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant, valid_days_after_claim=30)
    with db.transaction() as s:
        for i in range(60):
            add_member(s, tenant.merchant_id, name=f"Member {i}")
    cid = _campaign(db, tenant, offer_id, code_valid_days=7, message_body="Hi {name}: {code}")
    _launch(db, tenant, cid)
    first = _send_all(db)
    again = _send_all(db)
    assert again.sent == 0
    with db.reading() as s:
        arms = dict(
            s.execute(
                select(CampaignTarget.arm, func.count())
                .where(CampaignTarget.campaign_id == cid)
                .group_by(CampaignTarget.arm)
            ).all()
        )
        assert sum(arms.values()) == 60 and arms[Arm.CONTROL] > 0
        assert first.sent == arms[Arm.TREATMENT]
        codes = s.scalars(select(Code).where(Code.offer_id == offer_id)).all()
        assert len(codes) == first.sent == len({c.consumer_id for c in codes})
        assert all(c.expires_at == clock.now() + timedelta(days=7) for c in codes)
        messages = s.scalars(select(Message).where(Message.campaign_id == cid)).all()
        assert len(messages) == first.sent and all(m.channel == "inbox" for m in messages)
        held = s.scalars(
            select(CampaignTarget.consumer_id).where(CampaignTarget.arm == Arm.CONTROL)
        ).all()
        assert not {m.consumer_id for m in messages} & set(held)
        text = messages[0].body
        assert text.startswith("Hi Member ") and len(text.split(": ")[1]) > 8
        assert s.get(Campaign, cid).codes_issued == first.sent


def test_consent_withdrawn_between_targeting_and_sending_is_a_recorded_skip(db, frozen_clock):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    with db.transaction() as s:
        people = [add_member(s, tenant.merchant_id) for _ in range(20)]
    cid = _campaign(db, tenant, offer_id, holdout_share=0.05)
    _launch(db, tenant, cid)
    with db.transaction() as s:
        for member_id, _ in people:
            customers.set_consent(s, s.get(Membership, member_id), granted=False, recorded_by="t")
    report = _send_all(db)
    assert report.sent == 0 and report.skipped["consent_withdrawn"] > 0
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 0
        reasons = set(
            s.scalars(select(CampaignTarget.skip_reason).where(CampaignTarget.arm == Arm.TREATMENT))
        )
        assert reasons == {"consent_withdrawn"}


def test_the_merchant_frequency_cap_holds_across_campaigns(db, frozen_clock):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    with db.transaction() as s:
        for _ in range(10):
            add_member(s, tenant.merchant_id)
    first = _campaign(db, tenant, offer_id, measured=False, holdout_share=0, cap_days=7)
    _launch(db, tenant, first)
    assert _send_all(db).sent == 10
    second = _campaign(
        db,
        tenant,
        offer_id,
        measured=False,
        holdout_share=0,
        cap_days=7,
        audience={"exclude_active_code": False},
    )
    _launch(db, tenant, second)
    report = _send_all(db)
    assert report.sent == 0 and report.skipped == {"frequency_cap": 10}
    frozen_clock.advance(timedelta(days=8))
    third = _campaign(
        db,
        tenant,
        offer_id,
        measured=False,
        holdout_share=0,
        audience={"exclude_active_code": False},
    )
    _launch(db, tenant, third)
    assert _send_all(db).sent == 10


def test_a_code_budget_is_never_exceeded_and_the_campaign_stops_when_spent(db, frozen_clock):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    with db.transaction() as s:
        for _ in range(30):
            add_member(s, tenant.merchant_id)
    cid = _campaign(db, tenant, offer_id, budget_codes=12, budget_discount=12 * 1000)
    _launch(db, tenant, cid)
    report = _send_all(db)
    assert report.sent == 12 and report.skipped["budget_spent"] > 0
    with db.reading() as s:
        campaign = s.get(Campaign, cid)
        assert campaign.state is CampaignState.FINISHED and campaign.finish_reason == "budget spent"
        assert s.scalar(select(func.count()).select_from(Code)) == 12
        assert not s.scalar(select(func.count()).where(CampaignTarget.state == TargetState.PENDING))


def test_members_a_spent_budget_left_out_are_not_counted_as_contacted(db, frozen_clock):
    """The send claims the contact windows of a batch before it knows the budget: those it
    then does not message are put back, so the next campaign reaches them."""
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    with db.transaction() as s:
        for _ in range(10):
            add_member(s, tenant.merchant_id)
    capped = {"measured": False, "holdout_share": 0, "cap_days": 7}
    first = _campaign(db, tenant, offer_id, budget_codes=4, **capped)
    _launch(db, tenant, first)
    assert _send_all(db).sent == 4
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(ContactWindow)) == 4
    second = _campaign(db, tenant, offer_id, audience={"exclude_active_code": False}, **capped)
    _launch(db, tenant, second)
    report = _send_all(db)
    assert report.sent == 6 and report.skipped == {"frequency_cap": 4}
    with db.reading() as s:
        messaged = list(s.scalars(select(Message.consumer_id)))
        assert len(messaged) == len(set(messaged)) == 10


def test_a_paused_campaign_sends_nothing_until_resumed(db, frozen_clock):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    with db.transaction() as s:
        for _ in range(5):
            add_member(s, tenant.merchant_id)
    cid = _campaign(db, tenant, offer_id, measured=False, holdout_share=0)
    _launch(db, tenant, cid)
    _transition(db, tenant, cid, "pause")
    assert _send_all(db).sent == 0
    _transition(db, tenant, cid, "resume")
    assert _send_all(db).sent == 5


def _offer_action(db, tenant, offer_id, action):
    with db.transaction() as s:
        offers.transition(
            s,
            principal=admin_of(tenant),
            merchant_id=tenant.merchant_id,
            offer_id=offer_id,
            action=action,
        )


def test_a_paused_offer_is_not_launched_and_its_codes_wait_until_it_is_published(db, frozen_clock):
    """A code of a paused offer would be refused at the till: a campaign whose offer is
    paused is not launched, and one whose offer is paused after launch sends nothing until
    the offer is published again."""
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    with db.transaction() as s:
        for _ in range(10):
            add_member(s, tenant.merchant_id)
    cid = _campaign(db, tenant, offer_id, measured=False, holdout_share=0)
    _offer_action(db, tenant, offer_id, "pause")
    with pytest.raises(Conflict, match="offer is paused"):
        _launch(db, tenant, cid)
    _offer_action(db, tenant, offer_id, "publish")
    _launch(db, tenant, cid)
    _offer_action(db, tenant, offer_id, "pause")
    assert _send_all(db).sent == 0
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Code)) == 0
        pending = select(func.count()).where(CampaignTarget.state == TargetState.PENDING)
        assert s.scalar(pending) == 10
    _offer_action(db, tenant, offer_id, "publish")
    assert _send_all(db).sent == 10
