"""Settlement batches: everything payable up to a cutoff, statements, payouts, carry-forward."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select

from factories import bearer, make_tenant, platform_admin_key
from money_kit import deliver, topped_up
from o2oloop import clock
from o2oloop.clock import FrozenClock
from o2oloop.db import Database
from o2oloop.ledger import service as ledger
from o2oloop.ledger.models import AccountKind, LedgerTransaction, TransactionKind
from o2oloop.money import Money
from o2oloop.reconciliation import service as reconciliation
from o2oloop.settlement import service as settlement
from o2oloop.settlement.models import SettlementBatch, SettlementStatus
from o2oloop.stored_value import service as stored_value


def _spend(db: Database, merchant_id: str, consumer_id: str, amount: int) -> str:
    with db.transaction() as session:
        tx, _ = stored_value.spend(
            session, merchant_id=merchant_id, consumer_id=consumer_id, amount=amount, reference="t"
        )
        return tx.id


def _settle(db: Database, merchant_id: str, **options) -> SettlementBatch | None:
    with db.transaction() as session:
        return settlement.settle_merchant(
            session, merchant_id=merchant_id, cutoff=clock.now(), **options
        )


def _payable(db: Database, merchant_id: str) -> int:
    with db.transaction() as session:
        account = ledger.merchant_account(session, AccountKind.MERCHANT_PAYABLE, merchant_id, "CNY")
        return ledger.balance(session, account).amount


def _clean(db: Database) -> None:
    with db.transaction() as session:
        assert reconciliation.report(session) == []


def test_batch_statement_payout_and_nothing_twice(
    db: Database, http: httpx.Client, frozen_clock: FrozenClock
) -> None:
    tenant, consumer_id, _ = topped_up(db, 50000)
    deliver(db)
    frozen_clock.advance(timedelta(minutes=1))
    _spend(db, tenant.merchant_id, consumer_id, 20000)
    _spend(db, tenant.merchant_id, consumer_id, 333)
    cutoff = clock.now()
    frozen_clock.advance(timedelta(minutes=1))
    late = _spend(db, tenant.merchant_id, consumer_id, 1000)  # after the cutoff

    with db.transaction() as session:
        batch = settlement.settle_merchant(session, merchant_id=tenant.merchant_id, cutoff=cutoff)
        assert batch is not None
        expected = -5000 + (20000 - 1000) + (333 - 17)
        assert (batch.net, batch.payout_amount, batch.carried_out) == (expected, expected, 0)
        assert batch.status is SettlementStatus.PAYOUT_PENDING
        batch_id = batch.id
    _clean(db)
    assert deliver(db).delivered == 1
    _clean(db)

    statement = http.get(
        f"/v1/merchants/{tenant.merchant_id}/settlements/{batch_id}", headers=tenant.staff
    ).json()
    assert statement["settlement"]["status"] == "paid"
    lines = [
        (line["kind"], line["gross"], line["commission"], line["net"])
        for line in statement["lines"]
    ]
    assert lines == [
        ("stored_value_top_up", -5000, 0, -5000),
        ("stored_value_spend", 20000, 1000, 19000),
        ("stored_value_spend", 333, 17, 316),
        ("payout_requested", -expected, 0, -expected),
    ]
    assert late not in {line["transaction_id"] for line in statement["lines"]}
    listed = http.get(f"/v1/merchants/{tenant.merchant_id}/settlements", headers=tenant.admin)
    assert [b["id"] for b in listed.json()["data"]] == [batch_id]

    as_csv = http.get(
        f"/v1/merchants/{tenant.merchant_id}/settlements/{batch_id}/statement.csv",
        headers=tenant.admin,
    )
    assert as_csv.status_code == 200 and as_csv.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert rows[0][:7] == [
        "occurred_at",
        "kind",
        "reference",
        "transaction_id",
        "gross",
        "commission",
        "net",
    ]
    assert rows[2][4:8] == ["200.00", "10.00", "190.00", "CNY"]
    assert ["payout", "", "", "", "", "", f"{expected / 100:.2f}", "CNY"] in rows

    # The late spend goes into the next batch; nothing is settled twice.
    second = _settle(db, tenant.merchant_id)
    assert second is not None and second.net == 1000 - 50 and second.line_count == 2
    deliver(db)
    assert _settle(db, tenant.merchant_id) is None
    assert _payable(db, tenant.merchant_id) == 0
    _clean(db)


def test_a_negative_payable_is_carried_forward(db: Database, frozen_clock: FrozenClock) -> None:
    tenant, consumer_id, _ = topped_up(db, 50000)
    deliver(db)
    first = _settle(db, tenant.merchant_id)
    assert first is not None
    assert (first.status, first.payout_amount, first.carried_out) == (
        SettlementStatus.CARRIED_FORWARD,
        0,
        -5000,
    )
    _clean(db)
    frozen_clock.advance(timedelta(hours=1))
    _spend(db, tenant.merchant_id, consumer_id, 4000)  # the merchant gets 3800: still short
    second = _settle(db, tenant.merchant_id)
    assert second is not None
    assert (second.carried_in, second.net, second.carried_out) == (-5000, 3800, -1200)
    frozen_clock.advance(timedelta(hours=1))
    _spend(db, tenant.merchant_id, consumer_id, 10000)
    third = _settle(db, tenant.merchant_id)
    assert third is not None
    assert (third.carried_in, third.net, third.payout_amount) == (-1200, 9500, 8300)
    deliver(db)
    _clean(db)


def test_an_undo_after_payout_reduces_the_next_batch(
    db: Database, frozen_clock: FrozenClock
) -> None:
    tenant, consumer_id, _ = topped_up(db, 10000, tiers=[])
    deliver(db)
    spend = _spend(db, tenant.merchant_id, consumer_id, 10000)
    batch = _settle(db, tenant.merchant_id)
    assert batch is not None and batch.payout_amount == 9500
    deliver(db)
    frozen_clock.advance(timedelta(minutes=5))
    with db.transaction() as session:
        ledger.reverse(session, spend)  # e.g. a redemption undone after its money was paid out
    _clean(db)
    follow_up = _settle(db, tenant.merchant_id)
    assert follow_up is not None and follow_up.carried_out == -9500
    _clean(db)


def test_a_refused_payout_returns_to_payable_and_is_paid_next_time(
    db: Database, frozen_clock: FrozenClock
) -> None:
    tenant, consumer_id, _ = topped_up(db, 10000, tiers=[])
    deliver(db)
    _spend(db, tenant.merchant_id, consumer_id, 2000)
    failed = _settle(db, tenant.merchant_id, behaviour="fail")
    assert failed is not None and failed.payout_amount == 1900
    deliver(db)
    with db.transaction() as session:
        again = session.get(SettlementBatch, failed.id)
        assert again is not None and again.status is SettlementStatus.PAYOUT_FAILED
    assert _payable(db, tenant.merchant_id) == 1900
    _clean(db)
    retry = _settle(db, tenant.merchant_id)
    assert retry is not None and retry.payout_amount == 1900
    deliver(db)
    assert _payable(db, tenant.merchant_id) == 0
    _clean(db)


def test_cutoff_in_the_future_is_refused(db: Database, frozen_clock: FrozenClock) -> None:
    tenant = make_tenant(db)
    with db.transaction() as session, pytest.raises(Exception, match="future"):
        settlement.settle_merchant(
            session, merchant_id=tenant.merchant_id, cutoff=clock.now() + timedelta(seconds=1)
        )


def test_settlements_over_http_are_platform_only_and_tenant_scoped(
    db: Database, http: httpx.Client
) -> None:
    tenant, consumer_id, _ = topped_up(db, 10000, tiers=[])
    other = make_tenant(db)
    deliver(db)
    _spend(db, tenant.merchant_id, consumer_id, 10000)
    url = f"/v1/merchants/{tenant.merchant_id}/settlements"
    cutoff = {"cutoff": clock.now().isoformat()}
    assert http.post(url, json=cutoff, headers=tenant.admin).status_code == 403
    assert http.post(url, json=cutoff, headers=other.admin).status_code == 404
    made = http.post(url, json=cutoff, headers=bearer(platform_admin_key(db)))
    assert made.status_code == 200, made.text
    batch_id = made.json()["id"]
    assert http.get(f"{url}/{batch_id}", headers=other.admin).status_code == 404
    assert http.get(f"{url}/{batch_id}/statement.csv", headers=other.admin).status_code == 404
    assert http.get(url, headers=other.admin).status_code == 404
    assert (
        http.get(f"/v1/merchants/{tenant.merchant_id}/balances", headers=other.staff).status_code
        == 404
    )
    with db.transaction() as session:
        kinds = [k for k in session.scalars(select(LedgerTransaction.kind))]
        assert TransactionKind.PAYOUT_REQUESTED in kinds
        assert ledger.balance(
            session,
            ledger.merchant_account(
                session, AccountKind.MERCHANT_PAYABLE, tenant.merchant_id, "CNY"
            ),
        ) == Money(0, "CNY")
