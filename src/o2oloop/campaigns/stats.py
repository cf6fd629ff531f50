"""The statistics of campaign results: plain functions over each arm's sufficient statistics.

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
from decimal import Decimal

import numpy as np
import numpy.typing as npt
from scipy import stats as scipy_stats

Array = npt.NDArray[np.float64]
Sum = int | float | Decimal  # what a database's SUM returns
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


@dataclass(frozen=True, slots=True)
class Moments:
    """One arm's sufficient statistics of an outcome y and its covariate x: the count, the
    means and the centred sums Σ(y−ȳ)², Σ(x−x̄)², Σ(x−x̄)(y−ȳ).

    Everything below needs only these, so results over a million members come from a few
    sums the database adds up (as GrowthBook's gbstats does), not from a million rows.
    Arms combine exactly (Chan et al.'s pairwise update), which pools them for CUPED."""

    n: int
    mean_y: float
    mean_x: float
    ss_y: float
    ss_x: float
    sp_xy: float

    @classmethod
    def of(cls, y: Array, x: Array | None = None) -> Moments:
        """From per-member arrays (two passes: centred, so no cancellation)."""
        y = np.asarray(y, dtype=np.float64)
        x = np.zeros_like(y) if x is None else np.asarray(x, dtype=np.float64)
        if y.size == 0:
            return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0)
        dy, dx = y - y.mean(), x - x.mean()
        return cls(
            int(y.size),
            float(y.mean()),
            float(x.mean()),
            float(dy @ dy),
            float(dx @ dx),
            float(dx @ dy),
        )

    @classmethod
    def from_sums(cls, n: int, sy: Sum, syy: Sum, sx: Sum, sxx: Sum, sxy: Sum) -> Moments:
        """From raw sums (n, Σy, Σy², Σx, Σx², Σxy) as a database returns them. Integer sums
        (counts, minor units) are centred exactly in integers before the one division."""
        if n == 0:
            return cls(0, 0.0, 0.0, 0.0, 0.0, 0.0)
        sums = [sy, syy, sx, sxx, sxy]
        if all(float(v).is_integer() for v in sums):
            sy, syy, sx, sxx, sxy = (int(v) for v in sums)
        else:
            sy, syy, sx, sxx, sxy = (float(v) for v in sums)
        return cls(
            n,
            sy / n,
            sx / n,
            max((n * syy - sy * sy) / n, 0.0),
            max((n * sxx - sx * sx) / n, 0.0),
            (n * sxy - sx * sy) / n,
        )

    def __add__(self, other: Moments) -> Moments:
        if other.n == 0:
            return self
        if self.n == 0:
            return other
        n = self.n + other.n
        dy, dx = other.mean_y - self.mean_y, other.mean_x - self.mean_x
        w = self.n * other.n / n
        return Moments(
            n,
            self.mean_y + dy * other.n / n,
            self.mean_x + dx * other.n / n,
            self.ss_y + other.ss_y + dy * dy * w,
            self.ss_x + other.ss_x + dx * dx * w,
            self.sp_xy + other.sp_xy + dx * dy * w,
        )

    def variance_y(self) -> float:
        return self.ss_y / (self.n - 1) if self.n > 1 else 0.0

    def adjusted(self, theta: float, pooled_mean_x: float) -> tuple[float, float]:
        """Mean and variance (ddof 1) of y − θ(x − x̄) over this arm."""
        mean = self.mean_y - theta * (self.mean_x - pooled_mean_x)
        ss = self.ss_y - 2 * theta * self.sp_xy + theta * theta * self.ss_x
        return mean, max(ss, 0.0) / (self.n - 1) if self.n > 1 else 0.0


def _lift(nt: int, mt: float, vt: float, nc: int, mc: float, vc: float, z: float) -> Lift:
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


def lift_of(treatment: Moments, control: Moments, *, z: float = Z95) -> Lift:
    """Welch's difference in means with a normal interval; the incremental total is the
    difference times the number treated (what the treated did beyond what they would have)."""
    t, c = treatment, control
    return _lift(t.n, t.mean_y, t.variance_y(), c.n, c.mean_y, c.variance_y(), z)


def cuped_of(treatment: Moments, control: Moments, *, z: float = Z95) -> Cuped:
    """Lift on CUPED-adjusted outcomes, with θ and x̄ pooled over both arms."""
    pooled = treatment + control
    # A covariate that does not vary (to rounding) explains nothing: θ = 0.
    flat = pooled.ss_x <= 1e-12 * pooled.n * (pooled.mean_x * pooled.mean_x)
    theta = 0.0 if pooled.n < 2 or pooled.ss_x == 0 or flat else pooled.sp_xy / pooled.ss_x
    mt, vt = treatment.adjusted(theta, pooled.mean_x)
    mc, vc = control.adjusted(theta, pooled.mean_x)
    raw = pooled.variance_y()
    reduction = 1 - pooled.adjusted(theta, pooled.mean_x)[1] / raw if raw > 0 else 0.0
    return Cuped(
        lift=_lift(treatment.n, mt, vt, control.n, mc, vc, z),
        theta=theta,
        variance_reduction=reduction,
    )


def difference_in_means(treatment: Array, control: Array, *, z: float = Z95) -> Lift:
    """`lift_of` per-member arrays."""
    return lift_of(Moments.of(treatment), Moments.of(control), z=z)


def cuped_theta(outcome: Array, covariate: Array) -> float:
    """θ = cov(x, y) / var(x); 0 when the covariate does not vary."""
    return cuped_of(Moments.of(outcome, covariate), Moments.of(np.zeros(0))).theta


def cuped(
    treatment: Array,
    control: Array,
    treatment_covariate: Array,
    control_covariate: Array,
    *,
    z: float = Z95,
) -> Cuped:
    """`cuped_of` per-member arrays."""
    return cuped_of(
        Moments.of(treatment, treatment_covariate), Moments.of(control, control_covariate), z=z
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
