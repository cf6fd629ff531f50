"""The statistics of campaign results: plain functions over per-target arrays.

Lift is the difference in means between treatment and control (Welch's standard error, a
normal 95 % interval: arms here are hundreds to millions of members), scaled by the number
treated to give incremental visits or revenue. CUPED (Deng et al., 2013) subtracts
θ·(x − x̄) from each outcome, with x the member's pre-period value and θ = cov(x, y)/var(x)
pooled over both arms; randomisation makes x independent of the arm, so the estimate stays
unbiased while its variance shrinks by the share of y that x explains (ρ²). The sample-ratio
check is Pearson's chi-square of the arm counts against the intended split.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import stats as scipy_stats

Array = npt.NDArray[np.float64]
Z95 = float(scipy_stats.norm.ppf(0.975))
SRM_ALPHA = 0.001


@dataclass(frozen=True, slots=True)
class Lift:
    """Treatment minus control per member, and over the treated: the incremental total."""

    treatment_mean: float
    control_mean: float
    difference: float
    standard_error: float
    low: float
    high: float
    treated: int
    incremental: float
    incremental_low: float
    incremental_high: float
    p_value: float


@dataclass(frozen=True, slots=True)
class Cuped:
    lift: Lift
    theta: float
    variance_reduction: float  # 1 − var(adjusted) / var(raw), pooled over both arms


@dataclass(frozen=True, slots=True)
class Srm:
    chi_square: float
    p_value: float
    mismatch: bool


def _moments(values: Array) -> tuple[int, float, float]:
    n = int(values.size)
    mean = float(values.mean()) if n else 0.0
    variance = float(values.var(ddof=1)) if n > 1 else 0.0
    return n, mean, variance


def difference_in_means(treatment: Array, control: Array, *, z: float = Z95) -> Lift:
    """Welch's difference in means with a normal interval; the incremental total is the
    difference times the number treated (what the treated did beyond what they would have)."""
    nt, mt, vt = _moments(np.asarray(treatment, dtype=np.float64))
    nc, mc, vc = _moments(np.asarray(control, dtype=np.float64))
    diff = mt - mc
    se = math.sqrt(vt / nt + vc / nc) if nt > 1 and nc > 1 else math.inf
    low, high = diff - z * se, diff + z * se
    if se == 0:
        p = 1.0 if diff == 0 else 0.0
    elif math.isinf(se):
        p = 1.0
    else:
        p = float(2 * scipy_stats.norm.sf(abs(diff) / se))
    return Lift(
        treatment_mean=mt,
        control_mean=mc,
        difference=diff,
        standard_error=se,
        low=low,
        high=high,
        treated=nt,
        incremental=diff * nt,
        incremental_low=low * nt,
        incremental_high=high * nt,
        p_value=p,
    )


def cuped_theta(outcome: Array, covariate: Array) -> float:
    """θ = cov(x, y) / var(x); 0 when the covariate does not vary."""
    x = np.asarray(covariate, dtype=np.float64)
    y = np.asarray(outcome, dtype=np.float64)
    if x.size < 2:
        return 0.0
    variance = float(x.var(ddof=1))
    if variance == 0:
        return 0.0
    return float(np.cov(x, y, ddof=1)[0, 1] / variance)


def cuped(
    treatment: Array,
    control: Array,
    treatment_covariate: Array,
    control_covariate: Array,
    *,
    z: float = Z95,
) -> Cuped:
    """Lift on CUPED-adjusted outcomes, with θ and x̄ pooled over both arms."""
    y = np.concatenate([np.asarray(treatment, np.float64), np.asarray(control, np.float64)])
    x = np.concatenate(
        [np.asarray(treatment_covariate, np.float64), np.asarray(control_covariate, np.float64)]
    )
    theta = cuped_theta(y, x)
    adjusted = y - theta * (x - x.mean())
    nt = int(np.asarray(treatment).size)
    raw_variance = float(y.var(ddof=1)) if y.size > 1 else 0.0
    reduction = 1 - float(adjusted.var(ddof=1)) / raw_variance if raw_variance > 0 else 0.0
    return Cuped(
        lift=difference_in_means(adjusted[:nt], adjusted[nt:], z=z),
        theta=theta,
        variance_reduction=reduction,
    )


def sample_ratio_mismatch(
    treatment: int, control: int, *, control_share: float, alpha: float = SRM_ALPHA
) -> Srm:
    """Pearson's chi-square (1 degree of freedom) of the arm counts against the intended
    split (the exact binomial test when an arm expects fewer than 5); a mismatch
    (p < alpha) means the assignment or the recording is broken."""
    total = treatment + control
    if total == 0 or not 0 < control_share < 1:
        return Srm(0.0, 1.0, False)
    expected_c = total * control_share
    expected_t = total - expected_c
    chi = (treatment - expected_t) ** 2 / expected_t + (control - expected_c) ** 2 / expected_c
    if min(expected_c, expected_t) < 5:
        # Too few for the chi-square approximation: the exact binomial test decides.
        p = float(scipy_stats.binomtest(control, total, control_share).pvalue)
    else:
        p = float(scipy_stats.chi2.sf(chi, df=1))
    return Srm(chi_square=float(chi), p_value=p, mismatch=p < alpha)


def roi(
    *, incremental_revenue: float, gross_margin_share: float, discount_cost: int, message_cost: int
) -> float | None:
    """(incremental gross margin − discount cost − message cost) / cost; None without cost."""
    cost = discount_cost + message_cost
    if cost <= 0:
        return None
    return (incremental_revenue * gross_margin_share - cost) / cost
