"""Off-peak steering: windowed offers for a store's quiet hours, never overfilling a slot.

From the store's load (average visits per weekday × hour against capacity, from analytics)
each run of open hours below `below` × capacity on one weekday becomes a proposal, sized to
the free capacity of its tightest hour. Accepted, it is a published coupon valid only on that
weekday in that window at that store; a consumer claims it for one concrete hour
(`claim_slot`), and each hour's issuance is capped by a conditional UPDATE, so concurrent
claims never exceed it. Plain claims of such an offer are refused (`guard_plain_claim`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.analytics import service as analytics
from o2oloop.auth.principal import Principal, get_owned, require_merchant_admin
from o2oloop.channels.models import OffPeakProposal, ProposalState, SlotIssuance
from o2oloop.codes import service as codes
from o2oloop.codes.models import Code
from o2oloop.db import new_id
from o2oloop.errors import Conflict, InvalidInput, NotFound
from o2oloop.merchants.hours import WEEKDAYS
from o2oloop.merchants.models import Store
from o2oloop.offers import schemas as offer_schemas
from o2oloop.offers import service as offers
from o2oloop.offers.models import Offer
from o2oloop.prepared import dialect_insert


@dataclass(frozen=True, slots=True)
class Window:
    weekday: int
    start_hour: int
    end_hour: int
    per_slot_cap: int
    average_utilisation: float


def quiet_windows(slots: list[analytics.Slot], *, below: float) -> list[Window]:
    """Runs of consecutive open hours on one weekday under `below` of capacity. Pure."""
    windows = []
    for d in range(7):
        run: list[analytics.Slot] = []
        for slot in [s for s in slots if s.weekday == WEEKDAYS[d]] + [None]:
            quiet = (
                slot is not None
                and slot.open
                and slot.capacity > 0
                and slot.average_visits < below * slot.capacity
            )
            if quiet:
                run.append(slot)  # type: ignore[arg-type]
                continue
            if run:
                free = min(int(s.capacity * below - s.average_visits) for s in run)
                if free > 0:
                    windows.append(
                        Window(
                            weekday=d,
                            start_hour=run[0].hour,
                            end_hour=run[-1].hour + 1,
                            per_slot_cap=free,
                            average_utilisation=round(
                                sum(s.average_visits / s.capacity for s in run) / len(run), 4
                            ),
                        )
                    )
                run = []
    return windows


def propose(
    session: Session,
    *,
    principal: Principal,
    merchant_id: str,
    store_id: str,
    below: float,
    amount_off: int,
    weeks: int = 8,
) -> list[OffPeakProposal]:
    require_merchant_admin(principal, merchant_id)
    load = analytics.store_load(
        session, principal=principal, merchant_id=merchant_id, store_id=store_id, weeks=weeks
    )
    now = clock.now()
    proposals = [
        OffPeakProposal(
            id=new_id("opp"),
            merchant_id=merchant_id,
            store_id=store_id,
            weekday=w.weekday,
            start_hour=w.start_hour,
            end_hour=w.end_hour,
            per_slot_cap=w.per_slot_cap,
            amount_off=amount_off,
            average_utilisation=w.average_utilisation,
            state=ProposalState.PROPOSED,
            created_at=now,
        )
        for w in quiet_windows(load.slots, below=below)
    ]
    session.add_all(proposals)
    session.flush()
    return proposals


def accept(
    session: Session, *, principal: Principal, merchant_id: str, proposal_id: str, weeks: int = 4
) -> Offer:
    """The proposal becomes a published coupon valid only in its window, for `weeks` weeks."""
    require_merchant_admin(principal, merchant_id)
    proposal = get_owned(
        session, OffPeakProposal, proposal_id, merchant_id=merchant_id, what="proposal"
    )
    if proposal.state is not ProposalState.PROPOSED:
        raise Conflict("this proposal was already accepted")
    now = clock.now()
    end = "00:00" if proposal.end_hour == 24 else f"{proposal.end_hour:02d}:00"
    data = offer_schemas.OfferCreate.model_validate(
        {
            "kind": "coupon",
            "title": f"Quiet hours: {WEEKDAYS[proposal.weekday].capitalize()} "
            f"{proposal.start_hour:02d}:00-{end}",
            "discount_kind": "amount_off",
            "amount_off": proposal.amount_off,
            "weekdays": [proposal.weekday],
            "time_windows": [{"start": f"{proposal.start_hour:02d}:00", "end": end}],
            "store_ids": [proposal.store_id],
            "valid_from": now,
            "valid_until": now + timedelta(weeks=weeks),
        }
    )
    offer = offers.create_offer(session, principal=principal, merchant_id=merchant_id, data=data)
    offers.transition(
        session, principal=principal, merchant_id=merchant_id, offer_id=offer.id, action="publish"
    )
    proposal.state = ProposalState.ACCEPTED
    proposal.offer_id = offer.id
    proposal.accepted_at = now
    session.flush()
    return offer


def _proposal_of(session: Session, offer_id: str) -> OffPeakProposal | None:
    return session.scalar(select(OffPeakProposal).where(OffPeakProposal.offer_id == offer_id))


def guard_plain_claim(session: Session, *, offer_id: str) -> None:
    if _proposal_of(session, offer_id) is not None:
        raise Conflict("this offer is claimed for one hour: POST /v1/offers/{id}/slot-claims")


def claim_slot(
    session: Session, *, principal: Principal, offer_id: str, slot_start: datetime, keys: codes.Keys
) -> Code:
    """A code of a steering offer for the hour starting at `slot_start`, within its cap."""
    proposal = _proposal_of(session, offer_id)
    offer = session.get(Offer, offer_id)
    if proposal is None or offer is None:
        raise NotFound("no off-peak offer with this id")
    store = session.get(Store, proposal.store_id)
    assert store is not None
    local = slot_start.astimezone(ZoneInfo(store.timezone))
    if (
        local.minute or local.second or local.microsecond
        or local.weekday() != proposal.weekday
        or not proposal.start_hour <= local.hour < proposal.end_hour
    ):  # fmt: skip
        raise InvalidInput("slot_start: not the start of an hour in this offer's window")
    now = clock.now()
    slot_end = slot_start + timedelta(hours=1)
    if slot_end <= now or (offer.valid_until is not None and slot_start >= offer.valid_until):
        raise InvalidInput("slot_start: this hour is past or after the offer ends")
    insert = dialect_insert(session.get_bind().dialect.name)
    session.execute(
        insert(SlotIssuance)
        .values(offer_id=offer_id, slot_start=slot_start, cap=proposal.per_slot_cap, issued=0)
        .on_conflict_do_nothing()
    )
    taken = session.execute(
        update(SlotIssuance)
        .where(
            SlotIssuance.offer_id == offer_id,
            SlotIssuance.slot_start == slot_start,
            SlotIssuance.issued < SlotIssuance.cap,
        )
        .values(issued=SlotIssuance.issued + 1)
        .execution_options(synchronize_session=False)
    )
    if taken.rowcount != 1:
        raise Conflict("this hour is fully booked; try another")
    code = codes.claim(session, principal=principal, offer_id=offer_id, keys=keys)
    code.expires_at = min(code.expires_at or slot_end, slot_end)
    session.flush()
    return code


def effect(
    session: Session, *, principal: Principal, merchant_id: str, store_id: str, weeks: int = 4
) -> dict:
    """Per store, load before and after its first accepted proposal: visits per slot, peak
    overflow (visits above capacity per week) and utilisation of the slots that were quiet."""
    require_merchant_admin(principal, merchant_id)
    get_owned(session, Store, store_id, merchant_id=merchant_id, what="store")
    accepted_at = session.scalar(
        select(OffPeakProposal.accepted_at)
        .where(OffPeakProposal.store_id == store_id, OffPeakProposal.accepted_at.is_not(None))
        .order_by(OffPeakProposal.accepted_at)
        .limit(1)
    )
    if accepted_at is None:
        raise NotFound("this store has accepted no off-peak proposal yet")
    now = clock.now()
    after_weeks = max(1, round((now - accepted_at).days / 7)) if now > accepted_at else 1
    before = analytics.store_load(
        session, principal=principal, merchant_id=merchant_id, store_id=store_id,
        weeks=weeks, until=accepted_at,
    )  # fmt: skip
    after = analytics.store_load(
        session, principal=principal, merchant_id=merchant_id, store_id=store_id,
        weeks=after_weeks, until=accepted_at + timedelta(weeks=after_weeks),
    )  # fmt: skip
    quiet = {(s.weekday, s.hour) for s in before.slots if s.off_peak}
    return {
        "store_id": store_id,
        "accepted_at": accepted_at,
        "before": _summary(before, quiet),
        "after": _summary(after, quiet),
    }


def _summary(load: analytics.Load, quiet: set[tuple[str, int]]) -> dict:
    open_slots = [s for s in load.slots if s.open]
    quiet_slots = [s for s in open_slots if (s.weekday, s.hour) in quiet]
    capacity = sum(s.capacity for s in quiet_slots)
    return {
        "since": load.since,
        "until": load.until,
        "visits_per_week": round(load.visits / load.weeks, 2),
        "peak_overflow_per_week": round(
            sum(max(0.0, s.average_visits - s.capacity) for s in open_slots), 2
        ),
        "off_peak_utilisation": round(sum(s.average_visits for s in quiet_slots) / capacity, 4)
        if capacity
        else None,
        "slots": [
            {
                "weekday": s.weekday,
                "hour": s.hour,
                "visits": s.average_visits,
                "capacity": s.capacity,
            }
            for s in open_slots
        ],
    }
