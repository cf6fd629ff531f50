"""Redemption in two phases: `check_redemption` only reads, `complete_redemption` checks again
what may have changed meanwhile (the offer's state, the customer's history) and takes the code
exactly once. The counter's route runs them in separate transactions. Run on SQLite and on
PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from factories import (
    consumer_principal,
    make_consumer,
    make_offer,
    make_tenant,
    terminal_principal,
)
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.codes import codec, service
from o2oloop.codes.models import (
    BatchCodeUse,
    Code,
    CodeState,
    OfferClaim,
    Redemption,
    RedemptionAttempt,
    RedemptionState,
)
from o2oloop.config import Settings
from o2oloop.db import Database
from o2oloop.errors import RuleViolation
from o2oloop.offers import service as offers
from o2oloop.offers.models import Offer

KEYS = service.Keys.from_secret("phases-secret-" + "x" * 32)
BILL = 8800


def _admin(tenant: Any) -> Principal:
    return Principal(
        key_id=tenant.admin_key_id, role=Role.MERCHANT_ADMIN, merchant_id=tenant.merchant_id
    )


def _claim(db: Database, offer_id: str, consumer_id: str) -> str:
    """A consumer claims a code of the offer; its text."""
    with db.transaction() as session:
        code = service.claim(
            session, principal=consumer_principal(consumer_id), offer_id=offer_id, keys=KEYS
        )
    return KEYS.code_text(code.id)


def _batch_code(db: Database, tenant: Any, offer_id: str) -> str:
    """The code at index 1 of a new batch of three."""
    with db.transaction() as session:
        batch = service.issue_batch(
            session,
            principal=_admin(tenant),
            merchant_id=tenant.merchant_id,
            offer_id=offer_id,
            count=3,
        )
    return codec.derive_batch_code(KEYS.code, batch.batch_no, 1)


def _code(db: Database, tenant: Any, offer_id: str, kind: str) -> str:
    if kind == "single":
        return _claim(db, offer_id, make_consumer(db)[0])
    return _batch_code(db, tenant, offer_id)


def _check(session: Session, tenant: Any, code: str) -> service.CheckedRedemption:
    return service.check_redemption(
        session,
        principal=terminal_principal(tenant),
        code=code,
        bill_amount=BILL,
        keys=KEYS,
        rate_per_minute=1000,
    )


def _checked(db: Database, tenant: Any, code: str) -> service.CheckedRedemption:
    """Checked as the counter's route does: in a read-only transaction."""
    with db.reading() as session:
        return _check(session, tenant, code)


def _complete(db: Database, checked: service.CheckedRedemption) -> service.Redeemed:
    with db.transaction() as session:
        return service.complete_redemption(session, checked)


def _refused_complete(db: Database, checked: service.CheckedRedemption) -> service.Refused:
    """Complete, expecting a refusal, in a transaction that then commits: anything written
    before the refusal would be stored."""
    with db.transaction() as session, pytest.raises(service.Refused) as refused:
        service.complete_redemption(session, checked)
    return refused.value


def _snapshot(db: Database) -> dict[str, Any]:
    """Everything a redemption writes."""
    with db.reading() as session:

        def count(model: type) -> int:
            return session.scalar(select(func.count()).select_from(model))

        return {
            "redemptions": count(Redemption),
            "attempts": count(RedemptionAttempt),
            "batch_code_uses": count(BatchCodeUse),
            "codes": sorted(
                session.execute(select(Code.id, Code.state, Code.redeemed_at)).tuples()
            ),
            "offers": sorted(
                session.execute(
                    select(Offer.id, Offer.state, Offer.redeemed_count, Offer.issued_count)
                ).tuples()
            ),
            "claims": sorted(
                session.execute(
                    select(OfferClaim.offer_id, OfferClaim.consumer_id, OfferClaim.claimed)
                ).tuples()
            ),
        }


