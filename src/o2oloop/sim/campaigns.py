"""Campaigns in the simulated city, with a known truth.

Each simulated campaign has a true effect: treated members' visit rate is multiplied by
(1 + effect) during the attribution window; control members' is not. `simulate_outcomes`
is the lightweight version (members' visits drawn directly, no database) that the coverage
test runs for many seeds through the real results code (`campaigns.results.measure`);
`run_demo_campaigns` runs real campaigns inside the demo city.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import select

from o2oloop.analytics import service as analytics
from o2oloop.campaigns import holdout, launch, schemas, service
from o2oloop.campaigns.models import Campaign, CampaignTarget, TargetState
from o2oloop.campaigns.policy import Policy
from o2oloop.campaigns.results import Outcomes
from o2oloop.campaigns.runner import send_all
from o2oloop.campaigns.triggers import run_due_campaigns
from o2oloop.customers.models import Consumer, Membership
from o2oloop.errors import ProblemError
from o2oloop.sim.world import PLATFORM
from o2oloop.visits import schemas as visit_schemas
from o2oloop.visits import service as visits

if TYPE_CHECKING:
    from o2oloop.sim.world import CityRun

# The city's catering members: BG/NBD visit rates ~ Gamma(r, 1/alpha) per day.
RATE_SHAPE, RATE_SCALE = 0.6, 1 / 30.0


@dataclass(frozen=True, slots=True)
class Truth:
    effect: float  # relative change in treated members' visit rate
    visits_per_treated: float  # the true incremental visits per treated member
    spend_per_visit: float


def simulate_outcomes(
    seed: int,
    *,
    members: int = 4000,
    effect: float = 0.3,
    holdout_share: float = 0.1,
    window_days: float = 30.0,
    pre_days: float = 90.0,
    spend_per_visit: float = 6000.0,
) -> tuple[Outcomes, Truth]:
    """Members with heterogeneous visit rates, assigned by the real keyed hash; visits in
    the pre-period and the window are Poisson, the treated ones lifted by `effect`."""
    rng = np.random.default_rng(seed)
    rates = rng.gamma(RATE_SHAPE, RATE_SCALE, members)
    key = holdout.holdout_key(f"sim-{seed}")
    arms = np.array(
        [
            a.value
            for a in holdout.assign_many(
                key,
                f"cmp_sim_{seed}",
                (f"csm_{i}" for i in range(members)),
                holdout_bps=round(holdout_share * holdout.BUCKETS),
            )
        ]
    )
    treated = arms == "treatment"
    pre = rng.poisson(rates * pre_days).astype(float)
    lift = np.where(treated, 1.0 + effect, 1.0)
    post = rng.poisson(rates * window_days * lift).astype(float)
    spend = rng.gamma(6.0, spend_per_visit / 6.0, members)
    truth = Truth(
        effect=effect,
        visits_per_treated=effect * window_days * RATE_SHAPE * RATE_SCALE,
        spend_per_visit=spend_per_visit,
    )
    return (
        Outcomes(
            arm=arms,
            pre_visits=pre,
            pre_spend=pre * spend,
            visits=post,
            revenue=post * spend,
        ),
        truth,
    )


# ---- campaigns inside the demo city -------------------------------------------------------

LAUNCH_BEFORE_END = timedelta(days=30)
WINDOW_DAYS = 30
# (name, trigger, audience, coupon index, true effect on the treated members' visit rate)
DEMO_CAMPAIGNS: tuple[tuple[str, dict[str, Any], dict[str, Any], int, float], ...] = (
    ("Win back members at risk", {"kind": "now"}, {"segments": ["at_risk"]}, 0, 0.6),
    ("Overdue regulars", {"kind": "overdue", "k": 1.5}, {"segments": ["regular"]}, 0, 0.4),
    ("First-visit follow-up", {"kind": "after_first_visit", "days": 7}, {}, 0, 0.3),
    (
        "Quiet afternoons",
        {"kind": "quiet_slot", "below": 0.3, "hours_ahead": 24, "km": 5},
        {},
        1,
        0.2,
    ),
)
DEMO_MERCHANTS = 2  # the first merchants of the city run them (the first one's login is shown)


def end_of_day(run: CityRun) -> None:
    """A month before the end: analyse and launch; then every day run the triggers, send, and
    let the treated members come back a little more often (their true effect)."""
    now = run.frozen.now()
    state = run.parts.setdefault("campaigns", {"effects": {}, "seen": set(), "extra": []})
    if not state["effects"] and now >= run.end - LAUNCH_BEFORE_END:
        _launch(run, state)
    if not state["effects"]:
        return
    policy = Policy(secret_key=run.secret_key)
    with run.db.transaction() as session:
        run_due_campaigns(session, now=now, policy=policy)
    send_all(run.db, policy=policy, now=now)
    _schedule_extra_visits(run, state, now)
    _record_extra_visits(run, state, now)


def _launch(run: CityRun, state: dict[str, Any]) -> None:
    with run.db.transaction() as session:
        analytics.analyze(session)
    policy = Policy(secret_key=run.secret_key)
    for merchant in run.merchants[:DEMO_MERCHANTS]:
        for name, trigger, audience, coupon, effect in DEMO_CAMPAIGNS:
            data = schemas.CampaignCreate.model_validate(
                {
                    "name": name,
                    "offer_id": merchant.coupon_ids[coupon],
                    "trigger": trigger,
                    "audience": audience,
                    "code_valid_days": 14,
                    "cap_days": 0,
                    "attribution_days": WINDOW_DAYS,
                }
            )
            try:
                with run.db.transaction() as session:
                    cid = service.create_campaign(
                        session, principal=PLATFORM, merchant_id=merchant.id, data=data
                    ).id
                    launch.transition(
                        session,
                        principal=PLATFORM,
                        merchant_id=merchant.id,
                        campaign_id=cid,
                        action="launch",
                        policy=policy,
                    )
            except ProblemError:  # an audience that matches nobody in this city
                continue
            state["effects"][cid] = effect
            run.report.campaigns += 1


def _schedule_extra_visits(run: CityRun, state: dict[str, Any], now: datetime) -> None:
    """Each newly treated member visits Poisson(rate × effect × window) times more."""
    rng = run.rng("campaigns")
    with run.db.reading() as session:
        rows = session.execute(
            select(
                CampaignTarget.id,
                CampaignTarget.campaign_id,
                Consumer.phone_e164,
                Membership.visit_count,
                Membership.total_spent,
                Membership.first_visit_at,
                Campaign.merchant_id,
            )
            .join(Consumer, Consumer.id == CampaignTarget.consumer_id)
            .join(Membership, Membership.id == CampaignTarget.member_id)
            .join(Campaign, Campaign.id == CampaignTarget.campaign_id)
            .where(CampaignTarget.campaign_id.in_(list(state["effects"])))
            .where(CampaignTarget.state == TargetState.SENT)
        ).all()
    stores = {m.id: m.stores for m in run.merchants}
    for row in rows:
        if row.id in state["seen"] or row.phone_e164 is None:
            continue
        state["seen"].add(row.id)
        run.report.campaign_messages += 1
        age = max((now - row.first_visit_at).days, 7) if row.first_visit_at else 30
        rate = row.visit_count / age
        extra = int(rng.poisson(rate * state["effects"][row.campaign_id] * WINDOW_DAYS))
        spend = row.total_spent // max(row.visit_count, 1)
        for _ in range(extra):
            moment = now + timedelta(days=float(rng.uniform(0.5, WINDOW_DAYS)))
            store = stores[row.merchant_id][int(rng.integers(len(stores[row.merchant_id])))]
            state["extra"].append((moment, store, row.phone_e164, max(spend, 100)))
    state["extra"].sort(key=lambda e: e[0])


def _record_extra_visits(run: CityRun, state: dict[str, Any], now: datetime) -> None:
    due = [e for e in state["extra"] if e[0] <= now and e[0] <= run.end]
    state["extra"] = [e for e in state["extra"] if e[0] > now]
    if not due:
        return
    with run.db.transaction() as session:
        for moment, store, phone, amount in due:
            visits.record_payment(
                session,
                principal=store.terminal,
                data=visit_schemas.PaymentCreate(amount=amount, occurred_at=moment, phone=phone),
                secret_key=run.secret_key,
            )
            run.report.campaign_extra_visits += 1
            run.report.visits += 1
    run.frozen.set(now)
