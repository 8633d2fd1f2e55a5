"""Localization against ground-truth object masks (DESIGN.md 6.5): does the map point at the object?

On the synthetic data the object is, by construction, the only evidence for the class, so a good
map of the true class concentrates on the object's pixel mask. For every model and every method
of the profile (Random and Sobel controls included as reference rows, repeated per model; model x
method combinations for which a method is not defined, e.g. guided backprop through larq's sign,
are skipped), against the evaluation masks:

"pointing_game": 1 if the map's maximum lies in the mask, tied maxima scoring the share of them
inside (Zhang et al. 2016); "relevance_mass": the share of relevance inside the mask (Arras et
al. 2022); "relevance_rank_accuracy": the share of the K = |mask| top-ranked pixels that lie in the
mask (Arras et al. 2022); "iou": intersection over union of {min-max normalised map >= t} with the
mask as a curve over thresholds t (step = t) and "iou_auc", its area (Oramas et al. 2019). All
direction "higher", n = images with a non-empty mask (and, for relevance mass, a non-zero map).

Pixel-attribution methods (gradients, SmoothGrad, Integrated Gradients, controls) are scored on
the abs map. CAM-family maps (GradCAM, its signed and inverted variants, GradCAM++, Score-CAM) are
ranked by their signed value, as they are displayed: relevance is their positive part, so the
signed and inverted GradCAM variants (the paper's "remove the ReLU and invert") are compared with
GradCAM on equal terms. The choice is recorded as ``use_abs`` in each row's params. Without masks
(e.g. the paper's photos) this benchmark emits no rows.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from binsal.benchmarks.base import Benchmark, PlotSpec, RunContext, explained_targets
from binsal.benchmarks.entropy_vs_noise import TARGET
from binsal.core.schema import score_row
from binsal.metrics.curves import curve_auc
from binsal.metrics.localization import (
    DEFAULT_THRESHOLDS,
    iou_curve,
    pointing_game,
    relevance_mass,
    relevance_rank_accuracy,
)
from binsal.saliency import METHODS, is_defined
from binsal.saliency.methods import GradCAM
from binsal.saliency.methods_extra import GradCAMPlusPlus, ScoreCAM

CAM_FAMILY = (GradCAM, GradCAMPlusPlus, ScoreCAM)


def ranks_signed(method: str) -> bool:
    """True for CAM-family methods, whose maps are ranked by signed value (positive part)."""
    return issubclass(METHODS[method], CAM_FAMILY)


def localization_scores(
    maps: np.ndarray,
    masks: np.ndarray,
    *,
    use_abs: bool = True,
    thresholds: np.ndarray = DEFAULT_THRESHOLDS,
    tolerance_px: int = 0,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-image scalar scores {metric: (N,)} and the (N, T) IoU curve of ``maps`` vs ``masks``."""
    t = np.asarray(thresholds, dtype=np.float64)
    curve = iou_curve(maps, masks, thresholds=t, use_abs=use_abs)
    scalars = {
        "pointing_game": pointing_game(maps, masks, use_abs=use_abs, tolerance_px=tolerance_px),
        "relevance_mass": relevance_mass(maps, masks, use_abs=use_abs),
        "relevance_rank_accuracy": relevance_rank_accuracy(maps, masks, use_abs=use_abs),
        "iou_auc": curve_auc(t, curve),
    }
    return scalars, curve


class Localization(Benchmark):
    name: ClassVar[str] = "localization"
    title: ClassVar[str] = "Localization against ground-truth object masks"
    description: ClassVar[str] = __doc__ or ""
    order: ClassVar[int] = 20
    plots: ClassVar[tuple[PlotSpec, ...]] = (
        PlotSpec("relevance_mass", title="Relevance mass inside the object mask (higher = better)"),
        PlotSpec("pointing_game", title="Pointing game hit rate (higher = better)"),
        PlotSpec("iou_auc", title="Area under the IoU-vs-threshold curve (higher = better)"),
        PlotSpec(
            "iou",
            kind="curve",
            title="IoU of the thresholded map with the object mask",
            xlabel="threshold on the min-max normalised map",
            ylabel="IoU",
        ),
    )
    options: ClassVar[dict[str, dict[str, Any]]] = {
        # n_images None: every evaluation image; extra_methods: scored besides the profile's
        "*": {
            "thresholds": DEFAULT_THRESHOLDS.tolist(),
            "tolerance_px": 0,
            "n_images": None,
            "extra_methods": [],
        },
    }

    def run(self, ctx: RunContext) -> list[dict[str, Any]]:
        if ctx.masks is None:
            return []
        opts = self.options_for(ctx.profile)
        thresholds = np.asarray(opts["thresholds"], dtype=np.float64)
        n = len(ctx.images) if opts.get("n_images") is None else int(opts["n_images"])
        n = max(1, min(n, len(ctx.images)))
        images, masks = ctx.images[:n], np.asarray(ctx.masks)[:n]
        methods = list(dict.fromkeys([*ctx.methods, *opts.get("extra_methods", [])]))
        engine = ctx.maps.engine
        grid = [
            (model, method)
            for model in ctx.models
            for method in methods
            if is_defined(method, ctx.models[model], engine=engine)[0]
        ]
        rows: list[dict[str, Any]] = []
        for model, method_name in ctx.progress.bar(grid, desc="localization"):
            lm = ctx.models[model]
            method = ctx.method(method_name)
            targets = explained_targets(ctx, model)[:n]
            maps = ctx.maps.get(lm, method, images, targets)
            use_abs = not ranks_signed(method_name)
            scalars, curve = localization_scores(
                maps,
                masks,
                use_abs=use_abs,
                thresholds=thresholds,
                tolerance_px=int(opts["tolerance_px"]),
            )
            params = {
                **method.params(),
                "use_abs": use_abs,
                "tolerance_px": int(opts["tolerance_px"]),
                "iou_normalization": "minmax",
                "n_thresholds": int(thresholds.size),
                "target": TARGET,
            }
            common = {
                "benchmark": self.name,
                "model": model,
                "family": lm.family,
                "pair": lm.spec.pair,
                "method": method_name,
                "direction": "higher",
                "seed": ctx.seed,
                "params": params,
                "n_boot": ctx.profile.n_boot,
            }
            for metric, values in scalars.items():
                rows.append(score_row(values, metric=metric, **common))
            for j, thr in enumerate(thresholds):
                rows.append(score_row(curve[:, j], metric="iou", step=float(thr), **common))
        return rows
