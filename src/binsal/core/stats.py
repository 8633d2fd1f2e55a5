"""Aggregation statistics shared by every score."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from binsal.core.errors import InvalidInputError

IntervalMethod = Literal["bootstrap", "hierarchical", "wilson", "t", "constant", "none"]
SMALL_N = 10  # below this many units a percentile bootstrap collapses; a t-interval is used


@dataclass(frozen=True)
class Interval:
    """A mean with its (1 - alpha) confidence interval, how it was made and over what.

    ``n``: units (images) with a finite value; ``n_groups``: independent replicates (training
    seeds) the units come from (1 when there is one model). ``method``: "bootstrap" (percentile,
    units resampled), "hierarchical" (replicates resampled, then units within each), "wilson"
    (a 0/1 proportion), "t" (a mean of fewer than ``SMALL_N`` units), "constant" (n > 1 units
    all equal: a zero-width interval that says so) or "none" (n < 2: no interval, NaN bounds).
    """

    value: float
    low: float
    high: float
    n: int
    method: IntervalMethod
    n_groups: int = 1


def accuracy_floor(num_classes: int, factor: float = 2.0) -> float:
    """The test accuracy a model must reach for its maps to be judged: factor x chance
    (1 / num_classes), capped at halfway between chance and 1 (a floor of 1 or more would
    rule out every model, e.g. factor 2 on two classes)."""
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    chance = 1.0 / num_classes
    return min(factor * chance, (1.0 + chance) / 2.0)


def check_bootstrap(n_boot: int, alpha: float) -> None:
    """One-line errors for resampling settings no interval can come from."""
    if isinstance(n_boot, bool) or not isinstance(n_boot, (int, np.integer)) or n_boot < 1:
        raise InvalidInputError(f"n_boot must be an integer >= 1, got {n_boot!r}")
    if not 0.0 < alpha < 1.0:
        raise InvalidInputError(f"alpha must be a number in (0, 1), got {alpha!r}")


def bootstrap_ci(
    values: np.ndarray, *, n_boot: int = 1000, seed: int = 0, alpha: float = 0.05
) -> tuple[float, float, float]:
    """Mean and percentile-bootstrap (1 - alpha) confidence interval (Efron & Tibshirani 1993).

    Returns (mean, low, high); NaNs for an empty sample, a degenerate interval for n == 1.
    """
    check_bootstrap(n_boot, alpha)
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


def wilson_ci(successes: int, n: int, *, alpha: float = 0.05) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion (Wilson 1927), via
    ``scipy.stats.binomtest``: a positive upper bound even for 0 of n."""
    if n <= 0:
        return float("nan"), float("nan")
    from scipy.stats import binomtest

    ci = binomtest(int(successes), int(n)).proportion_ci(1 - alpha, method="wilson")
    return float(ci.low), float(ci.high)


def t_ci(values: np.ndarray, *, alpha: float = 0.05) -> tuple[float, float, float]:
    """Mean and Student-t (1 - alpha) interval (``scipy.stats.t``), for small samples where a
    percentile bootstrap has too few distinct resamples to cover."""
    from scipy.stats import t

    arr = np.asarray(values, dtype=np.float64).ravel()
    mean = float(arr.mean())
    if arr.size < 2:
        return mean, float("nan"), float("nan")
    half = float(t.ppf(1 - alpha / 2, arr.size - 1) * arr.std(ddof=1) / np.sqrt(arr.size))
    return mean, mean - half, mean + half


def hierarchical_bootstrap_ci(
    values: np.ndarray,
    groups: np.ndarray,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float, float]:
    """Mean of group means and a two-stage percentile bootstrap interval: resample the groups
    (training seeds) with replacement, then the units (images) within each drawn group
    (Davison & Hinkley 1997, sec. 3.8; Saravanan et al. 2020, "Application of the hierarchical
    bootstrap to multi-level data"). Covers seed-to-seed and image-to-image variation.
    Hand-written: scipy.stats.bootstrap resamples one level only."""
    check_bootstrap(n_boot, alpha)
    arr = np.asarray(values, dtype=np.float64).ravel()
    grp = np.asarray(groups).ravel()
    labels = list(dict.fromkeys(grp.tolist()))
    members = [arr[grp == g] for g in labels]
    mean = float(np.mean([m.mean() for m in members]))
    rng = np.random.default_rng(seed)
    k = len(members)
    picks = rng.integers(0, k, size=(n_boot, k))
    sums = np.zeros(n_boot)
    for j in range(k):  # the j-th drawn group of every resample
        for g, m in enumerate(members):
            rows = np.nonzero(picks[:, j] == g)[0]
            if rows.size:
                sums[rows] += _resample_means(rng, m, rows.size)
    lo, hi = np.quantile(sums / k, [alpha / 2, 1 - alpha / 2])
    return mean, float(lo), float(hi)


