"""The verification loop over real HTTP: claim, wallet, redeem at the counter, undo."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
from PIL import Image

from factories import bearer, make_consumer, make_offer, make_tenant
from o2oloop.codes import qr
from o2oloop.db import Database


def _claim(http: httpx.Client, offer_id: str, consumer_key: str) -> dict:
    response = http.post(f"/v1/offers/{offer_id}/claim", headers=bearer(consumer_key))
    assert response.status_code == 201, response.text
    return response.json()


def test_claim_redeem_once_and_undo(db: Database, http: httpx.Client, frozen_clock) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant, min_spend=5000)
    _, consumer_key = make_consumer(db)
    claimed = _claim(http, offer_id, consumer_key)
    assert claimed["state"] == "active"
    assert len(claimed["code"]) == 24  # 20 characters in groups of four

    too_small = http.post(
        "/v1/terminal/redemptions",
        json={"code": claimed["code"], "bill_amount": 4000},
        headers=tenant.terminal,
    )
    assert too_small.status_code == 422
    assert too_small.json()["violations"][0]["rule"] == "min_spend"

    redeemed = http.post(
        "/v1/terminal/redemptions",
        json={"code": claimed["code"].lower().replace("-", " "), "bill_amount": 8800},
        headers=tenant.terminal,
    )
    assert redeemed.status_code == 201, redeemed.text
    body = redeemed.json()
    assert body["discount_amount"] == 1000
    assert body["amount_due"] == 7800

    again = http.post(
        "/v1/terminal/redemptions",
        json={"code": claimed["code"], "bill_amount": 8800},
        headers=tenant.terminal,
    )
    assert again.status_code == 422
    assert again.json()["type"].endswith("code-rejected")

    wallet = http.get("/v1/consumers/me/codes", headers=bearer(consumer_key)).json()
    assert [c["state"] for c in wallet["data"]] == ["used"]
    assert wallet["data"][0]["code"] == claimed["code"]  # the consumer sees it again

    undo = http.post(
        f"/v1/terminal/redemptions/{body['redemption']['id']}/undo", headers=tenant.terminal
    )
    assert undo.status_code == 200
    assert undo.json()["state"] == "undone"
    wallet = http.get("/v1/consumers/me/codes", headers=bearer(consumer_key)).json()
    assert wallet["data"][0]["state"] == "active"

    redo = http.post(
        "/v1/terminal/redemptions",
        json={"code": claimed["qr_payload"], "bill_amount": 8800},
        headers=tenant.terminal,
    )
    assert redo.status_code == 201
    frozen_clock.advance(timedelta(minutes=11))
    late = http.post(
        f"/v1/terminal/redemptions/{redo.json()['redemption']['id']}/undo", headers=tenant.terminal
    )
    assert late.status_code == 409
    assert "10 minutes" in late.json()["detail"]


def test_unknown_foreign_forged_and_used_codes_get_one_answer(
    db: Database, http: httpx.Client
) -> None:
    mine, theirs = make_tenant(db), make_tenant(db)
    _, consumer_key = make_consumer(db)
    my_code = _claim(http, make_offer(db, mine), consumer_key)["code"]
    their_code = _claim(http, make_offer(db, theirs), consumer_key)["code"]
    assert (
        http.post(
            "/v1/terminal/redemptions", json={"code": my_code}, headers=mine.terminal
        ).status_code
        == 201
    )
    forged = my_code[:-1] + ("0" if my_code[-1] != "0" else "1")
    answers = []
    for text in (my_code, their_code, forged, "0000-0000-0000-0000-0000"):
        response = http.post("/v1/terminal/redemptions", json={"code": text}, headers=mine.terminal)
        answers.append((response.status_code, response.json()["detail"], response.json()["type"]))
    assert len(set(answers)) == 1
    assert answers[0][0] == 422

    log = http.get(
        f"/v1/merchants/{mine.merchant_id}/redemption-attempts", headers=mine.admin
    ).json()["data"]
    reasons = [entry["reason"] for entry in log]
    assert reasons[-1] == "redeemed"
    assert any("code is redeemed" in r for r in reasons)
    assert any("another merchant" in r for r in reasons)
    assert sum("invalid code" in r for r in reasons) == 2
    # the other merchant's log holds nothing of this
    other_log = http.get(
        f"/v1/merchants/{theirs.merchant_id}/redemption-attempts", headers=theirs.admin
    ).json()
    assert other_log["data"] == []


def test_terminal_is_rate_limited_against_guessing(db: Database, http: httpx.Client) -> None:
    tenant = make_tenant(db)
    statuses = [
        http.post(
            "/v1/terminal/redemptions",
            json={"code": f"{i:04d}-0000-0000-0000-0000"},
            headers=tenant.terminal,
        ).status_code
        for i in range(35)
    ]
    assert statuses[:30] == [422] * 30
    assert statuses[30:] == [429] * 5


def test_time_window_reason_reaches_the_cashier(db: Database, http: httpx.Client, frozen_clock):
    tenant = make_tenant(db)  # Asia/Shanghai; the frozen clock says 20:00 there
    offer_id = make_offer(db, tenant, time_windows=[{"start": "22:00", "end": "02:00"}])
    _, consumer_key = make_consumer(db)
    code = _claim(http, offer_id, consumer_key)["code"]
    early = http.post("/v1/terminal/redemptions", json={"code": code}, headers=tenant.terminal)
    assert early.status_code == 422
    assert early.json()["violations"][0]["rule"] == "time_window"
    assert "22:00" in early.json()["detail"]
    frozen_clock.advance(timedelta(hours=5))  # 01:00 next day, still inside the window
    late = http.post("/v1/terminal/redemptions", json={"code": code}, headers=tenant.terminal)
    assert late.status_code == 201, late.text


def test_wallet_qr_image_decodes_and_a_photo_of_it_redeems(
    db: Database, http: httpx.Client
) -> None:
    tenant = make_tenant(db)
    _, consumer_key = make_consumer(db)
    claimed = _claim(http, make_offer(db, tenant), consumer_key)
    png = http.get(f"/v1/consumers/me/codes/{claimed['id']}/qr", headers=bearer(consumer_key))
    assert png.headers["content-type"] == "image/png"
    assert qr.decode_image(png.content) == [claimed["qr_payload"]]
    svg = http.get(
        f"/v1/consumers/me/codes/{claimed['id']}/qr?format=svg", headers=bearer(consumer_key)
    )
    assert svg.content.lstrip().startswith(b"<svg")

    photo = Image.open(io.BytesIO(png.content)).convert("RGB")
    photo = photo.rotate(23, expand=True, fillcolor="white").resize((300, 300))
    buffer = io.BytesIO()
    photo.save(buffer, format="JPEG", quality=80)
    scanned = http.post(
        "/v1/terminal/redemptions/scan",
        files={"photo": ("qr.jpg", buffer.getvalue(), "image/jpeg")},
        data={"bill_amount": "5000"},
        headers=tenant.terminal,
    )
    assert scanned.status_code == 201, scanned.text
    assert scanned.json()["amount_due"] == 4000
    junk = http.post(
        "/v1/terminal/redemptions/scan",
        files={"photo": ("x.jpg", b"not an image", "image/jpeg")},
        headers=tenant.terminal,
    )
    assert junk.status_code == 422
    assert "photo" in junk.json()["detail"]


def test_bulk_batch_exports_csv_and_each_code_redeems_once(
    db: Database, http: httpx.Client
) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant, total_stock=2000)
    batch = http.post(
        f"/v1/merchants/{tenant.merchant_id}/offers/{offer_id}/batches",
        json={"count": 1500},
        headers=tenant.admin,
    )
    assert batch.status_code == 201, batch.text
    too_many = http.post(
        f"/v1/merchants/{tenant.merchant_id}/offers/{offer_id}/batches",
        json={"count": 600},
        headers=tenant.admin,
    )
    assert too_many.status_code == 422
    exported = http.get(
        f"/v1/merchants/{tenant.merchant_id}/batches/{batch.json()['id']}/codes.csv",
        headers=tenant.admin,
    )
    assert exported.headers["content-type"].startswith("text/csv")
    assert int(exported.headers["content-length"]) == len(exported.content)
    rows = list(csv.DictReader(io.StringIO(exported.text)))
    assert len(rows) == 1500
    assert [int(r["index"]) for r in rows] == list(range(1500))
    assert len({r["code"] for r in rows}) == 1500
    pick = rows[777]["code"]
    first = http.post("/v1/terminal/redemptions", json={"code": pick}, headers=tenant.terminal)
    assert first.status_code == 201, first.text
    second = http.post("/v1/terminal/redemptions", json={"code": pick}, headers=tenant.terminal)
    assert second.status_code == 422
    assert second.json()["type"].endswith("code-rejected")


def test_an_attempt_cursor_beyond_any_row_id_is_a_clear_422(
    db: Database, http: httpx.Client
) -> None:
    """Found by the fuzzer: a cursor past any attempt's id (a 32-bit integer on PostgreSQL)
    used to reach the database and overflow there."""
    tenant = make_tenant(db)
    url = f"/v1/merchants/{tenant.merchant_id}/redemption-attempts"
    too_far = http.get(url, params={"cursor": 2**63}, headers=tenant.admin)
    assert too_far.status_code == 422
    assert too_far.headers["content-type"].startswith("application/problem+json")
    assert "cursor" in too_far.json()["detail"]
    assert http.get(url, params={"cursor": 2**31}, headers=tenant.admin).status_code == 422
    last = http.get(url, params={"cursor": 2**31 - 1}, headers=tenant.admin)
    assert last.status_code == 200 and last.json()["data"] == []
