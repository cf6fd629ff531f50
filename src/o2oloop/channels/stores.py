"""Channels' reactions to merchants' stores: the nearby index follows where stores are and
whether they are open, in the transaction of the change."""

from __future__ import annotations

from sqlalchemy.orm import Session

from o2oloop.channels.store_index import index_store, unindex_merchant, unindex_store
from o2oloop.merchants.events import MerchantClosed, StoreClosed, StorePlaced


def on_store_placed(session: Session, event: StorePlaced) -> None:
    """A store opened or moved is (re)indexed for nearby search, in its own transaction."""
    index_store(
        session, store_id=event.store_id, latitude=event.latitude, longitude=event.longitude
    )


def on_store_closed(session: Session, event: StoreClosed) -> None:
    unindex_store(session, store_id=event.store_id)


def on_merchant_closed(session: Session, event: MerchantClosed) -> None:
    unindex_merchant(session, merchant_id=event.merchant_id)
