"""Filling the hourly aggregate from existing visits in one pass per merchant: after the
migration that created it (`o2oloop dashboard rebuild`), and as the demo city builds.

It counts by the same rules as `hours.recount` (a Hypothesis test holds them equal), but
reads each visit once instead of recounting each hour with its own queries."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from o2oloop.codes.models import Redemption, RedemptionState
from o2oloop.dashboard.hours import hour_of, week_of
from o2oloop.dashboard.models import StoreHour
from o2oloop.merchants.models import Merchant, Store
from o2oloop.visits.models import Visit

FIELDS = ("visits", "revenue", "redemptions", "new_members", "returning_members")
_CHUNK = 500


def _seen_before(session: Session, members: set[str], since: datetime) -> set[str]:
    """Which of these members visited before `since`."""
    seen: set[str] = set()
    ordered = sorted(members)
    for first in range(0, len(ordered), _CHUNK):
        seen.update(
            session.scalars(
                select(Visit.member_id)
                .where(
                    Visit.member_id.in_(ordered[first : first + _CHUNK]),
                    Visit.occurred_at < since,
                )
                .distinct()
            )
        )
    return seen


def rebuild(session: Session, *, merchant_id: str, since: datetime | None = None) -> int:
    """Replace the merchant's hours from the week holding `since` (all, when None) on;
    the number of hours written."""
    merchant = session.get(Merchant, merchant_id)
    if merchant is None:
        return 0
    merchant_zone = ZoneInfo(merchant.timezone)
    zones = {
        store_id: ZoneInfo(zone)
        for store_id, zone in session.execute(
            select(Store.id, Store.timezone).where(Store.merchant_id == merchant_id)
        )
    }
    start = week_of(since, merchant_zone) if since is not None else None
    visits = select(Visit.id, Visit.store_id, Visit.member_id, Visit.amount, Visit.occurred_at)
    visits = visits.where(Visit.merchant_id == merchant_id)
    redemptions = select(Redemption.store_id, Redemption.redeemed_at).where(
        Redemption.merchant_id == merchant_id, Redemption.state == RedemptionState.REDEEMED
    )
    if start is not None:
        visits = visits.where(Visit.occurred_at >= start)
        redemptions = redemptions.where(Redemption.redeemed_at >= start)
    rows = sorted(session.execute(visits).all(), key=lambda r: (r.occurred_at, r.id))
    members = {r.member_id for r in rows if r.member_id is not None}
    ever = _seen_before(session, members, start) if start is not None else set()
    hours: dict[tuple[str, datetime], list[int]] = defaultdict(lambda: [0] * len(FIELDS))
    counted_week: dict[str, datetime] = {}
    for row in rows:
        counts = hours[(row.store_id, hour_of(row.occurred_at, zones[row.store_id]))]
        counts[0] += 1
        counts[1] += row.amount
        if row.member_id is None:
            continue
        week = week_of(row.occurred_at, merchant_zone)
        if counted_week.get(row.member_id) != week:
            counted_week[row.member_id] = week
            counts[4 if row.member_id in ever else 3] += 1
        ever.add(row.member_id)
    for store_id, redeemed_at in session.execute(redemptions):
        hours[(store_id, hour_of(redeemed_at, zones[store_id]))][2] += 1
    wipe = delete(StoreHour).where(StoreHour.merchant_id == merchant_id)
    session.execute(wipe if start is None else wipe.where(StoreHour.starts_at >= start))
    values = []
    for (store_id, starts), counts in hours.items():
        local = starts.astimezone(zones[store_id])
        values.append(
            {
                "store_id": store_id,
                "starts_at": starts,
                "merchant_id": merchant_id,
                "local_date": local.date(),
                "weekday": local.weekday(),
                "hour": local.hour,
                **dict(zip(FIELDS, counts, strict=True)),
            }
        )
    for first in range(0, len(values), 5000):
        session.execute(insert(StoreHour), values[first : first + 5000])
    return len(values)


def merchant_ids(session: Session) -> list[str]:
    return list(session.scalars(select(Merchant.id).order_by(Merchant.id)))
