"""Redemptions of an offer are counted per store, in shards by till: the offer's
`redeemed_count` is their sum, undo takes one back from the store (and shard) where it
happened, redemptions at two stores or at two tills of different shards never wait for each
other, and the migrations carry the counts of existing redemptions both ways."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import func, select, text, update
from sqlalchemy.orm import Session

from factories import (
    Tenant,
    add_store,
    consumer_principal,
    make_consumer,
    make_offer,
    make_tenant,
    terminal_principal,
)
from o2oloop import migrations
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.codes import service
from o2oloop.db import Database
from o2oloop.merchants import schemas as merchant_schemas
from o2oloop.merchants import service as merchants
from o2oloop.offers.models import Offer, OfferStoreRedemptions, store_count_shard

KEYS = service.Keys.from_secret("store-counts-secret-" + "x" * 32)
GRACE = timedelta(minutes=10)


def _claimed_code(db: Database, offer_id: str) -> str:
    consumer_id, _ = make_consumer(db)
    with db.transaction() as session:
        code = service.claim(
            session, principal=consumer_principal(consumer_id), offer_id=offer_id, keys=KEYS
        )
    return KEYS.code_text(code.id)


def _redeem_in(session: Session, terminal: Principal, code: str) -> service.Redeemed:
    return service.redeem(
        session, principal=terminal, code=code, bill_amount=5000, keys=KEYS, rate_per_minute=1000
    )


def _redeem(db: Database, terminal: Principal, code: str) -> service.Redeemed:
    with db.transaction() as session:
        return _redeem_in(session, terminal, code)


def _counts(db: Database, offer_id: str) -> tuple[dict[str, int], int]:
    """Per store, and the offer's own `redeemed_count`."""
    with db.reading() as session:
        rows = session.execute(
            select(OfferStoreRedemptions.store_id, func.sum(OfferStoreRedemptions.redeemed))
            .where(OfferStoreRedemptions.offer_id == offer_id)
            .group_by(OfferStoreRedemptions.store_id)
        ).all()
        offer = session.get(Offer, offer_id)
        assert offer is not None
        return {store: n for store, n in rows}, offer.redeemed_count


def test_redemptions_are_counted_per_store_and_undone_where_they_happened(db: Database) -> None:
    north = make_tenant(db)
    south = add_store(db, north)
    offer_id = make_offer(db, north)
    at_north, at_south = terminal_principal(north), terminal_principal(south)
    assert _counts(db, offer_id) == ({}, 0)

    redeemed = [_redeem(db, at_north, _claimed_code(db, offer_id)) for _ in range(3)]
    _redeem(db, at_south, _claimed_code(db, offer_id))
    assert _counts(db, offer_id) == ({north.store_id: 3, south.store_id: 1}, 4)

    with db.transaction() as session:
        service.undo(
            session,
            principal=at_north,
            redemption_id=redeemed[0].redemption.id,
            grace=timedelta(minutes=10),
        )
    assert _counts(db, offer_id) == ({north.store_id: 2, south.store_id: 1}, 3)


def _redeems_while_another_holds(
    db: Database, holder: Principal, holder_code: str, other: Principal, other_code: str
) -> None:
    """`holder` redeems and does not commit yet (it holds its count's row until commit);
    meanwhile `other` redeems under a lock timeout that would fail it if it had to wait."""
    holding, release = threading.Event(), threading.Event()
    outcome: list[object] = []

    def holding_till() -> None:
        try:
            with db.transaction() as session:
                _redeem_in(session, holder, holder_code)
                holding.set()
                release.wait(30)
            outcome.append("committed")
        except Exception as error:  # reported to the test below
            outcome.append(error)
            holding.set()

    thread = threading.Thread(target=holding_till, daemon=True)
    thread.start()
    try:
        assert holding.wait(30)
        with db.transaction() as session:
            session.execute(text("SET LOCAL lock_timeout = '2s'"))
            _redeem_in(session, other, other_code)
    finally:
        release.set()
        thread.join(30)
    assert outcome == ["committed"]


def test_a_redemption_at_another_store_does_not_wait_for_an_open_one(pg_db: Database) -> None:
    north = make_tenant(pg_db)
    south = add_store(pg_db, north)
    offer_id = make_offer(pg_db, north)
    north_code, south_code = _claimed_code(pg_db, offer_id), _claimed_code(pg_db, offer_id)
    _redeems_while_another_holds(
        pg_db, terminal_principal(north), north_code, terminal_principal(south), south_code
    )
    assert _counts(pg_db, offer_id) == ({north.store_id: 1, south.store_id: 1}, 2)


