"""Pixel rankings shared by top-k, localization and perturbation metrics."""

from __future__ import annotations

import numpy as np

from binsal.core.errors import InvalidInputError


def topk_inclusion(scores: np.ndarray, k: int | np.ndarray) -> np.ndarray:
    """Probability that each pixel is in the top k of its row, ties broken uniformly at random.

    ``scores`` is (N, P); ``k`` an int or an (N,) array with 1 <= k <= P. Pixels strictly above the
    k-th largest value get 1, pixels tied with it share the remaining slots equally, the rest 0.
    Rows sum to k. This makes top-k scores deterministic and free of a positional bias (a constant
    map gets k / P everywhere rather than its first k pixels).
    """
    n, p = scores.shape
    k_arr = np.broadcast_to(np.asarray(k, dtype=np.int64), (n,))
    if n and (k_arr.min() < 1 or k_arr.max() > p):
        raise InvalidInputError(f"k must be in [1, {p}], got {np.unique(k_arr)}")
    kth = -np.sort(-scores, axis=1)[np.arange(n), k_arr - 1][:, None]
    above = scores > kth
    tied = scores == kth
    share = (k_arr - above.sum(axis=1)) / tied.sum(axis=1)
    return above + tied * share[:, None]


def pixel_order(scores: np.ndarray, *, order: str) -> np.ndarray:
    """(N, P) pixel indices, most relevant first (``"morf"``) or least relevant first (``"lerf"``).

    Ties keep pixel (row-major) order in both cases (stable sort), so the order is deterministic.
    """
    if order == "morf":
        return np.argsort(-scores, axis=1, kind="stable")
    if order == "lerf":
        return np.argsort(scores, axis=1, kind="stable")
    raise InvalidInputError(f"order must be 'morf' or 'lerf', got {order!r}")


def rank_positions(scores: np.ndarray, *, order: str) -> np.ndarray:
    """(N, P) position of each pixel in :func:`pixel_order` (0 = removed / revealed first)."""
    idx = pixel_order(scores, order=order)
    pos = np.empty_like(idx)
    np.put_along_axis(pos, idx, np.arange(idx.shape[1])[None, :], axis=1)
    return pos


def count_for_fraction(fraction: float | np.ndarray, n_pixels: int) -> np.ndarray:
    """Number of pixels ceil(fraction * P), robust to float round-off (0.3 * 10 -> 3, not 4)."""
    frac = np.asarray(fraction, dtype=np.float64)
    return np.clip(np.ceil(frac * n_pixels - 1e-9), 0, n_pixels).astype(np.int64)
