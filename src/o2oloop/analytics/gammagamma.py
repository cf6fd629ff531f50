"""Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV") and customer lifetime value.

Each visit's spend is Gamma(p, nu) around the customer's own mean p/nu, and nu ~ Gamma(q, v)
across customers. Fitted on customers with repeat visits from (x, m): x visits whose spends
average m. It assumes spend is independent of visit frequency; check that before relying on
it. Money is whatever unit ``m`` is in (e.g. minor units as floats); nothing here rounds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from o2oloop.analytics.bgnbd import BgNbdParams, expected_purchases

FloatArray = npt.NDArray[np.float64]

_LOG_BOUND = 18.0  # |log parameter| cap (rescaled money): a fit on it has no interior optimum


@dataclass(frozen=True, slots=True)
class GammaGammaParams:
    """Fitted (or assumed) Gamma-Gamma parameters; ``v`` is in money units."""

    p: float
    q: float
    v: float
    log_likelihood: float = float("nan")
    converged: bool = True
    n_customers: float = 0.0

    @property
    def mean_spend(self) -> float:
        """Population mean spend per visit, p v / (q - 1); infinite when q <= 1."""
        return self.p * self.v / (self.q - 1.0) if self.q > 1.0 else math.inf


def _dot(a: FloatArray, b: FloatArray) -> float:
    """Sum of a * b without BLAS, whose threads on long 1-D dots stall on a busy machine."""
    return float(np.einsum("i,i->", a, b))


def _column(name: str, values: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a one-dimensional array")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


class _SpendData:
    """Sufficient statistics with money divided by ``scale``.

    Every special-function term depends on x alone, so it is summed over distinct x; only
    log(v + m x) and 1/(v + m x) cost per-customer work.
    """

    def __init__(self, x: FloatArray, m: FloatArray, w: FloatArray, scale: float) -> None:
        m = m / scale
        self.total = float(w.sum())
        self.ux, inverse = np.unique(x, return_inverse=True)
        self.w_x = np.bincount(inverse, weights=w)
        self.mx = m * x
        self.w = w
        self.wx = w * x
        log_m = np.log(m)
        self.sum_wx_log_m = _dot(self.wx, log_m)
        self.sum_w_log_m = _dot(w, log_m)
        self.sum_wx_log_x = _dot(self.w_x, self.ux * np.log(self.ux))


def _loglik_and_grad(p: float, q: float, v: float, d: _SpendData) -> tuple[float, FloatArray]:
    """Weighted log-likelihood of the mean spends and its gradient in (p, q, v).

    log f(m | x) = log Γ(px+q) - log Γ(px) - log Γ(q) + q log v + (px-1) log m + px log x
                   - (px+q) log(v + m x)
    """
    ux, w_x, W = d.ux, d.w_x, d.total
    px = p * ux
    ll = _dot(w_x, special.gammaln(px + q) - special.gammaln(px)) - W * special.gammaln(q)
    ll += W * q * np.log(v) + p * (d.sum_wx_log_m + d.sum_wx_log_x) - d.sum_w_log_m
    dig_pxq = special.digamma(px + q)
    g_p = _dot(w_x * ux, dig_pxq - special.digamma(px)) + d.sum_wx_log_m + d.sum_wx_log_x
    g_q = _dot(w_x, dig_pxq) - W * special.digamma(q) + W * np.log(v)
    g_v = W * q / v

    vm = v + d.mx
    log_vm = np.log(vm)
    inv_vm = 1.0 / vm
    wx_log, w_log = _dot(d.wx, log_vm), _dot(d.w, log_vm)
    ll -= p * wx_log + q * w_log
    g_p -= wx_log
    g_q -= w_log
    g_v -= p * _dot(d.wx, inv_vm) + q * _dot(d.w, inv_vm)
    return float(ll), np.array([g_p, g_q, g_v])


def _objective(theta: FloatArray, d: _SpendData) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood in log-parameters."""
    params = np.exp(theta)
    ll, grad = _loglik_and_grad(*params, d)
    return -ll / d.total, -(grad * params) / d.total


def _spend_inputs(
    frequency: npt.ArrayLike, monetary_value: npt.ArrayLike, weights: npt.ArrayLike | None
) -> tuple[FloatArray, FloatArray, FloatArray]:
    x = _column("frequency", frequency)
    m = _column("monetary_value", monetary_value)
    w = np.ones_like(x) if weights is None else _column("weights", weights)
    if not x.shape == m.shape == w.shape:
        raise ValueError("frequency, monetary_value and weights must have the same length")
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise ValueError("frequency must be whole numbers >= 0")
    if np.any(w < 0):
        raise ValueError("weights must be >= 0")
    keep = (x > 0) & (w > 0)
    if np.any(m[keep] <= 0):
        raise ValueError("monetary_value must be > 0 for customers with repeat visits")
    if not np.any(keep):
        raise ValueError("no customer with repeat visits (frequency > 0) to fit spend on")
    return x[keep], m[keep], w[keep]


def gammagamma_log_likelihood(
    params: GammaGammaParams,
    frequency: npt.ArrayLike,
    monetary_value: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
) -> tuple[float, FloatArray]:
    """Weighted log-likelihood (customers with frequency > 0) and its gradient in (p, q, v)."""
    x, m, w = _spend_inputs(frequency, monetary_value, weights)
    return _loglik_and_grad(params.p, params.q, params.v, _SpendData(x, m, w, 1.0))