def _redemptions(db: Database) -> list[dict[str, Any]]:
    """Every stored redemption, column by column."""
    with db.reading() as session:
        return [dict(row) for row in session.execute(select(Redemption.__table__)).mappings()]


CODE_KINDS = pytest.mark.parametrize("kind", ["single", "batch"])


# ---- the two phases ----------------------------------------------------------------------------


@CODE_KINDS
def test_check_writes_nothing_and_complete_stores_what_was_checked(
    db: Database, frozen_clock: Any, kind: str
) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    code = _code(db, tenant, offer_id, kind)
    before = _snapshot(db)

    with db.transaction() as session:  # a committing transaction: a write would be kept
        checked = _check(session, tenant, code)
    assert _snapshot(db) == before

    planned = checked.redemption
    assert planned.offer_id == offer_id
    assert planned.store_id == tenant.store_id
    assert planned.terminal_id == tenant.terminal_id
    assert (planned.bill_amount, planned.discount_amount) == (BILL, 1000)
    assert planned.state is RedemptionState.REDEEMED
    assert (planned.code_id is not None) == (kind == "single")
    assert (planned.batch_id is not None) == (kind == "batch")

    redeemed = _complete(db, checked)
    assert redeemed.redemption.id == planned.id
    assert (redeemed.benefit, redeemed.amount_due, redeemed.currency) == ("1000 off", 7800, "CNY")

    columns = [c.key for c in Redemption.__table__.columns]
    [stored] = _redemptions(db)
    assert stored == {k: getattr(planned, k) for k in columns}
    with db.reading() as session:
        offer = session.get(Offer, offer_id)
        assert offer is not None and offer.redeemed_count == 1
        if kind == "single":
            used = session.get(Code, planned.code_id)
            assert used is not None
            assert (used.state, used.redeemed_at) == (CodeState.REDEEMED, planned.redeemed_at)
        else:
            use = session.get(BatchCodeUse, (planned.batch_id, planned.code_index))
            assert use is not None and use.redemption_id == planned.id
        attempts = session.execute(
            select(
                RedemptionAttempt.accepted,
                RedemptionAttempt.reason,
                RedemptionAttempt.redemption_id,
            )
        ).all()
        assert attempts == [(True, "redeemed", planned.id)]

    with db.reading() as session, pytest.raises(service.Refused):
        _check(session, tenant, code)  # and a later check sees it used


@CODE_KINDS
def test_an_offer_paused_between_check_and_complete_is_refused_without_a_write(
    db: Database, kind: str
) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    code = _code(db, tenant, offer_id, kind)
    checked = _checked(db, tenant, code)

    def move(action: str) -> None:
        with db.transaction() as session:
            offers.transition(
                session,
                principal=_admin(tenant),
                merchant_id=tenant.merchant_id,
                offer_id=offer_id,
                action=action,
            )

    move("pause")
    before = _snapshot(db)
    refused = _refused_complete(db, checked)
    assert _snapshot(db) == before
    assert refused.reason == "offer paused"
    assert isinstance(refused.public, RuleViolation)
    assert refused.public.detail == "this offer is paused"

    move("publish")  # the same checked attempt goes through once the offer is back
    assert _complete(db, checked).redemption.id == checked.redemption.id
    assert len(_redemptions(db)) == 1


@CODE_KINDS
def test_one_code_checked_twice_is_completed_once(db: Database, kind: str) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    code = _code(db, tenant, offer_id, kind)
    first, second = _checked(db, tenant, code), _checked(db, tenant, code)
    assert first.redemption.id != second.redemption.id

    _complete(db, first)
    before = _snapshot(db)
    refused = _refused_complete(db, second)
    assert _snapshot(db) == before
    assert "used by a concurrent attempt" in refused.reason
    assert isinstance(refused.public, service.CodeRejected)
    assert [r["id"] for r in _redemptions(db)] == [first.redemption.id]


# ---- rules on the customer's history -----------------------------------------------------------


