"""What happens to a merchant's stores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from o2oloop.events import Event


@dataclass(frozen=True, kw_only=True)
class StorePlaced(Event):
    """A store was opened at, or moved to, a place on the map.

    Nearby search must find the store the moment its change commits, so the index is written
    by a reaction in the store's own transaction (bootstrap wires it), not after commit.
    """

    name = "store.placed"
    reacts_in_transaction: ClassVar[bool] = True
    merchant_id: str
    store_id: str
    latitude: float
    longitude: float


@dataclass(frozen=True, kw_only=True)
class StoreClosed(Event):
    """A store was closed (deactivated); consumers must no longer be sent to it.

    Nearby search must stop listing it the moment the change commits (a later page would
    otherwise still rank the store's offers there), so it reacts in the same transaction.
    """

    name = "store.closed"
    reacts_in_transaction: ClassVar[bool] = True
    merchant_id: str
    store_id: str


@dataclass(frozen=True, kw_only=True)
class MerchantClosed(Event):
    """A merchant was closed (deactivated): none of its stores serves consumers any more."""

    name = "merchant.closed"
    reacts_in_transaction: ClassVar[bool] = True
    merchant_id: str
