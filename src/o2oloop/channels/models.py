"""Tables of the channels domain: the store index for nearby search (more follow)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from o2oloop.db import Base, UTCDateTime


class StoreCell(Base):
    """The H3 cell holding a store at one indexed resolution (`geo.RESOLUTIONS`).

    A nearby search asks for the stores of a few dozen cells of one resolution; the cell id
    encodes its resolution, so one index on `cell` serves every level.
    """

    __tablename__ = "store_cells"

    cell: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), primary_key=True, index=True)


class StoreRating(Base):
    """A store's average review rating, kept by the reviews domain, for sort=rating."""

    __tablename__ = "store_ratings"

    store_id: Mapped[str] = mapped_column(ForeignKey("stores.id"), primary_key=True)
    average: Mapped[float] = mapped_column(Float)
    count: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


__all__ = ["StoreCell", "StoreRating"]