def _two_codes_of_one_customer(db: Database, tenant: Any, rule: str) -> tuple[str, str, str]:
    """(offer id, code, code): one consumer holds two codes of an offer whose rule allows one
    redemption by that consumer."""
    consumer_id, _ = make_consumer(db)
    if rule == "new_customers_only":
        offer_id = make_offer(db, tenant, new_customers_only=True, per_customer_limit=2)
        return offer_id, _claim(db, offer_id, consumer_id), _claim(db, offer_id, consumer_id)
    offer_id = make_offer(db, tenant, per_customer_limit=2)
    codes = _claim(db, offer_id, consumer_id), _claim(db, offer_id, consumer_id)
    # No service lowers a published offer's limit; the redemption rule is the offer's column.
    with db.transaction() as session:
        session.execute(
            text("UPDATE offers SET per_customer_limit = 1 WHERE id = :id"), {"id": offer_id}
        )
    return offer_id, *codes


CUSTOMER_RULES = pytest.mark.parametrize("rule", ["per_customer_limit", "new_customers_only"])


@CUSTOMER_RULES
def test_the_customers_last_allowed_redemption_is_used_once(db: Database, rule: str) -> None:
    tenant = make_tenant(db)
    _, code_a, code_b = _two_codes_of_one_customer(db, tenant, rule)
    checked_a = _checked(db, tenant, code_a)
    checked_b = _checked(db, tenant, code_b)  # passes: nothing is redeemed yet

    _complete(db, checked_a)
    before = _snapshot(db)
    refused = _refused_complete(db, checked_b)
    assert _snapshot(db) == before
    assert isinstance(refused.public, RuleViolation)
    assert [v["rule"] for v in refused.public.extensions["violations"]] == [rule]
    assert [r["id"] for r in _redemptions(db)] == [checked_a.redemption.id]


