"""BG/NBD (Fader, Hardie & Lee 2005): each consumer's visit rate and dropout, learned from visits.

Pure functions on NumPy arrays. Time is in days throughout. Per customer:

* ``x``   – number of *repeat* visits (the first visit starts the customer's clock),
* ``t_x`` – days from the first visit to the last repeat visit (0 when ``x == 0``),
* ``T``   – the customer's age: days from the first visit to the end of observation ("now").

Model: while alive a customer visits as a Poisson process with rate ``lambda ~ Gamma(r, alpha)``;
after every repeat visit they drop out for good with probability ``p ~ Beta(a, b)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# Cap on |log parameter| (in rescaled time) that keeps gammaln/exp finite. A fit that runs
# into it has no interior optimum and is reported as not converged.
_LOG_BOUND = 18.0
# Near removable singularities of the closed-form expectations, interpolate across this width.
_SINGULAR_HALF_WIDTH = 1e-4
# Per-row exponents below -_EXP_FLOOR are floored (see _loglik_and_grad).
_EXP_FLOOR = 50.0
# Large fits start from a fit to a subsample of about this many customers.
_WARM_START_CUSTOMERS = 50_000


@dataclass(frozen=True, slots=True)
class BgNbdParams:
    """Fitted (or assumed) BG/NBD parameters; ``alpha`` is in days."""

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float = float("nan")
    converged: bool = True
    n_customers: float = 0.0


class Summary(NamedTuple):
    """Distinct (x, t_x, T) rows and how many customers share each one."""

    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    weights: FloatArray


class HoldoutSimulation(NamedTuple):
    """Simulated customers: calibration history, holdout visits and whether alive at ``T``."""

    x: IntArray
    t_x: FloatArray
    x_holdout: IntArray
    alive: npt.NDArray[np.bool_]


def _dot(a: FloatArray, b: FloatArray) -> float:
    """Sum of a * b without BLAS.

    OpenBLAS threads on long 1-D dots stall on a busy machine (a 0.12 s fit took 1 s under
    load), and einsum's own loop is faster even single-threaded.
    """
    return float(np.einsum("i,i->", a, b))


# --------------------------------------------------------------------------- validation


def _column(name: str, values: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a one-dimensional array")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite")
    return arr


def _check_history(x: FloatArray, t_x: FloatArray, T: FloatArray) -> None:
    """Reject histories that no customer can have; the likelihood would silently be wrong."""
    if np.any(x < 0) or np.any(x != np.floor(x)):
        raise ValueError("x (repeat visits) must be whole numbers >= 0")
    if np.any(t_x < 0):
        raise ValueError("t_x must be >= 0")
    if np.any(t_x > T):
        raise ValueError("t_x (last repeat visit) cannot be later than T (customer age)")
    if np.any((x > 0) & (t_x <= 0)):
        raise ValueError("a customer with repeat visits (x > 0) needs t_x > 0")
    if np.any((x == 0) & (t_x != 0)):
        raise ValueError("t_x must be 0 for customers without repeat visits (x == 0)")


def _validated(
    x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike, weights: npt.ArrayLike | None
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray | None]:
    xs, ts, Ts = _column("x", x), _column("t_x", t_x), _column("T", T)
    if not xs.shape == ts.shape == Ts.shape:
        raise ValueError("x, t_x and T must have the same length")
    if xs.size == 0:
        raise ValueError("no customers to fit")
    _check_history(xs, ts, Ts)
    if weights is None:
        return xs, ts, Ts, None
    ws = _column("weights", weights)
    if ws.shape != xs.shape:
        raise ValueError("weights must have the same length as x")
    if np.any(ws < 0) or not ws.sum() > 0:
        raise ValueError("weights must be >= 0 with a positive total")
    return xs, ts, Ts, ws


def _prediction_inputs(
    params: BgNbdParams, *arrays: npt.ArrayLike
) -> tuple[tuple[float, float, float, float], list[FloatArray]]:
    for name in ("r", "alpha", "a", "b"):
        value = getattr(params, name)
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"BG/NBD parameter {name} must be a positive finite number")
    arrs = [np.asarray(v, dtype=np.float64) for v in arrays]
    if not all(np.all(np.isfinite(v)) for v in arrs):
        raise ValueError("inputs must be finite")
    out = list(np.broadcast_arrays(*arrs))
    return (params.r, params.alpha, params.a, params.b), out


# --------------------------------------------------------------------------- grouping


class _Grouped(NamedTuple):
    ux: FloatArray  # distinct values of each column ...
    ut: FloatArray
    uT: FloatArray
    cx: IntArray  # ... and each grouped row's index into them
    ct: IntArray
    cT: IntArray
    weights: FloatArray


def _codes(v: FloatArray) -> tuple[FloatArray, IntArray]:
    """Distinct values and each element's index into them; whole-day data needs no sort."""
    lo, hi = float(v.min()), float(v.max())
    if hi - lo < 1 << 22 and np.array_equal(v, np.rint(v)):
        raw = (v - lo).astype(np.int64)
        present = np.zeros(int(hi - lo) + 1, dtype=bool)
        present[raw] = True
        compact = np.cumsum(present) - 1
        return lo + np.flatnonzero(present).astype(np.float64), compact[raw]
    uniq, inverse = np.unique(v, return_inverse=True)
    return uniq, inverse.astype(np.int64)