# Above this many units in one group a resample's index matrix (resamples x units) is not
# built: 0/1 units (e.g. the sign flips of ~10^5 kernel weights) draw each resample's mean as
# Binomial(n, p) / n, its exact distribution; other units draw the indices a block of resamples
# at a time. Below it, the draws are those of one index matrix (the values of every per-image
# score unchanged).
RESAMPLE_DIRECT_MAX_UNITS = 4096
_RESAMPLE_BLOCK_ELEMENTS = 2**22  # indices per block (32 MB of int64)


def _resample_means(rng: np.random.Generator, m: np.ndarray, count: int) -> np.ndarray:
    """``count`` means of ``m`` resampled with replacement (``m.size`` units each)."""
    if m.size <= RESAMPLE_DIRECT_MAX_UNITS:
        return m[rng.integers(0, m.size, size=(count, m.size))].mean(axis=1)
    if _is_proportion(m):
        return rng.binomial(m.size, float(m.mean()), size=count) / m.size
    out = np.empty(count)
    step = max(1, _RESAMPLE_BLOCK_ELEMENTS // m.size)
    for start in range(0, count, step):
        stop = min(count, start + step)
        out[start:stop] = m[rng.integers(0, m.size, size=(stop - start, m.size))].mean(axis=1)
    return out


def _is_proportion(arr: np.ndarray) -> bool:
    return bool(np.all((arr == 0.0) | (arr == 1.0)))


def mean_interval(
    values: np.ndarray | list[float],
    *,
    groups: np.ndarray | list[int] | None = None,
    n_boot: int = 1000,
    seed: int = 0,
    alpha: float = 0.05,
) -> Interval:
    """The interval every score gets; the rule is chosen by the data's shape:

    - units from several replicates (``groups`` with more than one value): hierarchical
      bootstrap over replicates, then units (one unit per replicate: Student t over them);
    - 0/1 values (a proportion): Wilson;
    - fewer than ``SMALL_N`` units: Student t;
    - otherwise: percentile bootstrap over units.

    Non-finite values are dropped first (with their group labels).
    """
    arr = np.asarray(values, dtype=np.float64).ravel()
    grp = None if groups is None else np.asarray(groups).ravel()
    ok = np.isfinite(arr)
    arr = arr[ok]
    grp = None if grp is None else grp[ok]
    n = int(arr.size)
    n_groups = 1 if grp is None or n == 0 else len(set(grp.tolist()))
    if n == 0:
        return Interval(float("nan"), float("nan"), float("nan"), 0, "none", 0)
    if n_groups > 1 and grp is not None and n_groups == n:
        # one value per replicate (a per-seed scalar, e.g. an arg-optimum or a final training
        # accuracy): a sample of k seed values, never read as a 0/1 proportion
        if np.all(arr == arr[0]):
            return Interval(float(arr[0]), float(arr[0]), float(arr[0]), n, "constant", n_groups)
        mean, lo, hi = t_ci(arr, alpha=alpha)
        return Interval(mean, lo, hi, n, "t", n_groups)
    if n_groups > 1 and grp is not None:
        if np.all(arr == arr[0]):  # no variation at either level: a resample cannot show any
            if _is_proportion(arr):
                lo, hi = wilson_ci(int(arr.sum()), n, alpha=alpha)
                return Interval(float(arr[0]), lo, hi, n, "wilson", n_groups)
            return Interval(float(arr[0]), float(arr[0]), float(arr[0]), n, "constant", n_groups)
        mean, lo, hi = hierarchical_bootstrap_ci(arr, grp, n_boot=n_boot, seed=seed, alpha=alpha)
        return Interval(mean, lo, hi, n, "hierarchical", n_groups)
    mean = float(arr.mean())
    if n == 1:
        return Interval(mean, float("nan"), float("nan"), 1, "none")
    if _is_proportion(arr):
        lo, hi = wilson_ci(int(arr.sum()), n, alpha=alpha)
        return Interval(mean, lo, hi, n, "wilson")
    if np.all(arr == arr[0]):
        return Interval(mean, mean, mean, n, "constant")
    if n < SMALL_N:
        _, lo, hi = t_ci(arr, alpha=alpha)
        return Interval(mean, lo, hi, n, "t")
    _, lo, hi = bootstrap_ci(arr, n_boot=n_boot, seed=seed, alpha=alpha)
    return Interval(mean, lo, hi, n, "bootstrap")
