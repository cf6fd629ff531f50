"""Tracking links end to end over HTTP: publish, click, claim with the token, redeem, funnel."""

from __future__ import annotations

import time
from urllib.parse import parse_qs, urlparse

import httpx
from sqlalchemy import func, select

from factories import bearer, make_consumer, make_offer, make_tenant
from o2oloop.channels import links
from o2oloop.channels.counts import Counts
from o2oloop.channels.models import Channel, ChannelDaily, CodeAttribution
from o2oloop.codes import qr


def _publish(http: httpx.Client, tenant, offer_id: str, channel: str, **extra) -> dict:
    answer = http.post(
        f"/v1/merchants/{tenant.merchant_id}/offers/{offer_id}/publications",
        json={"channel": channel, **extra},
        headers={**tenant.admin, "Idempotency-Key": f"pub-{channel}-{offer_id}"},
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def _claim(http: httpx.Client, offer_id: str, key: str, via: str | None = None) -> dict:
    answer = http.post(
        f"/v1/offers/{offer_id}/claim",
        params={"via": via} if via else {},
        headers=bearer(key),
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def _redeem(http: httpx.Client, tenant, code: str, bill: int = 8800) -> dict:
    answer = http.post(
        "/v1/terminal/redemptions",
        json={"code": code, "bill_amount": bill},
        headers=tenant.terminal,
    )
    assert answer.status_code == 201, answer.text
    return answer.json()


def _funnel(http, tenant, offer_id, **params) -> dict[str, dict]:
    answer = http.get(
        f"/v1/merchants/{tenant.merchant_id}/offers/{offer_id}/funnel",
        params=params,
        headers=tenant.staff,
    )
    assert answer.status_code == 200, answer.text
    return {(r["channel"], r["link_id"]) if params.get("by_link") else r["channel"]: r
            for r in answer.json()["rows"]}  # fmt: skip


def test_a_claim_through_a_channel_link_is_in_that_funnel_once(db, app, http, frozen_clock):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    poster = _publish(http, tenant, offer_id, "poster", utm_campaign="spring")
    sms = _publish(http, tenant, offer_id, "sms")
    assert poster["short_url"].endswith(f"/t/{poster['token']}")
    assert len(poster["token"]) == links.TOKEN_LENGTH

    # The QR image of the poster decodes back to its short link.
    image = http.get(poster["qr_png_url"], headers=tenant.staff)
    assert image.status_code == 200 and image.headers["content-type"] == "image/png"
    assert qr.decode_image(image.content) == [poster["short_url"]]

    opened = http.get(f"/t/{poster['token']}", follow_redirects=False)
    assert opened.status_code == 302
    location = urlparse(opened.headers["location"])
    assert location.path == f"/offers/{offer_id}"
    tags = parse_qs(location.query)
    assert tags["via"] == [poster["token"]]
    assert tags["utm_medium"] == ["print"] and tags["utm_campaign"] == ["spring"]
    http.get(f"/t/{poster['token']}", follow_redirects=False)

    _, key = make_consumer(db)
    code = _claim(http, offer_id, key, via=poster["token"])
    _redeem(http, tenant, code["code"], bill=8800)
    _, other = make_consumer(db)
    _claim(http, offer_id, other)  # no link: direct
    app.state.channel_counts.flush()

    rows = _funnel(http, tenant, offer_id)
    assert rows["poster"]["clicks"] == 2
    assert rows["poster"]["claims"] == 1 and rows["poster"]["redemptions"] == 1
    assert rows["poster"]["revenue"] == 8800
    assert rows["poster"]["claim_rate"] == 0.5 and rows["poster"]["redemption_rate"] == 1.0
    assert rows["direct"]["claims"] == 1 and rows["direct"]["redemptions"] == 0
    assert "sms" not in rows  # published, but nothing happened through it yet
    by_link = _funnel(http, tenant, offer_id, by_link=True)
    assert by_link[("poster", poster["id"])]["claims"] == 1
    assert sum(r["claims"] for r in by_link.values()) == 2
    _ = sms


def test_first_touch_is_the_first_link_last_touch_the_claims_own(db, app, http, frozen_clock):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant, per_customer_limit=5)
    social = _publish(http, tenant, offer_id, "social")
    sms = _publish(http, tenant, offer_id, "sms")
    _, key = make_consumer(db)
    _claim(http, offer_id, key, via=social["token"])
    _claim(http, offer_id, key, via=sms["token"])
    _claim(http, offer_id, key)
    last = _funnel(http, tenant, offer_id, model="last_touch")
    first = _funnel(http, tenant, offer_id, model="first_touch")
    assert {c: r["claims"] for c, r in last.items()} == {"social": 1, "sms": 1, "direct": 1}
    assert {c: r["claims"] for c, r in first.items()} == {"social": 3}


def test_a_tampered_token_is_ignored_not_trusted(db, app, http, frozen_clock):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    partner = _publish(http, tenant, offer_id, "partner")
    token = partner["token"]
    tampered = token[:-1] + ("a" if token[-1] != "a" else "b")
    forged_id = token[0] + "0" * 26 + token[27:]
    for bad in (tampered, forged_id, "p" + "x" * 36, "nonsense"):
        assert http.get(f"/t/{bad}", follow_redirects=False).status_code == 404
    _, key = make_consumer(db)
    code = _claim(http, offer_id, key, via=tampered)
    app.state.channel_counts.flush()
    rows = _funnel(http, tenant, offer_id)
    assert set(rows) == {"direct"}
    with db.reading() as session:
        assert session.get(CodeAttribution, code["id"]) is None


def test_another_offers_link_attributes_nothing(db, http, frozen_clock):
    tenant = make_tenant(db)
    one, two = make_offer(db, tenant), make_offer(db, tenant)
    link = _publish(http, tenant, one, "web")
    _, key = make_consumer(db)
    _claim(http, two, key, via=link["token"])
    assert set(_funnel(http, tenant, two)) == {"direct"}


def test_impressions_from_nearby_count_in_batches(db, app, http, frozen_clock):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    _, key = make_consumer(db)
    for _ in range(3):
        found = http.get(
            "/v1/offers/nearby",
            params={"lat": 31.23, "lng": 121.47, "radius_m": 300},
            headers=bearer(key),
        )
        assert [o["offer_id"] for o in found.json()["data"]] == [offer_id]
    app.state.channel_counts.flush()
    assert _funnel(http, tenant, offer_id)["in_app"]["impressions"] == 3


def test_a_started_counter_writes_its_batches_from_its_own_thread(db, frozen_clock):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    counts = Counts(db, interval=0.05)
    counts.start()
    try:
        counts.impressions([offer_id, offer_id], Channel.IN_APP)
        assert counts.click(offer_id, Channel.POSTER, "pub_x") is False  # never the caller's
        deadline = time.monotonic() + 10
        while _written(db, offer_id) != (2, 1) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _written(db, offer_id) == (2, 1)
        counts.impressions([offer_id], Channel.IN_APP)
    finally:
        counts.stop()
    assert _written(db, offer_id) == (3, 1)  # what was pending went out on stop


def _written(db, offer_id: str) -> tuple[int, int]:
    with db.reading() as session:
        row = session.execute(
            select(func.sum(ChannelDaily.impressions), func.sum(ChannelDaily.clicks)).where(
                ChannelDaily.offer_id == offer_id
            )
        ).one()
    return int(row[0] or 0), int(row[1] or 0)


def test_an_ended_offers_link_says_so_and_bad_channels_are_422(db, http, frozen_clock):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    link = _publish(http, tenant, offer_id, "map_app")
    ended = http.post(
        f"/v1/merchants/{tenant.merchant_id}/offers/{offer_id}/end", headers=tenant.admin
    )
    assert ended.status_code == 200
    answer = http.get(f"/t/{link['token']}", follow_redirects=False)
    assert answer.status_code == 410 and "This offer has ended" in answer.text
    for channel in ("fax", "share", "direct"):
        refused = http.post(
            f"/v1/merchants/{tenant.merchant_id}/offers/{make_offer(db, tenant)}/publications",
            json={"channel": channel},
            headers=tenant.admin,
        )
        assert refused.status_code == 422, refused.text
    another = make_tenant(db)
    foreign = http.post(
        f"/v1/merchants/{another.merchant_id}/offers/{offer_id}/publications",
        json={"channel": "web"},
        headers=another.admin,
    )
    assert foreign.status_code == 404


def test_a_share_link_of_an_erased_consumer_says_the_offer_has_ended(db, http, frozen_clock):
    """The link stays readable after its sharer's erasure, but leads nowhere and credits
    no one: the page a friend sees is the graceful 410, and a claim through it is direct."""
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    _, sharer_key = make_consumer(db)
    share = http.post(
        f"/v1/offers/{offer_id}/shares", json={"note": "try it"}, headers=bearer(sharer_key)
    )
    assert share.status_code == 201, share.text
    token = share.json()["token"]
    assert http.get(f"/t/{token}", follow_redirects=False).status_code == 302
    erased = http.post("/v1/consumers/me/erase", headers=bearer(sharer_key))
    assert erased.status_code == 200, erased.text
    answer = http.get(f"/t/{token}", follow_redirects=False)
    assert answer.status_code == 410 and "This offer has ended" in answer.text
    _, friend_key = make_consumer(db)
    claimed = _claim(http, offer_id, friend_key, via=token)
    with db.reading() as session:
        attribution = session.get(CodeAttribution, claimed["id"])
        assert attribution is None or attribution.last_channel is not Channel.SHARE