def _group(x: FloatArray, t_x: FloatArray, T: FloatArray, weights: FloatArray | None) -> _Grouped:
    """Merge identical (x, t_x, T) rows, summing weights; one integer key, one bincount/unique."""
    ux, cx = _codes(x)
    ut, ct = _codes(t_x)
    uT, cT = _codes(T)
    nt, nT = len(ut), len(uT)
    space = len(ux) * nt * nT
    if space < 1 << 62:
        key = (cx * nt + ct) * nT + cT
        if weights is None:  # a plain sort beats argsort/unique(return_inverse) several-fold
            key.sort()
            starts = np.flatnonzero(np.diff(key, prepend=-1))
            keys = key[starts]
            w = np.diff(starts, append=key.size).astype(np.float64)
        else:
            order = np.argsort(key, kind="stable")
            key = key[order]
            starts = np.flatnonzero(np.diff(key, prepend=-1))
            keys = key[starts]
            w = np.add.reduceat(weights[order], starts)
        cx_u, rest = np.divmod(keys, nt * nT)
        ct_u, cT_u = np.divmod(rest, nT)
    else:  # astronomically many distinct values: fall back to a row-wise unique
        rows, inverse = np.unique(np.stack([cx, ct, cT], axis=1), axis=0, return_inverse=True)
        w = np.bincount(inverse.ravel(), weights=weights).astype(np.float64)
        cx_u, ct_u, cT_u = rows[:, 0], rows[:, 1], rows[:, 2]
    keep = w > 0
    return _Grouped(ux, ut, uT, cx_u[keep], ct_u[keep], cT_u[keep], w[keep])


def summarise(x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike) -> Summary:
    """Group identical (x, t_x, T) rows so a fit costs O(distinct histories), not O(customers).

    Rounding ``t_x`` and ``T`` to whole days before calling makes the grouping effective: a
    million customers then collapse to a few hundred thousand distinct rows or fewer.
    Rows come back sorted by (x, t_x, T).
    """
    xs, ts, Ts, _ = _validated(x, t_x, T, None)
    g = _group(xs, ts, Ts, None)
    return Summary(g.ux[g.cx], g.ut[g.ct], g.uT[g.cT], g.weights)


# --------------------------------------------------------------------------- likelihood


class _FitData(NamedTuple):
    """Sufficient statistics of a grouped sample, with time divided by ``scale``."""

    total: float  # sum of weights
    sum_wx: float
    ux: FloatArray  # distinct x and the weight at each
    w_x: FloatArray
    uT: FloatArray  # distinct (scaled) T, weight and weight*x at each
    w_T: FloatArray
    wx_T: FloatArray
    ut: FloatArray  # distinct (scaled) t_x
    # rows with x > 0: the only ones whose likelihood has the second ("died at t_x") term
    xr: FloatArray
    wr: FloatArray
    ixr: IntArray
    itr: IntArray
    iTr: IntArray
    buffers: tuple[FloatArray, ...]  # scratch space for the per-row pass


