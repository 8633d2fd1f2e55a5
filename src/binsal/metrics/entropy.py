"""Shannon entropy of a saliency map: how spread out (noisy) it is."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from binsal.metrics._checks import Direction, as_maps, flat, safe_divide
from binsal.metrics.registry import register_metric


def map_entropy(maps: np.ndarray, *, normalized_by_log_n: bool = False) -> np.ndarray:
    """Shannon entropy H = -sum p log p (natural log) of p = |m| / sum|m|, per image.

    A uniform map gives the maximum log(H W) (1.0 with ``normalized_by_log_n``), a single non-zero
    pixel gives 0. An all-zero map has no distribution: NaN. Abs is part of the definition here
    (p must be non-negative), not an option.
    """
    p = np.abs(flat(as_maps(maps)))
    p = safe_divide(p, p.sum(axis=1, keepdims=True))
    plogp = np.zeros_like(p)
    np.multiply(p, np.log(p, out=np.zeros_like(p), where=p > 0), out=plogp, where=p > 0)
    entropy = -plogp.sum(axis=1)
    entropy[np.isnan(p).any(axis=1)] = np.nan
    if normalized_by_log_n:
        entropy = safe_divide(entropy, np.log(p.shape[1]))
    return np.maximum(entropy, 0.0)


@register_metric
@dataclass(frozen=True)
class MapEntropy:
    """Lower is better: a focused map has low entropy (the SmoothGrad noise sweep)."""

    name: ClassVar[str] = "map_entropy"
    direction: ClassVar[Direction] = "lower"
    normalized_by_log_n: bool = False

    def __call__(self, maps: np.ndarray) -> np.ndarray:
        return map_entropy(maps, normalized_by_log_n=self.normalized_by_log_n)
