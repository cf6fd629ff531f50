"""Prepaid vouchers end to end: buy through the sandbox provider, escrow, redeem, undo,
refund, automatic refund at expiry — every step a balanced ledger posting."""

from __future__ import annotations

import threading
from datetime import timedelta

import httpx
from sqlalchemy import select

from factories import (
    bearer,
    consumer_principal,
    make_consumer,
    make_offer,
    make_tenant,
    terminal_principal,
)
from money_kit import deliver, voucher_balances
from o2oloop.codes import service, vouchers
from o2oloop.codes.models import Code, CodeState
from o2oloop.db import Database
from o2oloop.errors import ProblemError
from o2oloop.offers.models import Offer
from o2oloop.reconciliation import service as reconciliation

VOUCHER = {
    "kind": "voucher",
    "title": "Set for two",
    "price": 8800,
    "face_value": 12800,
    "includes": "two mains, two drinks",
}


def _clean_books(db: Database) -> None:
    with db.transaction() as session:
        assert reconciliation.report(session) == []


def test_buy_redeem_undo_refund(db: Database, http: httpx.Client, frozen_clock) -> None:
    tenant = make_tenant(db, commission_bps=500)
    offer_id = make_offer(db, tenant, **VOUCHER, total_stock=5)
    _, consumer_key = make_consumer(db)
    me = bearer(consumer_key)

    bought = http.post(f"/v1/offers/{offer_id}/buy", json={}, headers=me)
    assert bought.status_code == 201, bought.text
    assert bought.json()["status"] == "pending"
    assert http.get("/v1/consumers/me/codes", headers=me).json()["data"] == []  # not yet paid
    deliver(db)
    wallet = http.get("/v1/consumers/me/codes", headers=me).json()["data"]
    assert [c["state"] for c in wallet] == ["active"]
    assert voucher_balances(db, tenant.merchant_id)["voucher_escrow"] == 8800

    redeemed = http.post(
        "/v1/terminal/redemptions", json={"code": wallet[0]["code"]}, headers=tenant.terminal
    )
    assert redeemed.status_code == 201, redeemed.text
    assert "two mains" in redeemed.json()["benefit"]
    assert voucher_balances(db, tenant.merchant_id) == {
        "voucher_escrow": 0,
        "merchant_payable": 8360,  # 8800 less 5% commission (440)
        "platform_commission": 440,
        "refunds_in_transit": 0,
    }
    _clean_books(db)

    undo = http.post(
        f"/v1/terminal/redemptions/{redeemed.json()['redemption']['id']}/undo",
        headers=tenant.terminal,
    )
    assert undo.status_code == 200
    assert voucher_balances(db, tenant.merchant_id)["voucher_escrow"] == 8800
    assert voucher_balances(db, tenant.merchant_id)["merchant_payable"] == 0

    refunded = http.post(f"/v1/consumers/me/codes/{wallet[0]['id']}/refund", headers=me)
    assert refunded.status_code == 200, refunded.text
    assert refunded.json()["state"] == "refunded"
    again = http.post(f"/v1/consumers/me/codes/{wallet[0]['id']}/refund", headers=me)
    assert again.status_code == 409
    late = http.post(
        "/v1/terminal/redemptions", json={"code": wallet[0]["code"]}, headers=tenant.terminal
    )
    assert late.status_code == 422  # a refunded voucher is as dead as a used one
    deliver(db)
    assert voucher_balances(db, tenant.merchant_id) == {
        "voucher_escrow": 0,
        "merchant_payable": 0,
        "platform_commission": 0,
        "refunds_in_transit": 0,
    }
    _clean_books(db)


def test_declined_payment_issues_nothing_and_returns_the_stock(
    db: Database, http: httpx.Client
) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant, **VOUCHER, total_stock=1, per_customer_limit=1)
    _, consumer_key = make_consumer(db)
    me = bearer(consumer_key)
    declined = http.post(
        f"/v1/offers/{offer_id}/buy", json={"sandbox_behaviour": "decline"}, headers=me
    )
    assert declined.status_code == 201
    sold_out = http.post(f"/v1/offers/{offer_id}/buy", json={}, headers=me)
    assert sold_out.status_code == 422  # the one unit is reserved while the charge runs
    deliver(db)
    assert http.get("/v1/consumers/me/codes", headers=me).json()["data"] == []
    with db.transaction() as session:
        assert session.get(Offer, offer_id).issued_count == 0
    assert voucher_balances(db, tenant.merchant_id)["voucher_escrow"] == 0
    retry = http.post(f"/v1/offers/{offer_id}/buy", json={}, headers=me)
    assert retry.status_code == 201, retry.text  # stock and limit were given back
    deliver(db)
    assert len(http.get("/v1/consumers/me/codes", headers=me).json()["data"]) == 1
    _clean_books(db)


def test_unused_vouchers_are_refunded_at_expiry(db: Database, frozen_clock) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant, **VOUCHER, valid_days_after_claim=30)
    consumer_id, _ = make_consumer(db)
    with db.transaction() as session:
        vouchers.buy(session, principal=consumer_principal(consumer_id), offer_id=offer_id)
    deliver(db)
    frozen_clock.advance(timedelta(days=29))
    with db.transaction() as session:
        assert vouchers.expired_unused(session) == []
    frozen_clock.advance(timedelta(days=2))
    with db.transaction() as session:
        due = vouchers.expired_unused(session)
        assert len(due) == 1
        assert vouchers.refund_expired(session, code_id=due[0]) is True
    deliver(db)
    with db.transaction() as session:
        assert session.get(Code, due[0]).state is CodeState.REFUNDED
    assert voucher_balances(db, tenant.merchant_id)["voucher_escrow"] == 0
    _clean_books(db)


def test_refund_racing_redemption_lets_exactly_one_through(db: Database) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant, **VOUCHER)
    consumer_id, _ = make_consumer(db)
    keys = service.Keys.from_secret("race-" + "k" * 40)
    with db.transaction() as session:
        vouchers.buy(session, principal=consumer_principal(consumer_id), offer_id=offer_id)
    deliver(db, code_secret="race-" + "k" * 40)
    with db.transaction() as session:
        code = session.scalars(select(Code)).one()
    text = keys.code_text(code.id)
    barrier = threading.Barrier(16)
    wins: list[str] = []

    def refund() -> None:
        barrier.wait()
        try:
            with db.transaction() as session:
                vouchers.refund_own(
                    session, principal=consumer_principal(consumer_id), code_id=code.id
                )
            wins.append("refund")
        except ProblemError:
            pass

    def redeem() -> None:
        barrier.wait()
        try:
            with db.transaction() as session:
                service.redeem(
                    session,
                    principal=terminal_principal(tenant),
                    code=text,
                    bill_amount=None,
                    keys=keys,
                    rate_per_minute=10_000,
                )
            wins.append("redeem")
        except (service.Refused, ProblemError):
            pass

    threads = [threading.Thread(target=refund if i % 2 else redeem) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(wins) == 1
    balances = voucher_balances(db, tenant.merchant_id)
    escrow_left = balances["voucher_escrow"] + balances["refunds_in_transit"]
    assert escrow_left == (8800 if wins == ["refund"] else 0)
    _clean_books(db)
