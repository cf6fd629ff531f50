"""Stored value: top-up with a merchant-funded bonus, partial spends, closure refunds."""

from __future__ import annotations

import httpx
from sqlalchemy import select

from factories import bearer, make_consumer, make_tenant
from money_kit import deliver, give_program, top_up
from o2oloop.clock import FrozenClock
from o2oloop.db import Database
from o2oloop.ledger import service as ledger
from o2oloop.ledger.models import AccountKind, LedgerTransaction, TransactionKind
from o2oloop.money import Money
from o2oloop.payments import service as payments
from o2oloop.payments.models import PaymentIntent
from o2oloop.reconciliation import service as reconciliation


def _funded(db: Database, amount: int = 50000, **tenant_options):
    tenant = make_tenant(db, **tenant_options)
    consumer_id, consumer_key = make_consumer(db)
    give_program(db, tenant.merchant_id)
    top_up(db, consumer_id=consumer_id, merchant_id=tenant.merchant_id, amount=amount)
    assert deliver(db).delivered == 1
    return tenant, consumer_id, consumer_key


def _spend(http: httpx.Client, tenant, consumer_id: str, amount: int) -> httpx.Response:
    return http.post(
        "/v1/terminal/stored-value/spends",
        json={"consumer_id": consumer_id, "amount": amount},
        headers=tenant.terminal,
    )


def test_partial_spends_never_overdraw(db: Database, http: httpx.Client) -> None:
    tenant, consumer_id, consumer_key = _funded(db)  # pays 500.00, holds 550.00
    first = _spend(http, tenant, consumer_id, 33300)
    assert first.status_code == 201, first.text
    assert (first.json()["amount"], first.json()["balance"]) == (33300, 21700)
    too_much = _spend(http, tenant, consumer_id, 21701)
    assert too_much.status_code == 409
    assert too_much.json()["type"].endswith("/insufficient-funds")
    assert too_much.json()["balance"] == 21700
    rest = _spend(http, tenant, consumer_id, 21700)
    assert rest.status_code == 201 and rest.json()["balance"] == 0
    assert _spend(http, tenant, consumer_id, 1).status_code == 409

    summary = http.get(f"/v1/merchants/{tenant.merchant_id}/balances", headers=tenant.admin).json()
    # 550.00 spent at 5 %: commission 27.50; the merchant paid the 50.00 bonus itself.
    assert summary["commission"] == 1665 + 1085
    assert summary["payable"] == -5000 + (33300 - 1665) + (21700 - 1085)
    assert summary["stored_value_escrow"] == 0
    mine = http.get("/v1/consumers/me/stored-value", headers=bearer(consumer_key)).json()
    assert mine[0]["balance"] == 0
    with db.transaction() as session:
        assert reconciliation.report(session) == []


def test_a_balance_is_spendable_only_at_its_own_merchant(db: Database, http: httpx.Client) -> None:
    tenant, consumer_id, _ = _funded(db)
    other = make_tenant(db)
    response = _spend(http, other, consumer_id, 100)
    assert response.status_code == 409
    unknown = _spend(http, tenant, "csm_00000000000000000000000000", 100)
    assert unknown.status_code == 409 and unknown.json()["detail"] == response.json()["detail"]
    # Keys other than a terminal's cannot spend.
    assert _spend(http, tenant, consumer_id, 100).status_code == 201
    staff = http.post(
        "/v1/terminal/stored-value/spends",
        json={"consumer_id": consumer_id, "amount": 100},
        headers=tenant.admin,
    )
    assert staff.status_code == 403


def test_merchants_see_only_their_own_consumers_balances(db: Database, http: httpx.Client) -> None:
    tenant, consumer_id, _ = _funded(db)
    other, _, _ = _funded(db)
    own = http.get(
        f"/v1/merchants/{tenant.merchant_id}/stored-value/balances", headers=tenant.staff
    )
    assert [(b["consumer_id"], b["balance"]) for b in own.json()["data"]] == [(consumer_id, 55000)]
    foreign = http.get(
        f"/v1/merchants/{tenant.merchant_id}/stored-value/balances", headers=other.admin
    )
    assert foreign.status_code == 404


