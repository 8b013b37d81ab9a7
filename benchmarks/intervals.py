"""Bootstrap intervals for the benchmarks' figures over seeds (scipy.stats.bootstrap, percentile method): a
figure over 10 seeds is one draw, and its interval says how far another 10 could move it."""

from __future__ import annotations

import numpy as np


def bootstrap(values, stat=np.mean, level: float = 0.9, n: int = 10_000, seed: int = 0) -> tuple[float, float, float]:
    """(statistic, low, high) of `stat` over `values` with a `level` bootstrap interval; a constant sample (or a
    single value) has a zero-width interval."""
    from scipy.stats import bootstrap as scipy_bootstrap

    v = np.asarray(list(values), float)
    point = float(stat(v))
    if len(v) < 2 or np.ptp(v) == 0:
        return point, point, point
    res = scipy_bootstrap(
        (v,), stat, confidence_level=level, n_resamples=n, method="percentile", random_state=seed, vectorized=False
    )
    return point, float(res.confidence_interval.low), float(res.confidence_interval.high)


def text(values, stat=np.mean, name: str = "mean", fmt: str = ".2f", level: float = 0.9) -> str:
    point, lo, hi = bootstrap(values, stat, level)
    return f"{name} {point:{fmt}} [{100 * level:.0f} % CI {lo:{fmt}}–{hi:{fmt}}]"
