"""The city's channels: offers on several channels, consumers sharing, friends claiming
through shares, nearby searches from homes, and one merchant steering into quiet hours.

Run once at the end of the simulated period, through the real use cases, so every channels
endpoint has real numbers to show. Small on purpose: it adds seconds, not minutes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np

from o2oloop import clock
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.channels import (
    attribution,
    counts,
    links,
    nearby,
    offpeak,
    publications,
    referrals,
    shares,
)
from o2oloop.channels.models import Channel
from o2oloop.channels.schemas import PublicationCreate, ReferralProgramIn
from o2oloop.codes import service as codes
from o2oloop.customers import service as customers
from o2oloop.db import Database
from o2oloop.errors import ProblemError
from o2oloop.merchants.models import Store
from o2oloop.sim.world import CityRun
from o2oloop.visits import schemas as visit_schemas
from o2oloop.visits import service as visits

CHANNELS = (Channel.IN_APP, Channel.MAP_APP, Channel.SOCIAL, Channel.POSTER)


@dataclass
class ChannelsReport:
    publications: int = 0
    clicks: int = 0
    channel_claims: int = 0
    shares: int = 0
    share_claims: int = 0
    redemptions: int = 0
    rewards: int = 0
    nearby_searches: int = 0
    nearby_results: int = 0
    offpeak_proposals: int = 0
    slot_claims: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def _consumer(consumer_id: str) -> Principal:
    return Principal(key_id="demo", role=Role.CONSUMER, consumer_id=consumer_id)


def _redeem(session, store: Any, text: str, amount: int, secret_key: str, keys: codes.Keys) -> bool:
    try:
        redeemed = codes.redeem(
            session, principal=store.terminal, code=text, bill_amount=amount, keys=keys,
            rate_per_minute=1_000_000,
        )  # fmt: skip
    except (codes.Refused, ProblemError):
        return False
    visits.record_payment(
        session,
        principal=store.terminal,
        data=visit_schemas.PaymentCreate(
            amount=amount, occurred_at=clock.now(), code=text, redemption_id=redeemed.redemption.id
        ),
        secret_key=secret_key,
    )
    return True


def _claim(session, consumer_id: str, offer_id: str, token: str | None, secret_key: str, keys):
    try:
        with session.begin_nested():
            code = codes.claim(
                session, principal=_consumer(consumer_id), offer_id=offer_id, keys=keys
            )
            attribution.attribute_claim(session, code=code, token=token, secret=secret_key)
    except ProblemError:
        return None
    return keys.code_text(code.id)


def run(city: CityRun, homes: np.ndarray) -> None:
    """The city's channels part, at the end of its period; figures go to `report.channels`."""
    figures = run_channels(
        city.db,
        merchants=city.merchants,
        homes=homes,
        consumer_ids=list(city.consumer_ids.values()),
        secret_key=city.secret_key,
        rng=city.rng("channels"),
    )
    city.report.channels = asdict(figures)
    city.report.visits += figures.redemptions
    city.report.redemptions += figures.redemptions
    city.report.claims += figures.channel_claims + figures.share_claims + figures.slot_claims