def test_bonus_tiers_pick_the_largest_reached(db: Database, frozen_clock: FrozenClock) -> None:
    tenant = make_tenant(db)
    consumer_id, _ = make_consumer(db)
    give_program(
        db, tenant.merchant_id, [{"pay": 10000, "bonus": 500}, {"pay": 50000, "bonus": 5000}]
    )
    for amount, bonus in ((9999, 0), (10000, 500), (49999, 500), (80000, 5000)):
        intent_id = top_up(
            db, consumer_id=consumer_id, merchant_id=tenant.merchant_id, amount=amount
        )
        with db.transaction() as session:
            intent = session.get(PaymentIntent, intent_id)
            assert intent is not None and intent.bonus == bonus
    deliver(db)
    with db.transaction() as session:
        account = ledger.stored_value_account(
            session, consumer_id=consumer_id, merchant_id=tenant.merchant_id, currency="CNY"
        )
        assert ledger.balance(session, account) == Money(9999 + 10500 + 50499 + 85000, "CNY")


def test_a_second_outcome_for_the_same_charge_is_ignored(db: Database, frozen_clock) -> None:
    _funded(db, amount=1000)
    with db.transaction() as session:
        intent = session.scalars(select(PaymentIntent)).one()
        charge = intent.provider_charge_id
        for event_type in ("charge.succeeded", "charge.failed"):
            outcome = payments.handle_event(
                session,
                {
                    "id": f"evt_forged_{event_type}",
                    "type": event_type,
                    "data": {"object": {"id": charge, "amount": 1000, "currency": "CNY"}},
                },
            )
            assert outcome.result == "ignored: intent already final"
    with db.transaction() as session:
        assert reconciliation.report(session) == []


def test_closure_refunds_every_balance_in_one_operation(
    db: Database, http: httpx.Client, frozen_clock: FrozenClock
) -> None:
    from factories import platform_admin_key

    tenant, first, first_key = _funded(db)
    second, _ = make_consumer(db)
    top_up(db, consumer_id=second, merchant_id=tenant.merchant_id, amount=20000)
    deliver(db)
    assert _spend(http, tenant, first, 10000).status_code == 201
    url = f"/v1/merchants/{tenant.merchant_id}/stored-value/refund-all"
    assert http.post(url, headers=tenant.admin).status_code == 403
    assert http.post(url, headers=make_tenant(db).admin).status_code == 404
    admin = bearer(platform_admin_key(db))
    done = http.post(url, headers=admin)
    assert done.status_code == 200, done.text
    assert (done.json()["refunds"], done.json()["total"]) == (2, 45000 + 20000)
    balances = http.get("/v1/consumers/me/stored-value", headers=bearer(first_key)).json()
    assert balances[0]["balance"] == 0
    summary = http.get(f"/v1/merchants/{tenant.merchant_id}/balances", headers=admin).json()
    assert summary["refunds_in_transit"] == 65000
    with db.transaction() as session:
        assert reconciliation.report(session) == []
    assert deliver(db).delivered == 2
    summary = http.get(f"/v1/merchants/{tenant.merchant_id}/balances", headers=admin).json()
    assert summary["refunds_in_transit"] == 0
    again = http.post(url, headers=admin)
    assert again.json()["refunds"] == 0
    report = http.get("/v1/ledger/reconciliation", headers=admin).json()
    assert report == {**report, "ok": True, "differences": []}
    assert http.get("/v1/ledger/reconciliation", headers=tenant.admin).status_code == 403


def test_a_refused_closure_refund_returns_the_money_to_escrow(
    db: Database, frozen_clock: FrozenClock
) -> None:
    from factories import PLATFORM
    from o2oloop.stored_value import service as stored_value

    tenant, consumer_id, _ = _funded(db, amount=1000)
    with db.transaction() as session:
        stored_value.refund_all(
            session, principal=PLATFORM, merchant_id=tenant.merchant_id, behaviour="fail"
        )
    deliver(db)
    with db.transaction() as session:
        account = ledger.stored_value_account(
            session, consumer_id=consumer_id, merchant_id=tenant.merchant_id, currency="CNY"
        )
        assert ledger.balance(session, account) == Money(1000, "CNY")
        transit = ledger.merchant_account(
            session, AccountKind.REFUNDS_IN_TRANSIT, tenant.merchant_id, "CNY"
        )
        assert ledger.balance(session, transit).is_zero()
        assert reconciliation.report(session) == []
        kinds = set(session.scalars(select(LedgerTransaction.kind)))
        assert TransactionKind.REFUND_FAILED in kinds
