"""The statistics against textbook cases and against statsmodels."""

from __future__ import annotations

import math

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats as scipy_stats
from statsmodels.stats.weightstats import CompareMeans, DescrStatsW

from o2oloop.campaigns import stats


def test_welch_difference_and_interval_match_statsmodels() -> None:
    rng = np.random.default_rng(1)
    t, c = rng.poisson(1.3, 4000).astype(float), rng.poisson(1.1, 900).astype(float)
    lift = stats.difference_in_means(t, c)
    compare = CompareMeans(DescrStatsW(t), DescrStatsW(c))
    low, high = compare.zconfint_diff(alpha=0.05, usevar="unequal")
    assert lift.difference == pytest.approx(t.mean() - c.mean())
    assert (lift.low, lift.high) == pytest.approx((low, high), rel=1e-9)
    assert lift.standard_error == pytest.approx(compare.std_meandiff_separatevar, rel=1e-9)
    _z, p = compare.ztest_ind(usevar="unequal")
    assert lift.p_value == pytest.approx(p, rel=1e-9)
    assert lift.incremental == pytest.approx(lift.difference * 4000)
    assert (lift.incremental_low, lift.incremental_high) == pytest.approx((low * 4000, high * 4000))


def test_a_textbook_difference_in_means() -> None:
    # Two arms of four: means 5 and 3, variances 20/3 and 8/3 -> se = sqrt(20/12 + 8/12).
    lift = stats.difference_in_means(np.array([2, 4, 6, 8.0]), np.array([1, 3, 3, 5.0]))
    assert lift.difference == 2.0
    assert lift.standard_error == pytest.approx(math.sqrt(20 / 12 + 8 / 12))
    assert lift.high - lift.low == pytest.approx(2 * 1.959963985 * lift.standard_error)


def test_cuped_is_the_regression_adjusted_estimate_and_reports_its_variance_reduction() -> None:
    rng = np.random.default_rng(2)
    n = 20_000
    pre = rng.gamma(2.0, 1.0, n)
    arm = rng.random(n) < 0.9
    post = 0.8 * pre + rng.normal(0, 1, n) + 0.2 * arm
    result = stats.cuped(post[arm], post[~arm], pre[arm], pre[~arm])
    # OLS of y on (1, arm, x - mean x): the arm's coefficient is the ANCOVA estimate.
    design = sm.add_constant(np.column_stack([arm.astype(float), pre - pre.mean()]))
    ols = sm.OLS(post, design).fit()
    assert result.lift.difference == pytest.approx(ols.params[1], abs=0.01)
    assert result.theta == pytest.approx(np.cov(pre, post)[0, 1] / pre.var(ddof=1))
    rho = np.corrcoef(pre, post)[0, 1]
    assert result.variance_reduction == pytest.approx(rho**2, abs=1e-6)
    raw = stats.difference_in_means(post[arm], post[~arm])
    assert result.lift.standard_error < raw.standard_error
    assert result.lift.low < 0.2 < result.lift.high


def test_cuped_with_a_constant_covariate_changes_nothing() -> None:
    t, c = np.array([1.0, 2, 3, 4]), np.array([0.0, 1, 2])
    result = stats.cuped(t, c, np.zeros(4), np.zeros(3))
    assert result.theta == 0 and result.variance_reduction == 0
    assert result.lift.difference == stats.difference_in_means(t, c).difference


def test_sample_ratio_mismatch_matches_scipy_chisquare() -> None:
    # 9,200 vs 800 against a 90/10 split: chi2 = 200²/9000 + 200²/1000 = 44.44.
    srm = stats.sample_ratio_mismatch(9200, 800, control_share=0.1)
    chi, p = scipy_stats.chisquare([9200, 800], [9000, 1000])
    assert srm.chi_square == pytest.approx(chi) == pytest.approx(44.444, abs=1e-3)
    assert srm.p_value == pytest.approx(p) and srm.mismatch
    fine = stats.sample_ratio_mismatch(9030, 970, control_share=0.1)
    assert not fine.mismatch and fine.p_value > 0.001


def test_roi() -> None:
    # 10,000 incremental revenue at 60 % margin against 2,000 of discounts and 500 of SMS.
    assert stats.roi(
        incremental_revenue=10_000, gross_margin_share=0.6, discount_cost=2000, message_cost=500
    ) == pytest.approx((6000 - 2500) / 2500)
    assert (
        stats.roi(incremental_revenue=1, gross_margin_share=0.6, discount_cost=0, message_cost=0)
        is None
    )


def test_small_arms_use_the_exact_binomial_test() -> None:
    srm = stats.sample_ratio_mismatch(2, 3, control_share=0.1)
    assert srm.p_value == pytest.approx(scipy_stats.binomtest(3, 5, 0.1).pvalue)
    assert srm.mismatch is (srm.p_value < 0.001)