def _outcomes(tasks: list[Callable[[], object]]) -> list[str]:
    """Run each task in its own thread; "ok" or the refusal's reason, in task order."""
    results: list[str] = [""] * len(tasks)

    def run(i: int) -> None:
        try:
            tasks[i]()
            results[i] = "ok"
        except service.Refused as refused:
            results[i] = refused.reason

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(tasks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
        assert not thread.is_alive()
    return results


@CUSTOMER_RULES
def test_two_terminals_racing_for_the_customers_last_redemption_one_wins(
    db: Database, rule: str
) -> None:
    """Each terminal checks in one transaction and completes in another; both checks pass
    before either completes."""
    tenant = make_tenant(db)
    _, code_a, code_b = _two_codes_of_one_customer(db, tenant, rule)
    barrier = threading.Barrier(2)
    passed_checks: list[str] = []

    def terminal(code: str) -> Callable[[], object]:
        def run() -> object:
            try:
                checked = _checked(db, tenant, code)
                passed_checks.append(code)
            finally:
                barrier.wait(30)
            return _complete(db, checked)

        return run

    outcomes = _outcomes([terminal(code_a), terminal(code_b)])
    assert sorted(passed_checks) == sorted([code_a, code_b])
    assert outcomes.count("ok") == 1, outcomes
    [refusal] = [o for o in outcomes if o != "ok"]
    expected = "limit 1 per customer" if rule == "per_customer_limit" else "new customers only"
    assert expected in refusal
    assert len(_redemptions(db)) == 1


@pytest.mark.parametrize("offers_of_merchant", ["one_offer", "two_offers"])
def test_a_completion_waits_for_an_uncommitted_one_of_the_same_customer(
    db: Database, offers_of_merchant: str
) -> None:
    """Terminal A has completed a new customer's redemption but not committed; terminal B
    completes another of that customer's codes meanwhile. "New customers only" is about the
    merchant, so B must be refused whether the codes are of one offer or of two."""
    tenant = make_tenant(db)
    consumer_id, _ = make_consumer(db)
    if offers_of_merchant == "one_offer":
        offer_id = make_offer(db, tenant, new_customers_only=True, per_customer_limit=2)
        code_a, code_b = _claim(db, offer_id, consumer_id), _claim(db, offer_id, consumer_id)
    else:
        offer_a = make_offer(db, tenant, new_customers_only=True)
        offer_b = make_offer(db, tenant, new_customers_only=True)
        code_a, code_b = _claim(db, offer_a, consumer_id), _claim(db, offer_b, consumer_id)
    checked_a, checked_b = _checked(db, tenant, code_a), _checked(db, tenant, code_b)
    a_completed, commit_a = threading.Event(), threading.Event()

    def terminal_a() -> None:
        with db.transaction() as session:
            service.complete_redemption(session, checked_a)
            a_completed.set()
            assert commit_a.wait(30)

    def terminal_b() -> None:
        assert a_completed.wait(30)
        try:
            _complete(db, checked_b)
        finally:
            commit_a.set()  # B went through without waiting for A; let A commit anyway

    def commit_a_later() -> None:
        assert a_completed.wait(30)
        threading.Event().wait(3.0)  # time enough for B to finish if it does not wait
        commit_a.set()

    outcomes = _outcomes([terminal_a, terminal_b, commit_a_later])
    assert outcomes[0] == "ok"
    assert outcomes[1] != "ok", "both redemptions of the new customer went through"
    assert "new customers only" in outcomes[1]
    assert len(_redemptions(db)) == 1


# ---- over HTTP ---------------------------------------------------------------------------------


def _attempts(db: Database) -> list[tuple[Any, ...]]:
    with db.reading() as session:
        return [
            tuple(row)
            for row in session.execute(
                select(
                    RedemptionAttempt.terminal_id,
                    RedemptionAttempt.store_id,
                    RedemptionAttempt.accepted,
                    RedemptionAttempt.reason,
                    RedemptionAttempt.redemption_id,
                ).order_by(RedemptionAttempt.id)
            )
        ]


def test_http_refusal_is_logged_with_its_precise_reason(
    db: Database, http: httpx.Client, settings: Settings
) -> None:
    tenant = make_tenant(db)
    make_offer(db, tenant)
    app_keys = service.Keys.from_secret(settings.secret_key)
    never_issued = app_keys.code_text("cod_never_issued")  # well-formed, genuinely signed

    response = http.post(
        "/v1/terminal/redemptions",
        json={"code": never_issued, "bill_amount": BILL},
        headers=tenant.terminal,
    )
    assert response.status_code == 422, response.text
    assert response.json()["type"].endswith("code-rejected")
    assert "never issued" not in response.text  # the outside learns nothing precise
    assert _attempts(db) == [
        (tenant.terminal_id, tenant.store_id, False, "well-formed code that was never issued", None)
    ]
    assert _redemptions(db) == []


def test_http_redemption_answers_201_with_what_the_cashier_gives(
    db: Database, http: httpx.Client, settings: Settings
) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    consumer_id, _ = make_consumer(db)
    app_keys = service.Keys.from_secret(settings.secret_key)
    with db.transaction() as session:
        code = service.claim(
            session, principal=consumer_principal(consumer_id), offer_id=offer_id, keys=app_keys
        )

    response = http.post(
        "/v1/terminal/redemptions",
        json={"code": app_keys.code_text(code.id), "bill_amount": BILL},
        headers=tenant.terminal,
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["benefit"] == "1000 off"
    assert (body["discount_amount"], body["amount_due"], body["currency"]) == (1000, 7800, "CNY")
    assert body["redemption"]["state"] == "redeemed"
    [stored] = _redemptions(db)
    assert (stored["id"], stored["code_id"], stored["bill_amount"]) == (
        body["redemption"]["id"],
        code.id,
        BILL,
    )
    assert _attempts(db) == [(tenant.terminal_id, tenant.store_id, True, "redeemed", stored["id"])]
