"""Impressions and clicks, counted in memory and written in batches.

An impression (an offer shown in a listing or a nearby search) or a click (a tracking link
opened) must not cost a write transaction each: the counts gather per (offer, channel,
link, day) and one upsert per key is written at most every `interval` seconds (or when
`max_keys` keys are pending), and on shutdown. A server `start`s a thread that writes
them, so no request waits for a batch; without it (an app run without its lifespan)
whichever request comes by after the interval writes them.
A crash loses at most that interval's counts; claims, redemptions and revenue are never
counted this way (they are rows of their own).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable
from datetime import date
from functools import lru_cache
from typing import Any

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.channels.models import Channel, ChannelDaily
from o2oloop.db import Database
from o2oloop.offers.models import Offer
from o2oloop.prepared import dialect_insert

log = logging.getLogger(__name__)

Key = tuple[str, str, str, date]  # offer id, channel, link id ("" for none), day


class Counts:
    def __init__(self, db: Database, *, interval: float = 1.0, max_keys: int = 5_000) -> None:
        self.db = db
        self.interval = interval
        self.max_keys = max_keys
        self._lock = threading.Lock()
        self._impressions: Counter[Key] = Counter()
        self._clicks: Counter[Key] = Counter()
        self._since = time.monotonic()
        self._stop = threading.Event()
        self._writer: threading.Thread | None = None

    def start(self) -> None:
        """Write the counts from a thread of their own every `interval` seconds."""
        self._stop.clear()
        self._writer = threading.Thread(target=self._write_due, name="channel-counts")
        self._writer.daemon = True
        self._writer.start()

    def stop(self) -> None:
        """Stop the writer thread (if started) and write what is pending."""
        if self._writer is not None:
            self._stop.set()
            self._writer.join()
            self._writer = None
        self.flush()

    def _write_due(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.flush()
            except Exception:  # kept for the next batch; the thread must outlive a bad one
                log.exception("writing channel counts failed; retrying with the next batch")

    def impressions(self, offer_ids: Iterable[str], channel: Channel) -> None:
        today = clock.now().date()
        with self._lock:
            for offer_id in offer_ids:
                self._impressions[(offer_id, channel.value, "", today)] += 1
        self.flush_if_due()

    def click(self, offer_id: str, channel: Channel, link_id: str) -> bool:
        """Count a click; True when a batch is due, for the caller to `flush` where it may
        wait on the database (an async route: in the thread pool, not on the loop)."""
        with self._lock:
            self._clicks[(offer_id, channel.value, link_id, clock.now().date())] += 1
            return self._writer is None and self._due()

    def _due(self) -> bool:
        pending = len(self._impressions) + len(self._clicks)
        return bool(pending) and (
            pending >= self.max_keys or time.monotonic() - self._since >= self.interval
        )

    def flush_if_due(self) -> None:
        with self._lock:
            due = self._writer is None and self._due()
        if due:
            self.flush()

    def flush(self) -> None:
        with self._lock:
            impressions, clicks = self._impressions, self._clicks
            self._impressions, self._clicks = Counter(), Counter()
            self._since = time.monotonic()
        if not impressions and not clicks:
            return
        rows = {key: [n, 0] for key, n in impressions.items()}
        for key, n in clicks.items():
            rows.setdefault(key, [0, 0])[1] += n
        try:
            with self.db.transaction() as session:
                write(session, rows)
        except Exception:
            with self._lock:  # not lost: they go out with the next batch
                self._impressions.update(impressions)
                self._clicks.update(clicks)
            raise


def write(session: Session, rows: dict[Key, list[int]]) -> None:
    """Add the counts to their rows, creating rows that do not exist yet (in key order, so
    two writers never wait for each other's rows in opposite orders).

    One upsert for the whole batch: on PostgreSQL one statement over six arrays, elsewhere
    one statement run for every row (`executemany`). A second of nearby searches holds
    thousands of keys, and a statement built and compiled per key took the request that
    flushed them most of a second.
    """
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    if dialect == "postgresql":
        ordered = sorted(rows.items())
        session.execute(
            _UPSERT_ARRAYS,
            {
                "offer_ids": [key[0] for key, _ in ordered],
                "channels": [key[1] for key, _ in ordered],
                "link_ids": [key[2] for key, _ in ordered],
                "days": [key[3] for key, _ in ordered],
                "impressions": [n[0] for _, n in ordered],
                "clicks": [n[1] for _, n in ordered],
            },
        )
        return
    session.execute(
        _upsert(dialect),
        [
            {
                "offer_id": offer_id,
                "channel": channel,
                "link_id": link_id,
                "day": day,
                "impressions": impressions,
                "clicks": clicks,
            }
            for (offer_id, channel, link_id, day), (impressions, clicks) in sorted(rows.items())
        ],
    )


# PostgreSQL takes a batch as six arrays in one statement: the driver adapts each array in C,
# where an `executemany` of thousands of rows held the server's interpreter lock for tens of
# milliseconds each second, the tail of every nearby search answered meanwhile.
_UPSERT_ARRAYS = text(
    "INSERT INTO channel_daily (offer_id, channel, link_id, day, impressions, clicks)"
    " SELECT * FROM unnest(CAST(:offer_ids AS text[]), CAST(:channels AS text[]),"
    " CAST(:link_ids AS text[]), CAST(:days AS date[]), CAST(:impressions AS integer[]),"
    " CAST(:clicks AS integer[]))"
    " ON CONFLICT (offer_id, channel, link_id, day) DO UPDATE"
    " SET impressions = channel_daily.impressions + excluded.impressions,"
    " clicks = channel_daily.clicks + excluded.clicks"
)


@lru_cache(maxsize=2)
def _upsert(dialect: str) -> Any:
    statement = dialect_insert(dialect)(ChannelDaily)
    return statement.on_conflict_do_update(
        index_elements=["offer_id", "channel", "link_id", "day"],
        set_={
            "impressions": ChannelDaily.impressions + statement.excluded.impressions,
            "clicks": ChannelDaily.clicks + statement.excluded.clicks,
        },
    )


def totals(
    session: Session, *, merchant_id: str, offer_id: str | None
) -> dict[tuple[str, str], tuple[int, int]]:
    """(channel, link id) → (impressions, clicks) over every day, for one offer or all of
    the merchant's."""
    statement = (
        select(
            ChannelDaily.channel,
            ChannelDaily.link_id,
            func.sum(ChannelDaily.impressions),
            func.sum(ChannelDaily.clicks),
        )
        .join(Offer, Offer.id == ChannelDaily.offer_id)
        .where(Offer.merchant_id == merchant_id)
        .group_by(ChannelDaily.channel, ChannelDaily.link_id)
    )
    if offer_id is not None:
        statement = statement.where(ChannelDaily.offer_id == offer_id)
    return {
        (channel.value, link_id): (int(impressions), int(clicks))
        for channel, link_id, impressions, clicks in session.execute(statement)
    }
