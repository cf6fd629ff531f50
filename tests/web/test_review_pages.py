"""The reviews page: the merchant's reviews with where each sits in the signed log, one
public reply each (a second is refused beside the box), another merchant's review a 404."""

from __future__ import annotations

import httpx

from factories import make_tenant
from o2oloop.config import Settings
from o2oloop.db import Database
from web_kit import csrf_of, make_person, make_review, sign_in, submit


def test_a_review_gets_one_public_reply(
    db: Database, settings: Settings, http: httpx.Client
) -> None:
    tenant = make_tenant(db)
    review_id = make_review(db, settings, tenant, "Noodles worth the queue")
    sign_in(http, make_person(db, tenant))

    page = http.get("/console/reviews")
    assert page.status_code == 200
    assert "Noodles worth the queue" in page.text
    assert "verified by a payment at the counter" in page.text
    assert "In the public log as entry" in page.text and "/v1/reviews/log/entries/" in page.text
    assert "Verifier key" in page.text

    action = f"/console/reviews/{review_id}/reply"
    empty = submit(http, "/console/reviews", action, {"text": "  "})
    assert empty.status_code == 422 and f'id="e-reply-{review_id}"' in empty.text

    replied = submit(http, "/console/reviews", action, {"text": "Thank you, see you soon"})
    assert replied.status_code == 303
    page = http.get(replied.headers["location"]).text
    assert "Your reply is published." in page and "Thank you, see you soon" in page
    assert "Publish reply" not in page  # one reply: the box is gone

    second = submit(http, "/console/reviews", action, {"text": "And again"})
    assert second.status_code == 422 and "already has the merchant" in second.text


def test_another_merchants_review_is_not_found(
    db: Database, settings: Settings, http: httpx.Client
) -> None:
    mine, theirs = make_tenant(db), make_tenant(db)
    review_id = make_review(db, settings, theirs, "Theirs")
    sign_in(http, make_person(db, mine))
    page = http.get("/console/reviews")
    assert "Theirs" not in page.text
    token = csrf_of(page.text)
    answer = http.post(
        f"/console/reviews/{review_id}/reply", data={"text": "hi", "csrf_token": token}
    )
    assert answer.status_code == 404
