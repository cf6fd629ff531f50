"""Offer pages: create with rules, errors beside the fields with the input kept and nothing
saved, publish, edit a draft, bulk CSV, and another merchant's offer by URL is a 404."""

from __future__ import annotations

import httpx
from sqlalchemy import func, select

from factories import make_offer, make_tenant
from o2oloop.db import Database
from o2oloop.offers.models import Offer, OfferState
from web_kit import make_person, sign_in, submit

COUPON = {
    "kind": "coupon",
    "title": "20 off late dinner",
    "discount_kind": "amount_off",
    "amount_off": "20.00",
    "window_start_1": "21:00",
    "window_end_1": "02:00",
    "per_customer_limit": "1",
}


def _signed_in(db: Database, http: httpx.Client):
    tenant = make_tenant(db)
    sign_in(http, make_person(db, tenant))
    return tenant


def test_a_coupon_with_a_window_past_midnight_is_created_and_published(
    db: Database, http: httpx.Client
) -> None:
    tenant = _signed_in(db, http)

    created = submit(http, "/console/offers/new", "/console/offers/new", COUPON)

    assert created.status_code == 303
    page = http.get(created.headers["location"])
    assert "21:00–02:00" in page.text and "past midnight" in page.text
    offer_path = created.headers["location"].split("?")[0]
    published = submit(http, offer_path, f"{offer_path}/state", {"action": "publish"})
    assert published.status_code == 303
    with db.reading() as session:
        offer = session.scalars(select(Offer).where(Offer.merchant_id == tenant.merchant_id)).one()
        assert offer.state is OfferState.PUBLISHED
        assert offer.amount_off == 2000
        assert offer.time_windows == [{"start": "21:00", "end": "02:00"}]
        assert offer.per_customer_limit == 1


def test_bad_input_is_shown_beside_its_field_kept_and_nothing_is_saved(
    db: Database, http: httpx.Client
) -> None:
    tenant = _signed_in(db, http)
    bad = {**COUPON, "title": "", "amount_off": "twenty", "window_end_1": ""}

    answer = submit(http, "/console/offers/new", "/console/offers/new", bad)

    assert answer.status_code == 422
    html = answer.text
    assert 'id="e-title"' in html and 'id="e-amount_off"' in html and 'id="e-window_1"' in html
    assert "enter an amount like 12.50" in html
    assert 'value="twenty"' in html and 'value="21:00"' in html  # what was typed is kept
    assert "Traceback" not in html
    with db.reading() as session:
        count = session.scalar(
            select(func.count()).select_from(Offer).where(Offer.merchant_id == tenant.merchant_id)
        )
    assert count == 0


def test_a_window_that_closes_before_it_opens_is_refused_by_the_form(
    db: Database, http: httpx.Client
) -> None:
    _signed_in(db, http)
    bad = {**COUPON, "valid_from": "2026-07-01T10:00", "valid_until": "2026-06-01T10:00"}
    answer = submit(http, "/console/offers/new", "/console/offers/new", bad)
    assert answer.status_code == 422
    assert "valid_until must be after valid_from" in answer.text


def test_a_draft_is_edited_with_every_rule(db: Database, http: httpx.Client) -> None:
    tenant = _signed_in(db, http)
    created = submit(http, "/console/offers/new", "/console/offers/new", COUPON)
    edit = created.headers["location"].split("?")[0] + "/edit"
    changed = {
        **COUPON,
        "discount_kind": "percent_off",
        "amount_off": "",
        "percent_off": "15",
        "weekdays": ["4", "5"],
        "store_ids": [tenant.store_id],
        "new_customers_only": "1",
    }
    assert submit(http, edit, edit, changed).status_code == 303
    with db.reading() as session:
        offer = session.scalars(select(Offer).where(Offer.merchant_id == tenant.merchant_id)).one()
        assert offer.percent_off_bps == 1500 and offer.amount_off is None
        assert offer.weekdays == [4, 5] and offer.store_ids == [tenant.store_id]
        assert offer.new_customers_only


def test_bulk_codes_download_as_csv(db: Database, http: httpx.Client) -> None:
    tenant = _signed_in(db, http)
    offer_id = make_offer(db, tenant)
    page = f"/console/offers/{offer_id}"
    assert submit(http, page, f"{page}/batches", {"count": "5"}).status_code == 303
    csv_link = http.get(page).text.split('href="/console/batches/')[1].split('"')[0]
    download = http.get(f"/console/batches/{csv_link}")
    assert download.status_code == 200
    assert len(download.text.strip().splitlines()) == 6  # a header and five codes


def test_another_merchants_pages_are_not_found(db: Database, http: httpx.Client) -> None:
    _signed_in(db, http)
    other = make_tenant(db)
    foreign = make_offer(db, other)

    for path in (f"/console/offers/{foreign}", f"/console/offers/{foreign}/edit"):
        answer = http.get(path)
        assert answer.status_code == 404
        assert "Page not found" in answer.text
    refused = submit(http, "/console/offers", f"/console/offers/{foreign}/state", {"action": "end"})
    assert refused.status_code == 404
    with db.reading() as session:
        assert session.get(Offer, foreign).state is OfferState.PUBLISHED