def run_channels(
    db: Database,
    *,
    merchants: list[Any],
    homes: np.ndarray,
    consumer_ids: list[str],
    secret_key: str,
    rng: np.random.Generator,
) -> ChannelsReport:
    """Publish, share, search and steer in the city as it stands at the clock's now."""
    report = ChannelsReport()
    keys = codes.Keys.from_secret(secret_key)
    shown = merchants[: min(8, len(merchants))]
    tally: dict[counts.Key, list[int]] = {}
    with db.transaction() as session:
        tokens: dict[str, list[tuple[str, str]]] = {}
        for merchant in shown:
            admin = Principal(key_id="demo", role=Role.MERCHANT_ADMIN, merchant_id=merchant.id)
            offer_id = merchant.coupon_ids[0]
            for channel in CHANNELS:
                publication = publications.publish(
                    session, principal=admin, merchant_id=merchant.id, offer_id=offer_id,
                    data=PublicationCreate(channel=channel, utm_campaign="city"),
                )  # fmt: skip
                token = links.token_for(secret_key, "publication", publication.id)
                tokens.setdefault(merchant.id, []).append((token, channel.value))
                report.publications += 1
            referrals.set_program(
                session, principal=admin, merchant_id=merchant.id,
                data=ReferralProgramIn(
                    reward_kind="coupon", reward_offer_id=merchant.coupon_ids[1], cap_per_period=3
                ),
            )  # fmt: skip
        people = list(consumer_ids)
        rng.shuffle(people)
        today = clock.now().date()
        for consumer_id in people[15:55]:
            merchant = shown[int(rng.integers(len(shown)))]
            token, channel = tokens[merchant.id][int(rng.integers(len(CHANNELS)))]
            key = (merchant.coupon_ids[0], channel, links.parse_token(secret_key, token).id, today)  # type: ignore[union-attr]
            tally.setdefault(key, [0, 0])[1] += int(rng.integers(1, 4))
            text = _claim(session, consumer_id, merchant.coupon_ids[0], token, secret_key, keys)
            if text is None:
                continue
            report.channel_claims += 1
            if rng.random() < 0.6 and _redeem(
                session, merchant.stores[0], text, 12_000, secret_key, keys
            ):
                report.redemptions += 1
        for sharer_id in people[:15]:
            merchant = shown[int(rng.integers(len(shown)))]
            share = shares.share(
                session, principal=_consumer(sharer_id), offer_id=merchant.coupon_ids[0],
                note="Great dumplings, go before 7pm",
            )  # fmt: skip
            report.shares += 1
            token = links.token_for(secret_key, "share", share.id)
            for _ in range(int(rng.integers(1, 4))):
                friend, _ = customers.sign_up(session, display_name="Friend")
                text = _claim(session, friend.id, merchant.coupon_ids[0], token, secret_key, keys)
                if text is None:
                    continue
                report.share_claims += 1
                if rng.random() < 0.7 and _redeem(
                    session, merchant.stores[0], text, 12_500, secret_key, keys
                ):
                    report.redemptions += 1
    with db.transaction() as session:
        report.rewards = referrals.settle_pending(session, keys=keys)
    with db.reading() as session:
        for lat, lng in homes[: min(100, len(homes))]:
            found, _ = nearby.search(
                session,
                query=nearby.NearbyQuery(latitude=float(lat), longitude=float(lng), radius_m=2_000),
                now=clock.now(),
            )
            report.nearby_searches += 1
            report.nearby_results += len(found)
            for item in found:
                tally.setdefault((item.offer.id, Channel.IN_APP.value, "", today), [0, 0])[0] += 1
    with db.transaction() as session:
        counts.write(session, tally)
    report.extra["steering"] = _steer(db, merchants[0], keys)
    report.offpeak_proposals = report.extra["steering"]["proposals"]
    report.slot_claims = report.extra["steering"]["slot_claims"]
    return report


def _steer(db: Database, merchant: Any, keys: codes.Keys) -> dict[str, Any]:
    """The first merchant takes the platform's first quiet-hours proposal for its first store."""
    admin = Principal(key_id="demo", role=Role.MERCHANT_ADMIN, merchant_id=merchant.id)
    store_id = merchant.stores[0].id
    with db.transaction() as session:
        proposals = offpeak.propose(
            session, principal=admin, merchant_id=merchant.id, store_id=store_id,
            below=0.3, amount_off=1500, weeks=8,
        )  # fmt: skip
        if not proposals:
            return {"proposals": 0, "slot_claims": 0}
        proposal = proposals[0]
        offer = offpeak.accept(
            session, principal=admin, merchant_id=merchant.id, proposal_id=proposal.id
        )
        store = session.get(Store, store_id)
        assert store is not None
        zone = ZoneInfo(store.timezone)
    local_now = clock.now().astimezone(zone)
    day = local_now.date() + timedelta(days=(proposal.weekday - local_now.weekday()) % 7 or 7)
    slot = datetime(day.year, day.month, day.day, proposal.start_hour, tzinfo=zone)
    claimed = 0
    with db.transaction() as session:
        people = [customers.sign_up(session, display_name="Early bird")[0].id for _ in range(12)]
        for consumer_id in people:
            try:
                with session.begin_nested():
                    offpeak.claim_slot(
                        session, principal=_consumer(consumer_id), offer_id=offer.id,
                        slot_start=slot, keys=keys,
                    )  # fmt: skip
                claimed += 1
            except ProblemError:
                break
    return {
        "proposals": len(proposals),
        "offer_id": offer.id,
        "slot": slot.isoformat(),
        "per_slot_cap": proposal.per_slot_cap,
        "slot_claims": claimed,
    }
