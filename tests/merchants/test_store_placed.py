"""A store's place reaches the nearby index in the store's own transaction, through the
reaction bootstrap wires for StorePlaced, and nowhere else."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from factories import make_tenant
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.channels.models import StoreCell
from o2oloop.db import Database
from o2oloop.jobs.models import OutboxEntry
from o2oloop.merchants import schemas, service
from o2oloop.merchants.models import Store


def _admin(merchant_id: str) -> Principal:
    return Principal(key_id="tests", role=Role.MERCHANT_ADMIN, merchant_id=merchant_id)


def _store(name: str = "Riverside") -> schemas.StoreCreate:
    return schemas.StoreCreate(name=name, address="1 Bund Rd", latitude=31.24, longitude=121.49)


def _cells(session: Session, store_id: str) -> set[str]:
    return set(session.scalars(select(StoreCell.cell).where(StoreCell.store_id == store_id)))


def _placed(session: Session) -> list[str]:
    """The stores whose StorePlaced the outbox holds."""
    rows = session.scalars(select(OutboxEntry.payload).where(OutboxEntry.type == "store.placed"))
    return [json.loads(payload)["store_id"] for payload in rows]


def test_a_placed_store_is_indexed_before_its_transaction_ends(db: Database) -> None:
    tenant = make_tenant(db)
    with db.transaction() as session:
        store = service.create_store(
            session,
            principal=_admin(tenant.merchant_id),
            merchant_id=tenant.merchant_id,
            data=_store(),
        )
        assert _cells(session, store.id)
        assert store.id in _placed(session)


def test_moving_a_store_rewrites_its_cells_and_a_rollback_leaves_none(db: Database) -> None:
    tenant = make_tenant(db)
    admin = _admin(tenant.merchant_id)
    with db.transaction() as session:
        before = _cells(session, tenant.store_id)
        service.update_store(
            session,
            principal=admin,
            merchant_id=tenant.merchant_id,
            store_id=tenant.store_id,
            data=schemas.StoreUpdate(latitude=39.91, longitude=116.40),
        )
        after = _cells(session, tenant.store_id)
    assert before and after and not before & after

    with pytest.raises(RuntimeError), db.transaction() as session:
        store = service.create_store(
            session, principal=admin, merchant_id=tenant.merchant_id, data=_store("Gone")
        )
        gone = store.id
        raise RuntimeError("the request fails after the store was placed")
    with db.reading() as session:
        assert session.get(Store, gone) is None
        assert not _cells(session, gone)
        assert gone not in _placed(session)


def test_a_database_nobody_wired_refuses_to_place_a_store(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = make_tenant(db)
    monkeypatch.delitem(db.reactions, "store.placed")
    with pytest.raises(LookupError, match=r"store\.placed"), db.transaction() as session:
        service.create_store(
            session,
            principal=_admin(tenant.merchant_id),
            merchant_id=tenant.merchant_id,
            data=_store(),
        )
