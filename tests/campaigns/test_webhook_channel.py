"""The webhook channel: a campaign's message leaves through the merchant's own webhook, as a
`campaign.message_sent` event signed by Standard Webhooks, after the send commits."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select
from standardwebhooks import Webhook

from campaign_kit import POLICY, add_member, admin_of, erase_consumer, launch_unmeasured
from factories import make_offer, make_tenant
from o2oloop import events
from o2oloop.bootstrap import WEBHOOK_EVENTS, bootstrap
from o2oloop.campaigns import launch, runner, schemas, service
from o2oloop.campaigns.events import CampaignMessageSent
from o2oloop.campaigns.models import CampaignTarget, TargetState
from o2oloop.config import Settings
from o2oloop.jobs.models import OutboxEntry
from o2oloop.notify.models import Message
from o2oloop.webhooks.models import WebhookDelivery
from webhook_receiver import receiving
from webhooks_kit import register


def _settings(tmp_path: Path) -> Settings:
    return Settings(
        env="development",
        data_dir=tmp_path,
        secret_key=POLICY.secret_key,
        webhooks_allow_private=True,
        webhooks_retry_schedule=[0, 0.05, 0.05],
        webhooks_retry_jitter=0,
        webhooks_timeout_seconds=2,
    )


def test_a_webhook_campaign_reaches_the_merchants_receiver_signed(db, tmp_path):
    # The real clock: the receiver checks the signature's timestamp against its own.
    settings = _settings(tmp_path)
    wiring = bootstrap(settings)
    assert CampaignMessageSent in WEBHOOK_EVENTS
    (queue,) = [
        h for h in wiring.handlers_for("campaign.message_sent") if h.name == "webhooks.queue"
    ]
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    with db.transaction() as s:
        for i in range(6):
            add_member(s, tenant.merchant_id, name=f"Member {i}", phone=f"+8613800000{i:03d}")
        cid = service.create_campaign(
            s,
            principal=admin_of(tenant),
            merchant_id=tenant.merchant_id,
            data=schemas.CampaignCreate(
                name="Through our app",
                offer_id=offer_id,
                channel="webhook",
                measured=False,
                holdout_share=0,
                message_body="Hi {name}, {code} is yours",
            ),
        ).id
    with receiving() as receiver:
        _, secret = register(
            db, settings, tenant.merchant_id, receiver.url, ("campaign.message_sent",)
        )
        with db.transaction() as s:
            launch.transition(
                s,
                principal=admin_of(tenant),
                merchant_id=tenant.merchant_id,
                campaign_id=cid,
                action="launch",
                policy=POLICY,
            )
        assert runner.send_all(db, policy=POLICY).sent == 6
        with db.reading() as s:
            outbox = s.execute(
                select(OutboxEntry.type, OutboxEntry.payload).where(
                    OutboxEntry.type == "campaign.message_sent"
                )
            ).all()
            messages = {
                m.id: m for m in s.scalars(select(Message).where(Message.campaign_id == cid))
            }
            sent = s.scalars(
                select(CampaignTarget).where(CampaignTarget.state == TargetState.SENT)
            ).all()
        assert len(outbox) == 6 and {m.channel for m in messages.values()} == {"webhook"}
        for name, payload in outbox:  # what the worker does with each event
            with db.transaction() as s:
                queue(s, events.from_json(name, payload))
        got = receiver.wait_for(6)
    for r in got:
        Webhook(secret).verify(r.body.decode(), r.headers)  # raises unless signed with it
    bodies = [json.loads(r.body) for r in got]
    data = {b["data"]["message_id"]: b["data"] for b in bodies}
    assert set(data) == set(messages) == {t.message_id for t in sent}
    for message_id, item in data.items():
        assert item["body"] == messages[message_id].body
        assert item["body"].startswith("Hi Member ") and item["code"] in item["body"]
        assert "phone" not in json.dumps(item) and "+86" not in json.dumps(item)
    assert {b["type"] for b in bodies} == {"campaign.message_sent"}


def test_erasing_a_consumer_empties_their_message_events_and_deliveries(db, tmp_path) -> None:
    settings = _settings(tmp_path)
    wiring = bootstrap(settings)
    (queue,) = [
        h for h in wiring.handlers_for("campaign.message_sent") if h.name == "webhooks.queue"
    ]
    (erase,) = [
        h
        for h in wiring.handlers_for("consumer.erased")
        if h.name == "campaigns.erase_message_events"
    ]
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    with db.transaction() as s:
        people = [add_member(s, tenant.merchant_id, name=f"Member {i}") for i in range(3)]
        launch_unmeasured(
            s,
            tenant,
            offer_id,
            name="Through our app",
            channel="webhook",
            message_body="Hi {name}, {code} is yours",
        )
    register(
        db, settings, tenant.merchant_id, "http://127.0.0.1:9/hook", ("campaign.message_sent",)
    )
    assert runner.send_all(db, policy=POLICY).sent == 3
    with db.reading() as s:
        sent = s.execute(
            select(OutboxEntry.payload).where(OutboxEntry.type == "campaign.message_sent")
        ).scalars()
        for payload in list(sent):
            with db.transaction() as w:
                queue(w, events.from_json("campaign.message_sent", payload))
    _, erased = people[0]
    payload = erase_consumer(db, erased)
    for _ in range(2):  # the worker's run, at least once
        with db.transaction() as s:
            erase(s, events.from_json("consumer.erased", payload))
    with db.reading() as s:
        outbox = [
            json.loads(p)
            for p in s.scalars(
                select(OutboxEntry.payload).where(OutboxEntry.type == "campaign.message_sent")
            )
        ]
        queued = [json.loads(d.payload)["data"] for d in s.scalars(select(WebhookDelivery))]
    for copies in (outbox, queued):
        by_consumer = {item["consumer_id"]: item for item in copies}
        assert len(copies) == 3 and set(by_consumer) == {c for _, c in people}
        mine = by_consumer.pop(erased)
        assert (mine["subject"], mine["body"], mine["code"], mine["member_id"]) == (
            "",
            "",
            "",
            None,
        )
        assert mine["message_id"] and mine["code_id"]  # the facts stay, the text goes
        for item in by_consumer.values():
            assert item["body"].startswith("Hi Member ") and item["code"] in item["body"]
