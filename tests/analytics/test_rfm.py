"""RFM quintile scores: deterministic ties, small populations, order independence."""

from __future__ import annotations

from random import Random

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from o2oloop.analytics.rfm import quintile_scores, rfm_scores

values = arrays(
    np.float64,
    st.integers(0, 60),
    elements=st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False)
    | st.sampled_from([0.0, 1.0, 2.0]),  # plenty of ties
)


def test_distinct_values_split_into_equal_quintiles() -> None:
    scores = quintile_scores(np.arange(100.0)[::-1])
    assert np.bincount(scores).tolist() == [0, 20, 20, 20, 20, 20]
    assert scores[0] == 5 and scores[-1] == 1


def test_small_populations_and_ties_land_in_the_middle() -> None:
    assert quintile_scores([]).tolist() == []
    assert quintile_scores([42.0]).tolist() == [3]
    assert quintile_scores([7.0, 7.0, 7.0]).tolist() == [3, 3, 3]
    assert quintile_scores([1.0, 2.0]).tolist() == [2, 4]
    assert quintile_scores([5.0, 1.0, 3.0, 2.0, 4.0]).tolist() == [5, 1, 3, 2, 4]
    assert quintile_scores([0.0, 0.0, 0.0, 0.0, 9.0]).tolist() == [2, 2, 2, 2, 5]


def test_rfm_scores_reward_recent_frequent_big_spenders() -> None:
    r, f, m = rfm_scores([1, 30, 365], [10, 2, 0], [500.0, 50.0, 0.0])
    assert r.tolist() == [5, 3, 1]
    assert f.tolist() == [5, 3, 1]
    assert m.tolist() == [5, 3, 1]


def test_invalid_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="same length"):
        rfm_scores([1, 2], [1], [1, 2])
    with pytest.raises(ValueError, match="NaN"):
        rfm_scores([1.0, np.nan], [1, 2], [1, 2])
    with pytest.raises(ValueError, match="one-dimensional"):
        quintile_scores([[1.0, 2.0]])


@given(values)
def test_scores_are_in_range_monotone_and_tie_consistent(v: np.ndarray) -> None:
    scores = quintile_scores(v)
    assert scores.shape == v.shape
    if v.size == 0:
        return
    assert scores.min() >= 1 and scores.max() <= 5
    order = np.argsort(v, kind="stable")
    assert np.all(np.diff(scores[order]) >= 0)  # larger value, never a lower score
    for value in np.unique(v):
        assert np.unique(scores[v == value]).size == 1  # ties share a score


@given(values, st.randoms(use_true_random=False))
def test_scores_do_not_depend_on_row_order(v: np.ndarray, random: Random) -> None:
    permutation = list(range(v.size))
    random.shuffle(permutation)
    assert np.array_equal(quintile_scores(v)[permutation], quintile_scores(v[permutation]))


@given(st.integers(1, 500))
def test_distinct_values_fill_quintiles_evenly(n: int) -> None:
    counts = np.bincount(quintile_scores(np.arange(float(n))), minlength=6)[1:]
    assert counts.max() - counts.min() <= 1
