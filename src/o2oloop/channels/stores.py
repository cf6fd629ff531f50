"""Channels' reactions to merchants' stores."""

from __future__ import annotations

from sqlalchemy.orm import Session

from o2oloop.channels.store_index import index_store
from o2oloop.merchants.events import StorePlaced


def on_store_placed(session: Session, event: StorePlaced) -> None:
    """A store opened or moved is (re)indexed for nearby search, in its own transaction."""
    index_store(
        session, store_id=event.store_id, latitude=event.latitude, longitude=event.longitude
    )
