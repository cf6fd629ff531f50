"""Campaign routes over real HTTP: problem+json for bad input, tenancy, the lifecycle."""

from __future__ import annotations

from campaign_kit import add_member
from factories import make_offer, make_tenant
from o2oloop.analytics.models import Segment

LAUNCH = {"action": "launch"}


def _post(http, path, headers, body):
    return http.post(path, json=body, headers=headers)


def test_bad_input_is_a_clear_4xx_and_nothing_is_created(db, http):
    tenant, other = make_tenant(db), make_tenant(db)
    offer_id = make_offer(db, tenant)
    foreign_offer = make_offer(db, other)
    base = f"/v1/merchants/{tenant.merchant_id}/campaigns"
    cases = {
        "no offer": {"name": "x"},
        "budget below one code": {"name": "x", "offer_id": offer_id, "budget_discount": 999},
        "zero codes": {"name": "x", "offer_id": offer_id, "budget_codes": 0},
        "unknown placeholder": {"name": "x", "offer_id": offer_id, "message_body": "Hi {nmae}"},
        "holdout 0 while measured": {"name": "x", "offer_id": offer_id, "holdout_share": 0},
        "trigger without its parameter": {
            "name": "x",
            "offer_id": offer_id,
            "trigger": {"kind": "overdue"},
        },
    }
    for what, body in cases.items():
        response = _post(http, base, tenant.admin, body)
        assert response.status_code == 422, (what, response.text)
        assert response.headers["content-type"].startswith("application/problem+json"), what
    assert "{nmae}" in _post(http, base, tenant.admin, cases["unknown placeholder"]).text
    coupon = {"kind": "coupon", "title": "Not yet", "discount_kind": "amount_off", "amount_off": 1}
    offers = f"/v1/merchants/{tenant.merchant_id}/offers"
    draft = _post(http, offers, tenant.admin, coupon).json()["id"]
    unpublished = _post(http, base, tenant.admin, {"name": "x", "offer_id": draft})
    assert unpublished.status_code == 422 and "draft" in unpublished.json()["detail"]
    foreign = _post(http, base, tenant.admin, {"name": "x", "offer_id": foreign_offer})
    assert foreign.status_code == 404 and foreign.json()["field"] == "offer_id"  # as any foreign id
    assert http.get(base, headers=tenant.admin).json()["data"] == []


def test_an_update_with_nulls_leaves_those_fields_and_bad_changes_are_4xx(db, http):
    """null leaves a field as it is, as in every update of the API (it was a 500 for the
    name), and an update is checked as a creation is."""
    tenant, other = make_tenant(db), make_tenant(db)
    offer_id = make_offer(db, tenant)
    base = f"/v1/merchants/{tenant.merchant_id}/campaigns"
    body = {"name": "Win back", "offer_id": offer_id, "budget_codes": 5}
    url = f"{base}/{_post(http, base, tenant.admin, body).json()['id']}"
    before = http.get(url, headers=tenant.admin).json()
    nulls = ("name", "audience", "trigger", "channel", "message_subject", "message_body")
    for name in (*nulls, "holdout_share", "measured"):
        response = http.patch(url, json={name: None}, headers=tenant.admin)
        assert response.status_code == 200, (name, response.text)
    after = http.get(url, headers=tenant.admin).json()
    assert {k: v for k, v in after.items() if k != "updated_at"} == {
        k: v for k, v in before.items() if k != "updated_at"
    }
    cleared = http.patch(url, json={"budget_codes": None}, headers=tenant.admin)
    assert cleared.status_code == 200 and cleared.json()["budget_codes"] is None
    refused = {
        "offer_id": (None, 422),
        "message_body": ("Hi {nmae}", 422),
        "message_subject": ("{bogus}", 422),
        "budget_discount": (999, 422),
        "holdout_share": (0, 422),
        "audience": ({"near_store": {"store_id": other.store_id, "km": 2}}, 404),
    }
    for name, (value, status) in refused.items():
        response = http.patch(url, json={name: value}, headers=tenant.admin)
        assert response.status_code == status, (name, response.text)
        assert response.headers["content-type"].startswith("application/problem+json")


def test_an_audience_near_another_merchants_store_is_404_at_creation(db, http):
    tenant, other = make_tenant(db), make_tenant(db)
    base = f"/v1/merchants/{tenant.merchant_id}/campaigns"
    body = {
        "name": "x",
        "offer_id": make_offer(db, tenant),
        "audience": {"near_store": {"store_id": other.store_id, "km": 2}},
    }
    response = _post(http, base, tenant.admin, body)
    assert response.status_code == 404 and "near_store" in response.json()["detail"]
    assert http.get(base, headers=tenant.admin).json()["data"] == []


def test_an_audience_matching_nobody_cannot_be_launched(db, http):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    base = f"/v1/merchants/{tenant.merchant_id}/campaigns"
    body = {"name": "x", "offer_id": offer_id, "audience": {"segments": ["lapsed"]}}
    created = _post(http, base, tenant.admin, body).json()
    response = _post(
        http, f"{base}/{created['id']}/transitions", tenant.admin, {"action": "launch"}
    )
    assert response.status_code == 422 and response.json()["type"].endswith("/audience-empty")
    assert http.get(f"{base}/{created['id']}", headers=tenant.admin).json()["state"] == "draft"


def test_another_merchants_campaign_is_404(db, http):
    tenant, other = make_tenant(db), make_tenant(db)
    offer_id = make_offer(db, tenant)
    base = f"/v1/merchants/{tenant.merchant_id}/campaigns"
    created = _post(http, base, tenant.admin, {"name": "x", "offer_id": offer_id}).json()
    theirs = f"/v1/merchants/{other.merchant_id}/campaigns/{created['id']}"
    assert http.get(theirs, headers=other.admin).status_code == 404
    assert http.get(f"{base}/{created['id']}", headers=other.admin).status_code == 404
    assert http.get(f"{base}/{created['id']}/results", headers=other.admin).status_code == 404


def test_preview_launch_and_results_end_to_end(db, http):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    with db.transaction() as s:
        for _ in range(40):
            add_member(s, tenant.merchant_id, score={"segment": Segment.AT_RISK})
        add_member(s, tenant.merchant_id, score={"segment": Segment.REGULAR})
    base = f"/v1/merchants/{tenant.merchant_id}/campaigns"
    audience = {"segments": ["at_risk"]}
    preview = _post(http, f"{base}/preview", tenant.staff, {"audience": audience}).json()
    assert preview["count"] == 40
    created = _post(
        http, base, tenant.admin, {"name": "Win back", "offer_id": offer_id, "audience": audience}
    ).json()
    assert created["holdout_bps"] == 1000
    launched = _post(
        http, f"{base}/{created['id']}/transitions", tenant.admin, {"action": "launch"}
    )
    assert launched.json()["state"] == "running"
    results = http.get(f"{base}/{created['id']}/results", headers=tenant.staff).json()
    assert results["audience"] == 40 and results["pending"] + results["sent"] > 0
    arms = {a["arm"]: a["members"] for a in results["arms"]}
    assert arms["treatment"] + arms["control"] == 40
    again = _post(http, f"{base}/{created['id']}/transitions", tenant.admin, LAUNCH)
    assert again.status_code == 409