def _fit_data(g: _Grouped, scale: float) -> _FitData:
    w = g.weights
    xw = g.ux[g.cx]
    rep = xw > 0
    return _FitData(
        total=float(w.sum()),
        sum_wx=_dot(w, xw),
        ux=g.ux,
        w_x=np.bincount(g.cx, weights=w, minlength=len(g.ux)),
        uT=g.uT / scale,
        w_T=np.bincount(g.cT, weights=w, minlength=len(g.uT)),
        wx_T=np.bincount(g.cT, weights=w * xw, minlength=len(g.uT)),
        ut=g.ut / scale,
        xr=xw[rep],
        wr=w[rep],
        ixr=g.cx[rep],
        itr=g.ct[rep],
        iTr=g.cT[rep],
        buffers=tuple(np.empty(int(rep.sum())) for _ in range(5)),
    )


def _loglik_and_grad(
    r: float, alpha: float, a: float, b: float, d: _FitData
) -> tuple[float, FloatArray]:
    """Weighted log-likelihood and its gradient in (r, alpha, a, b).

    log L = log A1 + log A2 + log(A3 + [x > 0] A4) with
    A1 = Γ(r+x) α^r / Γ(r),  A2 = B(a, b+x) / B(a, b),  A3 = (α+T)^-(r+x),
    A4 = a/(b+x-1) (α+t_x)^-(r+x).  The last term is log A3 + softplus(log A4 - log A3), which
    never exponentiates anything large. Terms that depend on x or T alone are summed over the
    distinct values of x or T, so only the x > 0 rows cost per-row work.
    """
    ux, w_x, W = d.ux, d.w_x, d.total
    ab = a + b
    log_alpha = np.log(alpha)

    # log A1 + log A2 (x-only) and log A3 (T-only)
    ll = _dot(w_x, special.gammaln(r + ux) + special.gammaln(b + ux) - special.gammaln(ab + ux))
    ll += W * (r * log_alpha - special.gammaln(r) + special.gammaln(ab) - special.gammaln(b))
    dig_abx = special.digamma(ab + ux)
    g_r = _dot(w_x, special.digamma(r + ux)) + W * (log_alpha - special.digamma(r))
    g_alpha = W * r / alpha
    g_a = W * special.digamma(ab) - _dot(w_x, dig_abx)
    g_b = W * (special.digamma(ab) - special.digamma(b)) + _dot(
        w_x, special.digamma(b + ux) - dig_abx
    )

    log_aT = np.log(alpha + d.uT)
    inv_aT = 1.0 / (alpha + d.uT)
    coef_T = r * d.w_T + d.wx_T
    ll -= _dot(coef_T, log_aT)
    g_r -= _dot(d.w_T, log_aT)
    g_alpha -= _dot(coef_T, inv_aT)

    # softplus(log A4 - log A3) on rows with x > 0, in preallocated buffers (no per-call mallocs)
    if d.xr.size:
        log_at = np.log(alpha + d.ut)
        inv_at = 1.0 / (alpha + d.ut)
        bx1 = b + np.maximum(ux, 1.0) - 1.0  # b + x - 1, only ever read for x >= 1
        gap, rx, delta, sp, tmp = d.buffers
        np.take(log_aT, d.iTr, out=gap)
        gap -= np.take(log_at, d.itr, out=tmp)  # log((α+T)/(α+t_x)) >= 0
        np.add(d.xr, r, out=rx)
        np.take(np.log(a) - np.log(bx1), d.ixr, out=delta)
        delta += np.multiply(rx, gap, out=tmp)  # log A4 - log A3
        # softplus(δ) = max(δ, 0) + log1p(exp(-|δ|)). Exponents are floored at -_EXP_FLOOR:
        # exp() into the subnormal range is ~50x slower, and e**-50 is far below rounding here.
        np.abs(delta, out=sp)
        np.minimum(sp, _EXP_FLOOR, out=sp)
        np.negative(sp, out=sp)
        np.exp(sp, out=sp)
        np.log1p(sp, out=sp)
        sp += np.maximum(delta, 0.0, out=tmp)
        ll += _dot(d.wr, sp)
        ws = np.subtract(delta, sp, out=tmp)  # w * P(died at t_x | data) = w exp(δ - softplus(δ))
        np.maximum(ws, -_EXP_FLOOR, out=ws)
        np.exp(ws, out=ws)
        ws *= d.wr
        g_r += _dot(ws, gap)
        g_a += ws.sum() / a
        g_b -= _dot(np.bincount(d.ixr, weights=ws, minlength=len(ux)), 1.0 / bx1)
        np.take(inv_aT, d.iTr, out=gap)
        gap -= np.take(inv_at, d.itr, out=delta)
        gap *= rx
        g_alpha += _dot(ws, gap)

    return float(ll), np.array([g_r, g_alpha, g_a, g_b])


