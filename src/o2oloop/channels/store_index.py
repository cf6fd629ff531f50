"""Keeping the nearby index in step with a store's coordinates."""

from __future__ import annotations

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from o2oloop.channels import geo
from o2oloop.channels.models import StoreCell


def index_store(session: Session, *, store_id: str, latitude: float, longitude: float) -> None:
    """(Re)write the store's cells; called by the merchants use cases that place a store."""
    session.execute(delete(StoreCell).where(StoreCell.store_id == store_id))
    session.execute(
        insert(StoreCell),
        [{"cell": cell, "store_id": store_id} for cell in geo.cells_of(latitude, longitude)],
    )
