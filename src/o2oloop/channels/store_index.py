"""Keeping the nearby index in step with a store's coordinates."""

from __future__ import annotations

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from o2oloop.channels import geo
from o2oloop.channels.models import StoreCell
from o2oloop.merchants.models import Store


def index_store(session: Session, *, store_id: str, latitude: float, longitude: float) -> None:
    """(Re)write the store's cells; called by the merchants use cases that place a store."""
    store = session.get(Store, store_id)  # in the session already: the caller placed it
    if store is None:
        raise ValueError(f"no store {store_id} to index")
    session.execute(delete(StoreCell).where(StoreCell.store_id == store_id))
    x, y, z = geo.unit_vector(latitude, longitude)
    session.execute(
        insert(StoreCell),
        [
            {"cell": cell, "store_id": store_id, "merchant_id": store.merchant_id}
            | {"x": x, "y": y, "z": z}
            for cell in geo.cells_of(latitude, longitude)
        ],
    )
