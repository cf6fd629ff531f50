"""Sufficient statistics: what the database sums up gives the same numbers as the arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from o2oloop.campaigns import stats

VALUES = st.lists(st.tuples(st.integers(0, 10**7), st.integers(0, 10**7)), min_size=2, max_size=60)


def _close(a: stats.Moments, b: stats.Moments) -> None:
    assert a.n == b.n
    for name in ("mean_y", "mean_x", "ss_y", "ss_x", "sp_xy"):
        assert getattr(a, name) == pytest.approx(getattr(b, name), rel=1e-9, abs=1e-6), name


@given(VALUES)
def test_raw_integer_sums_give_the_centred_moments_of_the_arrays(pairs) -> None:
    y = np.array([p[0] for p in pairs], dtype=float)
    x = np.array([p[1] for p in pairs], dtype=float)
    ys, xs = [p[0] for p in pairs], [p[1] for p in pairs]
    sums = stats.Moments.from_sums(
        len(pairs),
        sum(ys),
        sum(v * v for v in ys),
        sum(xs),
        sum(v * v for v in xs),
        sum(a * b for a, b in zip(xs, ys, strict=True)),
    )
    _close(sums, stats.Moments.of(y, x))


@given(VALUES, VALUES)
def test_two_arms_pool_exactly_as_one(first, second) -> None:
    def arrays(pairs):
        return np.array([p[0] for p in pairs], float), np.array([p[1] for p in pairs], float)

    (y1, x1), (y2, x2) = arrays(first), arrays(second)
    pooled = stats.Moments.of(y1, x1) + stats.Moments.of(y2, x2)
    _close(pooled, stats.Moments.of(np.concatenate([y1, y2]), np.concatenate([x1, x2])))


def test_float_sums_as_sqlite_returns_them() -> None:
    y = np.array([1.0, 5.0, 2.0, 8.0])
    got = stats.Moments.from_sums(4, 16.0, 94.0, 0.0, 0.0, 0.0)
    _close(got, stats.Moments.of(y))
    assert got.variance_y() == pytest.approx(y.var(ddof=1))