def _objective(theta: FloatArray, d: _FitData) -> tuple[float, FloatArray]:
    """Mean negative log-likelihood in log-parameters (scale-free, so tolerances mean something)."""
    params = np.exp(theta)
    ll, grad = _loglik_and_grad(*params, d)
    return -ll / d.total, -(grad * params) / d.total


def bgnbd_log_likelihood(
    params: BgNbdParams,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
) -> tuple[float, FloatArray]:
    """Weighted log-likelihood (times in days) and its analytic gradient in (r, alpha, a, b)."""
    xs, ts, Ts, ws = _validated(x, t_x, T, weights)
    d = _fit_data(_group(xs, ts, Ts, ws), 1.0)
    return _loglik_and_grad(params.r, params.alpha, params.a, params.b, d)


def _starting_point(d: _FitData) -> FloatArray:
    """The best of a few data-driven starts in rescaled time (mean T == 1).

    Repeaters' visits per unit of age approximate the rate of those still around, so alpha is
    tied to r through that rate; dropout starts either moderate or rare.
    """
    rep_T = _dot(d.wr, d.uT[d.iTr])
    rate = max(_dot(d.wr, d.xr) / rep_T if rep_T > 0 else d.sum_wx / d.total, 1e-6)
    starts = [
        np.log([r0, r0 / rate, a0, b0]) for r0 in (0.3, 1.5) for a0, b0 in ((1.0, 2.0), (0.5, 8.0))
    ]
    return min(starts, key=lambda theta: _objective(theta, d)[0])


# theta = (log r, log alpha, log a, log b) = _DECORRELATE @ phi with
# phi = (log r, log(r/alpha), log a, log(b/a)): the mean visit rate and the a:b ratio are far
# better determined than r, alpha, a, b themselves, so L-BFGS-B needs fewer steps in phi.
_DECORRELATE = np.array([[1.0, 0, 0, 0], [1.0, -1.0, 0, 0], [0, 0, 1.0, 0], [0, 0, 1.0, 1.0]])
_PHI_BOUNDS = [(-_LOG_BOUND, _LOG_BOUND), (-2 * _LOG_BOUND, 2 * _LOG_BOUND)] * 2


class _Outcome(NamedTuple):
    theta: FloatArray
    fun: float
    success: bool


def _search(d: _FitData, theta0: FloatArray, gtol: float) -> _Outcome:
    """Bounded L-BFGS-B in the decorrelated coordinates."""

    def fun(phi: FloatArray) -> tuple[float, FloatArray]:
        value, grad = _objective(_DECORRELATE @ phi, d)
        return value, _DECORRELATE.T @ grad

    res = optimize.minimize(
        fun,
        np.linalg.solve(_DECORRELATE, theta0),
        jac=True,
        method="L-BFGS-B",
        bounds=_PHI_BOUNDS,
        options={"maxiter": 1000, "ftol": 1e-13, "gtol": gtol},
    )
    return _Outcome(_DECORRELATE @ res.x, float(res.fun), bool(res.success))


def _curvature(theta: FloatArray, d: _FitData) -> FloatArray | None:
    """Hessian of the mean objective by central differences of the exact gradient.

    None unless it is positive definite and not hopelessly ill-conditioned (a flat direction
    means a whitened step could fly off; the plain search is safer there).
    """
    step = 1e-4
    rows = []
    for i in range(4):
        e = np.zeros(4)
        e[i] = step
        rows.append((_objective(theta + e, d)[1] - _objective(theta - e, d)[1]) / (2 * step))
    hess = np.array(rows)
    hess = (hess + hess.T) / 2
    if not np.all(np.isfinite(hess)):
        return None
    eig = np.linalg.eigvalsh(hess)
    return hess if eig[0] > 1e-8 * eig[-1] > 0 else None


