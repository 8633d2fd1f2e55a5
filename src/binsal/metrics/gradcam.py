"""GradCAM pathologies on binarized networks: blank maps and evidence thrown away by the ReLU.

GradCAM (Selvaraju et al. 2017) is ReLU(sum_k alpha_k A^k). These metrics take the map before the
final ReLU (the signed map), where the pathology is visible.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from binsal.core.errors import InvalidInputError
from binsal.metrics._checks import Direction, as_maps, safe_divide
from binsal.metrics.registry import register_metric


def blank_map(maps: np.ndarray, *, rel_eps: float = 1e-6, abs_eps: float = 1e-12) -> np.ndarray:
    """1.0 where the ReLU'd map is blank, else 0.0, per image.

    Blank means max(m, 0) <= rel_eps * max|m| (no positive evidence relative to the map's own
    scale) or max|m| <= abs_eps (the whole map is ~0). Pass the pre-ReLU signed map to get the
    relative test; on an already ReLU'd map only the absolute test can fire.
    """
    if rel_eps < 0 or abs_eps < 0:
        raise InvalidInputError(f"rel_eps and abs_eps must be >= 0, got {rel_eps}, {abs_eps}")
    m = as_maps(maps)
    scale = np.abs(m).max(axis=(1, 2))
    positive_peak = np.maximum(m, 0.0).max(axis=(1, 2))
    return ((scale <= abs_eps) | (positive_peak <= rel_eps * scale)).astype(np.float64)


def negative_mass_share(pre_relu_maps: np.ndarray) -> np.ndarray:
    """sum max(-m, 0) / sum |m| per image: the share of evidence the final ReLU discards.

    NaN for an all-zero map.
    """
    m = as_maps(pre_relu_maps, "pre_relu_maps")
    return safe_divide(np.maximum(-m, 0.0).sum(axis=(1, 2)), np.abs(m).sum(axis=(1, 2)))


@register_metric
@dataclass(frozen=True)
class BlankMap:
    """Rate of blank GradCAM maps: lower is better."""

    name: ClassVar[str] = "blank_map"
    direction: ClassVar[Direction] = "lower"
    rel_eps: float = 1e-6
    abs_eps: float = 1e-12

    def __call__(self, maps: np.ndarray) -> np.ndarray:
        return blank_map(maps, rel_eps=self.rel_eps, abs_eps=self.abs_eps)


@register_metric
@dataclass(frozen=True)
class NegativeMassShare:
    """Descriptive: how much signed GradCAM evidence is negative (the paper's inverted maps)."""

    name: ClassVar[str] = "negative_mass_share"
    direction: ClassVar[Direction] = "none"

    def __call__(self, pre_relu_maps: np.ndarray) -> np.ndarray:
        return negative_mass_share(pre_relu_maps)
