"""Messages end to end: SMS through the sandbox with signed delivery reports over HTTP, email
through aiosmtpd, quiet hours, the inbox API and one-click unsubscribe."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from campaign_kit import POLICY, add_member, admin_of
from factories import bearer, make_offer, make_tenant
from o2oloop.auth import service as keys
from o2oloop.auth.models import Role
from o2oloop.campaigns import launch, runner, schemas, service
from o2oloop.customers.models import Consumer, Membership
from o2oloop.errors import InvalidInput
from o2oloop.notify import dispatch, templates
from o2oloop.notify.email import SmtpSender
from o2oloop.notify.models import Message, MessageState, SandboxSms
from o2oloop.notify.service import in_quiet_hours, not_before, unsubscribe_token
from o2oloop.notify.sms import SandboxSmsProvider, deliver_reports, report_secret
from smtp_server import smtp_server


def _campaign(db, tenant, channel, body, **extra):
    offer_id = make_offer(db, tenant)
    data = {
        "name": "c",
        "offer_id": offer_id,
        "channel": channel,
        "message_body": body,
        "measured": False,
        "holdout_share": 0,
    } | extra
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
    runner.send_all(db, policy=POLICY)
    return cid


def test_templates_refuse_unknown_placeholders_and_render_known_ones() -> None:
    assert templates.render("Hi {name}, {code}", {"name": "Ana", "code": "X"}) == "Hi Ana, X"
    for bad in ("Hi {nmae}", "{code!r}", "{code:>10}", "{", "{0}"):
        with pytest.raises(InvalidInput):
            templates.validate(bad)


def test_quiet_hours_in_the_consumers_timezone() -> None:
    assert in_quiet_hours(datetime(2026, 1, 1, 22), 21, 9)
    assert in_quiet_hours(datetime(2026, 1, 1, 3), 21, 9)
    assert not in_quiet_hours(datetime(2026, 1, 1, 12), 21, 9)
    late = datetime(2026, 6, 1, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai, 10:30 in New York
    assert not_before(late, "Asia/Shanghai", start=21, end=9) == datetime(
        2026, 6, 2, 1, 0, tzinfo=UTC
    )
    assert not_before(late, "America/New_York", start=21, end=9) == late


def test_sms_through_the_sandbox_with_signed_delivery_reports_over_http(db, http, frozen_clock):
    frozen_clock.set(datetime(2026, 6, 1, 4, 0, tzinfo=UTC))  # noon in Shanghai
    tenant = make_tenant(db)
    with db.transaction() as s:
        people = [add_member(s, tenant.merchant_id, phone=f"+861380013{i:04d}") for i in range(30)]
    cid = _campaign(db, tenant, "sms", "{merchant}: {offer} with {code}. Stop: {unsubscribe_url}")
    provider = SandboxSmsProvider(db, failure_rate=0.2, error_rate=0.1, rng=random.Random(5))
    for _ in range(10):
        dispatch.dispatch(db, sms=provider, email=SmtpSender(host="127.0.0.1", port=1))
        frozen_clock.advance(timedelta(minutes=5))
    secret = report_secret(POLICY.secret_key)

    def post(body: bytes, headers: dict[str, str]) -> int:
        return http.post("/v1/notify/sms/reports", content=body, headers=headers).status_code

    frozen_clock.advance(timedelta(seconds=10))
    with db.reading() as s:
        accepted = len(s.scalars(select(SandboxSms)).all())
    assert deliver_reports(db, post=post, secret=secret) == accepted  # the server took each
    with db.reading() as s:
        sandbox = s.execute(select(SandboxSms.to)).scalars().all()
        messages = s.execute(
            select(Message.to_address, Message.state).where(Message.campaign_id == cid)
        ).all()
    assert len(sandbox) == len(people) == len(messages)  # nobody texted twice, despite errors
    assert {m.to_address for m in messages} == set(sandbox)
    states = {m.state for m in messages}
    assert states <= {MessageState.DELIVERED, MessageState.FAILED}
    assert MessageState.FAILED in states


def test_delivery_reports_are_verified_and_applied_once(db, frozen_clock):
    frozen_clock.set(datetime(2026, 6, 1, 4, 0, tzinfo=UTC))
    tenant = make_tenant(db)
    with db.transaction() as s:
        for i in range(20):
            add_member(s, tenant.merchant_id, phone=f"+861390013{i:04d}")
    cid = _campaign(db, tenant, "sms", "{code}")
    provider = SandboxSmsProvider(db, failure_rate=0.3, rng=random.Random(1))
    dispatch.dispatch(db, sms=provider, email=SmtpSender(host="127.0.0.1", port=1))
    frozen_clock.advance(timedelta(seconds=6))
    secret = report_secret(POLICY.secret_key)
    post = runner.local_report_post(db, secret)
    assert deliver_reports(db, post=post, secret=secret) == 20
    assert deliver_reports(db, post=post, secret=secret) == 0
    forged = runner.local_report_post(db, "wrong")
    with db.reading() as s:
        states = [m.state for m in s.scalars(select(Message).where(Message.campaign_id == cid))]
    assert set(states) == {MessageState.DELIVERED, MessageState.FAILED}
    assert 0 < states.count(MessageState.FAILED) < 20
    assert forged(b'{"id":"x","status":"delivered"}', {"O2O-Signature": "t=1,v1=00"}) == 401


def test_email_goes_out_over_smtp_with_one_click_unsubscribe_and_it_withdraws_consent(
    db, http, settings, frozen_clock
):
    frozen_clock.set(datetime(2026, 6, 1, 4, 0, tzinfo=UTC))
    tenant = make_tenant(db)
    with db.transaction() as s:
        member_id, consumer_id = add_member(s, tenant.merchant_id, name="Ana")
        s.get(Consumer, consumer_id).email = "ana@example.com"
    cid = _campaign(
        db,
        tenant,
        "email",
        "Hi {name}, your code {code}. Unsubscribe: {unsubscribe_url}",
        message_subject="{offer} for you",
    )
    with smtp_server() as (inbox, port):
        sent = dispatch.dispatch(
            db, sms=SandboxSmsProvider(db), email=SmtpSender(host="127.0.0.1", port=port)
        )
    assert sent.sent == 1 and len(inbox.messages) == 1
    received = inbox.messages[0]
    assert received["To"] == "ana@example.com" and received["Subject"] == "10 off dinner for you"
    link = received["List-Unsubscribe"].strip("<>")
    assert link.endswith(unsubscribe_token(member_id, POLICY.secret_key))
    path = "/v1/unsubscribe/" + unsubscribe_token(member_id, settings.secret_key)
    assert "<form" in http.get(path).text  # a GET changes nothing
    with db.reading() as s:
        assert s.get(Membership, member_id).marketing_consent
    assert http.post(path).json()["unsubscribed"] is True
    assert http.post("/v1/unsubscribe/" + member_id + ".forged").status_code == 404
    with db.reading() as s:
        membership = s.get(Membership, member_id)
        assert not membership.marketing_consent
        assert membership.consent_recorded_by == "unsubscribe-link"
    assert cid


def test_the_inbox_api_shows_a_consumer_their_messages_only(db, http, frozen_clock):
    tenant = make_tenant(db)
    with db.transaction() as s:
        _, mine = add_member(s, tenant.merchant_id, name="Bo")
        _, theirs = add_member(s, tenant.merchant_id, name="Cy")
        _, token = keys.issue_key(s, role=Role.CONSUMER, consumer_id=mine)
        _, other_token = keys.issue_key(s, role=Role.CONSUMER, consumer_id=theirs)
    _campaign(db, tenant, "inbox", "Hi {name}: {code}")
    page = http.get("/v1/consumers/me/inbox", headers=bearer(token)).json()["data"]
    assert len(page) == 1 and page[0]["body"].startswith("Hi Bo: ")
    message_id = page[0]["id"]
    assert (
        http.post(
            f"/v1/consumers/me/inbox/{message_id}/read", headers=bearer(other_token)
        ).status_code
        == 404
    )
    read = http.post(f"/v1/consumers/me/inbox/{message_id}/read", headers=bearer(token)).json()
    assert read["read_at"] is not None
    unread = http.get("/v1/consumers/me/inbox?unread=true", headers=bearer(token)).json()
    assert unread["data"] == []
    contact = http.put(
        "/v1/consumers/me/contact",
        json={"email": "bo@example.com", "timezone": "Europe/Paris", "birthday": "1990-05-04"},
        headers=bearer(token),
    )
    assert contact.status_code == 200 and contact.json()["timezone"] == "Europe/Paris"
    bad = http.put(
        "/v1/consumers/me/contact", json={"timezone": "Mars/Base"}, headers=bearer(token)
    )
    assert bad.status_code == 422
