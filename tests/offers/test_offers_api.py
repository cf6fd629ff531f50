"""Creating an offer over the API: validity that could never hold is refused, not stored."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from factories import make_tenant
from o2oloop.db import Database
from o2oloop.offers.models import Offer

COUPON = {"kind": "coupon", "title": "Never", "discount_kind": "amount_off", "amount_off": 100}


def test_validity_ending_before_it_starts_is_422_and_nothing_is_stored(
    db: Database, http: httpx.Client
) -> None:
    tenant = make_tenant(db)
    offers = f"/v1/merchants/{tenant.merchant_id}/offers"
    with db.reading() as session:
        before = session.scalar(select(func.count()).select_from(Offer))
    body = {**COUPON, "valid_from": "2027-01-02T00:00:00Z", "valid_until": "2027-01-01T00:00:00Z"}
    answer = http.post(offers, json=body, headers=tenant.admin)
    assert answer.status_code == 422, answer.text
    assert "valid_until must be after valid_from" in answer.json()["detail"]
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(Offer)) == before
    body["valid_until"] = "2027-01-03T00:00:00Z"
    answer = http.post(offers, json=body, headers=tenant.admin)
    assert answer.status_code == 201, answer.text
