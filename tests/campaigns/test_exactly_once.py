"""Exactly once, whatever happens in between: targeting re-run, sends in any batch sizes,
batches rolled back half-way (a crash before commit), consent withdrawn meanwhile. In the
end no member has two targets, codes or messages, and the counters match the rows."""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from campaign_kit import POLICY, add_member, admin_of
from factories import make_offer, make_tenant
from o2oloop import clock
from o2oloop.campaigns import launch, runner, schemas, send, service
from o2oloop.campaigns.models import Arm, Campaign, CampaignTarget, TargetState
from o2oloop.codes.models import Code
from o2oloop.customers import service as customers
from o2oloop.customers.models import Membership
from o2oloop.jobs.models import OutboxEntry
from o2oloop.notify.models import Message
from o2oloop.offers.models import Offer


class Crash(Exception):
    """Stands for the worker dying after writing a batch and before its commit."""


STEPS = st.lists(
    st.one_of(
        st.tuples(st.just("send"), st.integers(1, 7)),
        st.tuples(st.just("crash"), st.integers(1, 7)),
        st.tuples(st.just("retarget"), st.just(0)),
        st.tuples(st.just("withdraw"), st.integers(0, 29)),
    ),
    max_size=8,
)


def _setup(db, n: int, holdout: float) -> tuple[object, str, str, list[tuple[str, str]]]:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    with db.transaction() as s:
        people = [add_member(s, tenant.merchant_id, name=f"M{i}") for i in range(n)]
    with db.transaction() as s:
        cid = service.create_campaign(
            s,
            principal=admin_of(tenant),
            merchant_id=tenant.merchant_id,
            data=schemas.CampaignCreate(
                name="Once", offer_id=offer_id, holdout_share=holdout, measured=holdout > 0
            ),
        ).id
    with db.transaction() as s:
        launch.transition(
            s,
            principal=admin_of(tenant),
            merchant_id=tenant.merchant_id,
            campaign_id=cid,
            action="launch",
            policy=POLICY,
        )
    return tenant, offer_id, cid, people


def _step(db, cid: str, people, kind: str, arg: int) -> None:
    now = clock.now()
    if kind == "send":
        with db.transaction() as s:
            send.send_pending(s, now=now, policy=POLICY, campaign_id=cid, limit=arg)
    elif kind == "crash":
        try:
            with db.transaction() as s:
                send.send_pending(s, now=now, policy=POLICY, campaign_id=cid, limit=arg)
                raise Crash
        except Crash:
            pass
    elif kind == "retarget":  # a second evaluation of the same occurrence, audience unfiltered
        with db.transaction() as s:
            campaign = s.get(Campaign, cid)
            everyone = select(
                Membership.id.label("member_id"), Membership.consumer_id.label("consumer_id")
            ).where(Membership.merchant_id == campaign.merchant_id)
            launch.record_targets(
                s,
                campaign=campaign,
                candidates=everyone,
                occurrence=launch.ONCE,
                now=now,
                policy=POLICY,
            )
    elif arg < len(people):
        with db.transaction() as s:
            membership = s.get(Membership, people[arg][0])
            customers.set_consent(s, membership, granted=False, recorded_by="test")


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(n=st.integers(1, 30), holdout=st.sampled_from([0.0, 0.3]), steps=STEPS)
def test_nobody_gets_two_codes_or_messages_whatever_the_interleaving(
    sqlite_db, frozen_clock, n, holdout, steps
) -> None:
    db = sqlite_db
    tenant, offer_id, cid, people = _setup(db, n, holdout)
    for kind, arg in steps:
        _step(db, cid, people, kind, arg)
    runner.send_all(db, policy=POLICY)
    with db.reading() as s:
        targets = s.execute(
            select(
                CampaignTarget.consumer_id,
                CampaignTarget.arm,
                CampaignTarget.state,
                CampaignTarget.code_id,
                CampaignTarget.message_id,
            ).where(CampaignTarget.campaign_id == cid)
        ).all()
        codes = dict(
            s.execute(select(Code.id, Code.consumer_id).where(Code.offer_id == offer_id)).all()
        )
        messages = dict(
            s.execute(
                select(Message.id, Message.consumer_id).where(Message.campaign_id == cid)
            ).all()
        )
        claimed = s.scalars(
            select(OutboxEntry.payload).where(
                OutboxEntry.type == "code.claimed", OutboxEntry.merchant_id == tenant.merchant_id
            )
        ).all()
        campaign = s.get(Campaign, cid)
        offer = s.get(Offer, offer_id)
        pending = s.scalar(
            select(func.count()).where(
                CampaignTarget.campaign_id == cid, CampaignTarget.state == TargetState.PENDING
            )
        )
    assert len(targets) == len({t.consumer_id for t in targets}) == n
    assert max(Counter(codes.values()).values(), default=1) == 1
    assert max(Counter(messages.values()).values(), default=1) == 1
    sent = [t for t in targets if t.state is TargetState.SENT]
    assert all(t.arm is Arm.TREATMENT for t in sent)
    assert {t.code_id: t.consumer_id for t in sent} == codes
    assert {t.message_id: t.consumer_id for t in sent} == messages
    assert campaign.codes_issued == offer.issued_count == len(codes) == len(claimed)
    assert pending == 0
    held = {t.consumer_id for t in targets if t.arm is not Arm.TREATMENT}
    assert not held & set(messages.values())
