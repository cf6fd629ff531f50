"""A consumer's erasure reaches their messages: the notify handler of `consumer.erased`
(wired in bootstrap, run by the worker) empties their texts, addresses and the sandbox
provider's copies; other consumers' messages stay as they were."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from sqlalchemy import select

from campaign_kit import POLICY, add_member, erase_consumer, launch_unmeasured
from factories import make_offer, make_tenant
from o2oloop import events
from o2oloop.bootstrap import bootstrap
from o2oloop.campaigns import runner
from o2oloop.config import Settings
from o2oloop.notify import dispatch
from o2oloop.notify.email import MemorySender
from o2oloop.notify.models import Message, SandboxSms
from o2oloop.notify.sms import SandboxSmsProvider


def test_erasing_a_consumer_empties_their_messages_and_the_providers_copies(
    db, tmp_path, frozen_clock
) -> None:
    frozen_clock.set(datetime(2026, 6, 1, 4, 0, tzinfo=UTC))  # noon in Shanghai
    wiring = bootstrap(Settings(env="test", data_dir=tmp_path, secret_key=POLICY.secret_key))
    (handler,) = [
        h for h in wiring.handlers_for("consumer.erased") if h.name == "notify.erase_messages"
    ]
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    with db.transaction() as s:
        people = [
            add_member(s, tenant.merchant_id, name=f"Ann {i}", phone=f"+861370013{i:04d}")
            for i in range(4)
        ]
        launch_unmeasured(
            s, tenant, offer_id, name="Texts", channel="sms", message_body="{name}: {code}"
        )
    runner.send_all(db, policy=POLICY)
    provider = SandboxSmsProvider(db, failure_rate=0.0, rng=random.Random(1))
    assert dispatch.dispatch(db, sms=provider, email=MemorySender()).sent == 4
    _, erased = people[0]
    payload = erase_consumer(db, erased)
    with db.transaction() as s:  # the worker's run of the handler, twice (at least once)
        handler(s, events.from_json("consumer.erased", payload))
    with db.transaction() as s:
        handler(s, events.from_json("consumer.erased", payload))
    with db.reading() as s:
        mine = s.scalars(select(Message).where(Message.consumer_id == erased)).all()
        others = s.scalars(select(Message).where(Message.consumer_id != erased)).all()
        sandbox = {r.reference: r for r in s.scalars(select(SandboxSms))}
    assert len(mine) == 1 and len(others) == 3
    assert (mine[0].body, mine[0].subject, mine[0].to_address) == ("", "", None)
    assert (sandbox[mine[0].id].to, sandbox[mine[0].id].body) == ("", "")
    for message in others:
        assert message.body.startswith("Ann ") and message.to_address
        assert sandbox[message.id].body == message.body