def test_the_migration_carries_the_counts_down_and_up_again(tmp_path: Path) -> None:
    """Down to the counter on the offer's row (filled from the per-store counts), then up
    again (the per-store counts rebuilt from the redemptions themselves)."""
    db = Database.from_url(f"sqlite:///{tmp_path / 'counts.db'}")
    migrations.upgrade(db)
    north = make_tenant(db)
    south = add_store(db, north)
    offer_id = make_offer(db, north)
    for tenant, times in ((north, 2), (south, 3)):
        for _ in range(times):
            _redeem(db, terminal_principal(tenant), _claimed_code(db, offer_id))
    config = migrations.alembic_config(db)

    command.downgrade(config, "0007")
    with db.engine.connect() as connection:
        assert (
            connection.execute(
                text("SELECT redeemed_count FROM offers WHERE id = :id"), {"id": offer_id}
            ).scalar_one()
            == 5
        )

    migrations.upgrade(db)
    assert _counts(db, offer_id) == ({north.store_id: 2, south.store_id: 3}, 5)
    db.dispose()


def _another_till(db: Database, tenant: Tenant) -> Principal:
    """A second terminal at the tenant's store whose shard differs from its first one's."""
    admin = Principal(
        key_id=tenant.admin_key_id, role=Role.MERCHANT_ADMIN, merchant_id=tenant.merchant_id
    )
    while True:
        with db.transaction() as session:
            terminal, _, _ = merchants.create_terminal(
                session,
                principal=admin,
                merchant_id=tenant.merchant_id,
                store_id=tenant.store_id,
                data=merchant_schemas.TerminalCreate(name="Second till"),
            )
        if store_count_shard(terminal.id) != store_count_shard(tenant.terminal_id):
            return Principal(
                key_id="tests",
                role=Role.TERMINAL,
                merchant_id=tenant.merchant_id,
                store_id=tenant.store_id,
                terminal_id=terminal.id,
            )


def _shards(db: Database, offer_id: str) -> dict[int, int]:
    with db.reading() as session:
        rows = session.execute(
            select(OfferStoreRedemptions.shard, OfferStoreRedemptions.redeemed).where(
                OfferStoreRedemptions.offer_id == offer_id
            )
        ).all()
    return {shard: n for shard, n in rows}


def test_two_tills_of_one_store_count_in_their_own_shards(db: Database) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    first, second = terminal_principal(tenant), _another_till(db, tenant)
    redeemed = [_redeem(db, first, _claimed_code(db, offer_id)) for _ in range(2)]
    _redeem(db, second, _claimed_code(db, offer_id))
    mine, theirs = store_count_shard(tenant.terminal_id), store_count_shard(second.terminal_id)
    assert _shards(db, offer_id) == {mine: 2, theirs: 1}
    assert _counts(db, offer_id) == ({tenant.store_id: 3}, 3)

    with db.transaction() as session:
        service.undo(session, principal=first, redemption_id=redeemed[0].redemption.id, grace=GRACE)
    assert _shards(db, offer_id) == {mine: 1, theirs: 1}


def test_an_undo_of_a_redemption_counted_before_the_shards_takes_it_back_from_shard_0(
    db: Database,
) -> None:
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    till = terminal_principal(tenant)
    redeemed = _redeem(db, till, _claimed_code(db, offer_id))
    with db.transaction() as session:  # as migration 0009 left a count made before it
        session.execute(update(OfferStoreRedemptions).values(shard=0))
    with db.transaction() as session:
        service.undo(session, principal=till, redemption_id=redeemed.redemption.id, grace=GRACE)
    assert _shards(db, offer_id) == {0: 0}
    assert _counts(db, offer_id) == ({tenant.store_id: 0}, 0)


def test_a_redemption_at_a_till_of_another_shard_does_not_wait_for_an_open_one(
    pg_db: Database,
) -> None:
    tenant = make_tenant(pg_db)
    offer_id = make_offer(pg_db, tenant)
    second = _another_till(pg_db, tenant)
    first_code, second_code = _claimed_code(pg_db, offer_id), _claimed_code(pg_db, offer_id)
    _redeems_while_another_holds(pg_db, terminal_principal(tenant), first_code, second, second_code)
    assert _counts(pg_db, offer_id) == ({tenant.store_id: 2}, 2)


def test_migration_0009_folds_the_shards_into_one_count_per_store_and_back(
    tmp_path: Path,
) -> None:
    db = Database.from_url(f"sqlite:///{tmp_path / 'shards.db'}")
    migrations.upgrade(db)
    tenant = make_tenant(db)
    offer_id = make_offer(db, tenant)
    first, second = terminal_principal(tenant), _another_till(db, tenant)
    for till, times in ((first, 2), (second, 3)):
        for _ in range(times):
            _redeem(db, till, _claimed_code(db, offer_id))
    config = migrations.alembic_config(db)

    command.downgrade(config, "0008")
    with db.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT store_id, redeemed FROM offer_store_redemptions WHERE offer_id = :id"),
            {"id": offer_id},
        ).all()
    assert [tuple(row) for row in rows] == [(tenant.store_id, 5)]

    migrations.upgrade(db)
    assert _shards(db, offer_id) == {0: 5}
    assert _counts(db, offer_id) == ({tenant.store_id: 5}, 5)
    db.dispose()