def fit_gammagamma(
    frequency: npt.ArrayLike,
    monetary_value: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
) -> GammaGammaParams:
    """Maximum-likelihood Gamma-Gamma fit on (x, mean spend) of customers with x > 0.

    Customers with no repeat visit are ignored (their ``monetary_value`` is not read). Money
    is divided by the weighted mean spend during the search so that v is O(1); L-BFGS-B runs
    on log-parameters with the exact gradient from the best of a few moment-matched starts.
    """
    x, m, w = _spend_inputs(frequency, monetary_value, weights)
    scale = _dot(w, m) / float(w.sum())
    d = _SpendData(x, m, w, scale)
    # Mean spend p v / (q - 1) is 1 in rescaled money; start there with a few shapes.
    starts = [np.log([p0, q0, (q0 - 1.0) / p0]) for p0 in (1.0, 5.0) for q0 in (2.0, 5.0)]
    theta0 = min(starts, key=lambda theta: _objective(theta, d)[0])
    res = optimize.minimize(
        _objective,
        theta0,
        args=(d,),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-_LOG_BOUND, _LOG_BOUND)] * 3,
        options={"maxiter": 1000, "ftol": 1e-13, "gtol": 1e-7},
    )
    p, q, v_scaled = (float(val) for val in np.exp(res.x))
    on_bound = bool(np.any(np.abs(res.x) > _LOG_BOUND - 1e-3))
    # The likelihood is a density in m: rescaling money by ``scale`` costs log(scale) each.
    ll = -float(res.fun) * d.total - d.total * math.log(scale)
    return GammaGammaParams(
        p=p,
        q=q,
        v=v_scaled * scale,
        log_likelihood=ll,
        converged=bool(res.success and not on_bound and math.isfinite(ll)),
        n_customers=d.total,
    )


def _check_params(params: GammaGammaParams) -> None:
    for name in ("p", "q", "v"):
        value = getattr(params, name)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"Gamma-Gamma parameter {name} must be a positive finite number")


def conditional_expected_spend(
    params: GammaGammaParams, x: npt.ArrayLike, m: npt.ArrayLike
) -> FloatArray:
    """E[spend per visit | x visits averaging m] = (v + m x) p / (p x + q - 1).

    A weighted average of the population mean and the customer's own mean, trusting the
    latter more the more visits there are. With x == 0 this is the population mean (m unused).
    """
    _check_params(params)
    xs, ms = np.broadcast_arrays(np.asarray(x, dtype=np.float64), np.asarray(m, dtype=np.float64))
    if np.any(xs < 0) or np.any((xs > 0) & (ms < 0)):
        raise ValueError("x and m must be >= 0")
    p, q, v = params.p, params.q, params.v
    own = np.where(xs > 0, ms * xs, 0.0)
    denominator = p * xs + q - 1.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, (v + own) * p / denominator, np.inf)


def simulate_gammagamma(
    params: GammaGammaParams, frequency: npt.ArrayLike, rng: np.random.Generator
) -> FloatArray:
    """Mean spend over each customer's ``frequency`` visits (0 for customers with none)."""
    _check_params(params)
    x = np.asarray(frequency, dtype=np.int64)
    if np.any(x < 0):
        raise ValueError("frequency must be >= 0")
    nu = rng.gamma(params.q, 1.0 / params.v, x.shape)
    # The sum of x Gamma(p, nu) spends is Gamma(p x, nu).
    has = x > 0
    out = np.zeros(x.shape)
    out[has] = rng.gamma(params.p * x[has], 1.0 / nu[has]) / x[has]
    return out


def customer_lifetime_value(
    bgnbd: BgNbdParams,
    gg: GammaGammaParams,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    m: npt.ArrayLike,
    horizon_days: float = 365.0,
    discount_rate_annual: float = 0.1,
    step_days: float = 30.0,
) -> FloatArray:
    """Discounted expected spend over the next ``horizon_days``.

    Sum over steps of (expected visits in the step) x (expected spend per visit), each step
    discounted at (1 + rate) ** -(step end / 365) — visits are valued at the end of their step,
    so the figure errs low. The last step is shortened to end exactly at the horizon.
    """
    if not (math.isfinite(horizon_days) and horizon_days >= 0):
        raise ValueError("horizon_days must be >= 0")
    if not (math.isfinite(step_days) and step_days > 0):
        raise ValueError("step_days must be > 0")
    if not (math.isfinite(discount_rate_annual) and discount_rate_annual > -1):
        raise ValueError("discount_rate_annual must be > -1")
    xs, txs, Ts, ms = np.broadcast_arrays(
        *(np.asarray(v, dtype=np.float64) for v in (x, t_x, T, m))
    )
    spend = conditional_expected_spend(gg, xs, ms)
    n_steps = math.ceil(horizon_days / step_days)
    if n_steps == 0:
        return np.zeros(xs.shape)
    ends = np.minimum(np.arange(1, n_steps + 1) * step_days, horizon_days)
    grid = ends.reshape((n_steps,) + (1,) * xs.ndim)
    cumulative = expected_purchases(bgnbd, grid, xs, txs, Ts)
    visits = np.diff(cumulative, axis=0, prepend=0.0)
    discount = (1.0 + discount_rate_annual) ** (-ends / 365.0)
    return spend * np.tensordot(discount, visits, axes=1)
