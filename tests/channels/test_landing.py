"""The offer's landing page over HTTP: where links lead, what it shows, what travels on."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlparse

from channels.test_attribution import _publish
from factories import bearer, make_consumer, make_offer, make_tenant
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.offers import schemas as offer_schemas
from o2oloop.offers import service as offers


def _admin(tenant) -> Principal:
    return Principal(
        key_id=tenant.admin_key_id, role=Role.MERCHANT_ADMIN, merchant_id=tenant.merchant_id
    )


def _via_on_page(html: str) -> str | None:
    found = re.search(r'data-claim-via="([^"]+)"', html)
    return found.group(1) if found else None


def test_a_tracking_link_lands_on_the_page_and_its_token_travels_to_the_claim(
    db, http, frozen_clock
):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant, title="Hotpot for two", amount_off=2500)
    poster = _publish(http, tenant, offer_id, "poster")
    opened = http.get(f"/t/{poster['token']}", follow_redirects=False)
    location = opened.headers["location"]
    page = http.get(location)
    assert page.status_code == 200, page.text
    assert page.headers["content-type"].startswith("text/html")
    assert "Hotpot for two" in page.text and "<svg" in page.text
    assert _via_on_page(page.text) == poster["token"]
    assert parse_qs(urlparse(location).query)["via"] == [poster["token"]]


def test_a_tampered_or_foreign_token_is_dropped_not_carried(db, http, frozen_clock):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    other_offer = make_offer(db, tenant)
    poster = _publish(http, tenant, offer_id, "poster")
    foreign = _publish(http, tenant, other_offer, "sms")
    tampered = poster["token"][:-1] + ("a" if poster["token"][-1] != "a" else "b")
    for token in (tampered, foreign["token"], "x" * 37):
        page = http.get(f"/offers/{offer_id}", params={"via": token})
        assert page.status_code == 200
        assert _via_on_page(page.text) is None


def test_stores_nearest_first_with_distance_and_hours(db, http, frozen_clock):
    tenant = make_tenant(db)  # its store is at 31.23, 121.47
    offer_id = make_offer(db, tenant)
    page = http.get(f"/offers/{offer_id}", params={"lat": 31.2309, "lng": 121.47})
    assert page.status_code == 200
    assert re.search(r"100 m", page.text), page.text
    assert "Today" in page.text or "Closed today" in page.text


def test_an_ended_offer_says_so_with_410_and_unknown_or_draft_offers_are_404(
    db, http, frozen_clock
):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    with db.transaction() as session:
        offers.transition(
            session, principal=_admin(tenant), merchant_id=tenant.merchant_id,
            offer_id=offer_id, action="end",
        )  # fmt: skip
        draft = offers.create_offer(
            session,
            principal=_admin(tenant),
            merchant_id=tenant.merchant_id,
            data=offer_schemas.OfferCreate.model_validate(
                {"kind": "coupon", "title": "Not yet", "discount_kind": "amount_off",
                 "amount_off": 500}
            ),
        )  # fmt: skip
        draft_id = draft.id
    page = http.get(f"/offers/{offer_id}")
    assert page.status_code == 410
    assert "This offer has ended" in page.text and "data-claim-offer" not in page.text
    assert http.get("/offers/ofr_nothing").status_code == 404
    assert http.get(f"/offers/{draft_id}").status_code == 404
    assert http.get(f"/offers/{offer_id}", params={"lat": 91, "lng": 0}).status_code == 400


def test_the_claim_the_page_sends_is_attributed_to_the_link(db, http, frozen_clock):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    poster = _publish(http, tenant, offer_id, "poster")
    via = _via_on_page(http.get(f"/offers/{offer_id}", params={"via": poster["token"]}).text)
    _, key = make_consumer(db)
    claimed = http.post(f"/v1/offers/{offer_id}/claim", params={"via": via}, headers=bearer(key))
    assert claimed.status_code == 201
    funnel = http.get(
        f"/v1/merchants/{tenant.merchant_id}/offers/{offer_id}/funnel", headers=tenant.staff
    ).json()
    assert {r["channel"]: r["claims"] for r in funnel["rows"]} == {"poster": 1}
