"""Redemptions of an offer are counted per store: the offer's `redeemed_count` is their sum,
undo takes one back from the store where it happened, redemptions at two stores never wait
for each other, and the migration carries the counts of existing redemptions both ways."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from factories import (
    add_store,
    consumer_principal,
    make_consumer,
    make_offer,
    make_tenant,
    terminal_principal,
)
from o2oloop import migrations
from o2oloop.auth.principal import Principal
from o2oloop.codes import service
from o2oloop.db import Database
from o2oloop.offers.models import Offer, OfferStoreRedemptions

KEYS = service.Keys.from_secret("store-counts-secret-" + "x" * 32)


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
            select(OfferStoreRedemptions.store_id, OfferStoreRedemptions.redeemed).where(
                OfferStoreRedemptions.offer_id == offer_id
            )
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


def test_a_redemption_at_another_store_does_not_wait_for_an_open_one(pg_db: Database) -> None:
    """Store A's till has redeemed and not committed yet (it holds store A's count until
    commit); store B's redemption of the same offer completes meanwhile, under a lock
    timeout that would fail it if it had to wait."""
    north = make_tenant(pg_db)
    south = add_store(pg_db, north)
    offer_id = make_offer(pg_db, north)
    north_code, south_code = _claimed_code(pg_db, offer_id), _claimed_code(pg_db, offer_id)
    holding, release = threading.Event(), threading.Event()
    outcome: list[object] = []

    def north_till() -> None:
        try:
            with pg_db.transaction() as session:
                _redeem_in(session, terminal_principal(north), north_code)
                holding.set()
                release.wait(30)
            outcome.append("committed")
        except Exception as error:  # reported to the test below
            outcome.append(error)
            holding.set()

    thread = threading.Thread(target=north_till, daemon=True)
    thread.start()
    try:
        assert holding.wait(30)
        with pg_db.transaction() as session:
            session.execute(text("SET LOCAL lock_timeout = '2s'"))
            _redeem_in(session, terminal_principal(south), south_code)
    finally:
        release.set()
        thread.join(30)
    assert outcome == ["committed"]
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