def _polish(theta0: FloatArray, hess: FloatArray, d: _FitData, gtol: float) -> _Outcome | None:
    """L-BFGS-B in coordinates whitened by ``hess`` (u = L^T (theta - theta0), H = L L^T).

    With the curvature of a subsample the full-data problem looks like a unit quadratic
    bowl, so the very first steps are already Newton steps. The u-box keeps every trial point
    within a factor e**3 of ``theta0``; an answer on that box is rejected (None).
    """
    to_theta = np.linalg.inv(np.linalg.cholesky(hess)).T  # theta = theta0 + to_theta @ u
    reach = 3.0 / float(np.abs(to_theta).sum(axis=1).max())

    def fun(u: FloatArray) -> tuple[float, FloatArray]:
        value, grad = _objective(theta0 + to_theta @ u, d)
        return value, to_theta.T @ grad

    res = optimize.minimize(
        fun,
        np.zeros(4),
        jac=True,
        method="L-BFGS-B",
        bounds=[(-reach, reach)] * 4,
        options={"maxiter": 200, "ftol": 1e-13, "gtol": gtol},
    )
    if not (res.success and np.all(np.abs(res.x) < reach * (1 - 1e-6))):
        return None
    return _Outcome(theta0 + to_theta @ res.x, float(res.fun), True)


def _thinned(g: _Grouped, customers: float) -> _Grouped:
    """A random subsample of about ``customers`` customers (Poisson thinning of the weights)."""
    rng = np.random.default_rng(20050101)  # fixed seed: fits stay deterministic
    w = rng.poisson(g.weights * (customers / g.weights.sum())).astype(np.float64)
    keep = w > 0
    return _Grouped(g.ux, g.ut, g.uT, g.cx[keep], g.ct[keep], g.cT[keep], w[keep])


def _maximise(g: _Grouped, d: _FitData, scale: float) -> _Outcome:
    """Find the MLE; large samples get a subsample fit and its curvature as a head start."""
    gtol = 1e-7
    if d.total > 4 * _WARM_START_CUSTOMERS and len(g.weights) > _WARM_START_CUSTOMERS:
        sub = _fit_data(_thinned(g, _WARM_START_CUSTOMERS), scale)
        if sub.sum_wx > 0:
            warm = _search(sub, _starting_point(sub), gtol=1e-6)
            if warm.success and np.all(np.abs(warm.theta) < _LOG_BOUND - 1e-3):
                hess = _curvature(warm.theta, sub)
                polished = None if hess is None else _polish(warm.theta, hess, d, gtol)
                return polished or _search(d, warm.theta, gtol)
    return _search(d, _starting_point(d), gtol)


def fit_bgnbd(
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
) -> BgNbdParams:
    """Maximum-likelihood BG/NBD fit on per-customer (x, t_x, T) in days.

    Identical rows are grouped first (``weights`` may carry pre-grouped counts). Time is
    divided by the weighted mean age so that alpha is O(1) during the search; L-BFGS-B then
    runs on (decorrelated) log-parameters with the exact gradient from the best of a few
    data-driven starts. Samples above 200k customers first fit a ~50k subsample and then
    polish on the full data in coordinates whitened by the subsample's curvature, so the
    full data pays for only a handful of likelihood evaluations. Nothing is penalised.
    ``converged`` is False when the optimiser gave up or a parameter ran into its safety
    bound (no interior optimum). Data without any dropout drive a/(a+b) towards 0 and may
    still report converged: read the estimates, not only the flag.
    """
    xs, ts, Ts, ws = _validated(x, t_x, T, weights)
    g = _group(xs, ts, Ts, ws)
    total = float(g.weights.sum())
    scale = _dot(g.weights, g.uT[g.cT]) / total
    if not scale > 0:
        raise ValueError("every customer has age T == 0: nothing has been observed yet")
    d = _fit_data(g, scale)
    if d.sum_wx <= 0:
        raise ValueError("no customer has a repeat visit: the visit rate cannot be estimated")

    best = _maximise(g, d, scale)
    r, alpha_scaled, a, b = (float(v) for v in np.exp(best.theta))
    on_bound = bool(np.any(np.abs(best.theta) > _LOG_BOUND - 1e-3))
    # Back to days: the x > 0 likelihood is a density in the visit times, so it picks up
    # scale**-x per customer when time is stretched by ``scale``.
    ll = -best.fun * total - d.sum_wx * float(np.log(scale))
    return BgNbdParams(
        r=r,
        alpha=alpha_scaled * scale,
        a=a,
        b=b,
        log_likelihood=ll,
        converged=bool(best.success and not on_bound and np.isfinite(ll)),
        n_customers=total,
    )


# --------------------------------------------------------------------------- expectations


