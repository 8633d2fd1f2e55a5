"""The one results schema every benchmark emits (tidy, long format: one row per score)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np

from binsal.core.stats import bootstrap_ci

Direction = Literal["higher", "lower", "none"]

RESULT_COLUMNS: list[str] = [
    "benchmark",  # e.g. "rank_correlation"
    "model",  # model name, or "fp_model|bnn_model" for pairwise scores
    "family",  # "FP", "BNN" or "FP-BNN"
    "pair",  # matched-pair name ("" when not part of a pair)
    "method",  # saliency method name
    "metric",  # score name, e.g. "spearman"
    "step",  # x position for curves (layer, noise level, fraction removed); NaN for scalars
    "params",  # JSON of the method / metric options that produced the score
    "value",  # mean over n units (images)
    "ci_low",  # bootstrap 95 % CI
    "ci_high",
    "n",  # number of units (images) averaged
    "direction",  # "higher" / "lower" is better, or "none" (descriptive)
    "seed",  # seed of the random draws behind the score
]


def score_row(
    values: np.ndarray | list[float],
    *,
    benchmark: str,
    model: str,
    family: str,
    method: str,
    metric: str,
    direction: Direction,
    seed: int,
    pair: str = "",
    step: float | None = None,
    params: Mapping[str, Any] | None = None,
    n_boot: int = 1000,
) -> dict[str, Any]:
    """Aggregate per-unit values into one tidy row: mean, bootstrap 95 % CI and n.

    Non-finite per-unit values are dropped (and ``n`` counts only the finite ones).
    """
    if direction not in ("higher", "lower", "none"):
        raise ValueError(f"direction must be higher/lower/none, got {direction!r}")
    arr = np.asarray(values, dtype=np.float64).ravel()
    arr = arr[np.isfinite(arr)]
    mean, lo, hi = bootstrap_ci(arr, n_boot=n_boot, seed=seed)
    return {
        "benchmark": benchmark,
        "model": model,
        "family": family,
        "pair": pair,
        "method": method,
        "metric": metric,
        "step": float("nan") if step is None else float(step),
        "params": json.dumps(dict(params or {}), sort_keys=True, default=str),
        "value": mean,
        "ci_low": lo,
        "ci_high": hi,
        "n": int(arr.size),
        "direction": direction,
        "seed": int(seed),
    }
