"""RFM quintile scores: the coarse, explainable segmentation merchants already know.

Scores run 1..5, 5 being best: most recent, most frequent, highest spend. Each value is placed
at its mid-rank (values below it plus half of those equal to it, over the population size), so
equal values always share a score, the result does not depend on row order, and a lone
customer or a fully tied population lands in the middle (3) instead of at an edge.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

ScoreArray = npt.NDArray[np.int64]


def _column(name: str, values: npt.ArrayLike) -> npt.NDArray[np.float64]:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a one-dimensional array")
    if np.any(np.isnan(arr)):
        raise ValueError(f"{name} must not contain NaN")
    return arr


def quintile_scores(values: npt.ArrayLike) -> ScoreArray:
    """1..5 by mid-rank: ceil(5 * (below + equal / 2) / n), computed in exact integers."""
    v = _column("values", values)
    n = v.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    ordered = np.sort(v)
    below = np.searchsorted(ordered, v, side="left")
    not_above = np.searchsorted(ordered, v, side="right")
    twice_mid_rank = below + not_above  # 2 * (below + equal / 2), in 1 .. 2n - 1
    return (5 * twice_mid_rank + 2 * n - 1) // (2 * n)


def rfm_scores(
    recency_days: npt.ArrayLike, frequency: npt.ArrayLike, monetary: npt.ArrayLike
) -> tuple[ScoreArray, ScoreArray, ScoreArray]:
    """Recency, frequency and monetary quintile scores (1..5, 5 best) for one population.

    ``recency_days`` is days since the last visit, so fewer days scores higher.
    """
    r = _column("recency_days", recency_days)
    f = _column("frequency", frequency)
    m = _column("monetary", monetary)
    if not r.shape == f.shape == m.shape:
        raise ValueError("recency_days, frequency and monetary must have the same length")
    return quintile_scores(-r), quintile_scores(f), quintile_scores(m)
