"""Simulate a city running the O2O loop for months, through the real service layer.

Merchants of catering, leisure, fitness and education open stores around a centre; each
consumer lives near a few of them. Every (consumer, merchant) relationship follows the
BG/NBD buy-till-you-die process with known parameters (a Poisson visit rate drawn from a
Gamma, a drop-out chance after each visit drawn from a Beta) and spends per visit by the
Gamma-Gamma model, so analytics can be checked against the truth. Visits become POS
payments with the consumer's phone; some consumers claim coupons first and redeem them at
the counter. Time comes from a frozen clock moved day by day.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy.orm import Session

from o2oloop import clock
from o2oloop.auth import service as keys
from o2oloop.auth.models import Role
from o2oloop.auth.principal import Principal
from o2oloop.bootstrap import bootstrap
from o2oloop.codes import service as codes
from o2oloop.config import Settings
from o2oloop.db import Database, seeded_ids
from o2oloop.errors import ProblemError
from o2oloop.merchants import schemas as merchant_schemas
from o2oloop.merchants import service as merchants
from o2oloop.merchants.models import Category
from o2oloop.offers import schemas as offer_schemas
from o2oloop.offers import service as offers
from o2oloop.payments import pending
from o2oloop.payments.provider import webhook_secret
from o2oloop.sim import campaigns as sim_campaigns
from o2oloop.sim import channels, logins, prepaid, reviews, settlements, stored_value, wallet
from o2oloop.sim import dashboard as sim_dashboard
from o2oloop.sim.world import (
    PLATFORM,
    TIMEZONE,
    CityReport,
    CityRun,
    DemoMerchant,
    DemoStore,
    Progress,
    Visit,
)
from o2oloop.visits import schemas as visit_schemas
from o2oloop.visits import service as visits

__all__ = ["BEHAVIOUR", "CityReport", "DemoMerchant", "DemoStore", "build_city"]

CENTRE = (31.2304, 121.4737)  # People's Square, Shanghai

# True behaviour of consumers, per category: BG/NBD (r, alpha in days, a, b) and
# Gamma-Gamma (p, q, v) in fen. Analytics should find numbers close to these.
_TRUTH = (
    # category             r    alpha  a    b    p    q    v
    (Category.CATERING, 0.6, 30.0, 1.4, 2.0, 6.0, 4.0, 2400.0),
    (Category.LEISURE, 0.4, 45.0, 1.5, 2.0, 5.0, 4.0, 6000.0),
    (Category.FITNESS, 0.9, 15.0, 1.1, 2.5, 8.0, 6.0, 3500.0),
    (Category.EDUCATION, 0.7, 20.0, 1.0, 2.5, 9.0, 5.0, 12000.0),
)
BEHAVIOUR: dict[Category, dict[str, float]] = {
    row[0]: dict(zip(("r", "alpha", "a", "b", "p", "q", "v"), row[1:], strict=True))
    for row in _TRUTH
}
MIX = {
    Category.CATERING: 0.4,
    Category.LEISURE: 0.2,
    Category.FITNESS: 0.2,
    Category.EDUCATION: 0.2,
}
HOURS = {
    Category.CATERING: ("10:00", "02:00"),
    Category.LEISURE: ("10:00", "23:00"),
    Category.FITNESS: ("06:00", "23:00"),
    Category.EDUCATION: ("09:00", "21:00"),
}
# When visits happen, as (hour, weight) per category.
PEAKS = {
    Category.CATERING: [(12, 4), (13, 3), (18, 4), (19, 5), (20, 3), (21, 1), (22, 1), (11, 1)],
    Category.LEISURE: [(14, 2), (15, 2), (16, 2), (19, 3), (20, 3), (21, 2)],
    Category.FITNESS: [(7, 3), (8, 2), (12, 1), (18, 4), (19, 4), (20, 3)],
    Category.EDUCATION: [(10, 2), (14, 2), (16, 3), (17, 3), (19, 3)],
}
NAMES = {
    Category.CATERING: ["Noodle House", "Dumpling Bar", "Hotpot", "Tea Room", "Bistro"],
    Category.LEISURE: ["KTV", "Escape Room", "Cinema Club", "Board Game Cafe", "Spa"],
    Category.FITNESS: ["Gym", "Yoga Studio", "Climbing Hall", "Boxing Club", "Swim Center"],
    Category.EDUCATION: ["Piano School", "English Center", "Coding Club", "Art Studio", "Math Lab"],
}


def _offset(
    rng: np.random.Generator, centre: tuple[float, float], km: float
) -> tuple[float, float]:
    """A point about `km` from centre, uniformly in a disc."""
    radius = km * math.sqrt(rng.random())
    angle = rng.random() * 2 * math.pi
    lat = centre[0] + radius * math.cos(angle) / 111.0
    lon = centre[1] + radius * math.sin(angle) / (111.0 * math.cos(math.radians(centre[0])))
    return round(lat, 6), round(lon, 6)


def _build_merchants(
    db: Database, rng: np.random.Generator, count: int, stores_each: int, report: CityReport
) -> list[DemoMerchant]:
    categories = list(MIX)
    weights = np.array([MIX[c] for c in categories])
    built = []
    with db.transaction() as session:
        for n in range(count):
            category = (
                categories[n % len(categories)]
                if n < 4
                else categories[rng.choice(len(categories), p=weights)]
            )
            name = f"{NAMES[category][n % 5]} {n + 1}"
            merchant, _owner, token, admin_key = merchants.create_merchant(
                session,
                principal=PLATFORM,
                data=merchant_schemas.MerchantCreate(
                    name=name,
                    category=category,
                    currency="CNY",
                    timezone=TIMEZONE,
                    country="CN",
                    commission_bps=int(rng.choice([300, 500, 800])),
                ),
            )
            admin = Principal(
                key_id=admin_key.id, role=Role.MERCHANT_ADMIN, merchant_id=merchant.id
            )
            opens, closes = HOURS[category]
            hours = {
                day: [merchant_schemas.Interval(open=opens, close=closes)]
                for day in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
            }
            stores = []
            for s in range(stores_each):
                lat, lon = _offset(rng, CENTRE, 12.0)
                store = merchants.create_store(
                    session,
                    principal=admin,
                    merchant_id=merchant.id,
                    data=merchant_schemas.StoreCreate(
                        name=f"{name} #{s + 1}",
                        address=f"{int(rng.integers(1, 999))} Demo Road",
                        latitude=lat,
                        longitude=lon,
                        opening_hours=hours,
                        capacity_per_hour=int(rng.integers(15, 60)),
                    ),
                )
                terminal, _token, terminal_key = merchants.create_terminal(
                    session,
                    principal=admin,
                    merchant_id=merchant.id,
                    store_id=store.id,
                    data=merchant_schemas.TerminalCreate(name="Counter"),
                )
                stores.append(
                    DemoStore(
                        id=store.id,
                        terminal=Principal(
                            key_id=terminal_key.id,
                            role=Role.TERMINAL,
                            merchant_id=merchant.id,
                            store_id=store.id,
                            terminal_id=terminal.id,
                        ),
                        latitude=lat,
                        longitude=lon,
                    )
                )
                if n == 0 and s == 0:
                    report.keys["terminal"] = _token
            coupon_ids = _publish_coupons(session, admin, merchant.id, category)
            built.append(DemoMerchant(merchant.id, category, stores, coupon_ids, token, admin))
            if n == 0:
                report.keys["merchant_admin"] = token
    report.merchants, report.stores = count, count * stores_each
    return built


def _publish_coupons(session, admin: Principal, merchant_id: str, category: Category) -> list[str]:
    """Two coupons per merchant: money off a minimum spend, and an off-peak percentage."""
    specs = [
        {
            "kind": "coupon",
            "title": "20 off 100",
            "discount_kind": "amount_off",
            "amount_off": 2000,
            "min_spend": 10000,
            "per_customer_limit": 3,
        },
        {
            "kind": "coupon",
            "title": "15% off in quiet hours",
            "discount_kind": "percent_off",
            "percent_off_bps": 1500,
            "discount_cap": 3000,
            "time_windows": [{"start": "14:00", "end": "17:00"}]
            if category is not Category.FITNESS
            else [{"start": "10:00", "end": "16:00"}],
            "valid_days_after_claim": 30,
        },
    ]
    ids = []
    for spec in specs:
        offer = offers.create_offer(
            session,
            principal=admin,
            merchant_id=merchant_id,
            data=offer_schemas.OfferCreate.model_validate(spec),
        )
        offers.transition(
            session, principal=admin, merchant_id=merchant_id, offer_id=offer.id, action="publish"
        )
        ids.append(offer.id)
    return ids


@dataclass
class Relationship:
    consumer: int
    merchant: int
    store: int
    times: list[float]  # days since the start of the simulation
    spends: list[int]


def _simulate_relationships(
    rng: np.random.Generator,
    built: list[DemoMerchant],
    consumer_homes: np.ndarray,
    days: int,
) -> list[Relationship]:
    """Each consumer picks a merchant near home (a third of them two) and visits it by
    BG/NBD and Gamma-Gamma."""
    store_points = np.array(
        [(s.latitude, s.longitude) for m in built for s in m.stores], dtype=float
    )
    store_owner = np.array([i for i, m in enumerate(built) for _ in m.stores])
    relationships: list[Relationship] = []
    # Every consumer's eight nearest stores at once (a consumers x stores matrix), not a
    # sort per consumer: this is on the way to the city's first logins.
    distances = np.hypot(
        consumer_homes[:, None, 0] - store_points[None, :, 0],
        consumer_homes[:, None, 1] - store_points[None, :, 1],
    )
    nearest_stores = np.argsort(distances, axis=1)[:, :8]
    first_store_of = {m: int(np.flatnonzero(store_owner == m)[0]) for m in set(store_owner)}
    for consumer in range(len(consumer_homes)):
        nearest = nearest_stores[consumer]
        chosen_stores = rng.choice(nearest, size=1 + int(rng.random() < 0.35), replace=False)
        seen_merchants: set[int] = set()
        for store_index in chosen_stores:
            merchant = int(store_owner[store_index])
            if merchant in seen_merchants:
                continue
            seen_merchants.add(merchant)
            truth = BEHAVIOUR[built[merchant].category]
            rate = rng.gamma(truth["r"], 1.0 / truth["alpha"])
            dropout = rng.beta(truth["a"], truth["b"])
            birth = float(rng.uniform(0, days))  # new members arrive all along
            # Gamma-Gamma: each customer's spend rate nu ~ Gamma(q, v); a visit's spend
            # ~ Gamma(p, nu), so their average spend is p / nu.
            nu = rng.gamma(truth["q"], 1.0 / truth["v"])
            times = [birth]
            while True:
                if rng.random() < dropout:
                    break
                nxt = times[-1] + rng.exponential(1.0 / rate)
                if nxt >= days:
                    break
                times.append(nxt)
            spends = [max(100, int(rng.gamma(truth["p"], 1.0 / nu))) for _ in times]
            local_store = int(store_index) - first_store_of[merchant]
            relationships.append(Relationship(consumer, merchant, local_store, times, spends))
    return relationships


def _visit_moment(
    rng: np.random.Generator, start: datetime, day: float, category: Category
) -> datetime:
    hours, weights = zip(*PEAKS[category], strict=True)
    weight = np.array(weights, dtype=float)
    hour = int(rng.choice(hours, p=weight / weight.sum()))
    local_day = (start + timedelta(days=int(day))).astimezone(ZoneInfo(TIMEZONE)).date()
    local = datetime(
        local_day.year,
        local_day.month,
        local_day.day,
        hour,
        int(rng.integers(0, 60)),
        tzinfo=ZoneInfo(TIMEZONE),
    )
    return local.astimezone(UTC)


Ready = Callable[[CityReport], None]
DAY_CHUNK = 200  # visits per transaction: the server's writers never wait long for the city


def build_city(
    db: Database,
    *,
    secret_key: str,
    seed: int = 7,
    merchants_count: int = 50,
    stores_each: int = 2,
    consumers: int = 20_000,
    days: int = 180,
    end: datetime | None = None,
    progress: Progress | None = None,
    on_logins: Ready | None = None,
) -> CityReport:
    """Build and run the city; the simulated period ends at `end` (default: now).

    `on_logins` is called once the merchants, stores and every printed login exist (a few
    seconds in), so a caller can let people in while the months of visits fill in behind.
    """
    rng = np.random.default_rng(seed)
    end = end or clock.now()
    start = (end - timedelta(days=days)).replace(hour=0, minute=0, second=0, microsecond=0)
    report = CityReport(started=start, ended=end)
    report.truth = {c.value: dict(v) for c, v in BEHAVIOUR.items()}
    frozen = clock.FrozenClock(start)
    wiring = bootstrap(Settings(secret_key=secret_key), db=db)  # stores are indexed as placed
    with clock.using(frozen), seeded_ids(seed):
        built = _build_merchants(db, rng, merchants_count, stores_each, report)
        homes = np.array([_offset(rng, CENTRE, 14.0) for _ in range(consumers)])
        run = CityRun(
            db=db,
            seed=seed,
            secret_key=secret_key,
            code_keys=codes.Keys.from_secret(secret_key),
            frozen=frozen,
            start=start,
            end=end,
            merchants=built,
            report=report,
            phone_numbers=rng.choice(10**8, size=consumers, replace=False),
        )
        run.parts["wiring"] = wiring
        relationships = _simulate_relationships(rng, built, homes, days)
        report.consumers, report.relationships = consumers, len(relationships)
        # A third of consumers use the app: they claim a coupon before some visits.
        app_users = rng.random(consumers) < 0.35
        demo_consumer = _demo_consumer(relationships, app_users)
        with db.transaction() as session:
            _setup_parts(session, run)
            _issue_logins(session, run, demo_consumer)
        if on_logins is not None:
            on_logins(report)
        events = _visit_events(rng, start, built, relationships)
        _run_days(run, rng, events, relationships, app_users, progress)
        frozen.set(end)
        channels.run(run, homes)
        with db.transaction() as session:
            wallet.fill(session, run, demo_consumer)
            reviews.finish(session, run)
        _deliver(run)
        sim_dashboard.finish(run)
    return report


def _setup_parts(session: Session, run: CityRun) -> None:
    """What each part of the city sets up before the first day (offers, programmes, …)."""
    prepaid.setup(session, run)
    stored_value.setup(session, run)


def _during_visit(session: Session, run: CityRun, visit: Visit) -> None:
    """At the counter, before the payment is recorded: how the bill is paid."""
    stored_value.pay_visit(session, run, visit)


def _after_visit(session: Session, run: CityRun, visit: Visit) -> None:
    """What the consumer does on the way out."""
    prepaid.after_visit(session, run, visit)
    stored_value.after_visit(session, run, visit)
    reviews.after_visit(session, run, visit)


def _end_of_day(run: CityRun) -> None:
    """The platform's nightly work: provider webhooks, refunds, weekly settlement."""
    _deliver(run)
    with run.db.transaction() as session:
        prepaid.end_of_day(session, run)
    settlements.end_of_day(run)
    sim_campaigns.end_of_day(run)
    sim_dashboard.end_of_day(run)


