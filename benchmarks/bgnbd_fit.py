"""Benchmark: BG/NBD fit on 1,000,000 simulated customers, grouping included.

Customers join in daily cohorts over a year (T = 1..365 days); t_x and T are whole days, as
the platform stores them. Prints one JSON object. Target: well under 1.3 s.

    .venv/bin/python benchmarks/bgnbd_fit.py [--customers N] [--repeats K] [--seed S]
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import scipy

from o2oloop.analytics.bgnbd import BgNbdParams, fit_bgnbd, simulate_bgnbd, summarise

TRUE = BgNbdParams(r=0.25, alpha=4.0, a=0.8, b=2.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5, help="timed fits; the best is reported")
    parser.add_argument("--seed", type=int, default=2005)
    args = parser.parse_args()

    rng = np.random.default_rng(args.seed)
    n = args.customers
    T = rng.integers(1, 366, n).astype(np.float64)
    x, t_x = simulate_bgnbd(TRUE, T, n, rng)
    # Whole days; a repeat visit on the first day still counts as day 1 (t_x > 0 when x > 0).
    t_x = np.where(x > 0, np.clip(np.round(t_x), 1, T), 0.0)

    timings, cpu_timings = [], []
    fit = None
    for _ in range(max(args.repeats, 1)):
        wall, cpu = time.perf_counter(), time.process_time()
        fit = fit_bgnbd(x, t_x, T)  # grouping happens inside
        timings.append(time.perf_counter() - wall)
        cpu_timings.append(time.process_time() - cpu)
    assert fit is not None
    print(
        json.dumps(
            {
                "customers": n,
                "unique_rows": len(summarise(x, t_x, T).weights),
                "one_time_share": round(float(np.mean(x == 0)), 4),
                "seconds": round(min(timings), 4),
                "seconds_first": round(timings[0], 4),
                "seconds_median": round(float(np.median(timings)), 4),
                "cpu_seconds": round(min(cpu_timings), 4),
                "converged": fit.converged,
                "params": {
                    "r": fit.r,
                    "alpha": fit.alpha,
                    "a": fit.a,
                    "b": fit.b,
                    "log_likelihood": fit.log_likelihood,
                },
                "true_params": {"r": TRUE.r, "alpha": TRUE.alpha, "a": TRUE.a, "b": TRUE.b},
                "python": platform.python_version(),
                "numpy": np.__version__,
                "scipy": scipy.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
