"""What the model- and data-randomization sanity checks (Adebayo et al. 2018)
share: the similarity of maps before and after, and the choice of methods.

Both benchmarks compare the maps of the evaluation images for their true class, before and after
randomization, by Spearman rank correlation of the abs maps and of the signed maps, SSIM of the
abs maps and Pearson correlation of HOG descriptors of the abs maps
(``binsal.metrics.similarity``). Direction "lower": a method whose maps survive randomization
fails the check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from binsal.benchmarks.base import MethodChoice, RunContext
from binsal.metrics import similarity
from binsal.saliency import CONTROLS

# metric -> what it compares (the maps before and after randomization)
SIMILARITY_METRICS: dict[str, str] = {
    "spearman_abs": "Spearman rank correlation of the abs maps, before vs after",
    "spearman_signed": "Spearman rank correlation of the signed maps, before vs after",
    "ssim": "SSIM of the abs maps, before vs after",
    "hog_pearson": "Pearson correlation of HOG descriptors of the abs maps, before vs after",
}


def hog_cell(shape: Sequence[int]) -> int:
    """HOG cell size: skimage's 8 px (Adebayo et al.) where the maps hold 3x3 such cells,
    else a third of the smaller side (tiny test maps)."""
    side = min(int(shape[-2]), int(shape[-1]))
    return 8 if side >= 24 else max(1, side // 3)


def similarity_scores(
    a: np.ndarray, b: np.ndarray, metrics: Iterable[str] | None = None
) -> dict[str, np.ndarray]:
    """Per-image similarity of two (N, H, W) map batches: "spearman_abs", "spearman_signed",
    "ssim" (abs maps) and "hog_pearson" (abs maps); NaN where undefined (a constant map)."""
    cell = hog_cell(a.shape)
    fns = {
        "spearman_abs": lambda: similarity.spearman(a, b, use_abs=True),
        "spearman_signed": lambda: similarity.spearman(a, b, use_abs=False),
        "ssim": lambda: similarity.ssim(a, b, use_abs=True),
        "hog_pearson": lambda: similarity.hog_pearson(
            a, b, use_abs=True, pixels_per_cell=(cell, cell)
        ),
    }
    return {name: fns[name]() for name in (metrics or fns)}


def blank(maps: np.ndarray) -> np.ndarray:
    """Per map, 1.0 if it is constant (e.g. a GradCAM that went blank, where the correlations
    are undefined), else 0.0."""
    flat = np.asarray(maps).reshape(len(maps), -1)
    return (np.ptp(flat, axis=1) == 0).astype(np.float64)


def resolve_methods(ctx: RunContext, allowed: MethodChoice) -> list[str]:
    """The profile's model-dependent methods (Random / Sobel controls excluded), restricted to
    ``allowed`` (a list, or "profile" for all of them), in the profile's order."""
    names = [m for m in ctx.methods if m not in CONTROLS]
    if allowed == "profile":
        return names
    keep = set(allowed)
    return [m for m in names if m in keep]