def _deliver(run: CityRun) -> None:
    """The provider's day: what was asked for is charged or paid, called back, reacted to."""
    wiring = run.parts.get("wiring")
    if wiring is None:
        settings = Settings(secret_key=run.secret_key)
        wiring = run.parts["wiring"] = bootstrap(settings, db=run.db)
    pending.settle_sandbox(run.db, wiring.handlers_for, secret=webhook_secret(run.secret_key))


def _visit_events(
    rng: np.random.Generator,
    start: datetime,
    built: list[DemoMerchant],
    relationships: list[Relationship],
) -> list[tuple[datetime, int, int]]:
    events: list[tuple[datetime, int, int]] = []
    for r_index, rel in enumerate(relationships):
        category = built[rel.merchant].category
        for v_index, day in enumerate(rel.times):
            events.append((_visit_moment(rng, start, day, category), r_index, v_index))
    events.sort()
    return events


def _demo_consumer(relationships: list[Relationship], app_users: np.ndarray) -> int:
    """An app user who is a customer of the first merchant (whose terminal is printed)."""
    for rel in relationships:
        if rel.merchant == 0 and app_users[rel.consumer]:
            return rel.consumer
    return relationships[0].consumer if relationships else 0


def _issue_logins(session: Session, run: CityRun, demo_consumer: int) -> None:
    report = run.report
    _, token = keys.issue_key(
        session,
        role=Role.CONSUMER,
        label="demo",
        consumer_id=run.consumer_id(session, demo_consumer),
    )
    report.keys["consumer"] = token
    _, admin_token = keys.issue_key(session, role=Role.PLATFORM_ADMIN, label="demo")
    report.keys["platform_admin"] = admin_token
    report.logins.update(logins.create(session, run))


