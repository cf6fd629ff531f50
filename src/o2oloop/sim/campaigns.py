"""Campaigns in the simulated city, with a known truth.

Each simulated campaign has a true effect: treated members' visit rate is multiplied by
(1 + effect) during the attribution window; control members' is not. `simulate_outcomes`
is the lightweight version (members' visits drawn directly, no database) that the coverage
test runs for many seeds through the real results code (`campaigns.results.measure`);
`run_demo_campaigns` runs real campaigns inside the demo city.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from o2oloop.campaigns import holdout
from o2oloop.campaigns.results import Outcomes

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
