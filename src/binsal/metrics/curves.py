"""Area under sampled curves (deletion / insertion, IoU vs threshold)."""

from __future__ import annotations

import numpy as np

from binsal.core.errors import InvalidInputError


def curve_auc(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Trapezoid area under y(x) divided by the x range, for every row of ``y``.

    ``x`` is (F,) strictly increasing; ``y`` is (..., F). The result has shape ``y.shape[:-1]``
    and is the mean height of the curve, so a constant curve c gives c whatever the x range.
    NaNs in a row give NaN for that row.
    """
    x_arr = np.asarray(x, dtype=np.float64)
    y_arr = np.asarray(y, dtype=np.float64)
    if x_arr.ndim != 1 or x_arr.size < 2:
        raise InvalidInputError(f"x must be 1-D with at least 2 points, got shape {x_arr.shape}")
    if not np.all(np.diff(x_arr) > 0):
        raise InvalidInputError(f"x must be strictly increasing, got {x_arr}")
    if y_arr.ndim == 0 or y_arr.shape[-1] != x_arr.size:
        raise InvalidInputError(
            f"y must have the length of x ({x_arr.size}) in its last axis, got shape {y_arr.shape}"
        )
    area = ((y_arr[..., 1:] + y_arr[..., :-1]) / 2 * np.diff(x_arr)).sum(axis=-1)
    return area / (x_arr[-1] - x_arr[0])
