"""Input validation shared by the metrics: clear errors naming the problem and the shape."""

from __future__ import annotations

import numpy as np

from binsal.core.errors import InvalidInputError
from binsal.core.schema import Direction

__all__ = ["Direction"]  # the metric classes import it from here


def _check_finite(arr: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.argwhere(bad)[0][0])
        raise InvalidInputError(
            f"{name} of shape {arr.shape} contains {int(bad.sum())} NaN/inf values "
            f"(first in image {first})"
        )


def as_maps(maps: np.ndarray, name: str = "maps") -> np.ndarray:
    """Return ``maps`` as a finite float64 array of shape (N, H, W), or raise."""
    arr = np.asarray(maps)
    if arr.ndim != 3 or 0 in arr.shape[1:]:
        raise InvalidInputError(f"{name} must have shape (N, H, W), got shape {arr.shape}")
    if not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InvalidInputError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    _check_finite(arr, name)
    return arr


def as_map_pair(
    a: np.ndarray, b: np.ndarray, names: tuple[str, str] = ("a", "b")
) -> tuple[np.ndarray, np.ndarray]:
    """Validate two map batches of identical shape (N, H, W)."""
    a_arr, b_arr = as_maps(a, names[0]), as_maps(b, names[1])
    if a_arr.shape != b_arr.shape:
        raise InvalidInputError(
            f"{names[0]} and {names[1]} must have the same shape, "
            f"got {names[0]} {a_arr.shape} and {names[1]} {b_arr.shape}"
        )
    return a_arr, b_arr


def as_masks(masks: np.ndarray, shape: tuple[int, ...], name: str = "masks") -> np.ndarray:
    """Return boolean masks of the given (N, H, W) shape; accepts bool or 0/1 arrays."""
    arr = np.asarray(masks)
    if arr.shape != shape:
        raise InvalidInputError(f"{name} must have the maps' shape {shape}, got shape {arr.shape}")
    if arr.dtype != bool:
        if not np.issubdtype(arr.dtype, np.number) or not np.isin(arr, (0, 1)).all():
            raise InvalidInputError(
                f"{name} of shape {arr.shape} must be boolean or 0/1, got dtype {arr.dtype}"
            )
        arr = arr.astype(bool)
    return arr


def as_images(images: np.ndarray, name: str = "images") -> np.ndarray:
    """Return ``images`` as a finite float32 array of shape (N, H, W, C), or raise."""
    arr = np.asarray(images)
    if arr.ndim != 4 or 0 in arr.shape[1:]:
        raise InvalidInputError(f"{name} must have shape (N, H, W, C), got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise InvalidInputError(f"{name} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    _check_finite(arr, name)
    return arr


def flat(maps: np.ndarray) -> np.ndarray:
    """(N, H, W) -> (N, H * W) view."""
    return maps.reshape(maps.shape[0], int(np.prod(maps.shape[1:])))


def safe_divide(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with NaN where den == 0 (and no RuntimeWarning)."""
    num, den = np.broadcast_arrays(np.asarray(num, np.float64), np.asarray(den, np.float64))
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out