def _log_alive_odds_against(
    r: float, alpha: float, a: float, b: float, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """log(P(died at t_x) / P(alive at T)) given the history; -inf when x == 0."""
    xs = np.maximum(x, 1.0)
    odds = np.log(a) - np.log(b + xs - 1.0) + (r + xs) * (np.log(alpha + T) - np.log(alpha + t_x))
    return np.where(x > 0, odds, -np.inf)


def _expected_if_alive(
    r: float, alpha: float, a: float, b: float, x: FloatArray, T: FloatArray, t: FloatArray
) -> FloatArray:
    """E[visits in (T, T+t] | alive at T, x] (Fader-Hardie closed form).

    The textbook form (c/(a-1)) [1 - ((α+T)/(α+T+t))^(r+x) 2F1(r+x, b+x; c; z)], c = a+b+x-1,
    z = t/(α+T+t), has 2F1 arguments growing with x and z near 1 where the series is slow and
    the prefactor tiny. Euler's transformation 2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z)
    turns it into 1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; c; z), whose top arguments do not grow.

    The form has two removable singularities, a == 1 (0/0) and, for x == 0, a + b == 1
    (c == 0 times a pole of 2F1). Within _SINGULAR_HALF_WIDTH of either, it is interpolated
    linearly in a (or b) between points twice that far away, which costs ~1e-8 relative.
    """
    h = _SINGULAR_HALF_WIDTH
    if abs(a - 1.0) < h:
        lo = _expected_if_alive(r, alpha, 1.0 - 2 * h, b, x, T, t)
        hi = _expected_if_alive(r, alpha, 1.0 + 2 * h, b, x, T, t)
        return lo + (a - 1.0 + 2 * h) / (4 * h) * (hi - lo)
    b_pole = 1.0 - a
    if abs(b - b_pole) < h and b_pole > 2 * h and np.any(x == 0):
        lo = _euler_form(r, alpha, a, b_pole - 2 * h, x, T, t)
        hi = _euler_form(r, alpha, a, b_pole + 2 * h, x, T, t)
        return lo + (b - b_pole + 2 * h) / (4 * h) * (hi - lo)
    return _euler_form(r, alpha, a, b, x, T, t)


def _euler_form(
    r: float, alpha: float, a: float, b: float, x: FloatArray, T: FloatArray, t: FloatArray
) -> FloatArray:
    x, T, t = np.broadcast_arrays(x, T, t)
    c = a + b + x - 1.0
    z = t / (alpha + T + t)
    log_one_minus_z = np.log(alpha + T) - np.log(alpha + T + t)
    hyp = special.hyp2f1(a + b - 1.0 - r, a - 1.0, c, z)
    finite = np.isfinite(hyp)
    product = np.asarray(np.exp((a - 1.0) * log_one_minus_z) * np.where(finite, hyp, 0.0))
    if not finite.all():
        # With huge fitted a and b (a dropout chance that barely varies between customers)
        # this 2F1 overflows while its factor underflows, and inf * 0 is no number. There the
        # textbook form is the finite one: its top arguments r+x and b+x stay below c.
        bad = ~finite
        product[bad] = np.exp((r + x[bad]) * log_one_minus_z[bad]) * special.hyp2f1(
            r + x[bad], b + x[bad], c[bad], z[bad]
        )
    return c / (a - 1.0) * (1.0 - product)


def probability_alive(
    params: BgNbdParams, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """P(customer has not dropped out by ``T``) given their history; 1 with no repeat visits."""
    (r, alpha, a, b), (xs, ts, Ts) = _prediction_inputs(params, x, t_x, T)
    _check_history(xs, ts, Ts)
    return special.expit(-_log_alive_odds_against(r, alpha, a, b, xs, ts, Ts))


def expected_purchases(
    params: BgNbdParams,
    t: npt.ArrayLike,
    x: npt.ArrayLike,
    t_x: npt.ArrayLike,
    T: npt.ArrayLike,
) -> FloatArray:
    """Expected visits in the next ``t`` days given the history (x, t_x, T): P(alive) E[·|alive]."""
    (r, alpha, a, b), (ts_, xs, txs, Ts) = _prediction_inputs(params, t, x, t_x, T)
    _check_history(xs, txs, Ts)
    if np.any(ts_ < 0):
        raise ValueError("t must be >= 0")
    alive = special.expit(-_log_alive_odds_against(r, alpha, a, b, xs, txs, Ts))
    return alive * _expected_if_alive(r, alpha, a, b, xs, Ts, ts_)


def expected_purchases_new(params: BgNbdParams, t: npt.ArrayLike) -> FloatArray:
    """E[X(t)]: expected repeat visits of a brand-new customer in their first ``t`` days."""
    (r, alpha, a, b), (ts_,) = _prediction_inputs(params, t)
    if np.any(ts_ < 0):
        raise ValueError("t must be >= 0")
    zero = np.zeros_like(ts_)
    return _expected_if_alive(r, alpha, a, b, zero, zero, ts_)


def expected_next_visit_days(
    params: BgNbdParams, x: npt.ArrayLike, t_x: npt.ArrayLike, T: npt.ArrayLike
) -> FloatArray:
    """The customer's buying cycle: expected days from *now* (``T``) to the next visit, if alive.

    Given alive at T the posterior of the visit rate is Gamma(r + x, alpha + T), and visits are
    memoryless, so the wait from now and the typical gap between visits are the same quantity.
    We return 1 / E[lambda | data] = (alpha + T) / (r + x) rather than E[1 / lambda], which is
    infinite whenever r + x <= 1 (every one-time customer when r < 1). ``t_x`` only matters
    through the alive check and is validated for consistency. Multiply by
    :func:`probability_alive` yourself if you want to discount for dropout.
    """
    (r, alpha, _a, _b), (xs, ts, Ts) = _prediction_inputs(params, x, t_x, T)
    _check_history(xs, ts, Ts)
    return (alpha + Ts) / (r + xs)


# --------------------------------------------------------------------------- simulation


def _simulate(
    params: BgNbdParams, T: npt.ArrayLike, t: npt.ArrayLike, n: int, rng: np.random.Generator
) -> HoldoutSimulation:
    if n < 0:
        raise ValueError("n must be >= 0")
    Ts = np.broadcast_to(np.asarray(T, dtype=np.float64), (n,))
    hs = np.broadcast_to(np.asarray(t, dtype=np.float64), (n,))
    if (
        np.any(Ts < 0)
        or np.any(hs < 0)
        or not (np.all(np.isfinite(Ts)) and np.all(np.isfinite(hs)))
    ):
        raise ValueError("T and t must be finite and >= 0")
    lam = rng.gamma(params.r, 1.0 / params.alpha, n)
    p = np.clip(rng.beta(params.a, params.b, n), 1e-12, 1.0)
    # Repeat visit number at which the customer drops out (they still make that visit).
    dropout_at = rng.geometric(p)
    horizon = Ts + hs
    visits = rng.poisson(lam * horizon)  # visits a never-dropping customer would make
    share_in_calibration = np.divide(Ts, horizon, out=np.ones(n), where=horizon > 0)
    calibration_visits = rng.binomial(visits, share_in_calibration)
    made = np.minimum(visits, dropout_at)
    x = np.minimum(made, calibration_visits)
    # Given k Poisson visits in [0, T], their times are k sorted uniforms on [0, T];
    # the x-th of them is T * Beta(x, k - x + 1).
    has = x > 0
    t_x = np.zeros(n)
    t_x[has] = Ts[has] * rng.beta(x[has], calibration_visits[has] - x[has] + 1)
    return HoldoutSimulation(
        x=x.astype(np.int64),
        t_x=t_x,
        x_holdout=(made - x).astype(np.int64),
        alive=dropout_at > calibration_visits,
    )


def simulate_bgnbd(
    params: BgNbdParams, T: npt.ArrayLike, n: int, rng: np.random.Generator
) -> tuple[IntArray, FloatArray]:
    """Draw ``n`` customers of age ``T`` (scalar or per customer, days) from the BG/NBD process."""
    sim = _simulate(params, T, 0.0, n, rng)
    return sim.x, sim.t_x


def simulate_bgnbd_holdout(
    params: BgNbdParams, T: npt.ArrayLike, t: npt.ArrayLike, n: int, rng: np.random.Generator
) -> HoldoutSimulation:
    """Like :func:`simulate_bgnbd`, continuing ``t`` more days: holdout visits and alive flags.

    Lets tests and the demo city compare predictions with what actually happens next.
    """
    return _simulate(params, T, t, n, rng)
