"""A sender killed in the middle of a campaign: resumed, nobody gets two codes or messages."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from campaign_kit import POLICY, add_member, admin_of
from factories import make_offer, make_tenant
from o2oloop import clock
from o2oloop.campaigns import launch, runner, schemas, service
from o2oloop.campaigns.models import Arm, CampaignTarget, TargetState
from o2oloop.codes.models import Code
from o2oloop.notify import dispatch
from o2oloop.notify.email import MemorySender
from o2oloop.notify.models import Message, MessageState, SandboxSms
from o2oloop.notify.sms import SandboxSmsProvider

CHILD = Path(__file__).with_name("crashing_sender.py")


def _child(db, what: str) -> int:
    url = db.engine.url.render_as_string(hide_password=False)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    done = subprocess.run(
        [sys.executable, str(CHILD), url, POLICY.secret_key, what, clock.now().isoformat()],
        env=env,
        capture_output=True,
        timeout=120,
    )
    return done.returncode


def _launched(db, channel: str, n: int, phones: bool = False) -> str:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    with db.transaction() as s:
        for i in range(n):
            add_member(s, tenant.merchant_id, phone=f"+86137{i:08d}" if phones else None)
        cid = service.create_campaign(
            s,
            principal=admin_of(tenant),
            merchant_id=tenant.merchant_id,
            data=schemas.CampaignCreate(
                name="c", offer_id=offer_id, channel=channel, holdout_share=0.1
            ),
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


def test_a_killed_campaign_send_resumes_and_nobody_is_messaged_twice(db, frozen_clock) -> None:
    cid = _launched(db, "inbox", 120)
    assert _child(db, "send") == -signal.SIGKILL
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(Message)) == 50  # two batches kept
    runner.send_all(db, policy=POLICY)
    with db.reading() as s:
        treated = set(
            s.scalars(
                select(CampaignTarget.consumer_id).where(
                    CampaignTarget.campaign_id == cid, CampaignTarget.arm == Arm.TREATMENT
                )
            )
        )
        messages = Counter(s.scalars(select(Message.consumer_id)))
        codes = Counter(s.scalars(select(Code.consumer_id)))
        assert set(messages) == set(codes) == treated
        assert max(messages.values()) == max(codes.values()) == 1
        assert not s.scalar(select(func.count()).where(CampaignTarget.state == TargetState.PENDING))


def test_a_killed_dispatcher_resends_with_the_same_reference_and_no_one_is_texted_twice(
    db, frozen_clock
) -> None:
    frozen_clock.set(frozen_clock.now().replace(hour=4))  # noon in Shanghai: no quiet hours
    _launched(db, "sms", 30, phones=True)
    runner.send_all(db, policy=POLICY)
    assert _child(db, "dispatch") == -signal.SIGKILL
    with db.reading() as s:
        assert s.scalar(select(func.count()).select_from(SandboxSms)) == 7
        stuck = s.scalar(select(func.count()).where(Message.state == MessageState.SENDING))
        assert stuck > 0  # claimed by the dead dispatcher, leased
    frozen_clock.advance(timedelta(minutes=6))  # the dead dispatcher's lease has run out
    dispatch.dispatch(db, sms=SandboxSmsProvider(db, failure_rate=0), email=MemorySender())
    with db.reading() as s:
        sandbox = Counter(s.scalars(select(SandboxSms.to)))
        sent = s.scalar(select(func.count()).where(Message.state == MessageState.SENT))
        total = s.scalar(select(func.count()).select_from(Message))
    assert sent == total == len(sandbox) and max(sandbox.values()) == 1
