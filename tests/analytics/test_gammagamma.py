"""Gamma-Gamma spend and CLV: recovery, exact gradient, and expectations against simulation."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from o2oloop.analytics.bgnbd import BgNbdParams, expected_purchases, simulate_bgnbd_holdout
from o2oloop.analytics.gammagamma import (
    GammaGammaParams,
    conditional_expected_spend,
    customer_lifetime_value,
    fit_gammagamma,
    gammagamma_log_likelihood,
    simulate_gammagamma,
)

# Mean spend per visit p v / (q - 1) = 33.3 (say, yuan); customers differ a lot.
TRUE = GammaGammaParams(p=1.0, q=4.0, v=100.0)
BGNBD = BgNbdParams(r=0.8, alpha=10.0, a=0.8, b=2.5)


def test_recovers_known_parameters_within_5_percent() -> None:
    # 200k repeat customers, mostly few visits (geometric): the spread over 20 seeds was
    # 0.4% / 0.7% / 1.2% for p / q / v, so 5% is a >4 sigma bound, not a lucky seed.
    rng = np.random.default_rng(2005)
    n = 200_000
    x = rng.geometric(0.3, n)
    m = simulate_gammagamma(TRUE, x, rng)
    fit = fit_gammagamma(x, m)
    assert fit.converged
    assert fit.n_customers == n
    errors = {k: abs(getattr(fit, k) / getattr(TRUE, k) - 1) for k in ("p", "q", "v")}
    assert max(errors.values()) < 0.05, errors


def test_fit_ignores_customers_without_repeat_visits() -> None:
    rng = np.random.default_rng(1)
    x = rng.geometric(0.3, 5_000)
    m = simulate_gammagamma(TRUE, x, rng)
    with_zeros = fit_gammagamma(np.r_[x, 0, 0], np.r_[m, 0.0, -3.0])
    without = fit_gammagamma(x, m)
    assert with_zeros.p == without.p
    assert with_zeros.n_customers == 5_000


def test_fit_is_invariant_to_the_money_unit() -> None:
    rng = np.random.default_rng(2)
    x = rng.geometric(0.3, 20_000)
    m = simulate_gammagamma(TRUE, x, rng)
    yuan = fit_gammagamma(x, m)
    fen = fit_gammagamma(x, m * 100)
    assert fen.p == pytest.approx(yuan.p, rel=1e-5)
    assert fen.q == pytest.approx(yuan.q, rel=1e-5)
    assert fen.v == pytest.approx(yuan.v * 100, rel=1e-5)
    assert fen.log_likelihood == pytest.approx(yuan.log_likelihood - 20_000 * np.log(100))


@pytest.mark.parametrize("params", [TRUE, GammaGammaParams(p=6.25, q=3.74, v=15.44)])
def test_gradient_matches_finite_differences(params: GammaGammaParams) -> None:
    rng = np.random.default_rng(3)
    x = rng.geometric(0.2, 2_000)
    m = simulate_gammagamma(TRUE, x, rng)
    w = rng.integers(1, 4, 2_000)
    ll, grad = gammagamma_log_likelihood(params, x, m, w)
    values = np.array([params.p, params.q, params.v])
    numeric = np.empty(3)
    for i in range(3):
        h = 1e-6 * values[i]
        up, down = values.copy(), values.copy()
        up[i] += h
        down[i] -= h
        numeric[i] = (
            gammagamma_log_likelihood(GammaGammaParams(*up), x, m, w)[0]
            - gammagamma_log_likelihood(GammaGammaParams(*down), x, m, w)[0]
        ) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-5, atol=1e-4)
    # And the value is the textbook density (Fader & Hardie 2013, eq. 4).
    p, q, v = params.p, params.q, params.v
    textbook = (
        special.gammaln(p * x + q)
        - special.gammaln(p * x)
        - special.gammaln(q)
        + q * np.log(v)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(v + m * x)
    )
    assert ll == pytest.approx(w @ textbook, rel=1e-12)


def test_conditional_expected_spend_predicts_the_next_visit() -> None:
    # Simulate x past visits and one more; the prediction from the past must match the next
    # spend on average, overall and within groups of customers by visit count.
    rng = np.random.default_rng(4)
    n = 200_000
    x = rng.geometric(0.3, n)
    nu = rng.gamma(TRUE.q, 1 / TRUE.v, n)
    m = rng.gamma(TRUE.p * x, 1 / nu) / x
    next_spend = rng.gamma(TRUE.p, 1 / nu)
    predicted = conditional_expected_spend(TRUE, x, m)
    for mask in (x == 1, (x >= 2) & (x <= 4), x >= 5, np.ones(n, dtype=bool)):
        residual = next_spend[mask] - predicted[mask]
        se = residual.std() / np.sqrt(mask.sum())
        assert abs(residual.mean()) < 4 * se
    assert float(conditional_expected_spend(TRUE, 0, 123.0)) == pytest.approx(TRUE.mean_spend)


def test_simulated_population_mean_spend() -> None:
    rng = np.random.default_rng(5)
    m = simulate_gammagamma(GammaGammaParams(p=3.0, q=6.0, v=50.0), np.full(200_000, 4), rng)
    assert m.mean() == pytest.approx(3.0 * 50.0 / 5.0, rel=0.01)
    assert simulate_gammagamma(TRUE, np.array([0, 2]), rng)[0] == 0.0


def test_customer_lifetime_value_is_discounted_visits_times_spend() -> None:
    x = np.array([0.0, 2.0, 8.0])
    t_x = np.array([0.0, 40.0, 88.0])
    T = np.full(3, 90.0)
    m = np.array([0.0, 20.0, 55.0])
    spend = conditional_expected_spend(TRUE, x, m)

    # No discounting: expected visits over the horizon times expected spend.
    undiscounted = customer_lifetime_value(
        BGNBD, TRUE, x, t_x, T, m, horizon_days=365, discount_rate_annual=0.0
    )
    visits = expected_purchases(BGNBD, 365.0, x, t_x, T)
    np.testing.assert_allclose(undiscounted, visits * spend, rtol=1e-10)

    # By hand with monthly steps: the last step is cut at day 365.
    ends = np.array([30.0 * k for k in range(1, 13)] + [365.0])
    cumulative = np.array([expected_purchases(BGNBD, e, x, t_x, T) for e in ends])
    per_step = np.diff(cumulative, axis=0, prepend=0.0)
    by_hand = spend * ((1.1 ** (-ends / 365.0)) @ per_step)
    np.testing.assert_allclose(customer_lifetime_value(BGNBD, TRUE, x, t_x, T, m), by_hand)

    assert np.all(customer_lifetime_value(BGNBD, TRUE, x, t_x, T, m) < undiscounted)
    assert np.all(customer_lifetime_value(BGNBD, TRUE, x, t_x, T, m, horizon_days=0) == 0)


def test_customer_lifetime_value_matches_simulated_value() -> None:
    # Undiscounted CLV over 180 days vs simulated holdout spend of the same customers.
    rng = np.random.default_rng(6)
    n = 200_000
    T = rng.integers(60, 366, n).astype(float)
    sim = simulate_bgnbd_holdout(BGNBD, T, 180.0, n, rng)
    nu = rng.gamma(TRUE.q, 1 / TRUE.v, n)
    has = sim.x > 0
    m = np.zeros(n)
    m[has] = rng.gamma(TRUE.p * sim.x[has], 1 / nu[has]) / sim.x[has]
    future_spend = rng.gamma(TRUE.p * np.maximum(sim.x_holdout, 1), 1 / nu) * (sim.x_holdout > 0)
    clv = customer_lifetime_value(
        BGNBD, TRUE, sim.x, sim.t_x, T, m, horizon_days=180, discount_rate_annual=0.0
    )
    residual = future_spend - clv
    assert abs(residual.mean()) < 4 * residual.std() / np.sqrt(n)
    assert clv.sum() == pytest.approx(future_spend.sum(), rel=0.02)


def test_invalid_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="no customer with repeat visits"):
        fit_gammagamma([0, 0], [0.0, 0.0])
    with pytest.raises(ValueError, match="> 0"):
        fit_gammagamma([1, 2], [10.0, 0.0])
    with pytest.raises(ValueError, match="whole numbers"):
        fit_gammagamma([1.5], [10.0])
    with pytest.raises(ValueError, match="same length"):
        fit_gammagamma([1, 2], [10.0])
    with pytest.raises(ValueError, match="step_days"):
        customer_lifetime_value(BGNBD, TRUE, 1, 5, 10, 20.0, step_days=0)
    with pytest.raises(ValueError, match="positive"):
        conditional_expected_spend(GammaGammaParams(p=1.0, q=-1.0, v=1.0), 1, 1.0)
