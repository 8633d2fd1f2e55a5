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


Z_95 = 1.959963984540054  # the standard normal's 97.5 % quantile


def difference_p_value(
    value_a: np.ndarray,
    ci_a: tuple[np.ndarray, np.ndarray],
    value_b: np.ndarray,
    ci_b: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """Two-sided p-value of B - A from two independent estimates and their 95 % CIs, under a
    normal approximation: se = CI width / (2 * 1.96), z = (b - a) / sqrt(se_a^2 + se_b^2)
    (Altman & Bland 2003, "Interaction revisited", BMJ 326:219). NaN where either value is
    missing; 0 or 1 where both standard errors are 0 (values differ or not)."""
    from scipy.stats import norm

    va, vb = np.asarray(value_a, np.float64), np.asarray(value_b, np.float64)
    se_a = (np.asarray(ci_a[1], np.float64) - np.asarray(ci_a[0], np.float64)) / (2 * Z_95)
    se_b = (np.asarray(ci_b[1], np.float64) - np.asarray(ci_b[0], np.float64)) / (2 * Z_95)
    se_a, se_b = np.nan_to_num(se_a, nan=0.0), np.nan_to_num(se_b, nan=0.0)
    se = np.sqrt(np.maximum(se_a, 0.0) ** 2 + np.maximum(se_b, 0.0) ** 2)
    diff = vb - va
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.abs(diff) / se
    p = 2.0 * norm.sf(z)
    p = np.where(se == 0, np.where(diff == 0, 1.0, 0.0), p)
    return np.where(np.isfinite(va) & np.isfinite(vb), p, np.nan)


def benjamini_hochberg(p_values: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg (1995) adjusted p-values ("q-values"): reject every hypothesis with
    q <= Q to control the false discovery rate at Q. NaNs are ignored and stay NaN."""
    p = np.asarray(p_values, np.float64)
    q = np.full(p.shape, np.nan)
    ok = np.isfinite(p)
    m = int(ok.sum())
    if m == 0:
        return q
    pv = p[ok]
    order = np.argsort(pv, kind="stable")
    ranked = pv[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(ranked[::-1])[::-1]  # step-up: monotone from the top
    out = np.empty(m)
    out[order] = np.minimum(adjusted, 1.0)
    q[ok] = out
    return q
