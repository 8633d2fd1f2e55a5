"""Localization of a map against a ground-truth mask (synthetic data: the object is the evidence).

Maps are (N, H, W), masks boolean (N, H, W). An image with an empty mask has no ground truth and
scores NaN in every metric here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np
from scipy.ndimage import binary_dilation

from binsal.core.errors import InvalidInputError
from binsal.metrics._checks import Direction, as_maps, as_masks, flat, safe_divide
from binsal.metrics._ranking import topk_inclusion
from binsal.metrics.curves import curve_auc
from binsal.metrics.registry import register_metric
from binsal.metrics.transforms import normalize

DEFAULT_THRESHOLDS = np.linspace(0.0, 1.0, 21)


def _inputs(
    maps: np.ndarray, masks: np.ndarray, use_abs: bool
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validated (scores, masks, empty) with scores abs'd if asked and ``empty`` an (N,) flag."""
    arr = as_maps(maps)
    m = as_masks(masks, arr.shape)
    return (np.abs(arr) if use_abs else arr), m, ~m.any(axis=(1, 2))


def _dilate(masks: np.ndarray, tolerance_px: int) -> np.ndarray:
    if tolerance_px < 0:
        raise InvalidInputError(f"tolerance_px must be >= 0, got {tolerance_px}")
    if tolerance_px == 0:
        return masks
    r = np.arange(-tolerance_px, tolerance_px + 1)
    disk = r[:, None] ** 2 + r[None, :] ** 2 <= tolerance_px**2
    return binary_dilation(masks, structure=disk[None])


def pointing_game(
    maps: np.ndarray, masks: np.ndarray, *, use_abs: bool = True, tolerance_px: int = 0
) -> np.ndarray:
    """Pointing game (Zhang et al. 2016, excitation backprop): is the map's maximum in the mask?

    1.0 if the maximum lies in the mask dilated by ``tolerance_px`` (a Euclidean disk; Zhang et al.
    use 15 px), else 0.0.
    Tied maxima score the fraction of them inside the mask, the expected hit under random
    tie-breaking: a blank map scores chance level |mask| / (H W), never a free hit.
    """
    scores, m, empty = _inputs(maps, masks, use_abs)
    hit = (topk_inclusion(flat(scores), 1) * flat(_dilate(m, tolerance_px))).sum(axis=1)
    return np.where(empty, np.nan, hit)


def relevance_mass(maps: np.ndarray, masks: np.ndarray, *, use_abs: bool = True) -> np.ndarray:
    """Share of the relevance inside the mask, R_in / R_total (Arras et al. 2022, CLEVR-XAI).

    Relevance is |m| with ``use_abs``, else the positive part max(m, 0) as in Arras et al.
    NaN when the total relevance is 0.
    """
    scores, m, empty = _inputs(maps, masks, use_abs)
    rel = flat(np.maximum(scores, 0.0))
    mass = safe_divide((rel * flat(m)).sum(axis=1), rel.sum(axis=1))
    return np.where(empty, np.nan, mass)


def relevance_rank_accuracy(
    maps: np.ndarray, masks: np.ndarray, *, use_abs: bool = True
) -> np.ndarray:
    """Fraction of the K = |mask| top-ranked pixels that lie in the mask (Arras et al. 2022).

    Ties at the K-th value are shared by expectation over random tie-breaking.
    """
    scores, m, empty = _inputs(maps, masks, use_abs)
    k = np.maximum(flat(m).sum(axis=1), 1)
    acc = (topk_inclusion(flat(scores), k) * flat(m)).sum(axis=1) / k
    return np.where(empty, np.nan, acc)


def iou_curve(
    maps: np.ndarray,
    masks: np.ndarray,
    *,
    thresholds: np.ndarray = DEFAULT_THRESHOLDS,
    use_abs: bool = True,
    normalization: Literal["minmax", "max_abs"] = "minmax",
) -> np.ndarray:
    """(N, T) IoU of {normalised map >= t} with the mask, per threshold t (Oramas et al. 2019).

    Each map is (abs'd if asked, then) normalised per image with ``normalization``; at t = 0 with
    minmax every pixel is selected, so the IoU there is |mask| / (H W).
    """
    if normalization not in ("minmax", "max_abs"):
        raise InvalidInputError(
            f"normalization must be 'minmax' or 'max_abs', got {normalization!r}"
        )
    t = np.asarray(thresholds, dtype=np.float64)
    if t.ndim != 1 or t.size == 0 or not np.isfinite(t).all():
        raise InvalidInputError(f"thresholds must be a finite 1-D array, got shape {t.shape}")
    scores, m, empty = _inputs(maps, masks, use_abs)
    s, mf = flat(normalize(scores, mode=normalization)), flat(m)
    out = np.empty((s.shape[0], t.size))
    for j, thr in enumerate(t):
        pred = s >= thr
        out[:, j] = safe_divide((pred & mf).sum(axis=1), (pred | mf).sum(axis=1))
    out[empty] = np.nan
    return out


def iou_auc(
    maps: np.ndarray,
    masks: np.ndarray,
    *,
    thresholds: np.ndarray = DEFAULT_THRESHOLDS,
    use_abs: bool = True,
    normalization: Literal["minmax", "max_abs"] = "minmax",
) -> np.ndarray:
    """(N,) area under the IoU-vs-threshold curve (Oramas et al. 2019), trapezoid rule.

    Divided by the threshold range (:func:`curve_auc`); the default thresholds span [0, 1], so
    this is the plain area.
    """
    curve = iou_curve(
        maps, masks, thresholds=thresholds, use_abs=use_abs, normalization=normalization
    )
    return curve_auc(np.asarray(thresholds, dtype=np.float64), curve)


@register_metric
@dataclass(frozen=True)
class PointingGame:
    name: ClassVar[str] = "pointing_game"
    direction: ClassVar[Direction] = "higher"
    use_abs: bool = True
    tolerance_px: int = 0

    def __call__(self, maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return pointing_game(maps, masks, use_abs=self.use_abs, tolerance_px=self.tolerance_px)


@register_metric
@dataclass(frozen=True)
class RelevanceMass:
    name: ClassVar[str] = "relevance_mass"
    direction: ClassVar[Direction] = "higher"
    use_abs: bool = True

    def __call__(self, maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return relevance_mass(maps, masks, use_abs=self.use_abs)


@register_metric
@dataclass(frozen=True)
class RelevanceRankAccuracy:
    name: ClassVar[str] = "relevance_rank_accuracy"
    direction: ClassVar[Direction] = "higher"
    use_abs: bool = True

    def __call__(self, maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return relevance_rank_accuracy(maps, masks, use_abs=self.use_abs)


@register_metric
@dataclass(frozen=True)
class IoUAUC:
    name: ClassVar[str] = "iou_auc"
    direction: ClassVar[Direction] = "higher"
    thresholds: tuple[float, ...] = field(default=tuple(DEFAULT_THRESHOLDS.tolist()))
    use_abs: bool = True
    normalization: Literal["minmax", "max_abs"] = "minmax"

    def __call__(self, maps: np.ndarray, masks: np.ndarray) -> np.ndarray:
        return iou_auc(
            maps,
            masks,
            thresholds=np.asarray(self.thresholds),
            use_abs=self.use_abs,
            normalization=self.normalization,
        )
