"""Aggregation statistics shared by every score."""

from __future__ import annotations

import numpy as np


def bootstrap_ci(
    values: np.ndarray, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap (1 - alpha) confidence interval (Efron & Tibshirani 1993).

    Returns (mean, low, high); NaNs for an empty sample, a degenerate interval for n == 1.
    """
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(arr.mean())
    if arr.size == 1:
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, arr.size, size=(n_boot, arr.size))
    means = arr[idx].mean(axis=1)
    lo, hi = np.quantile(means, [alpha / 2, 1 - alpha / 2])
    return mean, float(lo), float(hi)
