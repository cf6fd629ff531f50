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
