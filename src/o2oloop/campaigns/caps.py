"""Frequency caps: the contact windows a send batch decides on, claims and stamps.

A consumer has one window per scope (a merchant's id, or "" platform-wide) saying when they
were last messaged. A batch locks the windows that exist, in key order, and claims the
missing ones by inserting them already stamped, in key order too, before it locks the
campaign (the lock order of `send`). A missing window that another sender inserted first
is read once that sender has committed (the insert waits for it): stamped, it holds the
consumer back; put back, the claim goes through. Once the batch knows whom it messages,
their existing windows are stamped and the claims of the others (budget spent, campaign
paused) are put back. A first contact is one INSERT, instead of an empty window inserted,
locked, then stamped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import delete, select, tuple_
from sqlalchemy.orm import Session

from o2oloop.campaigns.bulk import among, insert_rows
from o2oloop.campaigns.models import Campaign, ContactWindow
from o2oloop.campaigns.policy import Policy

Window = tuple[str, str]  # (consumer id, scope)


@dataclass
class Windows:
    """What `open_windows` decided: who may be messaged, and the windows it holds."""

    allowed: set[str]
    caps: dict[str, int] = field(default_factory=dict)  # scope → days
    existing: set[Window] = field(default_factory=set)  # locked, of allowed consumers
    claimed: set[Window] = field(default_factory=set)  # inserted (stamped) by this batch


def _locked(
    session: Session, consumer_ids: list[str], scopes: list[str]
) -> dict[Window, datetime | None]:
    """The windows that exist of `consumer_ids` in `scopes`, locked in key order."""
    cw = ContactWindow
    query = (
        select(cw.consumer_id, cw.scope, cw.last_contacted_at)
        .where(among(session, cw.consumer_id, consumer_ids), cw.scope.in_(scopes))
        .order_by(cw.consumer_id, cw.scope)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return {(c, s): last for c, s, last in session.execute(query)}


def open_windows(
    session: Session, campaign: Campaign, consumer_ids: list[str], now: datetime, policy: Policy
) -> Windows:
    """Lock and claim the windows of `consumer_ids` (sorted); those no cap holds back."""
    caps = {}
    if campaign.cap_days > 0 and campaign.merchant_id is not None:
        caps[campaign.merchant_id] = campaign.cap_days
    if policy.platform_cap_days > 0:
        caps[""] = policy.platform_cap_days
    if not caps or not consumer_ids:
        return Windows(set(consumer_ids), caps)
    scopes = sorted(caps)

    def blocked(windows: dict[Window, datetime | None]) -> set[str]:
        return {
            consumer
            for (consumer, scope), last in windows.items()
            if last is not None and last > now - timedelta(days=caps[scope])
        }

    existing = _locked(session, consumer_ids, scopes)
    held = blocked(existing)
    missing = [(c, s) for c in consumer_ids if c not in held for s in scopes]
    missing = [pair for pair in missing if pair not in existing]
    claimed = _claim(session, missing, now)
    if lost := [pair for pair in missing if pair not in claimed]:
        # Inserted by a sender that has committed since: decide on what it left.
        late = _locked(session, sorted({c for c, _ in lost}), scopes)
        existing |= {pair: late[pair] for pair in lost if pair in late}
        held |= blocked(late) | {c for c, s in lost if (c, s) not in late}
    windows = Windows({c for c in consumer_ids if c not in held}, caps)
    windows.existing = {pair for pair in existing if pair[0] in windows.allowed}
    windows.claimed = {pair for pair in claimed if pair[0] in windows.allowed}
    _put_back(session, [pair for pair in claimed if pair[0] in held])
    return windows


def _claim(session: Session, pairs: list[Window], now: datetime) -> set[Window]:
    """Insert the windows `pairs`, stamped `now`; the ones this insert wrote. SQLite's
    writer holds the database, so nobody can have inserted one since it was read."""
    if not pairs:
        return set()
    rows = [{"consumer_id": c, "scope": s} for c, s in pairs]
    postgres = session.get_bind().dialect.name == "postgresql"
    written = insert_rows(
        session,
        ContactWindow.__table__,
        rows,
        constants={"last_contacted_at": now},
        ignore_conflicts_on=["consumer_id", "scope"],
        returning=["consumer_id", "scope"] if postgres else None,
    )
    return {(c, s) for c, s in written} if postgres else set(pairs)


def _put_back(session: Session, pairs: list[Window]) -> None:
    if pairs:
        cw = ContactWindow
        session.execute(
            delete(cw)
            .where(tuple_(cw.consumer_id, cw.scope).in_(pairs))
            .execution_options(synchronize_session=False)
        )


def settle(session: Session, windows: Windows, messaged: list[str], now: datetime) -> None:
    """Stamp the windows of the consumers messaged; put back the claims of the others."""
    sent = set(messaged)
    _put_back(session, sorted(pair for pair in windows.claimed if pair[0] not in sent))
    stamped = sorted(pair for pair in windows.existing if pair[0] in sent)
    if stamped:  # locked by `open_windows`
        insert_rows(
            session,
            ContactWindow.__table__,
            [{"consumer_id": c, "scope": s} for c, s in stamped],
            constants={"last_contacted_at": now},
            on_conflict="ON CONFLICT (consumer_id, scope) DO UPDATE"
            " SET last_contacted_at = excluded.last_contacted_at",
        )
