"""Keeping the nearby index in step with a store's coordinates and whether it is open."""

from __future__ import annotations

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from o2oloop.channels import geo
from o2oloop.channels.models import StoreCell
from o2oloop.merchants.models import Merchant, Store


def index_store(session: Session, *, store_id: str, latitude: float, longitude: float) -> None:
    """(Re)write the store's cells; called by the merchants use cases that place a store."""
    store = session.get(Store, store_id)  # in the session already: the caller placed it
    if store is None:
        raise ValueError(f"no store {store_id} to index")
    session.execute(delete(StoreCell).where(StoreCell.store_id == store_id))
    merchant = session.get(Merchant, store.merchant_id)
    if not store.active or merchant is None or not merchant.active:
        return  # a closed store may still be moved; it stays out of the index
    x, y, z = geo.unit_vector(latitude, longitude)
    session.execute(
        insert(StoreCell),
        [
            {"cell": cell, "store_id": store_id, "merchant_id": store.merchant_id}
            | {"x": x, "y": y, "z": z}
            for cell in geo.cells_of(latitude, longitude)
        ],
    )


def unindex_store(session: Session, *, store_id: str) -> None:
    """A closed store leaves the index: nearby search never ranks its offers there."""
    session.execute(delete(StoreCell).where(StoreCell.store_id == store_id))


def unindex_merchant(session: Session, *, merchant_id: str) -> None:
    """Every store of a closed merchant leaves the index."""
    session.execute(delete(StoreCell).where(StoreCell.merchant_id == merchant_id))
