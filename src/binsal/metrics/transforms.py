"""Per-image map transforms: the explicit ``abs`` and normalisation options of every metric."""

from __future__ import annotations

from typing import Literal

import numpy as np

from binsal.core.errors import InvalidInputError
from binsal.metrics._checks import as_maps

NormalizeMode = Literal["minmax", "sum", "max_abs"] | None
NORMALIZE_MODES = ("minmax", "sum", "max_abs", None)


def to_abs(maps: np.ndarray) -> np.ndarray:
    """Absolute value of each map, float64 (N, H, W)."""
    return np.abs(as_maps(maps))


def normalize(maps: np.ndarray, *, mode: NormalizeMode) -> np.ndarray:
    """Normalise each map of an (N, H, W) batch on its own.

    ``"minmax"``: (m - min) / (max - min), into [0, 1].
    ``"sum"``: m / sum|m| (a non-negative map then sums to 1).
    ``"max_abs"``: m / max|m|, into [-1, 1], sign kept.
    ``None``: unchanged (float64 copy).
    Zero-safe: a map whose denominator is 0 (constant for minmax, all-zero otherwise) becomes zeros.
    """
    arr = as_maps(maps)
    if mode not in NORMALIZE_MODES:
        raise InvalidInputError(f"normalize mode must be one of {NORMALIZE_MODES}, got {mode!r}")
    if mode is None:
        return arr.copy()
    if mode == "minmax":
        low = arr.min(axis=(1, 2), keepdims=True)
        num, den = arr - low, arr.max(axis=(1, 2), keepdims=True) - low
    elif mode == "sum":
        num, den = arr, np.abs(arr).sum(axis=(1, 2), keepdims=True)
    else:
        num, den = arr, np.abs(arr).max(axis=(1, 2), keepdims=True)
    out = np.zeros_like(arr)
    np.divide(num, den, out=out, where=np.broadcast_to(den > 0, arr.shape))
    return out
