"""Sparseness of a saliency map: the Gini index of its absolute values (Chalasani et al. 2020,
"Concise explanations of neural networks using adversarial training", ICML; Hurley & Rickard
2009 for the index's properties). A complement to the entropy: 1 for a single non-zero pixel,
0 for a uniform map."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from binsal.metrics._checks import Direction, as_maps, flat
from binsal.metrics.registry import register_metric


def gini_sparseness(maps: np.ndarray) -> np.ndarray:
    """Gini index of |m| per image: G = sum_k (2k - d - 1) v_(k) / (d sum_k v_(k)), with the d
    values v sorted ascending (Hurley & Rickard 2009, eq. for G). NaN for an all-zero map.
    Hand-written: vectorised over the batch (scipy has no Gini index)."""
    v = np.sort(np.abs(flat(as_maps(maps))), axis=1)
    d = v.shape[1]
    weights = 2.0 * np.arange(1, d + 1) - d - 1.0
    total = v.sum(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        gini = (v @ weights) / (d * total)
    return np.where(total > 0, gini, np.nan)


@register_metric
@dataclass(frozen=True)
class GiniSparseness:
    """Higher is sparser: a map concentrated on few pixels (descriptive: "none")."""

    name: ClassVar[str] = "gini_sparseness"
    direction: ClassVar[Direction] = "none"

    def __call__(self, maps: np.ndarray) -> np.ndarray:
        return gini_sparseness(maps)
