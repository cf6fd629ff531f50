"""Shares and referrals: attribution to the sharer, rewards once, abuse refused, caps hold."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from factories import (
    consumer_principal,
    make_consumer,
    make_offer,
    make_tenant,
    terminal_principal,
)
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.channels import attribution, links, referrals, shares
from o2oloop.channels.models import Referral, ReferralReward, ReferralState
from o2oloop.channels.schemas import ReferralProgramIn
from o2oloop.codes import service as codes
from o2oloop.codes.models import Code
from o2oloop.ledger import service as ledger
from o2oloop.privacy import service as privacy

SECRET = "test-secret-" + "x" * 32
KEYS = codes.Keys.from_secret(SECRET)


def _admin(tenant) -> Principal:
    return Principal(key_id="t", role=Role.MERCHANT_ADMIN, merchant_id=tenant.merchant_id)


def _program(db, tenant, **values) -> None:
    with db.transaction() as session:
        referrals.set_program(
            session,
            principal=_admin(tenant),
            merchant_id=tenant.merchant_id,
            data=ReferralProgramIn.model_validate(values),
        )


def _share(db, consumer_id: str, offer_id: str) -> str:
    with db.transaction() as session:
        share = shares.share(
            session, principal=consumer_principal(consumer_id), offer_id=offer_id, note="so good"
        )
        return links.token_for(SECRET, "share", share.id)


def _claim(db, consumer_id: str, offer_id: str, token: str | None) -> tuple[str, str]:
    """(code id, code text) of a claim through `token`."""
    with db.transaction() as session:
        code = codes.claim(
            session, principal=consumer_principal(consumer_id), offer_id=offer_id, keys=KEYS
        )
        attribution.attribute_claim(session, code=code, token=token, secret=SECRET)
        return code.id, KEYS.code_text(code.id)


def _redeem(db, tenant, text: str) -> str:
    with db.transaction() as session:
        redeemed = codes.redeem(
            session,
            principal=terminal_principal(tenant),
            code=text,
            bill_amount=6000,
            keys=KEYS,
            rate_per_minute=1000,
        )
        return redeemed.redemption.id


def _settle(db) -> int:
    with db.transaction() as session:
        return referrals.settle_pending(session, keys=KEYS)


def _referrals(db) -> list[Referral]:
    with db.reading() as session:
        rows = list(session.scalars(select(Referral).order_by(Referral.created_at, Referral.id)))
        session.expunge_all()  # keep them readable after the read session ends
        return rows


@pytest.fixture
def shop(db, frozen_clock):
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    reward_offer = make_offer(db, tenant, title="A free drink", amount_off=1500)
    return db, tenant, offer_id, reward_offer


def test_a_friends_verified_visit_pays_the_sharer_once(shop):
    db, tenant, offer_id, reward_offer = shop
    _program(db, tenant, reward_kind="coupon", reward_offer_id=reward_offer, cap_per_period=5)
    sharer, _ = make_consumer(db, "Ann")
    friend, _ = make_consumer(db, "Bo")
    token = _share(db, sharer, offer_id)
    _code_id, text = _claim(db, friend, offer_id, token)
    assert [r.state for r in _referrals(db)] == [ReferralState.PENDING]
    assert _settle(db) == 0  # claimed is not a visit
    redemption_id = _redeem(db, tenant, text)
    assert _settle(db) == 1
    assert _settle(db) == 0
    with db.transaction() as session:  # the event handler's path, again: still once
        assert referrals.settle_redemption(session, redemption_id=redemption_id, keys=KEYS) is None
    with db.reading() as session:
        rewards = list(session.scalars(select(ReferralReward)))
        assert [(r.sharer_id, r.redemption_id) for r in rewards] == [(sharer, redemption_id)]
        reward_code = session.get(Code, rewards[0].code_id)
        assert reward_code.consumer_id == sharer and reward_code.offer_id == reward_offer
        top = referrals.top_sharers(
            session, principal=_admin(tenant), merchant_id=tenant.merchant_id
        )
    assert top[0]["sharer_id"] == sharer and top[0]["friends_redeemed"] == 1
    assert top[0]["revenue"] == 6000 and top[0]["rewards"] == 1


def test_stored_value_reward_is_posted_through_the_ledger(shop):
    db, tenant, offer_id, _ = shop
    _program(db, tenant, reward_kind="stored_value", reward_amount=2000, cap_per_period=3)
    sharer, _ = make_consumer(db)
    friend, _ = make_consumer(db)
    _, text = _claim(db, friend, offer_id, _share(db, sharer, offer_id))
    _redeem(db, tenant, text)
    assert _settle(db) == 1
    with db.reading() as session:
        account = ledger.stored_value_account(
            session, consumer_id=sharer, merchant_id=tenant.merchant_id, currency="CNY"
        )
        assert ledger.balance(session, account).amount == 2000


def test_self_referral_pays_nothing(shop):
    db, tenant, offer_id, reward_offer = shop
    _program(db, tenant, reward_kind="coupon", reward_offer_id=reward_offer)
    sharer, _ = make_consumer(db)
    _, text = _claim(db, sharer, offer_id, _share(db, sharer, offer_id))
    _redeem(db, tenant, text)
    assert _settle(db) == 0
    assert _referrals(db) == []


def test_a_loop_of_two_consumers_is_refused(shop):
    db, tenant, offer_id, reward_offer = shop
    _program(db, tenant, reward_kind="coupon", reward_offer_id=reward_offer)
    ann, _ = make_consumer(db)
    bo, _ = make_consumer(db)
    _claim(db, bo, offer_id, _share(db, ann, offer_id))  # Ann brings Bo
    other = make_offer(db, tenant, title="Lunch")
    _claim(db, ann, other, _share(db, bo, other))  # and Bo would "bring" Ann back
    assert [(r.sharer_id, r.friend_id) for r in _referrals(db)] == [(ann, bo)]


def test_an_erased_sharer_earns_nothing(shop):
    db, tenant, offer_id, reward_offer = shop
    _program(db, tenant, reward_kind="coupon", reward_offer_id=reward_offer)
    sharer, _ = make_consumer(db)
    friend, _ = make_consumer(db)
    _, text = _claim(db, friend, offer_id, _share(db, sharer, offer_id))
    with db.transaction() as session:
        privacy.erase_consumer(session, principal=consumer_principal(sharer))
    _redeem(db, tenant, text)
    assert _settle(db) == 0
    assert [r.state for r in _referrals(db)] == [ReferralState.REFUSED]


def test_rewards_stop_at_the_cap_per_period(shop):
    db, tenant, offer_id, reward_offer = shop
    _program(db, tenant, reward_kind="coupon", reward_offer_id=reward_offer, cap_per_period=2)
    sharer, _ = make_consumer(db)
    token = _share(db, sharer, offer_id)
    for _ in range(3):
        friend, _ = make_consumer(db)
        _, text = _claim(db, friend, offer_id, token)
        _redeem(db, tenant, text)
    assert _settle(db) == 2
    assert sorted(r.state for r in _referrals(db)) == sorted(
        [ReferralState.REWARDED, ReferralState.REWARDED, ReferralState.CAPPED]
    )


@pytest.mark.postgres
def test_concurrent_redemptions_of_friends_codes_pay_exactly_the_cap(pg_db, frozen_clock):
    db = pg_db
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    reward_offer = make_offer(db, tenant, amount_off=500)
    _program(db, tenant, reward_kind="coupon", reward_offer_id=reward_offer, cap_per_period=3)
    sharer, _ = make_consumer(db)
    token = _share(db, sharer, offer_id)
    redemption_ids = []
    for _ in range(8):
        friend, _ = make_consumer(db)
        _, text = _claim(db, friend, offer_id, token)
        redemption_ids.append(_redeem(db, tenant, text))
    barrier = threading.Barrier(len(redemption_ids))
    errors: list[BaseException] = []

    def settle(redemption_id: str) -> None:
        try:
            barrier.wait()
            with db.transaction() as session:
                referrals.settle_redemption(session, redemption_id=redemption_id, keys=KEYS)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=settle, args=(r,)) for r in redemption_ids * 2]
    barrier = threading.Barrier(len(threads))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(ReferralReward)) == 3
        states = [r.state for r in session.scalars(select(Referral))]
    assert states.count(ReferralState.REWARDED) == 3
    assert states.count(ReferralState.CAPPED) == 5


def test_the_wired_handler_pays_from_the_redemptions_event(shop, settings):
    from o2oloop import events
    from o2oloop.bootstrap import bootstrap
    from o2oloop.codes.events import CodeRedeemed
    from o2oloop.jobs.models import OutboxEntry

    db, tenant, offer_id, reward_offer = shop
    _program(db, tenant, reward_kind="coupon", reward_offer_id=reward_offer)
    sharer, _ = make_consumer(db)
    friend, _ = make_consumer(db)
    _, text = _claim(db, friend, offer_id, _share(db, sharer, offer_id))
    redemption_id = _redeem(db, tenant, text)
    with db.reading() as session:
        rows = session.execute(
            select(OutboxEntry.type, OutboxEntry.payload).where(
                OutboxEntry.type == CodeRedeemed.name
            )
        ).all()
    redeemed = [events.from_json(name, payload) for name, payload in rows]
    assert [e.redemption_id for e in redeemed] == [redemption_id]
    handler = bootstrap(settings.model_copy(update={"secret_key": SECRET})).handler(
        "channels.reward_referral"
    )
    assert handler is not None
    for _ in range(2):  # at-least-once delivery: the second run pays nothing more
        with db.transaction() as session:
            handler(session, redeemed[0])
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(ReferralReward)) == 1


def test_a_friend_paying_with_the_sharers_own_phone_earns_nothing(shop):
    """The sharer's second account (another phone app, another key) claims through the share,
    and at the till the bill is paid with the sharer's own phone: a self-referral."""
    from o2oloop.customers import phones
    from o2oloop.customers import service as customers
    from o2oloop.visits import schemas as visit_schemas
    from o2oloop.visits import service as visits

    db, tenant, offer_id, reward_offer = shop
    _program(db, tenant, reward_kind="coupon", reward_offer_id=reward_offer)
    phone = "+8613800138000"
    with db.transaction() as session:
        sharer, _ = customers.consumer_by_phone(
            session, phone_hash=phones.phone_hash(phone, SECRET)
        )
        sharer_id = sharer.id
    second_account, _ = make_consumer(db)
    _, text = _claim(db, second_account, offer_id, _share(db, sharer_id, offer_id))
    assert [r.state for r in _referrals(db)] == [ReferralState.PENDING]
    redemption_id = _redeem(db, tenant, text)
    with db.transaction() as session:
        visits.record_payment(
            session,
            principal=terminal_principal(tenant),
            data=visit_schemas.PaymentCreate(amount=6000, phone=phone, redemption_id=redemption_id),
            secret_key=SECRET,
        )
    assert _settle(db) == 0
    (referral,) = _referrals(db)
    assert referral.state is ReferralState.REFUSED and "own membership" in referral.reason
    with db.reading() as session:
        assert session.scalar(select(func.count()).select_from(ReferralReward)) == 0
