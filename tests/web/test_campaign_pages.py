"""Campaign pages: a draft's audience is counted before it is saved, a launch sends, the
results compare with the holdout; bad input stays beside its field; tenants stay apart."""

from __future__ import annotations

import re

import httpx

from campaign_kit import add_member
from factories import make_offer, make_tenant
from o2oloop.analytics.models import Segment
from o2oloop.db import Database
from web_kit import csrf_of, make_person, sign_in, submit


def _members(db: Database, merchant_id: str) -> None:
    with db.transaction() as session:
        for _ in range(3):
            add_member(session, merchant_id, visits=4, score={"segment": Segment.REGULAR})
        add_member(session, merchant_id, visits=2, score={"segment": Segment.AT_RISK})
        add_member(session, merchant_id, consent=False, score={"segment": Segment.REGULAR})


def test_a_draft_is_counted_saved_launched_and_measured(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    _members(db, tenant.merchant_id)
    sign_in(http, make_person(db, tenant))
    form = {
        "name": "Regulars' thank-you",
        "offer_id": offer_id,
        "segments": "regular",
        "channel": "inbox",
        "message_body": "Hi {name}, {offer} with code {code}",
        "holdout_percent": "20",
    }

    counted = submit(
        http, "/console/campaigns/new", "/console/campaigns", {**form, "intent": "preview"}
    )
    assert counted.status_code == 200
    assert "This audience is 3 members now." in counted.text  # consent left one out
    assert 'value="Regulars&#39; thank-you"' in counted.text  # what was typed is kept
    assert "/console/campaigns/cmp_" not in counted.text  # nothing was saved

    saved = submit(http, "/console/campaigns/new", "/console/campaigns", {**form, "intent": "save"})
    assert saved.status_code == 303
    path = saved.headers["location"].split("?")[0]
    assert path.startswith("/console/campaigns/cmp_")
    page = http.get(path).text
    assert "Draft" in page and re.search(r'id="audience-count">3<', page)

    launched = submit(http, path, f"{path}/transition", {"action": "launch"})
    assert launched.status_code == 303
    page = http.get(launched.headers["location"]).text
    assert "Launched: codes go out" in page and "Running" in page
    assert "Results against the holdout" in page and "Holdout (nothing sent)" in page

    again = submit(http, path, f"{path}/transition", {"action": "launch"})
    assert again.status_code == 409 and "only a draft is launched" in again.text


def test_refusals_stand_beside_their_fields(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    sign_in(http, make_person(db, tenant))
    answer = submit(
        http,
        "/console/campaigns/new",
        "/console/campaigns",
        {"name": "", "offer_id": "", "holdout_percent": "lots", "intent": "save"},
    )
    assert answer.status_code == 422
    assert 'id="e-holdout_percent"' in answer.text and "enter a number" in answer.text
    answer = submit(
        http,
        "/console/campaigns/new",
        "/console/campaigns",
        {"name": "", "offer_id": "", "holdout_percent": "10", "intent": "save"},
    )
    assert answer.status_code == 422 and 'id="e-name"' in answer.text


def test_another_merchants_campaign_is_not_found(db: Database, http: httpx.Client) -> None:
    mine, theirs = make_tenant(db), make_tenant(db)
    offer_id = make_offer(db, theirs)
    other = httpx.Client(base_url=str(http.base_url), timeout=30)
    with other:
        sign_in(other, make_person(db, theirs))
        made = submit(
            other,
            "/console/campaigns/new",
            "/console/campaigns",
            {
                "name": "Theirs",
                "offer_id": offer_id,
                "holdout_percent": "10",
                "message_body": "{code}",
                "intent": "save",
            },
        )
        assert made.status_code == 303, made.text
        campaign_path = made.headers["location"].split("?")[0]
    sign_in(http, make_person(db, mine))
    assert http.get(campaign_path).status_code == 404
    token = csrf_of(http.get("/console/campaigns").text)
    moved = http.post(f"{campaign_path}/transition", data={"action": "launch", "csrf_token": token})
    assert moved.status_code == 404
    assert http.post(f"{campaign_path}/transition", data={"action": "launch"}).status_code == 403