def _run_days(
    run: CityRun,
    rng: np.random.Generator,
    events: list[tuple[datetime, int, int]],
    relationships: list[Relationship],
    app_users: np.ndarray,
    progress: Progress | None,
) -> None:
    by_day: dict[int, list[tuple[datetime, int, int]]] = {}
    for event in events:
        by_day.setdefault((event[0] - run.start).days, []).append(event)
    done, total = 0, len(events)
    for day_index in sorted(by_day):
        todays = by_day[day_index]
        for first in range(0, len(todays), DAY_CHUNK):
            with run.db.transaction() as session:
                for moment, r_index, v_index in todays[first : first + DAY_CHUNK]:
                    rel = relationships[r_index]
                    merchant = run.merchants[rel.merchant]
                    visit = Visit(
                        consumer=rel.consumer,
                        merchant=merchant,
                        store=merchant.stores[rel.store],
                        moment=moment,
                        amount=rel.spends[v_index],
                        first=v_index == 0,
                        app_user=bool(app_users[rel.consumer]),
                    )
                    _visit(session, run, rng, visit)
            done += min(DAY_CHUNK, len(todays) - first)
        _end_of_day(run)
        if progress is not None:
            progress("days", done, total)


def _visit(session: Session, run: CityRun, rng: np.random.Generator, visit: Visit) -> None:
    """One visit at the counter: a code perhaps, the payment with the phone, then the way out."""
    run.frozen.set(visit.moment)
    report = run.report
    code_text = voucher = None
    if visit.app_user and rng.random() < 0.5:
        code_text = _claim_coupon(session, run, visit)
    if code_text is None:
        code_text = voucher = prepaid.code_for_visit(session, run, visit)
    if code_text is not None:
        try:
            codes.redeem(
                session,
                principal=visit.store.terminal,
                code=code_text,
                bill_amount=visit.amount,
                keys=run.code_keys,
                rate_per_minute=1_000_000,
            )
            report.redemptions += 1
            report.vouchers_used += voucher is not None
        except (codes.Refused, ProblemError):
            # Refusals are decided before anything is written.
            report.rejected += 1
            code_text = None
    visit.code = code_text
    _during_visit(session, run, visit)
    outcome = visits.record_payment(
        session,
        principal=visit.store.terminal,
        data=visit_schemas.PaymentCreate(
            amount=visit.amount,
            occurred_at=visit.moment,
            phone=run.phone_of(visit.consumer),
            code=code_text,
            marketing_consent=bool(rng.random() < 0.6) if visit.first else None,
        ),
        secret_key=run.secret_key,
    )
    visit.visit_id = outcome.visit.id
    report.visits += 1
    _after_visit(session, run, visit)


def _claim_coupon(session: Session, run: CityRun, visit: Visit) -> str | None:
    """The consumer claims the coupon that fits this visit in the app, just before going:
    the quiet-hours one inside its hours, the money-off one for a big enough bill."""
    merchant = visit.merchant
    local_hour = visit.moment.astimezone(ZoneInfo(TIMEZONE)).hour
    quiet = (10, 16) if merchant.category is Category.FITNESS else (14, 17)
    if quiet[0] <= local_hour < quiet[1]:
        offer_id = merchant.coupon_ids[1]
    elif visit.amount >= 10_000:
        offer_id = merchant.coupon_ids[0]
    else:
        return None
    try:
        with session.begin_nested():
            code = codes.claim(
                session,
                principal=run.app(session, visit.consumer),
                offer_id=offer_id,
                keys=run.code_keys,
            )
    except ProblemError:
        return None
    run.report.claims += 1
    return run.code_keys.code_text(code.id)
